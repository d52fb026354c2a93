"""A query walking its workflow and one LLM call of it, as the event loop (engine.py) and the
engines (replica.py) both see them."""

from __future__ import annotations

from typing import Any

from maestro_plan.simulate.traffic import WorkflowSpec


class Query:
    __slots__ = ("id", "wf", "source", "t0", "deadline", "pending", "calls_left", "roles_left", "failed", "done", "log", "measured")

    def __init__(self, qid: int, wf: WorkflowSpec, source: str, t0: float, measured: bool) -> None:
        self.id = qid
        self.wf = wf
        self.source = source
        self.t0 = t0
        self.deadline = t0 + wf.slo_ms
        self.pending = [len(r.deps) for r in wf.roles]
        self.calls_left = [0] * len(wf.roles)
        self.roles_left = len(wf.roles)
        self.failed = False
        self.done = False
        self.log: list[tuple[int, float]] = []
        self.measured = measured


class Call:
    __slots__ = (
        "id", "query", "role", "loop", "engine", "lat", "prompt", "out", "prompt_eff", "out_rem", "prefilled", "key",
        "t_issue", "t_arrive", "t_admit", "t_first", "t_done", "state", "inc", "join", "c0", "preemptions", "state_id",
    )  # fmt: skip

    def __init__(self, cid: int, query: Query, role: int, loop: int, engine: Any, lat: float, prompt: int, out: int, t: float) -> None:
        self.id = cid
        self.query = query
        self.role = role
        self.loop = loop
        self.engine = engine
        self.lat = lat
        self.prompt = prompt
        self.out = out
        self.prompt_eff = prompt
        self.out_rem = out
        self.prefilled = 0
        self.key = 0.0
        self.t_issue = t
        self.t_arrive = t + lat
        self.t_admit = -1.0
        self.t_first = -1.0
        self.t_done = -1.0
        self.state = 0
        self.inc = 0
        self.join = 0
        self.c0 = 0.0
        self.preemptions = 0
        self.state_id = 0
