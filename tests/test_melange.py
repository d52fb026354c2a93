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
