"""Percentile SLOs after the solver: the latency model on a plan (model), the simulator in the loop
(loop), and what binds when no plan meets (diagnose). `solve_checked` is what `maestro-plan solve`
runs: the solver's public entry point inside the loop, the verdicts written into plan.slo."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from maestro_plan.errors import InfeasibleError
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan


def _named(inputs: Inputs, e: InfeasibleError) -> InfeasibleError:
    """The solver found no plan: where a workflow's SLO is out of reach at any cost (network, or a
    model too slow on every GPU type), say so first; otherwise the solver's own explanation."""
    from maestro_plan.slo.diagnose import binding

    lines = []
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        b = binding(inputs, w)
        if not b.startswith("fleet size"):
            lines.append(f"workflow '{w.name}' (p{w.slo.percentile:g} {w.slo.latency_ms:,.0f} ms) cannot meet its SLO at any cost; binding: {b}")
    if not lines:
        return e
    return InfeasibleError("no plan meets every percentile SLO; --allow-slo-miss writes the best plan anyway", e.shortfalls, lines + [f"solver: {e.summary}", *e.reasons])


def solve_checked(
    inputs: Inputs,
    settings: Any,
    *,
    mode: str = "sim",
    allow_miss: bool = False,
    stage: Callable[[str], None] | None = None,
    **solve_kw: Any,
) -> tuple[Plan, dict[str, Any]]:
    """Solve with the SLO loop (`mode`: none, model or sim). Raises InfeasibleError (exit 3) naming
    each workflow that misses, its best attainment and the binding constraint, unless `allow_miss`."""
    from maestro_plan.slo.diagnose import describe
    from maestro_plan.slo.loop import solve_with_slo
    from maestro_plan.solve.planner import solve

    try:
        res = solve_with_slo(inputs, settings, solve, mode=mode, stage=stage, allow_miss=allow_miss, **solve_kw)
    except InfeasibleError as e:
        raise _named(inputs, e) from None
    plan = res.plan
    tag = {"slo_check": mode, "allow_slo_miss": bool(allow_miss)}
    pid = hashlib.sha256(json.dumps({"plan_id": plan.plan_id, **tag}, sort_keys=True).encode()).hexdigest() if mode != "none" else plan.plan_id
    plan = plan.model_copy(update={"settings": plan.settings.model_copy(update=tag), "plan_id": pid})
    if not res.misses:
        return plan, res.stats
    best: dict[str, float] = {}
    for rd in res.rounds:
        for r in rd.results:
            a = r.sim_attainment if r.sim_attainment is not None else r.model_attainment
            best[r.workflow] = max(best.get(r.workflow, 0.0), a)
    lines = describe(inputs, res.misses, best)
    if res.infeasible is not None:
        lines.append(f"tightening the budgets further found no plan: {res.infeasible.summary}")
    if not allow_miss:
        raise InfeasibleError(f"no plan meets every percentile SLO after {len(res.rounds)} solve(s); --allow-slo-miss writes the best plan anyway", reasons=lines)
    notes = [f"SLO MISSED (written because of --allow-slo-miss): {x}" for x in lines]
    return plan.model_copy(update={"notes": list(plan.notes) + notes}), res.stats
