"""The verifier's own check of each workflow's percentile SLO (no code shared with the solver, nor
with the planner's latency model, maestro_plan.estimate.latency).

From the plan's replicas, routes and loads and the estimator's public API, per call:

    2 x route one-way latency + prefill_ms(I) + O x tpot(replica)

tpot(replica) = (mean per-call latency at the replica's load, estimate.latency_at_load, minus the
prefill of the mean prompt) / mean output tokens: the whole slowdown of the load put on the
decoded tokens (the planner's model instead prices chunk steps, the stretch and slot queueing).
Lengths follow the law the workloads are defined by (a lognormal through the mean and the highest
percentile, clipped to max; the percentile table by inverse transform where no lognormal fits),
fitted here with this module's own code. Calls per query as floor + Bernoulli(frac), roles in DAG order, the query's latency the
longest path. SAMPLES queries per workflow, split over sources by rate, one fixed SEED.

A plan claims "meets" for a workflow (plan.slo); the verifier fails it when its own pXX exceeds the
target by more than TOLERANCE (the two models differ in their length laws and in how they split a
call; on the hand-written workflows of tests/data/slo the two agree within 7 %).
A plan that records a miss must say so in its settings (--allow-slo-miss).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from graphlib import TopologicalSorter
from typing import Any

import numpy as np

from maestro_plan.load.schema import Inputs, TokenDist, Workflow
from maestro_plan.plan.schema import Plan, Replica

SAMPLES = 8_000
SEED = 20_260_314
TOLERANCE = 0.15
QUANTILE_GRID = np.linspace(0.0, 100.0, 201)


def _lognormal(d: TokenDist) -> tuple[float, float] | None:
    """(mu, sigma) of the lognormal with the distribution's mean and its highest percentile below
    100, the law the workloads' lengths are defined by (docs: simulate/traffic); None if none fits."""
    below = [p for p in d.percentiles if p < 100]
    if d.mean is None or not below or d.mean <= 0:
        return None
    p = max(below)
    q = float(d.percentiles[p])
    z = float(np.sqrt(2.0) * _erfinv(2.0 * p / 100.0 - 1.0))
    r = math.log(q / d.mean) if q > 0 else -1.0
    disc = z * z - 2.0 * r
    if r <= 0 or disc < 0 or z <= 0:
        return None
    sigma = z - math.sqrt(disc)
    return math.log(d.mean) - sigma * sigma / 2.0, sigma


def _erfinv(y: float) -> float:
    lo, hi = -6.0, 6.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if math.erf(mid) < y:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _draw(d: TokenDist, rng: np.random.Generator, n: int) -> np.ndarray:
    """Lengths of n calls: the lognormal through the mean and the highest percentile (clipped to
    max), else inverse transform of the piecewise-linear quantile table; at least one token."""
    ln = _lognormal(d)
    if ln is not None:
        x = rng.lognormal(ln[0], ln[1], n)
    elif not d.percentiles and d.histogram is None:
        x = np.full(n, d.mean_tokens())
    else:
        qs = np.array([d.quantile(float(p)) for p in QUANTILE_GRID])
        x = np.interp(rng.random(n) * 100.0, QUANTILE_GRID, qs)
    if d.max is not None:
        x = np.minimum(x, float(d.max))
    return np.maximum(np.rint(x), 1.0)


class _CallModel:
    """Per replica: tpot and the prefill function, from the estimator's public API."""

    def __init__(self, plan: Plan, inputs: Inputs, est: Any) -> None:
        self.inputs, self.est = inputs, est
        self.reps = {r.id: r for r in plan.replicas}
        dem = {(d.source, d.model): d for d in plan.demand}
        roles = {f"{w.name}/{r.name}": (r.input_tokens.mean_tokens(), r.output_tokens.mean_tokens()) for w in inputs.workflows for r in w.roles}
        acc: dict[str, list[float]] = {}
        for rt in plan.routes:
            d = dem.get((rt.source, rt.model))
            if d is not None and rt.rate_rps > 0:
                # a route of one request class (a role) at that role's mean lengths, of the whole pair at the pair's
                mean_in, mean_out = roles.get(rt.request_class, (d.mean_input_tokens, d.mean_output_tokens))
                a = acc.setdefault(rt.replica, [0.0, 0.0, 0.0])
                a[0] += rt.rate_rps * mean_in
                a[1] += rt.rate_rps * mean_out
                a[2] += rt.rate_rps
        self.mean = {k: (v[0] / v[2], v[1] / v[2]) for k, v in acc.items() if v[2] > 0}
        self.cache: dict[str, tuple[float, Callable[[np.ndarray], np.ndarray]] | None] = {}
        self.standby = {f"standby:{s.model}@{s.node}": s for s in plan.standby}

    def of(self, rid: str) -> tuple[float, Callable[[np.ndarray], np.ndarray]] | None:
        if rid not in self.cache:
            r = self.reps.get(rid)
            if rid in self.standby:
                self.cache[rid] = self._standby(rid, self.standby[rid])
            else:
                self.cache[rid] = None if r is None else self._make(r)
        return self.cache[rid]

    def _standby(self, rid: str, s: Any) -> tuple[float, Callable[[np.ndarray], np.ndarray]] | None:
        """A warm-standby route: the standby model on its swap slot's GPU share at the rate it
        serves, every call paying the cold start (a full swap each time, as the plan prices it)."""
        slot, m = self.reps.get(s.slot_replica), self.inputs.models.get(s.model)
        if slot is None or m is None:
            return None
        made = self._make(slot.model_copy(update={"id": rid, "model": s.model, "load_rps": s.serves_rate_rps, "max_model_len": min(slot.max_model_len, m.context_len)}))
        if made is None:
            return None
        tpot, pre = made
        return tpot, (lambda I, p=pre, c=float(s.cold_start_ms): p(I) + c)

    def _make(self, r: Replica) -> tuple[float, Callable[[np.ndarray], np.ndarray]] | None:
        m, gpu = self.inputs.models.get(r.model), self.inputs.gpu_types.get(r.gpu_type)
        if m is None or gpu is None:
            return None
        mi, mo = self.mean.get(r.id, (1.0, 1.0))
        mix = self.est.RequestMix(mean_input=mi, mean_output=mo, kv_tokens_per_request=mi + mo, max_model_len=r.max_model_len)
        x = self.est.latency_at_load(m, gpu, r.tp, mix, r.load_rps, compute_share=r.compute_share)
        if not math.isfinite(x):
            return None
        grid = np.unique(np.rint(np.geomspace(1.0, max(r.max_model_len, 2), 40)))
        pre = np.array([self.est.prefill_ms(m, gpu, r.tp, int(g), compute_share=r.compute_share) for g in grid])
        tpot = max(x - float(np.interp(mi, grid, pre)), 0.0) / max(mo, 1.0)
        return tpot, (lambda I, g=grid, p=pre: np.interp(I, g, p))


