"""Queue disciplines of the engines' waiting queues (smaller key = served first).

- fifo: arrival time at the engine (vLLM's default first-come-first-served policy);
- edf: the query's deadline, arrival + the workflow's end-to-end SLO (the paper's baseline);
- maestro: interactive strictly before batch; within a class, shortest predicted remaining
  workflow time first, where remaining = the current call's predicted time (prefill of its prompt
  + the role's mean output at batch 1, on that engine, from the estimator) + the median time that
  past runs still needed after a call in the same state (workflow, role, position in the DAG, loop
  count). Before a state has history the prior is the static prediction: the rest of the role's
  calls and the longest chain of roles below it, at the estimator's predicted call times
  (compute_demand's role budgets). Keys are fixed when a call is queued and nothing running is
  ever interrupted for a better key: preemption only between calls. (KV-pressure preemption by
  recompute still happens, as in vLLM, under every discipline.)

The median uses the last WINDOW observations of a state and is refreshed every REFRESH
observations (after the first 32, every one), which keeps it cheap and deterministic.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal, Protocol

import numpy as np

from maestro_plan.simulate.traffic import WorkflowSpec

Discipline = Literal["fifo", "edf", "maestro"]

CLASS_GAP_MS = 1e12
"""Added to batch keys so every interactive key is smaller (no call waits 1e12 ms = 31 years)."""

MAX_LOOP = 16
"""Loop counts above this share a state (long loops behave alike)."""

WINDOW = 256
REFRESH = 16


class MaestroPredictor:
    """Median remaining workflow time after a call, per state, learned online."""

    def __init__(self, workflows: list[WorkflowSpec], predicted_call_ms: dict[tuple[str, str], float]) -> None:
        self.offset: list[list[int]] = []
        self.prior: list[float] = []
        n = 0
        for wf in workflows:
            offs = []
            call = {r.index: predicted_call_ms.get((wf.name, r.name), 0.0) for r in wf.roles}
            below: dict[int, float] = {}
            for r in sorted(wf.roles, key=lambda r: -r.depth):  # deepest first: children before parents
                below[r.index] = max((wf.roles[c].calls_per_query * call[c] + below[c] for c in r.children), default=0.0)
            for r in wf.roles:
                offs.append(n)
                for k in range(MAX_LOOP + 1):
                    rest = max(r.calls_per_query - k - 1.0, 0.0) * call[r.index]
                    self.prior.append(rest + below[r.index])
                n += MAX_LOOP + 1
            self.offset.append(offs)
        self.median = list(self.prior)
        self.samples: list[deque[float]] = [deque(maxlen=WINDOW) for _ in range(n)]
        self.pending = [0] * n

    def state(self, wf: int, role: int, loop: int) -> int:
        return self.offset[wf][role] + (loop if loop < MAX_LOOP else MAX_LOOP)

    def observe(self, state: int, remaining_ms: float) -> None:
        s = self.samples[state]
        s.append(remaining_ms)
        self.pending[state] += 1
        if len(s) <= 32 or self.pending[state] >= REFRESH:
            self.median[state] = float(np.median(np.fromiter(s, dtype=float, count=len(s))))
            self.pending[state] = 0

    def remaining_after(self, state: int) -> float:
        return self.median[state]


def maestro_key(interactive: bool, call_ms: float, after_ms: float) -> float:
    return (0.0 if interactive else CLASS_GAP_MS) + call_ms + after_ms


class QueueRule(Protocol):
    """A discipline: the key a call is queued with, and whether KV-pressure preemption picks the
    lowest-priority victim (vLLM's priority policy) rather than the newest (FCFS)."""

    priority_victims: bool

    def key(self, sim: Any, c: Any, t: float) -> float: ...


class Fifo:
    priority_victims = False

    def key(self, sim: Any, c: Any, t: float) -> float:
        return t + c.lat  # arrival at the engine


class Edf:
    priority_victims = True

    def key(self, sim: Any, c: Any, t: float) -> float:
        return c.query.deadline


class Maestro:
    priority_victims = True

    def key(self, sim: Any, c: Any, t: float) -> float:
        pred = sim.predictor
        q = c.query
        c.state_id = pred.state(q.wf.index, c.role, c.loop)
        call_ms = c.engine.perf.call_ms(c.prompt, q.wf.roles[c.role].mean_output)
        return maestro_key(sim.class_first and q.wf.priority == "interactive", call_ms, pred.remaining_after(c.state_id))


RULES: dict[str, QueueRule] = {"fifo": Fifo(), "edf": Edf(), "maestro": Maestro()}
"""The registry of disciplines (SimConfig.discipline names one)."""
DISCIPLINES: tuple[str, ...] = tuple(RULES)
