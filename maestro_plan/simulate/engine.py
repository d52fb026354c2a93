"""The discrete-event loop: queries arrive, walk their workflow DAG, and every role call is routed,
crosses the network, queues and is served by a simulated engine (replica.py).

Events live in one heapq of (time ms, sequence number, kind, object, epoch); query arrivals come
from a presorted array merged into the loop, so the heap holds only what is in flight. Stale
engine events (an iteration cut short by an admissible arrival) are skipped by epoch.

A query: its roots start at arrival; a role with n calls issues them one after another (call i+1
when the response of call i is back at the orchestrator, which sits with the query's source); a
role starts when every role it depends on is done; the query is done when every role is. Each
call goes one way over the route's network_latency_ms to the engine and one way back.

A call is dropped (and its query fails: no further calls, counted as an SLO miss) when the plan
has no route for its (source, model), when its prompt is at least the engine's max_model_len (vLLM
rejects it), or when its prompt does not fit the engine's KV pool at all. Outputs are capped at
max_model_len - prompt, as vLLM stops there.

Accounting: every call issued is served (its response reached the orchestrator), dropped, or still
in flight when the simulation stops (arrivals stop at `duration_s`; the run then drains for at
most `drain_s`). `conservation` in the report checks issued == served + dropped + in flight, the
last counted from the engines' queues and the events still pending, not by subtraction.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from maestro_plan.errors import InputError
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan
from maestro_plan.simulate.calls import Call, Query
from maestro_plan.simulate.disciplines import DISCIPLINES, RULES, MaestroPredictor
from maestro_plan.simulate.events import Event
from maestro_plan.simulate.fleet import Fleet, build_fleet
from maestro_plan.simulate.replica import BLOCK, Engine, Perf
from maestro_plan.simulate.traffic import Arrivals, WorkflowSpec, build_workflows, poisson_arrivals, trace_arrivals

ITER, LOADED, IDLE, ARRIVE, RESP = Event.ITER, Event.LOADED, Event.IDLE, Event.ARRIVE, Event.RESP
INF = math.inf


@dataclass(frozen=True)
class SimConfig:
    """How to run a simulation. Times in seconds."""

    duration_s: float | None = 600.0  # None: the whole trace (with `trace`)
    seed: int = 0
    discipline: Literal["fifo", "edf", "maestro"] = "maestro"
    rate_scale: float = 1.0
    warmup_s: float = 0.0
    drain_s: float | None = None  # default: twice the largest workflow SLO
    standby_idle_s: float = 60.0
    trace: str | None = None
    on_bad_row: Literal["skip", "stop"] = "stop"
    class_priority: bool = True  # maestro only: interactive strictly first (False: one class, for ablations)

    def check(self) -> None:
        if self.duration_s is None and self.trace:
            return self._check_rest(math.inf)
        if self.duration_s is None or not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise InputError(f"duration must be a positive number of seconds, got {self.duration_s}.", field="--duration", hint="pass e.g. --duration 600.")
        if self.discipline not in DISCIPLINES:
            raise InputError(f"unknown discipline {self.discipline!r}.", field="--discipline", hint=f"use one of {', '.join(DISCIPLINES)}.")
        self._check_rest(self.duration_s)

    def _check_rest(self, duration: float) -> None:
        if not (self.rate_scale > 0 and math.isfinite(self.rate_scale)):
            raise InputError(f"rate scale must be positive, got {self.rate_scale}.", field="--rate-scale")
        if not (0 <= self.warmup_s < duration):
            raise InputError(f"warm-up {self.warmup_s} s must be >= 0 and shorter than the duration {duration} s.", field="--warmup")
        if self.drain_s is not None and not self.drain_s >= 0:
            raise InputError(f"drain must be >= 0 seconds, got {self.drain_s}.", field="--drain")
        if not self.standby_idle_s > 0:
            raise InputError(f"standby idle time must be positive, got {self.standby_idle_s}.", field="standby_idle_s")
        if self.on_bad_row not in ("skip", "stop"):
            raise InputError(f"--on-bad-row must be skip or stop, got {self.on_bad_row!r}.", field="--on-bad-row")


@dataclass
class WorkflowStats:
    arrived: int = 0
    completed: int = 0
    failed: int = 0
    e2e_ms: list[float] = field(default_factory=list)


class Simulator:
    def __init__(self, fleet: Fleet, workflows: list[WorkflowSpec], arrivals: Arrivals, config: SimConfig, predicted_call_ms: dict[tuple[str, str], float] | None = None) -> None:
        self.fleet = fleet
        self.workflows = workflows
        self.arrivals = arrivals
        self.config = config
        self.heap: list[tuple] = []
        self.seq = 0
        self.now = 0.0
        self.w0 = config.warmup_s * 1000.0
        assert config.duration_s is not None
        self.w1 = config.duration_s * 1000.0
        drain = config.drain_s if config.drain_s is not None else 2.0 * max((w.slo_ms for w in workflows), default=0.0) / 1000.0
        self.t_end = self.w1 + drain * 1000.0
        self.standby_idle_ms = config.standby_idle_s * 1000.0
        self.discipline = config.discipline
        self.rule = RULES[config.discipline]
        self.class_first = config.class_priority
        perfs: dict[tuple, Perf] = {}
        self.engines: list[Engine] = []
        for i, e in enumerate(fleet.engines):
            pk = (e.model.id, e.gpu.id, e.tp, round(e.compute_share, 6), e.max_model_len)
            perf = perfs.get(pk)
            if perf is None:
                perf = perfs[pk] = Perf(e.model, e.gpu, e.tp, e.compute_share, e.max_model_len)
            self.engines.append(Engine(i, e, perf, self, priority_victims=self.rule.priority_victims))
        self.predictor = MaestroPredictor(workflows, predicted_call_ms or {}) if config.discipline == "maestro" else None
        self.stats = {w.name: WorkflowStats() for w in workflows}
        self.calls_issued = 0
        self.calls_served = 0
        self.drops: Counter[str] = Counter()
        self.call_ids = 0
        self.events = 0
        self.wall_s = 0.0
        self.queries_started = 0
        self.queries_done = 0

    # ------------------------------------------------------------------ events
    def push(self, t: float, kind: int, obj: object, epoch: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, obj, epoch))

    def run(self) -> None:
        t_wall = time.perf_counter()
        heap = self.heap
        pop = heapq.heappop
        arr_t = self.arrivals.t_ms.tolist()
        arr_w = self.arrivals.workflow.tolist()
        arr_s = self.arrivals.source
        n = len(arr_t)
        i = 0
        end = self.t_end
        events = 0
        wfs = self.workflows
        while True:
            nt = arr_t[i] if i < n else INF
            if heap and heap[0][0] <= nt:
                t, _, kind, obj, ep = pop(heap)
                if t > end:
                    heapq.heappush(heap, (t, 0, kind, obj, ep))
                    break
                self.now = t
                events += 1
                if kind == ITER:
                    if ep == obj.epoch:
                        obj.iter_end(t)
                elif kind == ARRIVE:
                    obj.engine.enqueue(obj, t)
                elif kind == RESP:
                    self._response(obj, t)
                elif kind == LOADED:
                    obj.loaded(t)
                elif kind == IDLE:
                    obj.idle_check(t, ep)
            elif i < n:
                if nt > end:
                    break
                self.now = nt
                events += 1
                self._start_query(i, wfs[arr_w[i]], arr_s[i], nt)
                i += 1
            else:
                break
        for e in self.engines:
            e.flush(self.t_end)
        self.events = events
        self.wall_s = time.perf_counter() - t_wall

    # ------------------------------------------------------------------ queries
    def _start_query(self, qid: int, wf: WorkflowSpec, source: str, t: float) -> None:
        measured = self.w0 <= t < self.w1
        q = Query(qid, wf, source, t, measured)
        self.queries_started += 1
        if measured:
            self.stats[wf.name].arrived += 1
        for r in wf.roots:
            if q.failed:
                break
            self._start_role(q, r, t)

    def _start_role(self, q: Query, r: int, t: float) -> None:
        n = q.wf.n_calls(q.wf.roles[r])
        if n <= 0:
            self._role_done(q, r, t)
            return
        q.calls_left[r] = n
        self._issue(q, r, 0, t)

    def _role_done(self, q: Query, r: int, t: float) -> None:
        q.roles_left -= 1
        wf = q.wf
        for c in wf.roles[r].children:
            q.pending[c] -= 1
            if q.pending[c] == 0 and not q.failed:
                self._start_role(q, c, t)
        if q.roles_left == 0 and not q.failed and not q.done:
            q.done = True
            self.queries_done += 1
            if q.measured:
                st = self.stats[wf.name]
                st.completed += 1
                st.e2e_ms.append(t - q.t0)
            if self.predictor is not None:
                obs = self.predictor.observe
                for s, tr in q.log:
                    obs(s, t - tr)
            q.log = []

    def _fail(self, q: Query, reason: str) -> None:
        self.drops[reason] += 1
        if not q.failed:
            q.failed = True
            if q.measured:
                self.stats[q.wf.name].failed += 1

    def _issue(self, q: Query, r: int, loop: int, t: float) -> None:
        role = q.wf.roles[r]
        prompt = role.inputs.take()
        out = role.outputs.take()
        u = role.route_u.take()
        self.calls_issued += 1
        rc = self.fleet.routes.get((q.source, role.model, f"{q.wf.name}/{role.name}")) or self.fleet.routes.get((q.source, role.model, ""))
        if rc is None:
            self._fail(q, "no_route")
            return
        j = rc.pick(u)
        if j < 0:
            self._fail(q, "shed_by_plan")
            return
        eng = self.engines[rc.engines[j]]
        if prompt >= eng.max_len:
            self._fail(q, "prompt_over_max_model_len")
            return
        if prompt + BLOCK > eng.kv_cap:
            self._fail(q, "prompt_over_kv_pool")
            return
        if prompt + out > eng.max_len:
            out = eng.max_len - prompt
        self.call_ids += 1
        lat = rc.latency_ms[j]
        c = Call(self.call_ids, q, r, loop, eng, lat, prompt, out, t)
        c.key = self.rule.key(self, c, t)
        self.push(t + lat, ARRIVE, c, 0)

    def call_done(self, c: Call, t: float) -> None:
        c.t_done = t
        e = c.engine
        if t >= self.w0 and t < self.w1:
            e.wait_sum += c.t_admit - c.t_arrive
            e.lat_sum += t - c.t_arrive
        self.push(t + c.lat, RESP, c, 0)

    def _response(self, c: Call, t: float) -> None:
        self.calls_served += 1
        q = c.query
        if q.failed:
            return
        if self.predictor is not None:
            q.log.append((c.state_id, t))
        r = c.role
        q.calls_left[r] -= 1
        if q.calls_left[r] > 0:
            self._issue(q, r, c.loop + 1, t)
        else:
            self._role_done(q, r, t)

    # ------------------------------------------------------------------ accounting
    def in_flight(self) -> int:
        """Calls still queued, running, or on the wire (counted, not derived)."""
        n = sum(e.in_flight() for e in self.engines)
        n += sum(1 for ev in self.heap if ev[2] in (ARRIVE, RESP))
        return n


def predicted_calls(inputs: Inputs) -> dict[tuple[str, str], float]:
    """(workflow, role) -> the estimator's predicted call time (compute_demand's role budgets)."""
    from maestro_plan.estimate import compute_demand

    try:
        dm = compute_demand(inputs)
    except Exception:  # the prior is only a starting point; history takes over
        return {}
    return {(b.workflow, b.role): float(b.predicted_call_ms) for b in dm.role_budgets}


def make_arrivals(workflows: list[WorkflowSpec], config: SimConfig) -> tuple[Arrivals, SimConfig]:
    """Arrivals, and the config with the duration resolved (a whole trace: its span + 1 s)."""
    if config.trace:
        arr = trace_arrivals(Path(config.trace), workflows, config.seed, on_bad_row=config.on_bad_row, duration_s=config.duration_s)
        if config.duration_s is None:
            config = dataclasses.replace(config, duration_s=float(arr.t_ms[-1]) / 1000.0 + 1.0)
            config.check()
        return arr, config
    assert config.duration_s is not None
    return poisson_arrivals(workflows, config.duration_s, config.seed, config.rate_scale), config


def run_simulation(plan: Plan, inputs: Inputs, config: SimConfig = SimConfig(), *, plan_file: str | Path | None = None, fleet: Fleet | None = None) -> Simulator:
    """Build the fleet and traffic and run; returns the finished Simulator (see report.py)."""
    config.check()
    fleet = fleet if fleet is not None else build_fleet(plan, inputs, plan_file=plan_file)
    workflows = build_workflows(inputs, config.seed)
    arrivals, config = make_arrivals(workflows, config)
    sim = Simulator(fleet, workflows, arrivals, config, predicted_calls(inputs) if config.discipline == "maestro" else None)
    sim.run()
    return sim
