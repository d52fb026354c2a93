"""End-to-end latency of a workflow at its SLO's percentile (not its mean), and the slowdown the
per-call budgets may allow so that the percentile meets the target.

A query of workflow w walks its role DAG; a role with calls_per_query c makes floor(c) calls plus
one more with probability frac(c), in sequence (loops unrolled); a role starts when all the roles
it depends on have finished, so the query's latency is the longest path of the DAG, each role
weighing the sum of its calls. One call of I prompt tokens and O output tokens on a replica at
its planned load takes

    rtt + wait + prefill(I) + ceil(I / room) x step + O x step x stretch

- rtt: twice the one-way network latency of its route (source to cluster), per call;
- prefill(I): the estimator's batch-1 prefill of its own prompt (perf.prefill_ms_f), tabulated on
  a geometric grid and interpolated;
- step, stretch, room: the capacity model's fixed point at the replica's load
  (capacity.load_point): the decode step at the mean concurrency B = rate x mean latency, the
  stretch 1 / (1 - rate x M) that chunked prompts add to every step, and the prompt tokens a step
  can take beside the B decoding sequences (chunks after the first cost a step each);
- wait: queueing for a sequence slot when the replica's slots are full. Continuous batching
  admits a call at the next step while fewer than S sequences run (S = --max-num-seqs, and no
  more sequences of the mean length than the KV pool holds), so a replica is an S-server queue
  whose servers are the slots and whose service time is the call's whole latency. With Poisson
  arrivals that is M/G/S; we take the M/M/S (Erlang C) waiting law: with probability C(S, a),
  a = rate x mean latency, a call waits an exponential time of mean x / (S - a), times
  Allen-Cunneen's M/G/S correction (1 + cs^2) / 2, cs^2 the squared coefficient of variation of
  the replica's call times (`service_scv`: measured on the lengths of the roles it serves, see
  `service_scv`; 1 where unknown, the exponential). With a large S (vLLM's default 256 or 1,024)
  and a well below it C is negligible; it matters where the capacity model sized S to a few
  sequences (a small GPU slice) or the KV pool bounds it.
- standby routes (a model woken from host DRAM) pay the plan's cold start with the probability that
  the engine was unloaded, exp(-60 s x rate) (the simulator unloads after 60 s idle), and serve at
  batch 1 on their slot.

Assumptions (stated, not hidden): lengths are drawn as the simulator draws them
(estimate.lengths.LengthModel: lognormal through the workload's mean and highest percentile); a
call's input and output are independent; the mean concurrency, not its fluctuation, sets the step
time; calls of one query see independent replicas (routing draws per call); prefix caching is not
credited. The parts are combined by a seeded Monte Carlo (SAMPLES queries per workflow, split over
its sources by arrival rate, fixed SEED): the same inputs give the same figures.

Budgets before the solver has placed anything (`slowdown_budget`): every call on the reference GPU
idle (batch 1) plus the round trip to the nearest cluster. Under load a call runs slower; the
solver keeps each demand's mean per-call latency within `sigma x` its idle mean time (the
capacity at that budget). Taking every call `sigma` times slower than idle, the workflow's pXX is
the pXX of sigma x compute + network; sigma* is the largest slowdown with that pXX within the
target (bisection over the samples), and per-call budgets are sigma* x the idle call time (plus
the network round trip, which the solver subtracts per route). The mean-based split used before
(SLO x call / longest mean path) let the mean path meet the target and the tail miss it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from graphlib import TopologicalSorter

import numpy as np

from maestro_plan.estimate.capacity import RequestMix, load_point
from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.estimate.lengths import LengthModel
from maestro_plan.estimate.perf import prefill_ms_f
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec, Role, Workflow

SAMPLES = 20_000
"""Queries sampled per workflow: the p99 of 20,000 draws has a standard error near 0.1 of a percentile."""
SEED = 14
"""Seed of the model's Monte Carlo (fixed: the figures are a deterministic function of the inputs)."""
PREFILL_GRID = 48
STANDBY_IDLE_S = 60.0
"""Idle seconds after which a standby engine is unloaded (the simulator's default, Knative's stable window)."""


