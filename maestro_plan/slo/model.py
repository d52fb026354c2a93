"""The percentile latency model (estimate.latency) applied to a plan: every call priced on the
replica its route sends it to, at that replica's planned load, with the route's network latency.

A replica's request mix is the load-weighted mean of the (source, model) demands routed to it (the
plan records their mean lengths); its slots are its --max-num-seqs, and no more sequences of the
mix's mean length than its KV reservation holds. Standby routes (`standby:<model>@<node>`) serve
at batch 1 on the node's GPU type at the model's smallest TP that fits, and pay the plan's cold
start with the probability that the engine was unloaded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from maestro_plan.estimate.capacity import RequestMix
from maestro_plan.estimate.demand import reference_tp
from maestro_plan.estimate.latency import (
    STANDBY_IDLE_S,
    CallSpeed,
    Routes,
    attainment,
    call_speed,
    draw_workflow,
    percentile_ms,
)
from maestro_plan.load.schema import Inputs, Role
from maestro_plan.plan.schema import Plan

STANDBY_PREFIX = "standby:"


@dataclass(frozen=True)
class WorkflowTail:
    """The model's figures for one workflow of a plan."""

    workflow: str
    percentile: float
    target_ms: float
    predicted_ms: float  # the model's pXX (inf: some call has no route, or a replica is overloaded)
    attainment: float  # fraction of sampled queries within the target
    mean_ms: float

    @property
    def meets(self) -> bool:
        return self.predicted_ms <= self.target_ms


def _replica_mix(plan: Plan, inputs: Inputs | None = None) -> dict[str, RequestMix]:
    """Per replica, the rate-weighted mean lengths of what its routes carry: a route of one request
    class ('workflow/role') at that role's means, a route of the whole pair at the pair's."""
    dem = {(d.source, d.model): d for d in plan.demand}
    roles = {f"{w.name}/{r.name}": (r.input_tokens.mean_tokens(), r.output_tokens.mean_tokens()) for w in (inputs.workflows if inputs else []) for r in w.roles}
    num_in: dict[str, float] = defaultdict(float)
    num_out: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    for rt in plan.routes:
        d = dem.get((rt.source, rt.model))
        if d is None or rt.rate_rps <= 0:
            continue
        mean_in, mean_out = roles.get(rt.request_class, (d.mean_input_tokens, d.mean_output_tokens))
        num_in[rt.replica] += rt.rate_rps * mean_in
        num_out[rt.replica] += rt.rate_rps * mean_out
        den[rt.replica] += rt.rate_rps
    return {k: RequestMix(num_in[k] / den[k], num_out[k] / den[k], 1.0) for k in den if den[k] > 0}


