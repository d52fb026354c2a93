"""The `solve` progress display: a bar over the planner's phases, the phase at work, the elapsed
time and the best plan found so far (CP-SAT's solution callback), on stderr.

The planner reports phases through `stage(text)` and improving solutions through
`progress(objective_name, value, wall_s, bound=...)` (solve/planner.py; CP-SAT passes its best
objective bound, display only); this module only draws them."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

PHASES = ("building the model", "greedy warm start", "column generation", "neighbourhood search", "solving with", "verifying and writing outputs")
"""The planner's stage texts, in order (solve/planner.py `stage(...)` calls, then the CLI's own)."""


def phase_index(text: str) -> int | None:
    """Which of PHASES a stage text belongs to (None: a message within the current phase)."""
    low = text.lower()
    return next((i for i, p in enumerate(PHASES) if low.startswith(p) or p in low[:40]), None)


def _amount(objective: str, value: float) -> str:
    return f"${value:,.2f}/h" if objective == "cost" else f"{value:,.4g}"


def best_text(objective: str, value: float, bound: float | None = None) -> str:
    """Text like "best $X/h, bound $Y/h" (the bound: no plan costs less; omitted when unknown)."""
    head = f"best {_amount(objective, value)}" if objective == "cost" else f"best {objective} {_amount(objective, value)}"
    if bound is None or not math.isfinite(bound):
        return head
    return f"{head}, bound {_amount(objective, bound)}"


class SolveProgress:
    """Context manager; `stage` and `progress` are the planner's callbacks. Draws nothing when off."""

    def __init__(self, console: Any, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.best = ""
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), TimeElapsedColumn(),
                            TextColumn("{task.fields[best]}"), console=console, transient=True)
        self.task: Any = None

    def __enter__(self) -> SolveProgress:
        if self.enabled:
            self.bar.__enter__()
            self.task = self.bar.add_task("solving", total=len(PHASES), best="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def stage(self, text: str) -> None:
        if not self.enabled:
            return
        i = phase_index(text)
        kw: dict[str, Any] = {"description": escape(text[:60])}
        if i is not None:
            kw["completed"] = i
        self.bar.update(self.task, **kw)

    def progress(self, objective: str, value: float, wall_s: float, bound: float | None = None) -> None:
        if self.enabled:
            self.bar.update(self.task, best=best_text(objective, value, bound))
