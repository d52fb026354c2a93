"""The independent verifier: a hand-built correct plan passes, each corruption is caught by the
right constraint family, and the CLI exit codes (0 ok, 1 violations, 2 bad input)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from maestro_plan import estimate as est
from maestro_plan.cli.main import app
from maestro_plan.load.loader import load_gpu_types, load_inputs
from maestro_plan.load.schema import Inputs, Inventory, ModelSpec, Workflow
from maestro_plan.plan.io import dumps
from maestro_plan.plan.schema import Demand, InputDigest, Plan, Replica, Route, Settings, SolveInfo, Standby
from maestro_plan.verify import FAMILIES, input_digests, verify_plan

GIB = 2**30

# --------------------------------------------------------------------------------------------
# Small inputs, built in code
# --------------------------------------------------------------------------------------------

from _small_inputs import CONV_IN, CONV_OUT, MODELS  # noqa: E402 - shared with test_whatif.py


def inventory_doc(west_latency_ms: float = 30.0, budget: float | None = None) -> dict:
    return {
        "name": "verify-test",
        "clusters": [
            {
                "name": "east", "region": "us-east-1", "budget_per_hour": budget,
                "node_pools": [
                    {"name": "east-h100-a", "zone": "east-a", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
                    {"name": "east-h100-b", "zone": "east-b", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
                ],
            },
            {
                "name": "west", "region": "us-west-2",
                "node_pools": [{"name": "west-l4", "zone": "west-a", "gpu_type": "l4", "gpus_per_node": 1, "count": 2, "host_dram_gib": 8}],
            },
        ],
        "sources": [{"name": "users-east"}, {"name": "users-west"}],
        "links": [
            {"a": "users-east", "b": "east", "latency_ms": 1.0},
            {"a": "users-east", "b": "west", "latency_ms": 30.0},
            {"a": "users-west", "b": "east", "latency_ms": west_latency_ms},
            {"a": "users-west", "b": "west", "latency_ms": 1.0},
            {"a": "east", "b": "west", "latency_ms": 30.0},
        ],
    }  # fmt: skip


WORKFLOW = {
    "name": "assist",
    "priority": "interactive",
    "slo": {"percentile": 95, "latency_ms": 30000},
    "arrivals": [{"source": "users-east", "rate_per_s": 2.0}, {"source": "users-west", "rate_per_s": 1.0}],
    "roles": [
        {"name": "planner", "model": "llama-3.1-8b", "calls_per_query": 1, "input_tokens": CONV_IN, "output_tokens": CONV_OUT},
        {"name": "helper", "model": "llama-3.2-1b", "calls_per_query": 1, "depends_on": ["planner"], "input_tokens": CONV_IN, "output_tokens": CONV_OUT},
    ],
}


def make_inputs(peak_to_mean: float = 1.0, **inv_kw: float | None) -> Inputs:
    doc = inventory_doc(**inv_kw)
    doc["clusters"][0] = {k: v for k, v in doc["clusters"][0].items() if v is not None}
    inv = Inventory.model_validate(doc)
    models = {k: ModelSpec.model_validate(v) for k, v in MODELS.items()}
    wf = json.loads(json.dumps(WORKFLOW))
    for a in wf["arrivals"]:
        a["peak_to_mean"] = peak_to_mean
    return Inputs(inventory=inv, gpu_types=load_gpu_types(), models=models, workflows=[Workflow.model_validate(wf)])


# --------------------------------------------------------------------------------------------
# A correct plan, built by hand with the estimator's numbers
# --------------------------------------------------------------------------------------------

# (model, cluster, pool, node, GPU index, memory fraction, compute share)
LAYOUT = [
    ("llama-3.1-8b", "east", "east-h100-a", "east-h100-a-000", 0, 0.92, 1.0),
    ("llama-3.1-8b", "east", "east-h100-b", "east-h100-b-000", 0, 0.92, 1.0),
    ("llama-3.2-1b", "east", "east-h100-a", "east-h100-a-000", 1, 0.46, 0.5),
    ("llama-3.2-1b", "east", "east-h100-b", "east-h100-b-000", 1, 0.46, 0.5),
]


def net(inputs: Inputs, source: str, cluster: str) -> float:
    for lk in inputs.inventory.links:
        if {lk.a, lk.b} == {source, cluster}:
            return lk.latency_ms
    raise KeyError((source, cluster))


def build_plan(inputs: Inputs, layout: list = LAYOUT, settings: Settings | None = None) -> Plan:
    settings = settings or Settings()
    dm = est.compute_demand(inputs, percentile=settings.length_percentile)
    gpus = inputs.gpu_types
    pools = {p.name: p for c in inputs.inventory.clusters for p in c.node_pools}
    # routes: each (source, model) split evenly over the replicas of the model
    reps_of: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(layout):
        reps_of[row[0]].append(i)
    ids = [f"{m}.{node}.g{idx}" for m, _, _, node, idx, _, _ in layout]
    routes, routed = [], defaultdict(list)
    for d in dm.per_model:
        targets = reps_of[d.model]
        for i in targets:
            cluster = layout[i][1]
            n = net(inputs, d.source, cluster)
            routes.append(Route(source=d.source, model=d.model, replica=ids[i], fraction=1 / len(targets), rate_rps=d.rate_rps / len(targets), network_latency_ms=n, priority=d.priority))
            routed[i].append((d, d.rate_rps / len(targets), n))
    replicas = []
    cost = 0.0
    used = defaultdict(lambda: defaultdict(int))
    for i, (m, cluster, pool, node, idx, frac, share) in enumerate(layout):
        model, gpu = inputs.models[m], gpus[pools[pool].gpu_type]
        mem = est.replica_memory(model, gpu, 1, gpu_memory_utilization=frac)
        kv = mem.kv_pool_bytes_per_gpu
        items = routed[i]
        load = math.fsum(r for _, r, _ in items)
        mean_in = math.fsum(d.mix.mean_input * r for d, r, _ in items) / load
        mean_out = math.fsum(d.mix.mean_output * r for d, r, _ in items) / load
        mix = est.RequestMix(mean_in, mean_out, max(d.mix.kv_tokens_per_request for d, _, _ in items), model.context_len)
        budget = min(d.latency_budget_ms - 2 * n for d, _, n in items)
        cap = est.replica_capacity(model, gpu, 1, mix, latency_budget_ms=budget, kv_pool_bytes_per_gpu=kv, compute_share=share)
        replicas.append(
            Replica(
                id=ids[i], model=m, cluster=cluster, zone=pools[pool].zone, node_pool=pool, node=node, gpu_type=gpu.id,
                gpu_indices=[idx], tp=1, memory_fraction=frac, compute_share=share,
                weights_bytes_per_gpu=mem.weights_bytes_per_gpu, kv_cache_bytes_per_gpu=kv,
                overhead_bytes_per_gpu=mem.activation_bytes_per_gpu + mem.non_torch_bytes_per_gpu + mem.cuda_graph_bytes_per_gpu,
                max_model_len=model.context_len, max_num_seqs=max(1, cap.batch if cap else 1), kv_tokens=mem.max_kv_tokens,
                capacity_rps=cap.rps if cap else 0.0, load_rps=load, latency_budget_ms=budget,
            )
        )  # fmt: skip
        if (node, idx) not in {(r.node, r.gpu_indices[0]) for r in replicas[:-1]}:
            cost += gpu.price_per_gpu_hour
            used[cluster][gpu.id] += 1
    dg = input_digests(inputs)
    demand = [
        Demand(source=d.source, model=d.model, rate_rps=d.rate_rps, priority=d.priority, latency_budget_ms=d.latency_budget_ms,
               mean_input_tokens=d.mix.mean_input, mean_output_tokens=d.mix.mean_output, served_rps=d.rate_rps)
        for d in dm.per_model
    ]  # fmt: skip
    return Plan(
        plan_id="test",
        generator="tests",
        inputs=InputDigest(inventory_name=inputs.inventory.name, models=sorted(inputs.models), workflows=sorted(w.name for w in inputs.workflows), **dg),
        settings=settings,
        solve=SolveInfo(status="optimal", objective=cost, bound=cost, gap=0.0),
        cost_per_hour=cost,
        gpus_used={c: dict(v) for c, v in used.items()},
        replicas=replicas,
        routes=routes,
        demand=demand,
    )


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return make_inputs()


@pytest.fixture(scope="module")
def good(inputs: Inputs) -> Plan:
    return build_plan(inputs)


def families(plan: Plan, inputs: Inputs) -> set[str]:
    return {v.constraint for v in verify_plan(plan, inputs).violations}


def edit(plan: Plan, **changes) -> Plan:
    return plan.model_copy(deep=True, update=changes)


def edit_replica(plan: Plan, i: int, **changes) -> Plan:
    reps = [r.model_copy(deep=True) for r in plan.replicas]
    reps[i] = reps[i].model_copy(update=changes)
    return edit(plan, replicas=reps)


# --------------------------------------------------------------------------------------------
# Library
# --------------------------------------------------------------------------------------------


def test_correct_plan_passes(good: Plan, inputs: Inputs) -> None:
    report = verify_plan(good, inputs)
    assert report.ok, [v.render() for v in report.violations]
    assert not report.violations
    for fam in ("consistency", "inventory", "memory", "compute", "capacity", "demand", "routing", "slo", "zones"):
        assert report.checked[fam] > 0, fam
    assert set(report.checked) == set(FAMILIES)
    d = report.to_dict()
    assert d["ok"] is True and d["violations"] == []


def test_memory_overcommit_on_one_gpu(good: Plan, inputs: Inputs) -> None:
    # the 1B engine moves onto GPU 0 beside the 8B engine: 0.92 + 0.46 of one GPU's HBM
    bad = edit_replica(good, 2, gpu_indices=[0], compute_share=0.5)
    bad = edit_replica(bad, 0, compute_share=0.5)
    report = verify_plan(bad, inputs)
    mem = [v for v in report.violations if v.constraint == "memory"]
    assert mem and mem[0].subject == "east-h100-a-000 GPU 0"
    assert mem[0].amount == pytest.approx(0.92 + 0.46 - 0.92, abs=1e-9)


def test_engine_over_its_fraction(good: Plan, inputs: Inputs) -> None:
    # a KV pool larger than what the engine's fraction leaves after weights and overhead
    r = good.replicas[0]
    bad = edit_replica(good, 0, kv_cache_bytes_per_gpu=r.kv_cache_bytes_per_gpu + 4 * GIB)
    v = [v for v in verify_plan(bad, inputs).violations if v.constraint == "memory"]
    assert v and v[0].subject == r.id and v[0].amount == pytest.approx(4.0, abs=0.01)


def test_compute_shares_over_one(good: Plan, inputs: Inputs) -> None:
    # two 1B engines on one GPU (memory 0.46 + 0.46 <= 0.92) but each claims the whole GPU
    bad = edit_replica(good, 3, node="east-h100-a-000", node_pool="east-h100-a", zone="east-a", compute_share=1.0)
    bad = edit_replica(bad, 2, compute_share=1.0)
    report = verify_plan(bad, inputs)
    fams = {v.constraint for v in report.violations}
    assert "compute" in fams and "memory" not in fams
    comp = [v for v in report.violations if v.constraint == "compute"][0]
    assert comp.amount == pytest.approx(1.0)


def test_gpu_index_out_of_range(good: Plan, inputs: Inputs) -> None:
    bad = edit_replica(good, 0, gpu_indices=[9])
    report = verify_plan(bad, inputs)
    v = [v for v in report.violations if v.constraint == "inventory"]
    assert v and "out of range" in v[0].detail and not report.input_mismatch


def test_unknown_node_is_an_input_mismatch(good: Plan, inputs: Inputs) -> None:
    bad = edit_replica(good, 0, node="ghost-000")
    report = verify_plan(bad, inputs)
    assert "inventory" in {v.constraint for v in report.violations}
    assert report.input_mismatch


def test_routing_fractions_must_sum_to_one(good: Plan, inputs: Inputs) -> None:
    routes = [r.model_copy() for r in good.routes]
    routes[0] = routes[0].model_copy(update={"fraction": 0.3, "rate_rps": routes[0].rate_rps * 0.6})
    report = verify_plan(edit(good, routes=routes), inputs)
    v = [v for v in report.violations if v.constraint == "routing" and "add up" in v.detail]
    assert v and v[0].amount == pytest.approx(-0.2)


def test_route_to_missing_replica(good: Plan, inputs: Inputs) -> None:
    routes = [r.model_copy() for r in good.routes]
    routes[0] = routes[0].model_copy(update={"replica": "nowhere"})
    assert "routing" in families(edit(good, routes=routes), inputs)


def test_over_capacity(good: Plan, inputs: Inputs) -> None:
    # 2 % of the GPU's compute cannot carry the 8B replica's load
    bad = edit_replica(good, 0, compute_share=0.02)
    report = verify_plan(bad, inputs)
    cap = [v for v in report.violations if v.constraint == "capacity"]
    assert cap and cap[0].subject == good.replicas[0].id


def test_max_num_seqs_must_admit_the_load(good: Plan, inputs: Inputs) -> None:
    bad = edit_replica(good, 0, max_num_seqs=1, load_rps=good.replicas[0].load_rps)
    # with 1 sequence at a time the 8B replica cannot hold its in-flight requests (Little's law)
    v = [v for v in verify_plan(bad, inputs).violations if v.constraint == "capacity"]
    assert v and "max-num-seqs" in v[0].detail


def test_headroom_is_applied(inputs: Inputs) -> None:
    plan = build_plan(inputs)
    r = plan.replicas[0]
    cap = r.capacity_rps
    # headroom such that capacity / (1 + h) is just below the load
    h = cap / r.load_rps * 1.01 - 1.0
    bad = edit(plan, settings=plan.settings.model_copy(update={"headroom": h}))
    assert "capacity" in families(bad, inputs)
    ok = edit(plan, settings=plan.settings.model_copy(update={"headroom": cap / r.load_rps * 0.99 - 1.0}))
    assert "capacity" not in families(ok, inputs)


def test_peak_rates_are_provisioned() -> None:
    # bursts of 100x the mean rate: the replicas sized for the mean cannot absorb the peaks
    bursty = make_inputs(peak_to_mean=100.0)
    report = verify_plan(build_plan(bursty), bursty)
    cap = [v for v in report.violations if v.constraint == "capacity"]
    assert cap and "peak" in cap[0].detail


def test_latency_over_budget() -> None:
    # users-west is 100 s away from the only cluster with replicas: the round trip alone breaks the SLO
    far = make_inputs(west_latency_ms=100_000.0)
    plan = build_plan(far)
    report = verify_plan(plan, far)
    slo = [v for v in report.violations if v.constraint == "slo"]
    assert slo and all("users-west" in v.detail or v.subject.startswith("users-west") or "round trip" in v.detail for v in slo)


def test_single_zone_for_interactive_model(good: Plan, inputs: Inputs) -> None:
    bad = edit_replica(good, 1, node="east-h100-a-000", node_pool="east-h100-a", zone="east-a", gpu_indices=[2])
    bad = bad.model_copy(update={"gpus_used": good.gpus_used})
    report = verify_plan(bad, inputs)
    z = [v for v in report.violations if v.constraint == "zones"]
    assert z and z[0].subject == "llama-3.1-8b" and z[0].amount == 1


def test_cost_mismatch(good: Plan, inputs: Inputs) -> None:
    report = verify_plan(edit(good, cost_per_hour=good.cost_per_hour + 10.0), inputs)
    v = [v for v in report.violations if v.subject == "cost_per_hour"]
    assert v and v[0].constraint == "consistency" and v[0].amount == pytest.approx(10.0)
    # a cent of rounding is not a violation
    assert verify_plan(edit(good, cost_per_hour=round(good.cost_per_hour, 2)), inputs).ok


def test_gpus_used_mismatch(good: Plan, inputs: Inputs) -> None:
    report = verify_plan(edit(good, gpus_used={"east": {"h100-sxm": 3}}), inputs)
    assert any(v.subject == "gpus_used" for v in report.violations)


def test_budget_cap() -> None:
    capped = make_inputs(budget=20.0)  # 4 H100 at $12.29/h is over $20/h
    report = verify_plan(build_plan(capped), capped)
    b = [v for v in report.violations if v.constraint == "budget"]
    assert b and b[0].subject == "east" and b[0].amount > 0


def test_demand_rate_mismatch(good: Plan, inputs: Inputs) -> None:
    dem = [d.model_copy() for d in good.demand]
    dem[0] = dem[0].model_copy(update={"rate_rps": dem[0].rate_rps * 2})
    assert "demand" in families(edit(good, demand=dem), inputs)


def test_plan_numbers_are_not_trusted(good: Plan, inputs: Inputs) -> None:
    # understated weights make the plan look like it fits; the verifier recomputes them
    r = good.replicas[0]
    report = verify_plan(edit_replica(good, 0, weights_bytes_per_gpu=r.weights_bytes_per_gpu // 2), inputs)
    assert any(v.constraint == "consistency" and v.subject == r.id and "weights" in v.detail for v in report.violations)


def test_tp_must_match_gpu_count(good: Plan, inputs: Inputs) -> None:
    report = verify_plan(edit_replica(good, 0, tp=2), inputs)
    assert any(v.constraint == "consistency" and "tp 2" in v.detail for v in report.violations)


def test_standby_must_fit_host_dram(good: Plan, inputs: Inputs) -> None:
    m = inputs.models["llama-3.1-8b"]
    w = est.weight_bytes_total(m)
    gpu = inputs.gpu_types["l4"]
    sb = Standby(model=m.id, cluster="west", node="west-l4-000", host_dram_bytes=w, cold_start_ms=w / (gpu.host_to_gpu_gbps * 1e9) * 1000)
    report = verify_plan(edit(good, standby=[sb]), inputs)
    v = [v for v in report.violations if v.constraint == "memory"]
    assert v and "host DRAM" in v[0].subject and v[0].amount == pytest.approx(w / GIB - 8, rel=1e-6)
    fast = sb.model_copy(update={"cold_start_ms": 1.0, "node": "east-h100-a-000", "cluster": "east"})
    report = verify_plan(edit(good, standby=[fast]), inputs)
    assert [v.constraint for v in report.violations] == ["consistency"]


def test_pipeline_worker_nodes_occupy_their_gpus(good: Plan, inputs: Inputs) -> None:
    # a second pipeline stage on east-h100-b-000 lands on GPU 0, which the other 8B engine fills
    report = verify_plan(edit_replica(good, 0, worker_nodes=["east-h100-b-000"]), inputs)
    subjects = {(v.constraint, v.subject) for v in report.violations}
    assert ("memory", "east-h100-b-000 GPU 0") in subjects
    assert ("consistency", "cost_per_hour") not in subjects  # that GPU was paid for already
    unknown = verify_plan(edit_replica(good, 0, worker_nodes=["ghost-001"]), inputs)
    assert unknown.input_mismatch


def test_digest_mismatch_is_an_input_mismatch(good: Plan, inputs: Inputs) -> None:
    other = make_inputs(west_latency_ms=31.0)
    report = verify_plan(good, other)
    assert report.input_mismatch
    assert any(v.subject == "inputs.inventory_sha256" for v in report.violations)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def input_dirs(tmp_path: Path) -> dict[str, Path]:
    inv = inventory_doc()
    inv["clusters"][0].pop("budget_per_hour")
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "fleet.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "models").mkdir()
    for k, v in MODELS.items():
        (tmp_path / "models" / f"{k}.yaml").write_text(yaml.safe_dump(v))
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "assist.yaml").write_text(yaml.safe_dump(WORKFLOW))
    return {"inventory": tmp_path / "inv", "models": tmp_path / "models", "workloads": tmp_path / "wl"}


def run_verify(plan_path: Path, dirs: dict[str, Path], *extra: str):
    args = ["verify", str(plan_path), "-i", str(dirs["inventory"]), "-m", str(dirs["models"]), "-w", str(dirs["workloads"]), *extra]
    return CliRunner().invoke(app, args)


def test_cli_exit_codes(tmp_path: Path, input_dirs: dict[str, Path]) -> None:
    inputs = load_inputs(input_dirs["inventory"], input_dirs["models"], input_dirs["workloads"])
    plan = build_plan(inputs)
    good = tmp_path / "plan.json"
    good.write_text(dumps(plan))
    res = run_verify(good, input_dirs)
    assert res.exit_code == 0, res.output
    assert "no violations" in res.output
    res = run_verify(good, input_dirs, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["ok"] is True

    bad = tmp_path / "bad.json"
    bad.write_text(dumps(plan.model_copy(update={"cost_per_hour": plan.cost_per_hour + 5})))
    res = run_verify(bad, input_dirs, "--json")
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["ok"] is False and doc["violations_by_constraint"]["consistency"] == 1

    res = run_verify(tmp_path / "missing.json", input_dirs)
    assert res.exit_code == 2

    newer = json.loads(dumps(plan))
    newer["schema_version"] = "2.0"
    p = tmp_path / "newer.json"
    p.write_text(json.dumps(newer))
    res = run_verify(p, input_dirs)
    assert res.exit_code == 2 and "schema" in res.output

    ghost = plan.model_copy(deep=True)
    ghost.replicas[0].node = "ghost-000"
    p = tmp_path / "ghost.json"
    p.write_text(dumps(ghost))
    res = run_verify(p, input_dirs)
    assert res.exit_code == 2 and "ghost-000" in res.output
    assert "Traceback" not in res.output


# --------------------------------------------------------------------------------------------
# Plans the solver writes (small synthetic fleets, greedy backend: fast)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solver_plans_verify_and_corruptions_are_caught(tmp_path: Path, seed: int) -> None:
    planner = pytest.importorskip("maestro_plan.solve.planner")
    problem = pytest.importorskip("maestro_plan.solve.problem")
    from maestro_plan.synth import SynthSpec, write_synth

    write_synth(SynthSpec(gpus=24, models=4, clusters=2, workflows=2, seed=seed, load=0.4), tmp_path)
    inputs = load_inputs(tmp_path / "inventories", tmp_path / "models", tmp_path / "workloads")
    plan, _ = planner.solve(inputs, problem.SolveSettings(solver="greedy", time_limit_s=2, lp_bound=False))
    report = verify_plan(plan, inputs)
    assert report.ok, [v.render() for v in report.violations]
    # the same plan with its busiest replica squeezed to 1 % of its GPUs' compute breaks capacity
    busiest = max(range(len(plan.replicas)), key=lambda i: plan.replicas[i].load_rps)
    assert "capacity" in families(edit_replica(plan, busiest, compute_share=0.01), inputs)
    # and with a route dropped, its (source, model) is no longer fully routed
    assert "routing" in families(edit(plan, routes=plan.routes[1:]), inputs)
