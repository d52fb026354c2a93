"""Errors that the CLI turns into one-paragraph messages and exit codes (never tracebacks).

Exit codes: 2 = bad input (InputError), 3 = infeasible problem (InfeasibleError).
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_INFEASIBLE = 3


@dataclass
class Problem:
    """One thing wrong with an input: where (file, field path), what, and how to fix it."""

    message: str
    file: str | None = None
    field: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.field:
            where.append(f"field '{self.field}'")
        head = ": ".join(where)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" Fix: {self.hint}"
        return text


class MaestroError(Exception):
    exit_code = 1


class InputError(MaestroError):
    """Bad input: file, field, what is wrong, how to fix. Exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str | None = None,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        hint: str | None = None,
        problems: Iterable[Problem] | None = None,
    ) -> None:
        self.problems: list[Problem] = list(problems or [])
        if message is not None:
            self.problems.insert(
                0, Problem(message, str(file) if file is not None else None, field, hint)
            )
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].render()
        lines = [f"{len(self.problems)} problems in the input:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


@dataclass
class Shortfall:
    """A binding constraint of an infeasible problem, in a capacity planner's words."""

    constraint: str  # constraint family name, e.g. "memory", "capacity", "inventory"
    subject: str  # what it is about, e.g. "llama-3.1-70b in us-east"
    needed: float
    available: float
    unit: str
    detail: str = ""

    def render(self) -> str:
        short = self.needed - self.available
        text = (
            f"[{self.constraint}] {self.subject}: needs {self.needed:g} {self.unit}, "
            f"has {self.available:g} (short by {short:g})"
        )
        return text + (f". {self.detail}" if self.detail else "")


class InfeasibleError(MaestroError):
    """No plan satisfies the constraints. Exit code 3. Carries the binding shortfalls."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, summary: str, shortfalls: Iterable[Shortfall] = (), reasons: Iterable[str] = ()) -> None:
        self.summary = summary
        self.shortfalls: list[Shortfall] = list(shortfalls)
        self.reasons: list[str] = list(reasons)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.summary]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"  - {s.render()}" for s in self.shortfalls]
        return "\n".join(lines)


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid name, for 'did you mean' hints."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_name_hint(name: str, choices: Iterable[str], what: str) -> str:
    choices = sorted(set(choices))
    close = suggest(name, choices)
    if close:
        return f"did you mean '{close}'? Known {what}: {', '.join(choices[:12])}{' ...' if len(choices) > 12 else ''}."
    return f"use one of the known {what}: {', '.join(choices[:12])}{' ...' if len(choices) > 12 else ''}."


@dataclass
class Collector:
    """Collects problems so that a user sees all of them at once."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, *, file: str | Path | None = None, field: str | None = None, hint: str | None = None) -> None:
        self.problems.append(Problem(message, str(file) if file is not None else None, field, hint))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(problems=self.problems)


# Errors writing outputs that are the environment's, not a bug: exit 2 with their own message
# (exit 1 means "a plan failed verification").
OUTPUT_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EXDEV, errno.EBUSY, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE}


def output_error_text(e: OSError) -> str:
    """One line for an OSError while reading or writing files: the path, the cause, a fix."""
    fixes = {
        errno.EROFS: "the file system is read-only; choose an --out on a writable one.",
        errno.EACCES: "no permission; choose an --out you can write to, or fix the folder's permissions.",
        errno.EPERM: "no permission; choose an --out you can write to.",
        errno.ENOSPC: "the disk is full; free space or choose an --out on another disk.",
        errno.EDQUOT: "the disk quota is exceeded; free space or choose another --out.",
        errno.EXDEV: "the output crosses file systems; choose an --out whose parent is on the same file system.",
    }
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}. Fix: {fixes.get(e.errno or 0, 'check the path and try again.')}"


class OutputError(MaestroError):
    """Outputs cannot be written (read-only, full disk, a file in the way). Exit code 2."""

    exit_code = EXIT_BAD_INPUT
