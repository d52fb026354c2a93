"""Properties of produced plans (verifier + invariants), determinism, and the solve CLI."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import _solver_inputs as S
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import InfeasibleError
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import dumps
from maestro_plan.solve.planner import solve
from maestro_plan.solve.problem import SolveSettings
from maestro_plan.verify import verify_plan

GPU_TYPES = ["l4", "l40s", "h100-sxm", "a100-80gb"]
MODELS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b"]


def _invariants(plan, inputs) -> None:
    """Checks of our own, beside the verifier's: GPUs exist and are not over-committed, routing adds up."""
    nodes = {}
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            for n in p.node_names:
                nodes[n] = p
    mem = defaultdict(float)
    share = defaultdict(float)
    for r in plan.replicas:
        p = nodes[r.node]
        assert r.gpu_type == p.gpu_type and len(r.gpu_indices) == r.tp
        assert all(0 <= i < p.gpus_per_node for i in r.gpu_indices)
        for i in r.gpu_indices:
            mem[(r.node, i)] += r.memory_fraction
            share[(r.node, i)] += r.compute_share
        need = r.weights_bytes_per_gpu + r.overhead_bytes_per_gpu + r.kv_cache_bytes_per_gpu
        assert need <= r.memory_fraction * inputs.gpu_types[r.gpu_type].hbm_gib * 2**30 * (1 + 1e-9)
        if r.load_rps > 0:
            assert r.load_rps * (1 + plan.settings.headroom) <= r.capacity_rps * (1 + 1e-6)
    assert all(v <= 0.92 + 1e-9 for v in mem.values())
    assert all(v <= 1 + 1e-9 for v in share.values())
    fr = defaultdict(float)
    for rt in plan.routes:
        fr[(rt.source, rt.model)] += rt.fraction
    for d in plan.demand:
        if d.rate_rps > 0 and plan.settings.objective == "cost":
            assert fr[(d.source, d.model)] == pytest.approx(1.0, abs=1e-6)
    used = {(r.node, i) for r in plan.replicas for i in r.gpu_indices}
    assert sum(sum(v.values()) for v in plan.gpus_used.values()) == len(used)


@st.composite
def fleets(draw):
    n_pools = draw(st.integers(1, 3))
    pools = []
    for i in range(n_pools):
        pools.append(
            S.pool(
                f"p{i}",
                draw(st.sampled_from(GPU_TYPES)),
                zone=draw(st.sampled_from(["z-a", "z-b"])),
                gpus_per_node=draw(st.sampled_from([1, 2, 4, 6, 8])),
                count=draw(st.integers(1, 3)),
                price=draw(st.sampled_from([0.8, 1.5, 3.0, 6.0])),
            )
        )
    models = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
    roles = [S.role(f"r{i}", m, calls=draw(st.sampled_from([1, 2, 3])), mean_in=draw(st.sampled_from([200, 1000, 3000])), mean_out=draw(st.sampled_from([20, 150, 400]))) for i, m in enumerate(models)]
    for i in range(1, len(roles)):
        roles[i]["depends_on"] = [roles[i - 1]["name"]]
    wf = S.workflow(
        "w",
        roles,
        rate={"users": draw(st.floats(0.05, 20.0)), "far": draw(st.floats(0.05, 5.0))},
        priority=draw(st.sampled_from(["interactive", "batch"])),
        slo_ms=draw(st.sampled_from([8000.0, 30000.0, 120000.0])),
    )
    return pools, models, wf, draw(st.sampled_from(["greedy", "cpsat"])), draw(st.sampled_from([0.0, 0.2]))


