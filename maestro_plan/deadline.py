"""`--time-limit` as a wall-clock deadline for the whole command (issue 18): load, estimate, solve,
the SLO-check loop, verify and emit.

The solver's budgets are deterministic work counts (budget.py), so that the same inputs give the
same plan on any machine load. They are sized so that an idle 2-core machine finishes within the
limit; a loaded one may not. The deadline is the second line: a command that holds one
(`with active(Deadline(limit))`, the CLI's `solve`) gives every stage only what is left:

- the solve's stages must end `SolveBudget.deadline_reserve_share` of the limit before the end,
  leaving that for routing, placement, the SLO check, verify and emit;
- column generation stops between rounds, the neighbourhood search between sub-MIPs, and CP-SAT
  does not start, once that point has passed (`expired`); every HiGHS and CP-SAT call's wall-clock
  cap is cut to what is left (`cap`).

When the deadline cut a stage short, the plan's notes say which, and that the plan then depends
on the machine's load (plan_id hashes the notes, so it changes with them). Without a deadline
(the library's `solve()`, the benchmarks, the tests) nothing here changes anything.

What the promise is: stages are cut only at their boundaries and through the solvers' own time
limits, so a command can overrun by the longest uninterruptible step (building the model, one
block's model construction, emit); see benchmarks/results/time_limit.md for measured figures on
an idle and a loaded machine. The clock starts when the process starts (Linux: /proc/self/stat),
so Python's start-up and imports count too. `solve --no-deadline` keeps the work budgets only: the
same plan on any load, however long that takes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

MIN_CAP_S = 0.05
"""The smallest wall-clock limit handed to a solver (HiGHS refuses 0)."""


def _process_age_s() -> float:
    """Seconds since this process started (0 where /proc is not available)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


_PROCESS_IS_COMMAND = False
"""Set by the console script's entry point (cli/main.main): the process is the command, so its
clock starts when the process started. Otherwise (the CLI app called in-process, as the tests'
CliRunner does) a command's clock starts when the command does."""


def process_is_command() -> None:
    global _PROCESS_IS_COMMAND
    _PROCESS_IS_COMMAND = True


def command_start() -> float:
    """time.monotonic() at the start of the running command (see _PROCESS_IS_COMMAND)."""
    return time.monotonic() - (_process_age_s() if _PROCESS_IS_COMMAND else 0.0)


@dataclass
class Deadline:
    """`limit_s` wall-clock seconds from `start` (time.monotonic; default: command_start()); the
    solve's stages end `reserve_share` of it earlier."""

    limit_s: float
    reserve_share: float = 0.0
    start: float = field(default_factory=command_start)
    cut: list[str] = field(default_factory=list)
    """The stages the deadline cut short, in order (the plan's note names them)."""
    binding: bool = False
    """A solver call got a wall-clock limit below its own safety net because of the deadline."""

    def left(self) -> float:
        """Seconds left for the solve's stages (negative once past)."""
        return self.start + self.limit_s * (1.0 - self.reserve_share) - time.monotonic()

    def expired(self, stage: str) -> bool:
        """True (and `stage` recorded as cut) once the solve's share of the limit is spent."""
        if self.left() > 0:
            return False
        if stage not in self.cut:
            self.cut.append(stage)
        return True

    def cap(self, far_s: float) -> float:
        """A solver call's wall-clock limit: its safety net `far_s`, or what is left if less."""
        left = max(MIN_CAP_S, self.left())
        if left < far_s:
            self.binding = True
            return left
        return far_s


_ACTIVE: Deadline | None = None
"""The running command's deadline; a module global rather than a context variable so that
forked block workers (decompose.run_blocks) inherit it."""


def current() -> Deadline | None:
    return _ACTIVE


@contextlib.contextmanager
def active(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Make `deadline` the running command's for the block's duration."""
    global _ACTIVE
    saved, _ACTIVE = _ACTIVE, deadline
    try:
        yield deadline
    finally:
        _ACTIVE = saved


def cap(far_s: float) -> float:
    """`far_s`, or what the running command's deadline leaves if less."""
    return far_s if _ACTIVE is None else _ACTIVE.cap(far_s)


def expired(stage: str) -> bool:
    """The running command's deadline has passed (recording `stage` as cut); False without one."""
    return _ACTIVE is not None and _ACTIVE.expired(stage)


def note(hit_wall_clock: bool) -> str | None:
    """The plan's note when the running command's deadline cut the solve (`hit_wall_clock`: a
    solver call stopped on its wall-clock limit, which the deadline had lowered)."""
    d = _ACTIVE
    if d is None:
        return None
    stages = list(d.cut)
    if hit_wall_clock and d.binding and "a solver call's time" not in stages:
        stages.append("a solver call's time")
    if not stages:
        return None
    return (
        f"--time-limit {d.limit_s:g} s is a deadline for the whole command and it cut the solve short ({', '.join(stages)}): "
        "the deterministic work budget was not spent in full, so with another machine load the same inputs may give a different plan"
    )
