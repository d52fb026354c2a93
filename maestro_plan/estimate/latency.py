"""End-to-end latency of a workflow at its SLO's percentile (not its mean), and the slowdown the
per-call budgets may allow so that the percentile meets the target.

A query of workflow w walks its role DAG; a role with calls_per_query c makes floor(c) calls plus
one more with probability frac(c), in sequence (loops unrolled); a role starts when all the roles
it depends on have finished, so the query's latency is the longest path of the DAG, each role
weighing the sum of its calls. One call of I prompt tokens and O output tokens on a replica at
its planned load takes

    rtt + slot wait + in-flight rest + prompt + (O - 1) x step + the others' prompt work

It follows what one engine of the simulator does (maestro_plan.simulate.replica: vLLM V1's
continuous batching with chunked prefill), part by part:
- rtt: twice the one-way network latency of its route (source to cluster), per call;
- prompt: the marginal prefill of its own tokens, prefill(I) - prefill(1) (perf.prefill_ms_f,
  tabulated on a geometric grid and interpolated), plus ceil(I / room) steps that its chunks ride
  on; the last of them yields the first output token, then O - 1 decode steps follow;
- step: the decode step (perf.decode_step_ms_f) at the concurrency the call sees, 1 + rate x mean
  call time (itself and the others of an M/G/infinity population; at most the slots), at the
  context of a decoding sequence weighted by its decode time, E[O (I + O/2)] / E[O]: a fixed
  point over FIXED_POINT_ROUNDS rounds from the capacity model's load point (capacity.load_point,
  which also gives room, the prompt tokens a step takes beside the decoding sequences);
- in-flight rest: a call joins at the next step; the step in flight when it arrives is a prompt
  step with probability rate x E[M] (M = prefill(I') - prefill(1) of another call's prompt I'),
  drawn in proportion to its length, else a decode step; a uniform fraction of it remains;
- the others' prompt work: chunked prefill puts the other calls' prompts into the steps this call
  waits on. Those that arrive during the step in flight join its prompt step (Poisson count over
  that step, each an M drawn from the replica's own length mix); those that arrive during its
  prompt step or its decode are prefilled in its decode steps, which the work lengthens, which
  lets more arrive: a branching process (`queueing.busy_period`), whose mean is the capacity model's
  stretch 1 / (1 - rate x E[M]) and whose spread is what puts the tail above the mean's. The rate
  counted is the arrivals admitted beside it: all of them, except when the other S - 1 slots are
  busy (Erlang B, S - 1 servers), and none with a single slot;
- slot wait: queueing for a sequence slot (S = --max-num-seqs, and no more sequences of the mean
  length than the KV pool holds). Continuous batching admits a call at the next step while fewer
  than S run, so a replica is an S-server FCFS queue whose service time is a call's whole time
  above. Instead of an M/M/S formula (Erlang C with Allen-Cunneen's correction over-predicted a
  2-slot replica at 75 % load by up to 40 %), the wait is read from a seeded simulation of that
  M/G/S queue (`queueing.slot_waits`: Kiefer-Wolfowitz's recursion, Lindley's in closed form for one
  slot) fed with the replica's own sampled call times; it is run only where Erlang C at the
  offered load exceeds WAIT_NEGLIGIBLE (a few slots near saturation), and its quantiles are kept;
- standby routes (a model woken from host DRAM) pay the plan's cold start with the probability that
  the engine was unloaded, exp(-60 s x rate) (the simulator unloads after 60 s idle), and serve at
  batch 1 on their slot.
Without the roles a replica serves (budgets, diagnosis, standby), the call is the capacity model's:
prefill(I) + ceil(I / room) steps + O steps stretched by its mean stretch (the budgets scale that
call time, so the two must agree).

Measured against the simulator (benchmarks/slo_model.py over generated workflows, results in
benchmarks/results/slo_model.md) the model's pXX is within 10 % of the simulated one in steady
state (the simulation measured after a warm-up: an empty fleet serves its first queries faster).

Assumptions (stated, not hidden): lengths are drawn as the simulator draws them
(estimate.lengths.LengthModel: lognormal through the workload's mean and highest percentile); a
call's input and output are independent; the mean concurrency, not its fluctuation, sets the step
time (the step is nearly flat in the batch at these sizes); the KV pool blocks no admission beyond
the slot count it implies (no preemption); calls of one query see independent replicas (routing draws per call); prefix caching is not
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
from dataclasses import dataclass, replace
from graphlib import TopologicalSorter

import numpy as np

from maestro_plan.estimate.capacity import RequestMix, load_point
from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.estimate.lengths import LengthModel
from maestro_plan.estimate.perf import decode_step_ms_f, prefill_ms_f
from maestro_plan.estimate.queueing import busy_period, erlang_b, erlang_c, slot_waits
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec, Role, Workflow

SAMPLES = 20_000
"""Queries sampled per workflow: the p99 of 20,000 draws has a standard error near 0.1 of a percentile."""
SEED = 14
"""Seed of the model's Monte Carlo (fixed: the figures are a deterministic function of the inputs)."""
PREFILL_GRID = 48
MIX_SAMPLES = 20_000
"""Calls drawn per replica for its service times (and slot-queue arrivals)."""
POOL = 500
"""Other calls' prompts sampled for the interference draws."""
MEAN_SAMPLES = 4_000
"""Calls the fixed point's mean call time is taken over (its standard error is about 1 %)."""
FIXED_POINT_ROUNDS = 3
"""Rounds of step time -> call time -> concurrency (the load point's mean latency is the start)."""
WAIT_QUANTILES = 1_000
"""Quantiles of the slot wait kept per replica (a p99.9 resolution)."""
WAIT_NEGLIGIBLE = 1e-4
"""Erlang C below this: the chance of waiting for a slot is left out (below a p99.99's resolution)."""
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
    wait_q: tuple[float, ...] = ()  # quantiles of the wait for a sequence slot, at (i + 1/2) / len
    others_per_ms: float = 0.0  # rate of other calls whose prompts are prefilled while this one decodes
    others_ms: tuple[float, ...] = ()  # a sample of those prompts' marginal prefill times
    prompt_wait_q: tuple[float, ...] = (0.0,)  # quantiles of the wait for the prompts ahead, at (i + 1/2) / len
    cold_prob: float = 0.0
    cold_ms: float = 0.0

    def own_ms(self, I: np.ndarray, O: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The call's own work: its prompt (the marginal prefill of its tokens plus the steps its chunks
        ride on; the last of them yields the first output token) and its O - 1 decode steps. Without
        the others' prompts (no roles: budgets, diagnosis, standby) the capacity model's own form,
        prefill(I) + chunk steps and O steps, which the solver's budgets scale."""
        pre = np.interp(I, self.prefill_x, self.prefill_y) + np.ceil(I / self.room) * self.step_ms
        if not self.others_ms:
            return pre, O * self.step_ms
        return pre - self.prefill_y[0], np.maximum(O - 1.0, 0.0) * self.step_ms

    def compute_ms(self, I: np.ndarray, O: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pre, dec = self.own_ms(I, O)
        u = rng.random((3,) + I.shape)
        if self.others_ms:
            # the prompts ahead of it (chunked prefill takes them in arrival order), then its own;
            # those that arrive after it are prefilled in its decode steps
            q = np.asarray(self.prompt_wait_q)
            ahead = q[np.minimum((u[1] * q.size).astype(np.int64), q.size - 1)]
            t = ahead + pre + dec + busy_period(ahead + pre + dec, self.others_per_ms, np.asarray(self.others_ms), rng)
        else:
            t = pre + dec * self.stretch
        if self.wait_q:
            q = np.asarray(self.wait_q)
            t = t + q[np.minimum((u[0] * q.size).astype(np.int64), q.size - 1)]
        if self.cold_prob > 0:
            t = t + np.where(u[2] < self.cold_prob, self.cold_ms, 0.0)
        return t

    def compute_ms_mean(self, mean_in: float, mean_out: float) -> float:
        """One call of the mean lengths, without waits (for ranking GPU types)."""
        pre, dec = self.own_ms(np.array([mean_in]), np.array([mean_out]))
        return float(pre[0] + dec[0] * self.stretch)


def _mix_draws(roles: list[tuple[Role, float]], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Input and output lengths of `n` calls of `roles`, in proportion to their call rates."""
    total = math.fsum(w for _, w in roles)
    I, O = [], []
    for role, w in roles:
        k = max(1, int(round(n * w / total)))
        rng = _stream(seed, f"mix/{role.name}")
        I.append(LengthModel.of(role.input_tokens).sample(rng, k).astype(float))
        O.append(LengthModel.of(role.output_tokens).sample(rng, k).astype(float))
    return np.concatenate(I), np.concatenate(O)


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
    roles: list[tuple[Role, float]] | None = None,
    engine: EngineDefaults = VLLM,
) -> CallSpeed | None:
    """One replica's per-call speed at `rps` (None: the replica cannot sustain that rate). With the
    `roles` it serves (weighted by call rate) and its `slots`, the interference and the slot waits
    come from their length distributions (see the module docstring); without, the mean stretch."""
    pt = load_point(model, gpu, tp, mix, rps, compute_share=compute_share, engine=engine)
    if pt is None:
        return None
    top = float(max(model.context_len, 2))
    xs = tuple(float(v) for v in np.unique(np.rint(np.geomspace(1.0, top, PREFILL_GRID))))
    ys = tuple(prefill_ms_f(model, gpu, tp, x, compute_share=compute_share) for x in xs)
    base = CallSpeed(xs, ys, pt.step_ms, pt.stretch, pt.room, rtt_ms)
    if rps <= 0 or not roles or math.fsum(w for _, w in roles) <= 0:
        return base

    def step_at(b: float, ctx: float) -> float:
        return decode_step_ms_f(model, gpu, tp, b, ctx, compute_share=compute_share)

    return _loaded(base, rps / 1000.0, pt.latency_ms, roles, slots, step_at)


def _loaded(
    base: CallSpeed, lam: float, mean_ms: float, roles: list[tuple[Role, float]], slots: int | None, step_at: Callable[[float, float], float]
) -> CallSpeed | None:
    """`base` at arrival rate `lam` (per ms) with the length distributions of `roles`: the decode
    step at the concurrency a call sees, the interference of the others' prompts and, where slots
    run short, the slot waits (see the module docstring)."""
    I, O = _mix_draws(roles, MIX_SAMPLES, SEED)
    pool = np.interp(I[:: max(1, I.size // POOL)], base.prefill_x, base.prefill_y) - base.prefill_y[0]
    c = int(slots) if slots else 0
    # an arrival is admitted (and prefilled beside a running call) unless the other c - 1 slots are busy
    admit = lam if c == 0 else lam * (1.0 - erlang_b(c - 1, lam * mean_ms))
    ctx = float(np.sum(O * (I + O / 2.0)) / np.sum(O))  # context of a decoding sequence, weighted by its decode time
    if admit * float(pool.mean()) >= 1.0:
        return None  # the prompts alone fill the GPU
    stretch = 1.0 / (1.0 - admit * float(pool.mean()))
    sp = replace(base, stretch=stretch, others_per_ms=admit, others_ms=tuple(float(v) for v in pool))
    # the prompt queue: M/G/1 in arrival order, each prompt its marginal prefill (the prompts of one
    # step share its decode pass, which the call's own prompt time counts once)
    work = np.interp(I, base.prefill_x, base.prefill_y) - base.prefill_y[0]
    if admit * float(work.mean()) >= 1.0:
        return None
    rng = _stream(SEED, "prompts")
    ahead = slot_waits(rng.permutation(work), admit, 1, rng) if admit > 0 else np.zeros(1)
    sp = replace(sp, prompt_wait_q=_quantiles(ahead))
    busy = mean_ms
    stride = max(1, I.size // MEAN_SAMPLES)  # the draws are grouped by role: every stride-th keeps the mix
    for _ in range(FIXED_POINT_ROUNDS):  # the mean only: on MEAN_SAMPLES of the calls
        seen = lam * busy + 1.0 if c == 0 else min(lam * busy + 1.0, float(c))
        sp = replace(sp, step_ms=step_at(seen, ctx))
        busy = float(sp.compute_ms(I[::stride], O[::stride], _stream(SEED, "service")).mean())
    a = lam * busy
    if c and a >= c:
        return None
    if not c or erlang_c(c, a) < WAIT_NEGLIGIBLE:
        return sp
    rng = _stream(SEED, "slots")
    w = slot_waits(rng.permutation(sp.compute_ms(I, O, _stream(SEED, "service"))), lam, c, rng)
    return replace(sp, wait_q=_quantiles(w))


def _quantiles(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.quantile(x, (np.arange(WAIT_QUANTILES) + 0.5) / WAIT_QUANTILES))


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