@dataclass(frozen=True)
class CallSpeed:
    """How long one call takes on one replica (see the module docstring)."""

    prefill_x: tuple[float, ...]
    prefill_y: tuple[float, ...]
    step_ms: float
    stretch: float
    room: float
    rtt_ms: float = 0.0
    wait_prob: float = 0.0
    wait_mean_ms: float = 0.0
    cold_prob: float = 0.0
    cold_ms: float = 0.0

    def compute_ms(self, I: np.ndarray, O: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t = np.interp(I, self.prefill_x, self.prefill_y) + np.ceil(I / self.room) * self.step_ms + O * self.step_ms * self.stretch
        u = rng.random((3,) + I.shape)
        if self.wait_prob > 0:
            t = t + np.where(u[0] < self.wait_prob, -self.wait_mean_ms * np.log1p(-u[1]), 0.0)
        if self.cold_prob > 0:
            t = t + np.where(u[2] < self.cold_prob, self.cold_ms, 0.0)
        return t

    def compute_ms_mean(self, mean_in: float, mean_out: float) -> float:
        """One call of the mean lengths, without waits (for ranking GPU types)."""
        return float(np.interp(mean_in, self.prefill_x, self.prefill_y)) + math.ceil(mean_in / self.room) * self.step_ms + mean_out * self.step_ms * self.stretch


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/S with S servers and offered load a (Erlang C),
    by the Erlang B recursion (stable for hundreds of servers); 1 when a >= S."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1.0 - b))


def call_speed(
    model: ModelSpec,
    gpu: GpuType,
    tp: int,
    mix: RequestMix,
    rps: float,
    *,
    compute_share: float = 1.0,
    slots: int | None = None,
    rtt_ms: float = 0.0,
    service_scv: float = 1.0,
    engine: EngineDefaults = VLLM,
) -> CallSpeed | None:
    """One replica's per-call speed at `rps` (None: the replica cannot sustain that rate);
    `service_scv`: squared coefficient of variation of its call times (Allen-Cunneen)."""
    pt = load_point(model, gpu, tp, mix, rps, compute_share=compute_share, engine=engine)
    if pt is None:
        return None
    top = float(max(model.context_len, 2))
    xs = tuple(float(v) for v in np.unique(np.rint(np.geomspace(1.0, top, PREFILL_GRID))))
    ys = tuple(prefill_ms_f(model, gpu, tp, x, compute_share=compute_share) for x in xs)
    wait_prob = wait_mean = 0.0
    if slots is not None and rps > 0:
        a = rps / 1000.0 * pt.latency_ms
        if a >= slots:
            return None
        wait_prob = erlang_c(int(slots), a)
        wait_mean = pt.latency_ms / (slots - a) * (1.0 + service_scv) / 2.0
    return CallSpeed(xs, ys, pt.step_ms, pt.stretch, pt.room, rtt_ms, wait_prob, wait_mean)


def service_scv(speed: CallSpeed, roles: list[tuple[Role, float]], *, samples: int = 4_000, seed: int = SEED) -> float:
    """Squared coefficient of variation of one replica's call times (no waits), over the calls of
    `roles` weighted by their rates: the cs^2 of Allen-Cunneen's correction."""
    total = math.fsum(w for _, w in roles)
    if total <= 0:
        return 1.0
    parts = []
    for role, w in roles:
        n = max(1, int(round(samples * w / total)))
        rng = _stream(seed, f"scv/{role.name}")
        I = LengthModel.of(role.input_tokens).sample(rng, n).astype(float)
        O = LengthModel.of(role.output_tokens).sample(rng, n).astype(float)
        parts.append(speed.compute_ms(I, O, rng))
    t = np.concatenate(parts)
    m = float(t.mean())
    return float(t.var() / (m * m)) if m > 0 else 1.0


# (fraction, speed) over the replicas one source's calls of one role go to; speed None: overloaded
Routes = list[tuple[float, CallSpeed | None]]


@dataclass
class RoleDraws:
    """Per sampled query: the role's summed compute time and summed network round trips."""

    compute: np.ndarray
    network: np.ndarray


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))])


def _role_draws(role: Role, routes: Routes, n: int, rng: np.random.Generator) -> RoleDraws:
    c = float(role.calls_per_query)
    k = max(1, int(math.ceil(c - 1e-12)))
    count = np.floor(c) + (rng.random(n) < (c - math.floor(c)))
    live = np.arange(k)[None, :] < count[:, None]
    I = LengthModel.of(role.input_tokens).sample(rng, n * k).reshape(n, k).astype(float)
    O = LengthModel.of(role.output_tokens).sample(rng, n * k).reshape(n, k).astype(float)
    fr = np.array([f for f, _ in routes], dtype=float)
    cum = np.cumsum(fr / fr.sum())
    pick = np.minimum(np.searchsorted(cum, rng.random((n, k)), side="right"), len(routes) - 1)
    comp = np.zeros((n, k))
    net = np.zeros((n, k))
    for j, (_, sp) in enumerate(routes):
        sel = pick == j
        if not sel.any():
            continue
        if sp is None:
            comp[sel] = math.inf
            continue
        comp[sel] = sp.compute_ms(I[sel], O[sel], rng)
        net[sel] = sp.rtt_ms
    return RoleDraws(np.where(live, comp, 0.0).sum(axis=1), np.where(live, net, 0.0).sum(axis=1))