def _role_ms(role: Any, routes: list[tuple[float, float, Any]], n: int, rng: np.random.Generator) -> np.ndarray:
    c = float(role.calls_per_query)
    k = max(1, math.ceil(c - 1e-12))
    count = math.floor(c) + (rng.random(n) < c - math.floor(c))
    total = np.zeros(n)
    if not routes:
        return np.full(n, math.inf)
    cum = np.cumsum([f for f, _, _ in routes])
    cum = cum / cum[-1]
    for j in range(k):
        I, O = _draw(role.input_tokens, rng, n), _draw(role.output_tokens, rng, n)
        pick = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(routes) - 1)
        t = np.full(n, math.inf)
        for i, (_, net, cm) in enumerate(routes):
            sel = pick == i
            if cm is not None:
                t[sel] = 2.0 * net + cm[1](I[sel]) + O[sel] * cm[0]
        total += np.where(j < count, t, 0.0)
    return total


def workflow_pxx(plan: Plan, inputs: Inputs, w: Workflow, est: Any, calls: _CallModel | None = None) -> float:
    """The verifier's pXX of `w` under `plan` (ms; inf when a call has no capacity)."""
    calls = calls or _CallModel(plan, inputs, est)
    total_rate = math.fsum(a.rate_per_s for a in w.arrivals)
    out = []
    for a in sorted(w.arrivals, key=lambda a: a.source):
        n = max(1, round(SAMPLES * a.rate_per_s / total_rate))
        rng = np.random.default_rng([SEED, zlib.crc32(f"{w.name}|{a.source}".encode())])
        graph = {r.name: set(r.depends_on) for r in w.roles}
        roles = {r.name: r for r in w.roles}
        finish: dict[str, np.ndarray] = {}
        for name in TopologicalSorter(graph).static_order():
            r = roles[name]
            # the role's own request class where the plan routes classes apart ('' = the whole pair)
            pair = [rt for rt in plan.routes if rt.source == a.source and rt.model == r.model and rt.fraction > 0]
            mine = [rt for rt in pair if rt.request_class in ("", f"{w.name}/{name}")] or pair
            routes = [(rt.fraction, rt.network_latency_ms, calls.of(rt.replica)) for rt in mine]
            start = np.maximum.reduce([finish[d] for d in graph[name]]) if graph[name] else np.zeros(n)
            finish[name] = start + _role_ms(r, routes, n, rng)
        out.append(np.maximum.reduce(list(finish.values())))
    e2e = np.sort(np.concatenate(out))
    k = max(0, math.ceil(w.slo.percentile / 100.0 * e2e.size) - 1)
    return float(e2e[k])


def check_slo(plan: Plan, inputs: Inputs, est: Any, fail: Callable[..., None], check: Callable[[str], None]) -> None:
    """Fail each workflow the plan says meets its percentile SLO whose pXX, computed here, misses it
    by more than TOLERANCE; and records that disagree with the inputs or the settings."""
    recs = {r.workflow: r for r in plan.slo}
    if not recs:
        return
    calls = _CallModel(plan, inputs, est)
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        check("slo")
        r = recs.get(w.name)
        if r is None:
            fail("slo", w.name, "the plan records no percentile SLO check for this workflow")
            continue
        if not (math.isclose(r.target_ms, w.slo.latency_ms, rel_tol=1e-9) and math.isclose(r.percentile, w.slo.percentile, rel_tol=1e-9)):
            fail("slo", w.name, f"the plan's SLO record (p{r.percentile:g} {r.target_ms:g} ms) is not the workload's (p{w.slo.percentile:g} {w.slo.latency_ms:g} ms)")
            continue
        if r.verdict == "misses":
            if not plan.settings.allow_slo_miss:
                fail("slo", w.name, "the plan records a missed SLO but was not written with --allow-slo-miss")
            continue
        pxx = workflow_pxx(plan, inputs, w, est, calls)
        if pxx > w.slo.latency_ms * (1.0 + TOLERANCE):
            fail("slo", w.name, f"p{w.slo.percentile:g} end-to-end latency recomputed by the verifier is {pxx:,.0f} ms, over the {w.slo.latency_ms:,.0f} ms target (+{100 * TOLERANCE:.0f}% tolerance) the plan claims to meet", amount=pxx - w.slo.latency_ms, unit="ms")