def _fleet_inputs(root: Path, pools, models, wf):
    """A drawn fleet as inputs: its pools over one or two clusters, users 1 ms and 'far' 40 ms away."""
    half = max(1, len(pools) // 2)
    clusters = {"c1": pools[:half], "c2": pools[half:]} if len(pools) > 1 else {"c1": pools}
    sources = {"users": {c: 1.0 for c in clusters}, "far": {c: 40.0 for c in clusters}}
    return S.load(S.write_inputs(root, clusters=clusters, models=models, workflows=[wf], sources=sources))


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fleets())
def test_every_plan_verifies(tmp_path_factory, case) -> None:
    pools, models, wf, solver, headroom = case
    inputs = _fleet_inputs(tmp_path_factory.mktemp("fleet"), pools, models, wf)
    try:
        plan, _ = solve(inputs, S.settings(solver=solver, time_limit_s=2.0, headroom=headroom))
    except InfeasibleError as e:
        assert e.shortfalls or e.reasons  # an infeasible case always says why
        return
    rep = verify_plan(plan, inputs)
    assert rep.ok, [v.render() for v in rep.violations]
    _invariants(plan, inputs)
    if plan.solve.bound is not None:  # a bound (LP, column generation, backend) never passes the plan
        assert plan.solve.bound <= plan.solve.objective + 1e-6 * max(1.0, abs(plan.solve.objective))


def _small(tmp: Path):
    models = ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b"]
    roles = [S.role("a", models[0], calls=2), S.role("b", models[1], depends_on=["a"]), S.role("c", models[2], depends_on=["b"])]
    clusters = {"c1": [S.pool("h", "h100-sxm", count=2, price=4.0, zone="z-a"), S.pool("l", "l40s", count=2, price=1.5, zone="z-b")], "c2": [S.pool("a", "a100-80gb", count=2, price=3.0)]}
    sources = {"users": {"c1": 2.0, "c2": 30.0}, "far": {"c1": 40.0, "c2": 2.0}}
    return S.write_inputs(tmp, clusters=clusters, models=models, workflows=[S.workflow("w", roles, rate={"users": 12.0, "far": 5.0}, priority="interactive")], sources=sources)


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    inputs = S.load(_small(tmp_path))
    a, _ = solve(inputs, S.settings(time_limit_s=3.0, seed=7))
    b, _ = solve(inputs, S.settings(time_limit_s=3.0, seed=7))
    assert dumps(a) == dumps(b)
    assert a.plan_id == b.plan_id
    c, _ = solve(inputs, S.settings(time_limit_s=3.0, seed=8))
    assert c.plan_id != a.plan_id  # the seed is part of the settings


def test_network_tie_break_keeps_traffic_local(tmp_path: Path) -> None:
    """Two identical clusters at equal prices: each source is served by its own cluster."""
    clusters = {c: [S.pool(f"{c}-l", "l40s", count=1, price=2.0, zone=f"{c}-z")] for c in ("east", "west")}
    sources = {"u-east": {"east": 1.0, "west": 30.0}, "u-west": {"east": 30.0, "west": 1.0}}
    wf = S.workflow("w", [S.role("r", "llama-3.2-1b")], rate={"u-east": 30.0, "u-west": 30.0}, priority="interactive")
    inputs = S.load(S.write_inputs(tmp_path, clusters=clusters, models=["llama-3.2-1b"], workflows=[wf], sources=sources))
    plan, _ = solve(inputs, S.settings(colocation=False, standby=False, time_limit_s=10.0))
    assert plan.solve.status == "optimal"
    cluster_of = {r.id: r.cluster for r in plan.replicas}
    for rt in plan.routes:
        assert cluster_of[rt.replica] == rt.source.removeprefix("u-")
        assert rt.network_latency_ms == 1.0


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------

runner = CliRunner()


def _args(paths: dict[str, Path]) -> list[str]:
    return ["--inventory", str(paths["inventory"]), "--models", str(paths["models"]), "--workloads", str(paths["workloads"])]