class PlanSpeeds:
    """Per replica (and standby engine) of a plan: its CallSpeed at the planned load."""

    def __init__(self, plan: Plan, inputs: Inputs) -> None:
        self.plan = plan
        self.inputs = inputs
        self.mix = _replica_mix(plan, inputs)
        self.replicas = {r.id: r for r in plan.replicas}
        self.cache: dict[str, CallSpeed | None] = {}
        self.node_gpu = {n: p.gpu_type for c in inputs.inventory.clusters for p in c.node_pools for n in p.node_names}

    def replica(self, rid: str) -> CallSpeed | None:
        if rid not in self.cache:
            self.cache[rid] = self._standby(rid) if rid.startswith(STANDBY_PREFIX) else self._replica(rid)
        return self.cache[rid]

    def _replica(self, rid: str) -> CallSpeed | None:
        r = self.replicas.get(rid)
        if r is None or r.model not in self.inputs.models or r.gpu_type not in self.inputs.gpu_types:
            return None
        mix = self.mix.get(rid, RequestMix(1.0, 1.0, 1.0))
        per_seq = max(mix.mean_input + mix.mean_output, 1.0)
        slots = max(1, min(int(r.max_num_seqs), int(r.kv_tokens // per_seq))) if r.kv_tokens > 0 else int(r.max_num_seqs)
        m = self.inputs.models[r.model]
        gpu = self.inputs.gpu_types[r.gpu_type]
        return call_speed(m, gpu, r.tp, mix, r.load_rps, compute_share=r.compute_share, slots=slots, roles=self._roles_of(r.roles))

    def _roles_of(self, names: list[str]) -> list[tuple[Role, float]]:
        """The roles a replica serves ("workflow/role"), weighted by their call rates."""
        wf = {w.name: w for w in self.inputs.workflows}
        out = []
        for name in sorted(names):
            w_name, _, r_name = name.partition("/")
            w = wf.get(w_name)
            role = next((r for r in w.roles if r.name == r_name), None) if w else None
            if w is not None and role is not None:
                out.append((role, w.total_rate_per_s * role.calls_per_query))
        return out

    def _standby(self, rid: str) -> CallSpeed | None:
        model, _, node = rid[len(STANDBY_PREFIX) :].partition("@")
        gid = self.node_gpu.get(node)
        sb = next((s for s in self.plan.standby if s.model == model and s.node == node), None)
        if gid is None or model not in self.inputs.models or gid not in self.inputs.gpu_types or sb is None:
            return None
        m = self.inputs.models[model]
        gpu = self.inputs.gpu_types[gid]
        mix = self.mix.get(rid, RequestMix(1.0, 1.0, 1.0))
        sp = call_speed(m, gpu, reference_tp(m, gpu), mix, 0.0)
        if sp is None:
            return None
        cold = math.exp(-STANDBY_IDLE_S * max(sb.serves_rate_rps, 0.0))
        return CallSpeed(**{**sp.__dict__, "cold_prob": cold, "cold_ms": float(sb.cold_start_ms)})

    def routes_of(self, source: str, role: Role, workflow: str = "") -> Routes:
        """Where (source, role)'s calls go: the routes of its request class ('workflow/role') when
        the plan routes classes apart (fractions renormalised to the class), else the pair's."""
        out: Routes = []
        cls = f"{workflow}/{role.name}" if workflow else ""
        mine = [rt for rt in self.plan.routes if rt.source == source and rt.model == role.model and rt.fraction > 0 and rt.request_class in ("", cls)]
        if cls and not any(rt.request_class == cls for rt in mine):
            mine = [rt for rt in self.plan.routes if rt.source == source and rt.model == role.model and rt.fraction > 0]
        total = math.fsum(rt.fraction for rt in mine)
        shed = math.fsum(d.shed_rps for d in self.plan.demand if d.source == source and d.model == role.model)
        rate = math.fsum(d.rate_rps for d in self.plan.demand if d.source == source and d.model == role.model)
        served = 1.0 - (shed / rate if rate > 0 else 0.0)
        for rt in mine:
            sp = self.replica(rt.replica)
            f = float(rt.fraction) if not cls else float(rt.fraction) / total * served
            out.append((f, None if sp is None else CallSpeed(**{**sp.__dict__, "rtt_ms": 2.0 * float(rt.network_latency_ms)})))
        if out and rate > 0 and shed > 1e-9:
            out.append((shed / rate, None))  # shed calls never finish: they count as misses
        return out


def overloaded_models(plan: Plan, inputs: Inputs) -> list[str]:
    """Models with a serving replica the latency model finds overloaded at its planned load (its
    CallSpeed is None: its prompts' work, or its calls, exceed what it serves), sorted."""
    speeds = PlanSpeeds(plan, inputs)
    return sorted({r.model for r in plan.replicas if r.load_rps > 0 and r.model in inputs.models and r.gpu_type in inputs.gpu_types and speeds.replica(r.id) is None})


def plan_tails(plan: Plan, inputs: Inputs) -> list[WorkflowTail]:
    """The model's pXX and attainment of every workflow of `inputs` under `plan`, sorted by name."""
    speeds = PlanSpeeds(plan, inputs)
    out = []
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        e2e = draw_workflow(w, lambda src, role, w=w: speeds.routes_of(src, role, w.name)).e2e()
        pct = float(w.slo.percentile)
        finite = e2e[e2e < math.inf]
        mean = float(finite.mean()) if finite.size == e2e.size and finite.size else math.inf
        out.append(WorkflowTail(w.name, pct, float(w.slo.latency_ms), percentile_ms(e2e, pct), attainment(e2e, float(w.slo.latency_ms)), mean))
    return out
