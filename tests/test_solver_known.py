"""Known optima of small hand-built fleets, solved end to end (estimator capacities, real models).

Demands are set from the estimator's own capacity figures so that the optimum is known exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import _solver_inputs as S
import pytest
import yaml

from maestro_plan.errors import InfeasibleError
from maestro_plan.solve.planner import solve
from maestro_plan.verify import verify_plan

M1B = "llama-3.2-1b"


def _verified(plan, inputs):
    rep = verify_plan(plan, inputs)
    assert rep.ok, [v.render() for v in rep.violations]
    return plan


def _two_type_fleet(tmp: Path, types: tuple[str, ...] = ("l4", "l40s"), rate: float = 1.0):
    prices = {"l4": 1.0, "l40s": 2.0}
    pools = [S.pool(f"p-{t}", t, count=2, price=prices[t]) for t in types]
    return S.write_inputs(tmp, clusters={"c1": pools}, models=[M1B], workflows=[S.workflow("w", [S.role("r", M1B)], rate=rate)])


def _continuous_instance(tmp: Path):
    """One demand that exactly fills one L4 and one L40S replica (h = 0).

    L4 at $1/h serves c_x, L40S at $2/h serves c_y ~ 2.8 c_x; demand c_x + c_y:
    L4 only needs ceil(3.8) = 4 GPUs ($4), L40S only ceil(1.4) = 2 GPUs ($4), both 1 + 1 ($3)."""
    probe = S.load(_two_type_fleet(tmp / "probe"))
    cx = S.capacity(probe, M1B, "l4")
    cy = S.capacity(probe, M1B, "l40s")
    rate = (cx + cy) * (1 - 1e-4)  # CP-SAT routes in steps of 1/720720 of a demand
    assert math.ceil(rate / cx) * 1.0 == 4.0 and math.ceil(rate / cy) * 2.0 == 4.0
    return rate


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_continuous_routing_beats_any_single_gpu_type(tmp_path: Path, solver: str) -> None:
    rate = _continuous_instance(tmp_path)
    kw = dict(headroom=0.0, colocation=False, standby=False, solver=solver)
    both = S.load(_two_type_fleet(tmp_path / "both", rate=rate))
    plan, _ = solve(both, S.settings(**kw))
    _verified(plan, both)
    assert plan.solve.status == "optimal"
    assert plan.cost_per_hour == pytest.approx(3.0)
    assert plan.gpus_used == {"c1": {"l4": 1, "l40s": 1}}
    # the one demand is split over both GPU types (continuous routing)
    gpu_of = {r.id: r.gpu_type for r in plan.replicas}
    assert sorted(gpu_of[r.replica] for r in plan.routes) == ["l4", "l40s"]
    assert sum(r.fraction for r in plan.routes) == pytest.approx(1.0)
    for only in ("l4", "l40s"):
        one = S.load(_two_type_fleet(tmp_path / only, types=(only,), rate=rate))
        p1, _ = solve(one, S.settings(**kw))
        assert p1.cost_per_hour == pytest.approx(4.0), only


def test_cpsat_and_highs_agree_on_optimum(tmp_path: Path) -> None:
    """A small fleet with three models, two GPU types and slices: both backends prove the same optimum."""
    models = [M1B, "llama-3.2-3b", "llama-3.1-8b"]
    roles = [S.role("a", M1B, calls=3), S.role("b", "llama-3.2-3b", depends_on=["a"]), S.role("c", "llama-3.1-8b", depends_on=["b"], calls=2)]
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("h", "h100-sxm", count=2, price=4.0), S.pool("l", "l40s", count=2, price=1.5)]}, models=models, workflows=[S.workflow("w", roles, rate=9.0, slo_ms=20000)])
    inputs = S.load(paths)
    objs = {}
    for solver in ("cpsat", "highs", "cbc"):
        plan, _ = solve(inputs, S.settings(solver=solver, standby=False, time_limit_s=20))
        _verified(plan, inputs)
        assert plan.solve.status == "optimal", solver
        objs[solver] = plan.solve.objective
    assert objs["cpsat"] == pytest.approx(objs["highs"], rel=1e-6)
    assert objs["cbc"] == pytest.approx(objs["highs"], rel=1e-6)


def test_small_models_share_one_gpu(tmp_path: Path) -> None:
    """Three tiny demands of three small models: co-located, they need one GPU; without slices, three."""
    models = [M1B, "llama-3.2-3b", "phi-3-mini"]
    roles = [S.role("a", M1B), S.role("b", "llama-3.2-3b"), S.role("c", "phi-3-mini", mean_in=300)]
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("h", "h100-sxm", count=1, price=3.0)]}, models=models, workflows=[S.workflow("w", roles, rate=0.05)])
    inputs = S.load(paths)
    plan, _ = solve(inputs, S.settings(standby=False))
    _verified(plan, inputs)
    assert plan.cost_per_hour == pytest.approx(3.0)
    assert plan.gpus_used == {"c1": {"h100-sxm": 1}}
    assert len({(r.node, tuple(r.gpu_indices)) for r in plan.replicas}) == 1
    assert sum(r.memory_fraction for r in plan.replicas) <= 0.92 + 1e-9
    assert sum(r.compute_share for r in plan.replicas) <= 1 + 1e-9
    whole, _ = solve(inputs, S.settings(standby=False, colocation=False))
    assert whole.cost_per_hour == pytest.approx(9.0)


def _tp4_fleet(tmp: Path, nodes: int, replicas_needed: int):
    """llama-3.1-70b restricted to TP 4, nodes of 6 H100s: only one TP-4 replica fits a node."""
    paths = S.write_inputs(tmp, clusters={"c1": [S.pool("six", "h100-sxm", gpus_per_node=6, count=nodes, price=2.0)]}, models=["llama-3.1-70b"], workflows=[S.workflow("w", [S.role("r", "llama-3.1-70b")], rate=1.0)])
    spec = yaml.safe_load((paths["models"] / "llama-3.1-70b.yaml").read_text())
    spec["tp_degrees"] = [4]
    (paths["models"] / "llama-3.1-70b.yaml").write_text(yaml.safe_dump(spec))
    probe = S.load(paths)
    cap = S.capacity(probe, "llama-3.1-70b", "h100-sxm", 4)
    wf = S.workflow("w", [S.role("r", "llama-3.1-70b")], rate=cap * (replicas_needed - 0.5))
    (paths["workloads"] / "w.yaml").write_text(yaml.safe_dump(wf, sort_keys=False))
    return paths


def test_node_shape_is_respected(tmp_path: Path) -> None:
    # 3 replicas of TP 4 on 3 nodes of 6 GPUs: feasible, one replica per node
    inputs = S.load(_tp4_fleet(tmp_path / "ok", nodes=3, replicas_needed=3))
    plan, _ = solve(inputs, S.settings(headroom=0.0, standby=False))
    _verified(plan, inputs)
    assert len(plan.replicas) == 3 and len({r.node for r in plan.replicas}) == 3
    assert plan.cost_per_hour == pytest.approx(3 * 4 * 2.0)
    # 2 nodes hold 12 GPUs = 3 x 4, but only 2 TP-4 groups: infeasible, and the cut is named
    inputs = S.load(_tp4_fleet(tmp_path / "short", nodes=2, replicas_needed=3))
    with pytest.raises(InfeasibleError) as ei:
        solve(inputs, S.settings(headroom=0.0, standby=False))
    sf = ei.value.shortfalls
    assert any(s.constraint == "inventory" and "TP >= 4" in s.subject and s.available == 8 for s in sf), [s.render() for s in sf]


def test_short_inventory_names_the_resource(tmp_path: Path) -> None:
    probe = S.load(_two_type_fleet(tmp_path / "probe", types=("l4",)))
    cap = S.capacity(probe, M1B, "l4")
    paths = S.write_inputs(tmp_path / "x", clusters={"c1": [S.pool("p-l4", "l4", count=1, price=1.0)]}, models=[M1B], workflows=[S.workflow("w", [S.role("r", M1B)], rate=cap * 13.5, priority="interactive")], sources={"users": {"c1": 1.0}})
    inputs = S.load(paths)
    with pytest.raises(InfeasibleError) as ei:
        solve(inputs, S.settings(headroom=0.0, standby=False, colocation=False))
    inv = [s for s in ei.value.shortfalls if s.constraint == "inventory"]
    assert len(inv) == 1
    s = inv[0]
    assert (s.needed, s.available) == (14, 8)
    assert "l4" in s.unit and M1B in s.subject and "users" in s.subject and "interactive" in s.subject
    assert "needs 14 l4 GPUs, has 8" in s.render()
    assert "(the solver proved it)" not in str(ei.value) and "no plan satisfies the constraints" in str(ei.value)
    # the same relaxation, when no backend proved infeasibility but none found a plan in time,
    # says so instead of claiming a proof, and still names the shortfall
    from maestro_plan.solve import explain
    from maestro_plan.solve.formulate import build_problem

    err = explain.elastic(build_problem(inputs, S.settings(headroom=0.0, standby=False, colocation=False)), proved=False, limit_s=7.0)
    assert str(err).startswith("no plan found within the time limit (7 s of solver work)")
    assert [x.render() for x in err.shortfalls] == [x.render() for x in ei.value.shortfalls]


def test_model_too_big_for_the_fleet(tmp_path: Path) -> None:
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("l4", "l4", gpus_per_node=1, count=4)]}, models=["llama-3.1-70b"], workflows=[S.workflow("w", [S.role("r", "llama-3.1-70b")])])
    with pytest.raises(InfeasibleError) as ei:
        solve(S.load(paths), S.settings())
    assert [s.constraint for s in ei.value.shortfalls] == ["memory"]
    assert "llama-3.1-70b" in ei.value.shortfalls[0].subject


def test_slo_unreachable(tmp_path: Path) -> None:
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("h", "h100-sxm")]}, models=[M1B], workflows=[S.workflow("w", [S.role("r", M1B, mean_out=400)], slo_ms=50.0)])
    with pytest.raises(InfeasibleError) as ei:
        solve(S.load(paths), S.settings())
    sf = ei.value.shortfalls
    assert sf and all(s.constraint == "slo" for s in sf)
    assert sf[0].needed > 50.0 >= sf[0].available  # the per-call budget is within the 50 ms SLO


def test_zone_spread_unreachable(tmp_path: Path) -> None:
    # llama-3.1-8b fits the H100 zone only (an A10G has 24 GB); interactive needs two zones
    paths = S.write_inputs(
        tmp_path,
        clusters={"c1": [S.pool("h", "h100-sxm", zone="z-a"), S.pool("a", "a10g", zone="z-b", gpus_per_node=1)]},
        models=["llama-3.1-70b"],
        workflows=[S.workflow("w", [S.role("r", "llama-3.1-70b")], priority="interactive")],
    )
    with pytest.raises(InfeasibleError) as ei:
        solve(S.load(paths), S.settings())
    assert [s.constraint for s in ei.value.shortfalls] == ["zones"]
    assert (ei.value.shortfalls[0].needed, ei.value.shortfalls[0].available) == (2, 1)


def test_budget_cap(tmp_path: Path) -> None:
    probe = S.load(_two_type_fleet(tmp_path / "probe", types=("l4",)))
    cap = S.capacity(probe, M1B, "l4")
    paths = S.write_inputs(tmp_path / "x", clusters={"c1": [S.pool("p-l4", "l4", count=1, price=1.0)]}, models=[M1B], workflows=[S.workflow("w", [S.role("r", M1B)], rate=cap * 3.5)], budgets={"c1": 3.0})
    inputs = S.load(paths)
    with pytest.raises(InfeasibleError) as ei:
        solve(inputs, S.settings(headroom=0.0, standby=False, colocation=False))
    b = [s for s in ei.value.shortfalls if s.constraint == "budget"]
    assert b and b[0].available == 3.0 and b[0].needed == pytest.approx(4.0)
    # with the cap at $4/h the same demand fits exactly
    paths = S.write_inputs(tmp_path / "y", clusters={"c1": [S.pool("p-l4", "l4", count=1, price=1.0)]}, models=[M1B], workflows=[S.workflow("w", [S.role("r", M1B)], rate=cap * 3.5)], budgets={"c1": 4.0})
    inputs = S.load(paths)
    plan, _ = solve(inputs, S.settings(headroom=0.0, standby=False, colocation=False))
    _verified(plan, inputs)
    assert plan.cost_per_hour == pytest.approx(4.0)


def test_goodput_serves_interactive_first(tmp_path: Path) -> None:
    probe = S.load(_two_type_fleet(tmp_path / "probe", types=("l4",)))
    cap = S.capacity(probe, M1B, "l4")
    wfs = [
        S.workflow("chat", [S.role("r", M1B)], rate=cap * 1.5, priority="interactive"),
        S.workflow("bulk", [S.role("r", M1B)], rate={"batchq": cap * 2.0}, priority="batch"),
    ]
    paths = S.write_inputs(tmp_path / "x", clusters={"c1": [S.pool("p-l4", "l4", count=1, gpus_per_node=2, price=1.0)]}, models=[M1B], workflows=wfs, sources={"users": {"c1": 1.0}, "batchq": {"c1": 1.0}})
    inputs = S.load(paths)
    plan, _ = solve(inputs, S.settings(objective="goodput", headroom=0.0, standby=False, colocation=False, min_zones_interactive=1))
    _verified(plan, inputs)
    served = {d.source: d for d in plan.demand}
    assert served["users"].shed_rps <= 1e-6 * served["users"].rate_rps
    assert served["batchq"].shed_rps > 0
    # 2 GPUs serve 2 x cap; interactive takes 1.5, batch gets the remaining 0.5
    assert served["batchq"].served_rps == pytest.approx(cap * 0.5, rel=1e-4)
    assert any(b.constraint == "demand" for b in plan.binding)


def test_warm_standby_for_rare_models(tmp_path: Path) -> None:
    models = ["llama-3.1-8b", "mistral-7b", "qwen2.5-7b"]
    wfs = [S.workflow(f"w{i}", [S.role("r", m)], rate=0.01, slo_ms=600000.0) for i, m in enumerate(models)]
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("l", "l40s", count=1, price=2.0, dram_gib=512)]}, models=models, workflows=wfs)
    inputs = S.load(paths)
    plan, _ = solve(inputs, S.settings(colocation=False))
    _verified(plan, inputs)
    base, _ = solve(inputs, S.settings(colocation=False, standby=False))
    assert base.cost_per_hour == pytest.approx(6.0)
    assert plan.cost_per_hour == pytest.approx(2.0)
    assert len(plan.standby) == 3
    slot = [r for r in plan.replicas if r.swap_models]
    assert len(slot) == 1 and sorted(slot[0].swap_models) == sorted(models)
    for sb in plan.standby:
        assert sb.slot_replica == slot[0].id and sb.cold_start_ms > 100.0
    assert {r.replica for r in plan.routes} == {f"standby:{m}@{slot[0].node}" for m in models}


def test_naive_reservation_needs_more_memory(tmp_path: Path) -> None:
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("h", "h100-sxm", count=2, price=3.0)]}, models=["llama-3.1-8b"], workflows=[S.workflow("w", [S.role("r", "llama-3.1-8b", mean_in=2000, mean_out=300)], rate=20.0)])
    inputs = S.load(paths)
    pred, _ = solve(inputs, S.settings(standby=False))
    naive, _ = solve(inputs, S.settings(standby=False, kv_reservation="naive"))
    _verified(pred, inputs)
    assert pred.kv is not None and pred.kv.saved_fraction > 0.5
    assert naive.cost_per_hour >= pred.cost_per_hour
    assert sum(r.max_num_seqs for r in naive.replicas) < sum(r.max_num_seqs for r in pred.replicas) * 2


def test_plan_in_force_is_kept(tmp_path: Path) -> None:
    models = [M1B, "llama-3.2-3b"]
    roles = [S.role("a", M1B, calls=2), S.role("b", "llama-3.2-3b", depends_on=["a"])]
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("h", "h100-sxm", count=2, price=4.0), S.pool("l", "l40s", count=2, price=1.5)]}, models=models, workflows=[S.workflow("w", roles, rate=30.0)])
    inputs = S.load(paths)
    first, _ = solve(inputs, S.settings(standby=False))
    again, _ = solve(inputs, S.settings(standby=False, change_weight=1.0), current_plan=first)
    _verified(again, inputs)
    assert [r.id for r in again.replicas] == [r.id for r in first.replicas]
    assert again.cost_per_hour == pytest.approx(first.cost_per_hour)


def _scarce_node_fleet(tmp: Path, rate70: float = 30.0):
    """One H100 node that the 70B model needs whole (30 req/s x 1.2 headroom: one TP4 and one TP2
    replica serve 26.9, two TP4 45.8), and dear L4s; the 1B model's cheapest
    option per req/s is a slice of that H100 node."""
    pools = [S.pool("h100", "h100-sxm", count=1, price=10.0), S.pool("l4", "l4", count=2, price=30.0)]
    wfs = [
        S.workflow("chat", [S.role("r", M1B)], rate=0.2, priority="interactive", slo_ms=20000.0),
        S.workflow("big", [S.role("r", "llama-3.1-70b")], rate=rate70),
    ]
    return S.write_inputs(tmp, clusters={"c1": pools}, models=[M1B, "llama-3.1-70b"], workflows=wfs)


def test_greedy_keeps_a_scarce_node_for_the_model_that_needs_it(tmp_path: Path) -> None:
    """The greedy start serves the most constrained model first (it used to give interactive
    models their replicas first, so the 1B model took a slice of the only H100 node and the 70B
    model then found no room: no start at all); every backend then finds the same optimum."""
    from maestro_plan.solve import heuristic
    from maestro_plan.solve.formulate import build_problem

    inputs = S.load(_scarce_node_fleet(tmp_path))
    prob = build_problem(inputs, S.settings(solver="greedy"))
    counts = heuristic.greedy(prob)
    assert counts is not None
    used = {(prob.candidates[prob.groups[gi].cand].model, prob.pools[prob.groups[gi].pool].name) for gi in counts}
    assert (M1B, "l4") in used and ("llama-3.1-70b", "h100") in used
    assert (M1B, "h100") not in used
    for solver in ("greedy", "cpsat", "highs"):
        plan, _ = solve(inputs, S.settings(solver=solver))
        _verified(plan, inputs)
        assert plan.gpus_used == {"c1": {"h100-sxm": 8, "l4": 1}}, solver
        assert plan.cost_per_hour == pytest.approx(8 * 10.0 + 30.0), solver