def test_cli_solve_writes_plan_schema_stats(tmp_path: Path) -> None:
    paths = _small(tmp_path / "in")
    out = tmp_path / "out"
    r = runner.invoke(app, ["solve", *_args(paths), "--out", str(out), "--time-limit", "3", "--no-emit", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["status"] in ("optimal", "feasible")
    assert {"plan.json", "plan.schema.json", "solve-stats.json"} <= set(doc["files"])
    plan = json.loads((out / "plan.json").read_text())
    assert plan["plan_id"] == doc["plan_id"] and plan["cost_per_hour"] == pytest.approx(doc["cost_per_hour"])
    stats = json.loads((out / "solve-stats.json").read_text())
    assert stats["verify"]["ok"] and "solve_s" in stats["timings"]
    schema = json.loads((out / "plan.schema.json").read_text())
    import jsonschema

    jsonschema.validate(plan, schema)
    # no wall-clock figure in the plan
    assert "wall" not in json.dumps(plan) and "_s\"" not in json.dumps(plan["solve"])


def test_cli_dump_model_writes_the_final_solve_model(tmp_path: Path) -> None:
    """--dump-model FILE.mps: the model of the final solve, which HiGHS reads back with the
    problem's rows and columns; an unknown extension is bad input (exit 2) before any solve."""
    from maestro_plan.solve import build_problem
    from maestro_plan.solve.milp import new_highs

    paths = _small(tmp_path / "in")
    mps = tmp_path / "model.mps"
    r = runner.invoke(app, ["solve", *_args(paths), "--out", str(tmp_path / "out"), "--time-limit", "3", "--no-emit", "--json", "--dump-model", str(mps)])
    assert r.exit_code == 0, r.output
    h = new_highs()
    h.setOptionValue("threads", 1)
    h.readModel(str(mps))
    lm = build_problem(load_inputs(paths["inventory"], paths["models"], paths["workloads"]), SolveSettings()).lm
    assert (h.getNumRow(), h.getNumCol()) == (len(lm.rows), len(lm.vars))
    r = runner.invoke(app, ["solve", *_args(paths), "--out", str(tmp_path / "o2"), "--dump-model", str(tmp_path / "model.lp")])
    assert r.exit_code == 2 and "--dump-model" in r.output


def test_cli_infeasible_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    paths = S.write_inputs(tmp_path / "in", clusters={"c1": [S.pool("l4", "l4", gpus_per_node=1)]}, models=["llama-3.1-70b"], workflows=[S.workflow("w", [S.role("r", "llama-3.1-70b")])])
    out = tmp_path / "out"
    r = runner.invoke(app, ["solve", *_args(paths), "--out", str(out), "--no-emit"])
    assert r.exit_code == 3
    assert "memory" in r.output and "llama-3.1-70b" in r.output
    assert not out.exists() or not any(out.iterdir())


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["solve", "--inventory", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    paths = _small(tmp_path / "in")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = runner.invoke(app, ["solve", *_args(paths), "--current", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2


def test_bundled_example_greedy_end_to_end(bundled_paths: dict[str, Path], tmp_path: Path) -> None:
    """The bundled fleet, models and workloads: the greedy plan verifies and every emitter runs."""
    out = tmp_path / "demo"
    r = runner.invoke(app, ["solve", *_args(bundled_paths), "--solver", "greedy", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "heuristic" and doc["cost_per_hour"] > 0
    assert (out / "plan.json").is_file() and len(doc["files"]) > 5
    assert math.isfinite(doc["cost_per_hour"])


def test_warm_start_is_feasible_in_cpsat_integers(tmp_path: Path) -> None:
    """The warm start handed to CP-SAT survives its integer rounding (flows in 1/720720 steps,
    tightened capacity rows): with every variable fixed to the hint, CP-SAT finds it feasible."""
    from maestro_plan.solve import heuristic
    from maestro_plan.solve.cpsat import solve_cpsat
    from maestro_plan.solve.formulate import build_problem

    inputs = S.load(_small(tmp_path))
    prob = build_problem(inputs, S.settings())
    start = heuristic.complete(prob, heuristic.greedy(prob))
    assert start is not None and not prob.lm.violations(start)
    hint = heuristic.cpsat_hint(prob, start)
    assert hint is not None and not prob.lm.violations(hint)
    assert prob.lm.objectives[0].value(hint) == pytest.approx(prob.lm.objectives[0].value(start))
    prob.lm.objectives = prob.lm.objectives[:1]
    res = solve_cpsat(prob.lm, time_limit=5, hint=hint, params={"fix_variables_to_their_hinted_value": True})
    assert res.status == "optimal"


@pytest.mark.parametrize("standby", [False, True])
def test_column_generation_bound_and_start_bracket_the_optimum(tmp_path: Path, standby: bool) -> None:
    """colgen's Lagrangian bound is at most the optimum HiGHS proves on the full model, and its
    start (the integer master's pick) is a feasible plan costing at least that optimum."""
    from maestro_plan.solve import heuristic
    from maestro_plan.solve.colgen import column_generation
    from maestro_plan.solve.formulate import build_problem

    inputs = S.load(_small(tmp_path))
    st = S.settings(solver="highs", time_limit_s=30.0, standby=standby)
    opt, _ = solve(inputs, st)
    assert opt.solve.status == "optimal"
    prob = build_problem(inputs, st)
    dec = column_generation(prob, heuristic.greedy(prob))
    assert dec.bound is not None and dec.counts is not None
    assert dec.bound <= opt.solve.objective * (1 + 1e-7)
    assert dec.bound >= dec.lp_bound - 1e-9  # never weaker than the LP it starts from
    point = heuristic.complete(prob, dec.counts, slots=dec.slots, holds=dec.holds)
    assert point is not None
    assert prob.lm.objectives[0].value(point) >= opt.solve.objective * (1 - 1e-7)


def test_measured_capacity_table_is_solved_with_and_verified_with(tmp_path: Path) -> None:
    """A plan made with --capacity-table records the table's digest; `verify` re-checks it with the
    table's numbers (and refuses, exit 2, to check it without the table); a plan whose replicas
    carry more than the table's rate fails the capacity check."""
    import hashlib

    from maestro_plan.estimate import load_capacity_table
    from maestro_plan.plan.io import read_plan

    m = "llama-3.2-1b"
    paths = S.write_inputs(tmp_path / "in", clusters={"c1": [S.pool("l4", "l4", count=2, price=1.0)]}, models=[m], workflows=[S.workflow("w", [S.role("r", m)], rate=5.0)])
    table = tmp_path / "cap.csv"
    # every TP the model allows is measured (an unmeasured TP would keep the estimate, far higher)
    table.write_text("model,gpu,tp,input_tokens,output_tokens,max_rps,latency_ms,source\n" + "".join(f"{m},l4,{tp},2048,512,{2.0 * tp},3000,bench\n" for tp in (1, 2, 4, 8)))
    out = tmp_path / "out"
    r = runner.invoke(app, ["solve", *_args(paths), "--out", str(out), "--time-limit", "3", "--no-emit", "--no-colocation", "--no-standby", "--capacity-table", str(table), "--json"])
    assert r.exit_code == 0, r.output
    plan = read_plan(out / "plan.json")
    rows = [row.model_dump() for row in load_capacity_table(table).rows]
    assert plan.settings.capacity_table_sha256 == hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    # 5 req/s x 1.2 headroom at the measured 2 req/s per L4: 3 replicas (the estimate alone gives fewer)
    assert sorted(rep.capacity_rps for rep in plan.replicas) == [2.0, 2.0, 2.0]
    ok = runner.invoke(app, ["verify", str(out / "plan.json"), *_args(paths), "--capacity-table", str(table), "--json"])
    assert ok.exit_code == 0, ok.output
    missing = runner.invoke(app, ["verify", str(out / "plan.json"), *_args(paths)])
    assert missing.exit_code == 2 and "--capacity-table" in missing.output
    # the same plan against a slower table (its digest put in the plan): over capacity
    slower = tmp_path / "slow.csv"
    slower.write_text(table.read_text().replace(",1,2048,512,2.0,", ",1,2048,512,1.5,"))
    t2 = load_capacity_table(slower)
    tampered = plan.model_copy(update={"settings": plan.settings.model_copy(update={"capacity_table_sha256": hashlib.sha256(json.dumps([row.model_dump() for row in t2.rows], sort_keys=True, separators=(",", ":")).encode()).hexdigest()})})
    rep = verify_plan(tampered, S.load(paths), capacity_table=t2)
    assert not rep.ok and {v.constraint for v in rep.violations} >= {"capacity"}


def test_highs_answer_is_checked_against_its_point() -> None:
    """A real block on which HiGHS (1.16, presolve on, given a start) reported the start optimal at
    10.71 while it costs 322.79: solve_highs re-solves until the reported objective is the returned
    point's, and that point is the optimum (HiGHS without presolve, solved here)."""
    from maestro_plan.solve.milp import solve_highs
    from maestro_plan.solve.model import INF, LinearModel

    d = json.loads((Path(__file__).parent / "data" / "highs" / "block_start_misreported.json").read_text())
    lm = LinearModel()
    for name, lb, ub, integer in d["vars"]:
        lm.var(name, -INF if lb is None else lb, INF if ub is None else ub, integer=integer)
    for name, family, idx, coef, lo, hi in d["rows"]:
        lm.row(name, family, list(zip(idx, coef)), lo=-INF if lo is None else lo, hi=INF if hi is None else hi)
    for name, sense, terms, constant in d["objectives"]:
        lm.objective(name, sense, dict((int(k), c) for k, c in terms), constant)
    start = d["start"]
    assert lm.objectives[0].value(start) == pytest.approx(322.7877, abs=1e-3)
    ref = solve_highs(lm, time_limit=30, options={"presolve": "off"})
    assert ref.status == "optimal"
    opts = {"mip_heuristic_run_feasibility_jump": False, "mip_heuristic_run_rens": False, "mip_heuristic_run_rins": False}
    res = solve_highs(lm, time_limit=30, hint=start, rel_gap=1e-4, max_nodes=500, options=opts)
    assert res.values is not None
    assert res.objective == pytest.approx(lm.objectives[0].value(res.values), rel=1e-9)
    assert res.objective == pytest.approx(ref.objective, rel=1e-6)
    assert res.bound is not None and res.bound <= res.objective + 1e-6


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fleets())
def test_routing_rows_have_the_flow_models_optimum(tmp_path_factory, case) -> None:
    """formulate.routing_rows (replica counts with Gale's supply-demand rows, no flows) has the
    same optimum as the flow model: for the whole fleet (whole GPUs) and for every per-model
    block column generation prices (fractional GPUs at the LP's duals), with two request sources
    whose latency to the clusters differs."""
    from maestro_plan.solve.decompose import lp_prices
    from maestro_plan.solve.formulate import Scope, build_model, build_problem
    from maestro_plan.solve.milp import solve_highs

    pools, models, wf, _solver, headroom = case
    inputs = _fleet_inputs(tmp_path_factory.mktemp("fleet"), pools, models, wf)
    try:
        prob = build_problem(inputs, S.settings(solver="highs", headroom=headroom))
    except InfeasibleError:
        return
    _lp, unit, cut, budget = lp_prices(prob)
    scopes = [Scope(tie_break=False)]
    scopes += [Scope(models=frozenset([m]), fractional=True, tie_break=False, slot_cost_share=0.25, unit_price=unit, cut_price=cut, budget_price=budget) for m in sorted({d.model for d in prob.demands})]
    compared = 0
    for sc in scopes:
        flow, fv = build_model(prob, sc)
        agg, av = build_model(prob, Scope(**{**sc.__dict__, "aggregate_routing": True}))
        # the flows are gone, except for models whose arcs carry per-class load factors (Gale's
        # condition needs one capacity per group: formulate._part keeps their flows)
        mixed = {prob.candidates[prob.groups[prob.arcs[ai].group].cand].model for ai in av.flow}
        assert all(any(a.load != 1.0 for a in prob.arcs if prob.candidates[prob.groups[a.group].cand].model == m) for m in mixed)
        assert len(agg.vars) < len(flow.vars) or mixed >= {prob.candidates[g.cand].model for g in prob.groups if sc.models is None or prob.candidates[g.cand].model in sc.models}
        a = solve_highs(flow, time_limit=30, rel_gap=1e-9)
        b = solve_highs(agg, time_limit=30, rel_gap=1e-9)
        assert a.status == b.status
        if a.status == "optimal":
            assert b.objective == pytest.approx(a.objective, rel=1e-6, abs=1e-6)
            compared += 1
    assert compared or all(solve_highs(build_model(prob, sc)[0], time_limit=30).status == "infeasible" for sc in scopes)


def start_cost(prob, point) -> float:
    return prob.lm.objectives[0].value(point)


def test_neighbourhood_search_moves_replicas_to_the_cheap_cluster(tmp_path: Path) -> None:
    """lns.improve from a plan that serves everything from the dearest of three clusters: the pair
    (dearest, cheapest) is one of its neighbourhoods, so it reaches the optimum HiGHS proves on the
    full model, and the plan it returns carries the demand (its routing LP solves)."""
    from maestro_plan.solve import heuristic, lns
    from maestro_plan.solve.formulate import build_problem
    from maestro_plan.solve.milp import solve_highs

    clusters = {
        "c1": [S.pool("dear", "h100-sxm", count=2, price=9.0)],
        "c2": [S.pool("mid", "h100-sxm", count=2, price=6.0)],
        "c3": [S.pool("cheap", "h100-sxm", count=2, price=3.0)],
    }
    wf = S.workflow("w", [S.role("a", "llama-3.1-8b", calls=2)], rate=4.0, priority="batch")
    inputs = S.load(S.write_inputs(tmp_path, clusters=clusters, models=["llama-3.1-8b"], workflows=[wf]))
    prob = build_problem(inputs, S.settings(solver="highs", standby=False))
    assert [n for n, _ in lns.neighbourhoods(prob)] == ["c1+c2", "c1+c3", "c2+c3"]
    # the start: as many whole-GPU replicas as the demand needs, all on the dear pool
    dear = [g for g in prob.groups if prob.pools[g.pool].cluster == "c1" and prob.candidates[g.cand].tp == 1 and not prob.candidates[g.cand].shared]
    g = max(dear, key=lambda g: g.capacity.rps)
    need = sum(d.rate_rps * d.provision_factor for d in prob.demands) * (1 + prob.settings.headroom)
    start = heuristic.complete(prob, {g.index: math.ceil(need / g.capacity.rps)})
    assert start is not None
    cost = prob.lm.objectives[0]
    opt = solve_highs(prob.lm, time_limit=30)
    assert opt.status == "optimal" and opt.objective < cost.value(start) - 1.0
    found = lns.improve(prob, start)
    assert found is not None and found.counts is not None and found.neighbourhoods == 3
    point = heuristic.complete(prob, found.counts, slots=found.slots, holds=found.holds)
    assert point is not None
    assert cost.value(point) == pytest.approx(found.cost, rel=1e-9)
    assert cost.value(point) == pytest.approx(opt.objective, rel=1e-6)
    assert all(prob.pools[prob.groups[gi].pool].cluster == "c3" for gi in found.counts)
    # the columns' neighbourhood alone (no pairs): only the groups it is given may take replicas;
    # given the mid cluster's and the start's, it moves everything to mid
    mid = frozenset(g.index for g in prob.groups if prob.pools[g.pool].cluster == "c2")
    only = lns.improve(prob, start, columns=(mid, frozenset()), pairs_if=lambda cost: False)
    assert only is not None and only.counts is not None and only.neighbourhoods == 1
    assert set(only.counts) <= mid and start_cost(prob, start) > only.cost > opt.objective
    # the same in two forked workers (the sub-MIPs of a pass run in parallel, read in order)
    prob2 = build_problem(inputs, S.settings(solver="highs", standby=False, workers=2))
    again = lns.improve(prob2, start)
    assert again is not None and (again.counts, again.cost) == (found.counts, found.cost)