@dataclass
class WorkflowDraws:
    """Sampled queries of one workflow (all sources, in proportion to their rates)."""

    workflow: Workflow
    roles: dict[str, RoleDraws]

    def e2e(self, slowdown: float = 1.0) -> np.ndarray:
        """End-to-end latency per sampled query with every call's compute `slowdown` times longer."""
        graph = {r.name: set(r.depends_on) for r in self.workflow.roles}
        finish: dict[str, np.ndarray] = {}
        for name in TopologicalSorter(graph).static_order():
            d = self.roles[name]
            own = d.compute * slowdown + d.network
            finish[name] = own + (np.maximum.reduce([finish[p] for p in graph[name]]) if graph[name] else 0.0)
        return np.maximum.reduce(list(finish.values()))


def draw_workflow(w: Workflow, routes_of: Callable[[str, Role], Routes], *, samples: int = SAMPLES, seed: int = SEED) -> WorkflowDraws:
    """Seeded Monte Carlo of `samples` queries of `w`; `routes_of(source, role)` gives where calls go."""
    total = math.fsum(a.rate_per_s for a in w.arrivals)
    parts: dict[str, list[RoleDraws]] = {r.name: [] for r in w.roles}
    for a in sorted(w.arrivals, key=lambda a: a.source):
        n = max(1, int(round(samples * a.rate_per_s / total)))
        for r in w.roles:
            rng = _stream(seed, f"{w.name}/{a.source}/{r.name}")
            routes = routes_of(a.source, r)
            if not routes:
                parts[r.name].append(RoleDraws(np.full(n, math.inf), np.zeros(n)))
            else:
                parts[r.name].append(_role_draws(r, routes, n, rng))
    roles = {k: RoleDraws(np.concatenate([p.compute for p in v]), np.concatenate([p.network for p in v])) for k, v in parts.items()}
    return WorkflowDraws(w, roles)


def percentile_ms(e2e: np.ndarray, pct: float) -> float:
    """The pct-th percentile of the sampled latencies ('higher' method: a sample, never interpolated)."""
    return float(np.percentile(e2e, pct, method="higher"))


def attainment(e2e: np.ndarray, target_ms: float) -> float:
    """Fraction of sampled queries within the target."""
    return float(np.count_nonzero(e2e <= target_ms)) / max(int(e2e.size), 1)


def slowdown_for(draws: WorkflowDraws, target_ms: float, pct: float) -> float:
    """The largest compute slowdown sigma with pXX(sigma x compute + network) <= target (0 when even
    the network alone misses; capped at 1e6)."""
    if percentile_ms(draws.e2e(0.0), pct) > target_ms:
        return 0.0
    lo, hi = 0.0, 1.0
    while percentile_ms(draws.e2e(hi), pct) <= target_ms:
        lo, hi = hi, hi * 2.0
        if hi > 1e6:
            return 1e6
    for _ in range(40):
        mid = (lo + hi) / 2.0
        if percentile_ms(draws.e2e(mid), pct) <= target_ms:
            lo = mid
        else:
            hi = mid
    return lo


def nearest_one_way_ms(inputs: Inputs, source: str) -> float:
    """One-way latency from `source` to the nearest cluster it has a direct link to (0 if none)."""
    clusters = {c.name for c in inputs.inventory.clusters}
    best = math.inf
    for lk in inputs.inventory.links:
        for s, c in ((lk.a, lk.b), (lk.b, lk.a)):
            if s == source and c in clusters:
                best = min(best, float(lk.latency_ms))
    return 0.0 if not math.isfinite(best) else best


def idle_draws(w: Workflow, inputs: Inputs, gpu: GpuType, tp_of: Callable[[str], int], *, samples: int = SAMPLES, seed: int = SEED) -> WorkflowDraws:
    """Every call of `w` alone on the reference GPU, plus the round trip to the nearest cluster."""
    speeds: dict[str, CallSpeed | None] = {}

    def routes_of(source: str, role: Role) -> Routes:
        if role.model not in speeds:
            m = inputs.models[role.model]
            mix = RequestMix(role.input_tokens.mean_tokens(), role.output_tokens.mean_tokens(), 1.0)
            speeds[role.model] = call_speed(m, gpu, tp_of(role.model), mix, 0.0)
        sp = speeds[role.model]
        rtt = 2.0 * nearest_one_way_ms(inputs, source)
        return [(1.0, None if sp is None else CallSpeed(**{**sp.__dict__, "rtt_ms": rtt}))]

    return draw_workflow(w, routes_of, samples=samples, seed=seed)


def slowdown_budget(w: Workflow, inputs: Inputs, gpu: GpuType, tp_of: Callable[[str], int]) -> float:
    """sigma*: how many times slower than idle every call of `w` may run with its pXX on target."""
    return slowdown_for(idle_draws(w, inputs, gpu, tp_of), float(w.slo.latency_ms), float(w.slo.percentile))
