"""Demand from workflows (the Maestro predictor, offline): rates, token mixes, per-call budgets.

- Per role and source: calls/s = workflow arrival rate from that source x calls_per_query.
- Per-call latency budgets, at the SLO's percentile (estimate.latency): each role's call time is
  predicted on a reference GPU (h100-sxm when the GPU table has it, else the fleet's GPU type with
  the highest HBM bandwidth) at the model's smallest TP that fits in memory, idle (batch 1). A
  seeded Monte Carlo of the workflow's queries (lengths per role, calls per query, the role DAG's
  longest path, round trips to the nearest cluster) gives the largest slowdown sigma* such that
  every call sigma* times slower than idle keeps the workflow's pXX within its target. A role's
  budget per call is sigma* x its idle mean call time, plus the round trip to the nearest cluster
  (the solver subtracts each route's own round trip). `slowdown_scale` (workflow -> factor < 1)
  tightens a workflow's sigma*: the SLO loop's answer to a simulated miss. (Before, the SLO was
  split in proportion to mean call times along the longest mean path: the mean met the target and
  a p95 or p99 did not.) The role's share of the critical mean path is still reported.
- Per (source, model): the summed rate, the rate-weighted mean input/output lengths, a budget, and
  the KV reservation unit. The budget keeps each role's slack: a role's budget over its predicted
  idle call time (its slack ratio, sigma*) says how much slower than idle its calls may run; the
  demand gets the tightest ratio over its roles times the predicted idle call time of the combined
  mix, plus the round trip from its source to the nearest cluster. (Taking the tightest absolute budget with the combined mix would hold a
  long programmer call to the budget of a short CTO call of the same model: falsely infeasible.)
  With one role this is that role's budget. The KV reservation unit is the `percentile` of input +
  output tokens of the rate-weighted mixture of its roles (each role's input and output taken as
  comonotone, i.e. its q-quantile of the sum = q-quantile of input + q-quantile of output; a role
  with `reserve_output_tokens` reserves that many output tokens instead), capped at the model's
  context length.
- KV reservation per replica on the reference GPU, at the concurrency the capacity model gives for
  that budget, next to the naive reservation max_model_len x max_num_seqs with max_num_seqs set to
  that same concurrency; the difference is the HBM saved per GPU.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

from maestro_plan.estimate.capacity import RequestMix, _round_block, replica_capacity
from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.estimate.latency import nearest_one_way_ms, slowdown_budget
from maestro_plan.estimate.memory import kv_bytes_per_sequence, replica_memory
from maestro_plan.estimate.perf import decode_step_ms_f, prefill_ms_f
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec, Role, TokenDist, Workflow

REFERENCE_GPU = "h100-sxm"
BUDGET_RULES = ("percentile", "mean")
"""percentile: budgets from the latency model at the SLO's percentile (the default); mean: the SLO
split over the mean path, as plans were made before the percentile model (kept to measure what the
tail costs: benchmarks/slo.py)."""


@dataclass(frozen=True)
class DemandClass:
    """One request class of a (source, model) pair: the calls of one role ("workflow/role") from
    that source, with their own rate, length mix and per-call budget (the same budget rule as the
    pair's, applied to the role's calls alone). Classes are what the solver routes and what a
    replica's load is summed over (rate / capacity of each class), so two roles of one model from
    one source may be served on different GPU types (Melange's request-size classes)."""

    name: str  # "workflow/role"
    rate_rps: float
    priority: str
    latency_budget_ms: float
    mix: RequestMix
    shared_prefix: bool
    peak_rate_rps: float = 0.0


@dataclass(frozen=True)
class ModelDemand:
    """One (source, model) pair; what the solver must route (per class: `classes`)."""

    source: str
    model: str
    rate_rps: float
    priority: str  # "interactive" | "batch"
    latency_budget_ms: float  # tightest per-call budget over roles calling it (network included)
    mix: RequestMix
    roles: tuple[str, ...]  # "workflow/role"
    shared_prefix: bool
    peak_rate_rps: float = 0.0  # rate x peak_to_mean of each arrival
    classes: tuple[DemandClass, ...] = ()  # one per role calling the model from this source, by name


@dataclass(frozen=True)
class RoleBudget:
    workflow: str
    role: str
    model: str
    calls_per_query: float
    budget_ms: float
    predicted_call_ms: float
    on_critical_path: bool = False
    critical_path_ms: float = 0.0  # predicted critical path of the workflow (reference GPU, idle)


@dataclass(frozen=True)
class KvReservation:
    """KV per GPU of one replica on the reference GPU: predicted lengths vs the naive reservation."""

    source: str
    model: str
    gpu: str
    tp: int
    concurrency: int
    kv_tokens_per_request: int
    predicted_bytes_per_gpu: int
    naive_bytes_per_gpu: int  # max_model_len x concurrency (the naive --max-num-seqs reservation)

    @property
    def saved_bytes_per_gpu(self) -> int:
        return self.naive_bytes_per_gpu - self.predicted_bytes_per_gpu


@dataclass(frozen=True)
class DemandModel:
    per_model: tuple[ModelDemand, ...]  # sorted by (model, source)
    role_budgets: tuple[RoleBudget, ...]
    kv_reservations: tuple[KvReservation, ...] = field(default=())
    reference_gpu: str = ""
    percentile: float = 99.0


def reference_gpu(inputs: Inputs, preferred: str | None = None) -> GpuType:
    """The GPU type call times are predicted on (see the module docstring)."""
    if preferred and preferred in inputs.gpu_types:
        return inputs.gpu_types[preferred]
    if REFERENCE_GPU in inputs.gpu_types:
        return inputs.gpu_types[REFERENCE_GPU]
    fleet = {p.gpu_type for c in inputs.inventory.clusters for p in c.node_pools if p.gpu_type in inputs.gpu_types}
    pool = [inputs.gpu_types[g] for g in sorted(fleet)] or [inputs.gpu_types[g] for g in sorted(inputs.gpu_types)]
    return max(pool, key=lambda g: (g.hbm_tbps, g.id))


def reference_tp(model: ModelSpec, gpu: GpuType, engine: EngineDefaults = VLLM) -> int:
    """The smallest allowed TP at which the model fits one replica on `gpu` (else the largest allowed)."""
    for tp in model.tp_degrees:
        if replica_memory(model, gpu, tp, engine=engine).fits:
            return tp
    return max(model.tp_degrees)


def predicted_call_ms(model: ModelSpec, gpu: GpuType, tp: int, mean_in: float, mean_out: float) -> float:
    """One call on an idle replica: prefill of the mean prompt + mean output x batch-1 decode step."""
    return prefill_ms_f(model, gpu, tp, mean_in) + max(mean_out, 1.0) * decode_step_ms_f(model, gpu, tp, 1.0, mean_in + mean_out / 2.0)


def _sum_quantile(role: Role, q: float) -> float:
    """q-quantile of input + output tokens of one call. A role with `reserve_output_tokens` (a
    role-aware output prediction written by `maestro-plan fit`) reserves that for its output."""
    out = role.reserve_output_tokens if role.reserve_output_tokens is not None else role.output_tokens.quantile(q)
    return role.input_tokens.quantile(q) + out


def _cdf(role: Role, v: float) -> float:
    """Fraction (0-1) of the role's calls with input + output <= v (inverse of the comonotone quantile)."""
    if _sum_quantile(role, 0.0) > v:
        return 0.0
    if _sum_quantile(role, 100.0) <= v:
        return 1.0
    lo, hi = 0.0, 100.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if _sum_quantile(role, mid) <= v:
            lo = mid
        else:
            hi = mid
    return lo / 100.0


def mixture_quantile(roles: list[tuple[Role, float]], percentile: float) -> float:
    """The `percentile` of input + output tokens over calls of several roles weighted by rate."""
    total = sum(w for _, w in roles)
    if total <= 0:
        return 0.0
    if len(roles) == 1:
        return _sum_quantile(roles[0][0], percentile)
    target = percentile / 100.0
    lo, hi = 0.0, max(_sum_quantile(r, 100.0) for r, _ in roles)
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(w * _cdf(r, mid) for r, w in roles) / total >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _budgets(w: Workflow, call_ms: dict[str, float], sigma: float | None, rtt_ms: float) -> list[RoleBudget]:
    """Per role: budget = sigma x idle call time + round trip, and the critical mean path. sigma None:
    the mean rule (SLO x call / mean path through the role; BUDGET_RULES)."""
    roles = {r.name: r for r in w.roles}
    weight = {n: roles[n].calls_per_query * call_ms[n] for n in roles}
    graph = {n: set(roles[n].depends_on) for n in roles}
    order = list(TopologicalSorter(graph).static_order())
    to: dict[str, float] = {}
    for n in order:
        to[n] = weight[n] + max((to[d] for d in graph[n]), default=0.0)
    children: dict[str, list[str]] = defaultdict(list)
    for n, deps in graph.items():
        for d in deps:
            children[d].append(n)
    frm: dict[str, float] = {}
    for n in reversed(order):
        frm[n] = weight[n] + max((frm[c] for c in children[n]), default=0.0)
    cp = max(to.values(), default=0.0)
    out = []
    for n in sorted(roles):
        through = to[n] + frm[n] - weight[n]
        if sigma is not None:
            budget = sigma * call_ms[n] + rtt_ms
        else:
            budget = w.slo.latency_ms * call_ms[n] / through if through > 0 else w.slo.latency_ms
        out.append(
            RoleBudget(
                workflow=w.name,
                role=n,
                model=roles[n].model,
                calls_per_query=roles[n].calls_per_query,
                budget_ms=budget,
                predicted_call_ms=call_ms[n],
                on_critical_path=math.isclose(through, cp, rel_tol=1e-9),
                critical_path_ms=cp,
            )
        )
    return out


@dataclass(frozen=True)
class _Aggregate:
    """Rate, peak, mix, per-call budget and priority of a set of calls of one model from one
    source (items: (workflow, role, rate, slack ratio, peak rate)); used for the whole pair and
    for each of its classes alone. The budget rule is the module docstring's (SLO-owned)."""

    inputs: Inputs
    source: str
    model: ModelSpec
    gpu: GpuType
    tp: int
    percentile: float
    scale: Mapping[str, float]
    mean_rule: bool

    def of(self, items: list[tuple[Workflow, Role, float, float, float]]) -> tuple[float, float, RequestMix, float, str]:
        m, gpu, scale = self.model, self.gpu, self.scale
        rate = math.fsum(x[2] for x in items)
        peak = math.fsum(x[4] for x in items)
        wsum = rate if rate > 0 else 1.0
        mean_in = math.fsum(x[2] * x[1].input_tokens.mean_tokens() for x in items) / wsum
        mean_out = math.fsum(x[2] * x[1].output_tokens.mean_tokens() for x in items) / wsum
        kv_req = min(mixture_quantile([(x[1], x[2]) for x in items], self.percentile), float(m.context_len))
        kv_req = max(kv_req, mean_in + mean_out)
        kv_req = min(kv_req, float(m.context_len))
        mix = RequestMix(mean_input=mean_in, mean_output=mean_out, kv_tokens_per_request=kv_req, max_model_len=m.context_len)
        priority = "interactive" if any(x[0].priority.value == "interactive" for x in items) else "batch"
        budget = min(x[3] for x in items) * predicted_call_ms(m, gpu, self.tp, mean_in, mean_out)
        if self.mean_rule:
            budget = budget if math.isfinite(budget) else min(x[0].slo.latency_ms for x in items)
        else:
            cap = min(x[0].slo.latency_ms * max(1.0, float(scale.get(x[0].name, 1.0))) for x in items)  # a relaxed workflow may exceed its SLO
            budget = min(budget, cap) + 2.0 * nearest_one_way_ms(self.inputs, self.source)
        return rate, peak, mix, budget, priority


def compute_demand(
    inputs: Inputs,
    *,
    percentile: float = 99.0,
    reference: str | None = None,
    engine: EngineDefaults = VLLM,
    slowdown_scale: Mapping[str, float] | None = None,
    budget_rule: str = "percentile",
) -> DemandModel:
    """Per (source, model) demand and per-role latency budgets for all workflows of `inputs`
    (`slowdown_scale`: workflow -> factor on its sigma*, see the module docstring)."""
    scale = dict(slowdown_scale or {})
    if budget_rule not in BUDGET_RULES:
        raise ValueError(f"budget_rule must be one of {BUDGET_RULES}, got {budget_rule!r}")
    mean_rule = budget_rule == "mean"
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    gpu = reference_gpu(inputs, reference)
    tps: dict[str, int] = {}

    def tp_of(mid: str) -> int:
        if mid not in tps:
            tps[mid] = reference_tp(inputs.models[mid], gpu, engine)
        return tps[mid]

    budgets: list[RoleBudget] = []
    # (source, model) -> list of (workflow, role, rate, slack ratio = budget / predicted call, peak rate)
    acc: dict[tuple[str, str], list[tuple[Workflow, Role, float, float, float]]] = defaultdict(list)
    for w in inputs.workflows:
        call_ms = {}
        for r in w.roles:
            m = inputs.models[r.model]
            call_ms[r.name] = predicted_call_ms(m, gpu, tp_of(r.model), r.input_tokens.mean_tokens(), r.output_tokens.mean_tokens())
        sigma = None if mean_rule else slowdown_budget(w, inputs, gpu, tp_of) * float(scale.get(w.name, 1.0))
        rtt = 0.0 if mean_rule else min(2.0 * nearest_one_way_ms(inputs, a.source) for a in w.arrivals)
        rb = {b.role: b for b in _budgets(w, call_ms, sigma, rtt)}
        budgets.extend(rb.values())
        for a in w.arrivals:
            for r in w.roles:
                rate = a.rate_per_s * r.calls_per_query
                ratio = sigma if sigma is not None else (rb[r.name].budget_ms / call_ms[r.name] if call_ms[r.name] > 0 else math.inf)
                acc[(a.source, r.model)].append((w, r, rate, ratio, rate * a.peak_to_mean))
    per_model: list[ModelDemand] = []
    reservations: list[KvReservation] = []
    for (source, mid), items in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = inputs.models[mid]
        agg = _Aggregate(inputs, source, m, gpu, tp_of(mid), percentile, scale, mean_rule)
        rate, peak, mix, budget, priority = agg.of(items)
        by_role: dict[str, list] = defaultdict(list)
        for x in items:
            by_role[f"{x[0].name}/{x[1].name}"].append(x)
        classes = []
        for name in sorted(by_role):
            c_rate, c_peak, c_mix, c_budget, c_prio = agg.of(by_role[name])
            classes.append(DemandClass(name, c_rate, c_prio, c_budget, c_mix, any(x[1].shared_prefix for x in by_role[name]), c_peak))
        per_model.append(
            ModelDemand(
                source=source,
                model=mid,
                rate_rps=rate,
                priority=priority,
                latency_budget_ms=budget,
                mix=mix,
                roles=tuple(sorted(by_role)),
                shared_prefix=any(x[1].shared_prefix for x in items),
                peak_rate_rps=peak,
                classes=tuple(classes),
            )
        )
        tp = tp_of(mid)
        cap = replica_capacity(m, gpu, tp, mix, latency_budget_ms=budget, engine=engine)
        conc = cap.batch if cap is not None else 1
        kv_tokens = _round_block(mix.kv_tokens_per_request, engine.block_size)
        predicted = int(math.ceil(conc * kv_bytes_per_sequence(m, tp, kv_tokens)))
        naive = int(math.ceil(conc * kv_bytes_per_sequence(m, tp, _round_block(m.context_len, engine.block_size))))
        reservations.append(KvReservation(source, mid, gpu.id, tp, conc, kv_tokens, predicted, naive))
    budgets.sort(key=lambda b: (b.workflow, b.role))
    return DemandModel(tuple(per_model), tuple(budgets), tuple(reservations), gpu.id, percentile)


def token_dist_summary(d: TokenDist) -> str:
    return f"mean {d.mean_tokens():.0f}, p50 {d.quantile(50):.0f}, p99 {d.quantile(99):.0f}"
