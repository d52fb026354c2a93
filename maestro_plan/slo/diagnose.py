"""Why a workflow's percentile SLO cannot be met at any cost: the binding constraint, in words.

Checked in order, each with the latency model's seeded Monte Carlo (estimate.latency):
- network latency: the round trips to the nearest cluster alone (every call free) put the pXX
  over the target;
- a model too slow on every GPU type: every call alone on the fastest GPU type of the fleet that
  holds its model (smallest TP that fits), plus the round trips, still misses;
- fleet size: otherwise. Idle replicas would meet it, so what is missing is enough of them (or
  enough fast GPUs) close to the workflow's sources; the solver could not place more.
"""

from __future__ import annotations

from dataclasses import replace

from maestro_plan.estimate.capacity import RequestMix
from maestro_plan.estimate.demand import reference_tp
from maestro_plan.estimate.latency import CallSpeed, Routes, call_speed, draw_workflow, nearest_one_way_ms, percentile_ms
from maestro_plan.estimate.memory import replica_memory
from maestro_plan.load.schema import Inputs, Role, Workflow
from maestro_plan.plan.schema import SloResult


def _fastest(inputs: Inputs, role: Role) -> tuple[str, CallSpeed] | None:
    """The GPU type of the fleet on which one call of the role's mean lengths is fastest, idle."""
    m = inputs.models[role.model]
    mix = RequestMix(role.input_tokens.mean_tokens(), role.output_tokens.mean_tokens(), 1.0)
    fleet = sorted({p.gpu_type for c in inputs.inventory.clusters for p in c.node_pools if p.gpu_type in inputs.gpu_types})
    best: tuple[float, str, CallSpeed] | None = None
    for gid in fleet:
        gpu = inputs.gpu_types[gid]
        tp = reference_tp(m, gpu)
        if not replica_memory(m, gpu, tp).fits:
            continue
        sp = call_speed(m, gpu, tp, mix, 0.0)
        if sp is None:
            continue
        t = float(sp.compute_ms_mean(mix.mean_input, mix.mean_output))
        if best is None or t < best[0]:
            best = (t, gid, sp)
    return None if best is None else (best[1], best[2])


def binding(inputs: Inputs, w: Workflow) -> str:
    """The constraint that keeps `w` from its percentile SLO (see the module docstring)."""
    pct, target = float(w.slo.percentile), float(w.slo.latency_ms)
    fastest = {r.name: _fastest(inputs, r) for r in w.roles}
    slow = [f"{r.model} (role {r.name})" for r in w.roles if fastest[r.name] is None]
    if slow:
        return f"a model too slow on every GPU type: {', '.join(slow)} fits no GPU type of the fleet"

    def routes_of(source: str, role: Role) -> Routes:
        f = fastest[role.name]
        assert f is not None
        return [(1.0, replace(f[1], rtt_ms=2.0 * nearest_one_way_ms(inputs, source)))]

    draws = draw_workflow(w, routes_of)
    net = percentile_ms(draws.e2e(0.0), pct)
    if net > target:
        return f"network latency: the round trips to the nearest clusters alone give p{pct:g} {net:,.0f} ms > {target:,.0f} ms"
    idle = percentile_ms(draws.e2e(1.0), pct)
    if idle > target:
        gpus = ", ".join(sorted({f"{r.model} on {fastest[r.name][0]}" for r in w.roles if fastest[r.name]}))  # type: ignore[index]
        return f"a model too slow on every GPU type: every call alone on its fastest GPU type ({gpus}) gives p{pct:g} {idle:,.0f} ms > {target:,.0f} ms"
    return f"fleet size: idle replicas on the fastest GPU types would give p{pct:g} {idle:,.0f} ms, but the fleet cannot hold enough of them near the workflow's sources"


def describe(inputs: Inputs, misses: list[SloResult], best_attainment: dict[str, float]) -> list[str]:
    """One line per missing workflow: the best attainment reached and the binding constraint."""
    wf = {w.name: w for w in inputs.workflows}
    lines = []
    for r in misses:
        att = best_attainment.get(r.workflow)
        reach = f"best attainment reached {100 * att:.1f}%" if att is not None else "no plan reached it"
        lines.append(f"workflow '{r.workflow}' (p{r.percentile:g} {r.target_ms:,.0f} ms): {reach}; binding: {binding(inputs, wf[r.workflow])}")
    return lines
