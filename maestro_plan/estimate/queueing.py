"""Queueing pieces of one continuous-batching replica under Poisson arrivals, for the percentile
latency model (maestro_plan.estimate.latency, whose docstring says how they combine and why):
the other calls' prompt work a call waits on (`interference`, `busy_period`), the step in flight
when it arrives (`in_flight`), and the wait for a sequence slot (`erlang_b`, `erlang_c`,
`slot_waits`). All draws come from the caller's seeded generator."""

from __future__ import annotations

import heapq

import numpy as np

WARMUP = 2_000
"""Queue arrivals dropped before the slot waits are read (the simulated queue starts empty)."""
BRANCH_ROUNDS = 6
"""Generations of the interference branching drawn (each is rho = rate x M < 1 times the one before
on average: after 6 at rho = 0.5 what is left is 1.6 % of the first's work, taken at its mean)."""


def interference(span_ms: np.ndarray, rate_per_ms: float, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prefill work of the other calls admitted while each call decodes: K ~ Poisson(rate x span)
    prompts, each a draw from `pool` (consecutive entries from a random start, wrapping)."""
    k = rng.poisson(rate_per_ms * span_ms)
    n = pool.size
    cum = np.concatenate(([0.0], np.cumsum(np.concatenate((pool, pool)))))
    start = rng.integers(0, n, size=k.shape)
    rest = k % n
    return (k // n) * cum[n] + cum[start + rest] - cum[start]


def busy_period(span_ms: np.ndarray, rate_per_ms: float, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prompt work added to a decode that would take `span_ms` alone: the prompts arriving in the
    span, then those arriving in the time they added, and so on (a branching process whose mean is
    span x rate x M / (1 - rate x M), the stretch, but whose spread grows with bursts of arrivals).
    BRANCH_ROUNDS generations are drawn; what the later ones would add is taken at its mean,
    w x rho / (1 - rho) for the last generation's work w (rho = rate x mean M < 1)."""
    total = np.zeros(span_ms.shape)
    idx = np.flatnonzero(span_ms > 0)
    w = span_ms.reshape(-1)[idx]
    flat = total.reshape(-1)
    for _ in range(BRANCH_ROUNDS):
        w = interference(w, rate_per_ms, pool, rng)
        flat[idx] += w
        live = w > 0  # only the draws still growing take another generation
        if not live.any():
            break
        idx, w = idx[live], w[live]
    else:
        rho = min(rate_per_ms * float(pool.mean()), 0.99)
        flat[idx] += w * rho / (1.0 - rho)
    return total


def in_flight(pool: np.ndarray, busy: float, step_ms: float, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The step in flight when a call arrives, and what is left of it (the call joins at the next
    step): with
    probability `busy` (the share of time spent prefilling) a step carrying a prompt chunk, its
    prompt drawn in proportion to its length (an arrival lands in long steps more often), else a
    decode step; a uniform fraction of it remains. A prompt step also carries the prompts that arrived
    during the step before it: its length is stretched by 1 / (1 - busy), as decode steps are."""
    w = np.cumsum(pool)
    biased = pool[np.minimum(np.searchsorted(w, rng.random(shape) * w[-1]), pool.size - 1)]
    length = np.where(rng.random(shape) < min(busy, 1.0), (biased + step_ms) / (1.0 - min(busy, 0.95)), step_ms)
    return rng.random(shape) * length, length


def erlang_b(servers: int, offered: float) -> float:
    """Probability that all `servers` are busy in M/G/S/S with offered load a (Erlang B recursion)."""
    if offered <= 0:
        return 1.0 if servers == 0 else 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/S with S servers and offered load a (Erlang C),
    by the Erlang B recursion (stable for hundreds of servers); 1 when a >= S."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = erlang_b(servers, offered)
    return servers * b / (servers - offered * (1.0 - b))


def slot_waits(service_ms: np.ndarray, rate_per_ms: float, slots: int, rng: np.random.Generator) -> np.ndarray:
    """Waits for a sequence slot of an FCFS queue with `slots` servers, Poisson arrivals and the
    given service times (Kiefer-Wolfowitz: each call starts when the earliest slot frees); the
    first WARMUP calls are dropped (the queue starts empty)."""
    gaps = rng.exponential(1.0 / rate_per_ms, service_ms.size)
    if slots == 1:  # Lindley's recursion in closed form: W_n = C_n - min(0, min_k<=n C_k)
        c = np.concatenate(([0.0], np.cumsum(service_ms[:-1] - gaps[1:])))
        w = c - np.minimum(np.minimum.accumulate(c), 0.0)
    else:
        free = [0.0] * slots
        w = np.empty(service_ms.size)
        for i, (a, s) in enumerate(zip(np.cumsum(gaps).tolist(), service_ms.tolist(), strict=True)):
            f = heapq.heappop(free)
            start = a if a > f else f
            w[i] = start - a
            heapq.heappush(free, start + s)
    return w[min(WARMUP, w.size // 10) :]
