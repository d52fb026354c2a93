"""Workflow drafts from the templates, then the Workflow documents with SLOs and scaled rates."""

from __future__ import annotations

import math
from typing import Any

from maestro_plan.load.schema import Arrival, Inventory, ModelSpec, Role, Slo, Workflow
from maestro_plan.synth.spec import Rng, SynthSpec, sig
from maestro_plan.synth.tables import TOKEN_DISTS, WORKFLOW_TEMPLATES, WorkflowT


def draft_workflows(spec: SynthSpec, rng: Rng, models: dict[str, ModelSpec], inv: Inventory) -> list[dict[str, Any]]:
    """Workflow drafts: template, roles (with models), sources and relative rates."""
    order = rng.shuffled(WORKFLOW_TEMPLATES)
    drafts = []
    for w in range(spec.workflows):
        t = order[w % len(order)]
        drafts.append({"t": t, "name": f"{t.kind}-{w:03d}", "roles": [dict(name=r.name, dist=r.dist, calls=r.calls, after=list(r.after)) for r in t.roles]})
    # every model must be called by some role: add fan-out specialist roles where slots are short
    slots = sum(len(d["roles"]) for d in drafts)
    k = 0
    while slots < len(models):
        d = drafts[k % len(drafts)]
        first = d["roles"][0]["name"]
        n = sum(1 for r in d["roles"] if r["name"].startswith("specialist-"))
        d["roles"].append(dict(name=f"specialist-{n + 1:02d}", dist=rng.weighted(["conv", "code"], [2.0, 1.0]), calls=1.0, after=[first]))
        slots += 1
        k += 1
    # assign models: a random permutation covers every model once, the rest are random picks
    perm = rng.shuffled(sorted(models))
    ids = sorted(models)
    i = 0
    for d in drafts:
        for r in d["roles"]:
            r["model"] = perm[i] if i < len(perm) else ids[rng.below(len(ids))]
            i += 1
    users = [s.name for s in inv.sources if s.name.startswith("users-")]
    batch = [s.name for s in inv.sources if s.name.startswith("batch-")]
    for d in drafts:
        pool = users if d["t"].priority == "interactive" or not batch else batch
        n = 1 + rng.below(len(pool))
        srcs = sorted(rng.shuffled(pool)[:n])
        base = rng.uniform(0.5, 2.0)
        weights = [rng.uniform(0.5, 1.5) for _ in srcs]
        d["arrivals"] = {s: base * w / math.fsum(weights) for s, w in zip(srcs, weights)}
    return drafts


def build_workflows(drafts: list[dict[str, Any]], slo_ms: dict[str, float], scale: float) -> list[Workflow]:
    out = []
    for d in drafts:
        t: WorkflowT = d["t"]
        roles = []
        for r in d["roles"]:
            din, dout = TOKEN_DISTS[r["dist"]]
            roles.append(
                Role(
                    name=r["name"],
                    model=r["model"],
                    calls_per_query=r["calls"],
                    depends_on=r["after"],
                    input_tokens=din.token_dist(),
                    output_tokens=dout.token_dist(),
                    description=f"input lengths: {din.source}; output lengths: {dout.source}",
                )
            )
        arrivals = [Arrival(source=s, rate_per_s=max(1e-4, sig(rate * scale))) for s, rate in sorted(d["arrivals"].items())]
        out.append(
            Workflow(
                name=d["name"],
                description=f"Synthetic {t.kind} workflow ({t.note}).",
                priority=t.priority,
                slo=Slo(percentile=95.0, latency_ms=slo_ms[d["name"]]),
                arrivals=arrivals,
                roles=roles,
                sources_note=f"Synthetic (maestro-plan synth). Role lengths are measured distributions: {t.note}. Rates scaled to the fleet; SLO = {t.slack:g} x the estimator's unloaded critical-path latency, rounded up.",
            )
        )
    return out


def critical_path(roles: list[dict[str, Any]], call_ms: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    pending = list(roles)
    while pending:
        for r in list(pending):
            if all(a in finish for a in r["after"]):
                start = max((finish[a] for a in r["after"]), default=0.0)
                finish[r["name"]] = start + r["calls"] * call_ms[r["name"]]
                pending.remove(r)
    return max(finish.values(), default=0.0)
