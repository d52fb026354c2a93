"""Additive load across request classes, on Melange's published example (benchmarks/melange.py).

The capacity table is Melange's measured throughputs in their published bucket order, which is not
monotone in length: the rate-weighted mean of the four buckets falls in a faster cell than the
classes a replica serves. Before per-class load, the planner took that mean cell's capacity and
returned one A100 ($3.67/h) while the continuous-routing optimum is $4.68/h (no headroom) or
$6.70/h (20 %), and `verify --capacity-table` passed the overloaded plan. Here: the plan costs
exactly the independent optimum (HiGHS on the continuous-routing model), and the verifier refuses
the one-A100 plan whatever its routes say about classes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import melange as M
from maestro_plan.plan.schema import Plan
from maestro_plan.verify import verify_plan


@pytest.mark.parametrize(("lengths", "headroom"), [("geometric", 0.2), ("arithmetic", 0.0)])
def test_plan_costs_exactly_the_continuous_routing_optimum(tmp_path: Path, lengths: str, headroom: float) -> None:
    opt, counts = M.continuous_optimum(headroom)
    plan, inputs, table = M.solve_plan(tmp_path, lengths, headroom)
    rep = verify_plan(plan, inputs, capacity_table=table)
    assert rep.ok, [v.render() for v in rep.violations]
    assert plan.cost_per_hour == pytest.approx(opt, rel=1e-9)  # never cheaper (overload), never dearer
    assert plan.gpus_used == {"c1": {t: n for t, n in sorted(counts.items()) if n}}
    # demand keeps its classes: every route names one, and each class's routes carry its rate
    classes = {f"melange/{M.bucket_name(i, j)}": M.DISTRIBUTION[i][j] * M.TOTAL_RPS for i in range(2) for j in range(2)}
    routed: dict[str, float] = {}
    for rt in plan.routes:
        routed[rt.request_class] = routed.get(rt.request_class, 0.0) + rt.rate_rps
    assert routed == pytest.approx(classes)
    assert sum(rt.fraction for rt in plan.routes) == pytest.approx(1.0)
    # two classes of one (source, model) pair on different GPU types: the A10Gs take short-output
    # long-input calls (Melange's cheapest offload, 5 req/s per A10G), some class stays on A100s
    gpu = {r.id: r.gpu_type for r in plan.replicas}
    types: dict[str, set[str]] = {}
    for rt in plan.routes:
        types.setdefault(rt.request_class, set()).add(gpu[rt.replica])
    assert "a10g" in types["melange/in100-out25"] and any(t == {"a100-80gb"} for t in types.values())
    if headroom == 0.0:  # the unique optimum: 1 A10G carries 5 req/s of that class and nothing else
        assert {c for c, t in types.items() if "a10g" in t} == {"melange/in100-out25"}


def _one_a100(plan: Plan, *, pair_routes: bool) -> Plan:
    """The plan a mean-mix planner makes: all traffic on the A100 replicas, the A10Gs gone; with
    pair_routes, routes of the whole (source, model) pair (request_class '', as old plans)."""
    a100 = sorted(r.id for r in plan.replicas if r.gpu_type == "a100-80gb")
    rate = sum(rt.rate_rps for rt in plan.routes)
    routes = []
    per_class: dict[str, float] = {}
    for rt in plan.routes:
        key = "" if pair_routes else rt.request_class
        per_class[key] = per_class.get(key, 0.0) + rt.rate_rps
    for cls, r in sorted(per_class.items()):
        for rid in a100:
            share = r / len(a100)
            routes.append(plan.routes[0].model_copy(update={"replica": rid, "rate_rps": share, "fraction": share / rate, "request_class": cls}))
    replicas = [r.model_copy(update={"load_rps": rate / len(a100)}) for r in plan.replicas if r.id in a100]
    a10g = plan.gpus_used["c1"].get("a10g", 0)
    return plan.model_copy(update={"replicas": replicas, "routes": routes, "cost_per_hour": plan.cost_per_hour - a10g * M.PRICES["a10g"], "gpus_used": {"c1": {"a100-80gb": plan.gpus_used["c1"]["a100-80gb"]}}})


@pytest.mark.parametrize("pair_routes", [False, True])
def test_verifier_refuses_the_mean_mix_plan(tmp_path: Path, pair_routes: bool) -> None:
    plan, inputs, table = M.solve_plan(tmp_path, "geometric", 0.2)
    bad = _one_a100(plan, pair_routes=pair_routes)
    rep = verify_plan(bad, inputs, capacity_table=table)
    fams = {v.constraint for v in rep.violations}
    assert "capacity" in fams, [v.render() for v in rep.violations]
    assert not fams & {"routing", "demand"}, [v.render() for v in rep.violations]
    # the A100 carries 1.125 A100s of work at these classes' own cells, x 1.2 headroom
    over = [v for v in rep.violations if v.constraint == "capacity" and "additive load" in v.detail]
    assert over and all("1.35" in v.detail for v in over), [v.render() for v in over]


def test_routing_json_carries_the_classes(tmp_path: Path) -> None:
    """routing.json: per pair one entry per replica (weights: the classes' sum) and `classes` with
    each class's replicas, valid against the shipped schema; every role names its class."""
    import json

    import jsonschema

    from maestro_plan.emit.routing import build_routing

    plan, inputs, _table = M.solve_plan(tmp_path, "arithmetic", 0.0)
    doc = build_routing(plan, inputs)
    schema = json.loads((Path(__file__).resolve().parent.parent / "maestro_plan" / "data" / "routing.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    (entry,) = doc["routes"]
    reps = [r["replica"] for r in entry["replicas"]]
    assert len(reps) == len(set(reps)) and sum(r["weight"] for r in entry["replicas"]) == pytest.approx(1.0, abs=1e-5)
    by_class = {c["request_class"]: c for c in entry["classes"]}
    assert set(by_class) == {f"melange/{M.bucket_name(i, j)}" for i in range(2) for j in range(2)}
    for c in by_class.values():
        assert sum(r["weight"] for r in c["replicas"]) == pytest.approx(1.0, abs=1e-5)
    gpu = {r.id: r.gpu_type for r in plan.replicas}
    assert {gpu[r["replica"]] for r in by_class["melange/in25-out100"]["replicas"]} == {"a100-80gb"}
    assert "a10g" in {gpu[r["replica"]] for r in by_class["melange/in100-out25"]["replicas"]}
    assert {r["request_class"] for w in doc["workflows"] for r in w["roles"]} == set(by_class)
