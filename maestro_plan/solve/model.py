"""A solver-neutral linear model (MILP) that every backend reads: built once, handed to each.

Why our own tiny layer rather than PuLP/linopy as the model: CP-SAT needs integers everywhere, the
MILP solvers want floats; one neutral description lets `cpsat.py` scale it exactly or
conservatively, and `milp.py` pass it unchanged to HiGHS (highspy) or CBC (PuLP). The layer is the
shape of the OR-Tools `model_builder` / linopy data: variables with bounds and integrality, rows
`lo <= a.x <= hi` with a constraint-family name, and a list of objectives solved
lexicographically (objective k is optimised with objectives 0..k-1 held at their optima).

Continuous variables carry a `resolution`: CP-SAT represents such a variable by an integer number
of 1/resolution steps (routing fractions use 720720 = lcm(1..16) steps, so a demand splits exactly
in up to 16 equal parts). The MILP backends ignore it.

Rounding rules (cpsat.py) keep every CP-SAT solution feasible for the float model: a row whose
coefficients are not integral after scaling is tightened (coefficients of `<=` rows rounded up,
right-hand sides down) and every variable it touches must have a non-negative lower bound.
Objectives are scaled and rounded to nearest (rounding can only cost optimality, never feasibility);
the objective value a backend reports is always recomputed in floats from the solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

INF = math.inf

Sense = Literal["min", "max"]
Status = Literal["optimal", "feasible", "infeasible", "unknown", "error"]


@dataclass
class Var:
    name: str
    lb: float
    ub: float
    integer: bool
    resolution: int = 1  # CP-SAT steps per unit for continuous variables
    family: str = ""
    key: tuple = ()  # typed coordinates, e.g. ("n", group index): how other code finds a variable


@dataclass
class Row:
    """lo <= sum(coef * var) <= hi. `family` is the constraint family (plan.families.Family for the
    placement model); `key` its typed coordinates, first a role within the family, then indices
    (e.g. ("cut", pool index, t)), so that no code reads a row's meaning back from its `name`,
    which is for people and model dumps only."""

    name: str
    family: str
    idx: list[int]
    coef: list[float]
    lo: float
    hi: float
    key: tuple = ()


@dataclass
class Objective:
    name: str
    sense: Sense
    terms: dict[int, float]
    constant: float = 0.0
    rel_tol: float = 1e-9  # tolerance when later phases hold this objective at its optimum
    tie_break: bool = False  # solved only when every earlier objective was proven optimal

    def value(self, x: Sequence[float]) -> float:
        return self.constant + math.fsum(c * x[i] for i, c in self.terms.items())


@dataclass
class LinearModel:
    vars: list[Var] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    objectives: list[Objective] = field(default_factory=list)
    _names: dict[str, int] = field(default_factory=dict, repr=False)
    _keys: dict[tuple, int] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building
    def var(self, name: str, lb: float = 0.0, ub: float = INF, *, integer: bool = False, resolution: int = 1, family: str = "", key: tuple = ()) -> int:
        if name in self._names:
            raise ValueError(f"variable {name!r} defined twice")
        if lb > ub:
            raise ValueError(f"variable {name!r}: lb {lb} > ub {ub}")
        if key and key in self._keys:
            raise ValueError(f"variable key {key!r} defined twice")
        self._names[name] = len(self.vars)
        if key:
            self._keys[key] = len(self.vars)
        self.vars.append(Var(name, float(lb), float(ub), integer, resolution, family, key))
        return len(self.vars) - 1

    def index(self, name: str) -> int:
        return self._names[name]

    def index_of(self, key: tuple) -> int | None:
        """The variable with these typed coordinates (None: this model has none)."""
        return self._keys.get(key)

    def row(self, name: str, family: str, terms: Mapping[int, float] | Iterable[tuple[int, float]], *, lo: float = -INF, hi: float = INF, key: tuple = ()) -> int:
        items: dict[int, float] = {}
        for i, c in (terms.items() if isinstance(terms, Mapping) else terms):
            if c != 0.0:
                items[i] = items.get(i, 0.0) + float(c)
        idx = sorted(items)
        self.rows.append(Row(name, family, idx, [items[i] for i in idx], float(lo), float(hi), key))
        return len(self.rows) - 1

    def le(self, name: str, family: str, terms, rhs: float, *, key: tuple = ()) -> int:
        return self.row(name, family, terms, hi=rhs, key=key)

    def ge(self, name: str, family: str, terms, rhs: float, *, key: tuple = ()) -> int:
        return self.row(name, family, terms, lo=rhs, key=key)

    def eq(self, name: str, family: str, terms, rhs: float, *, key: tuple = ()) -> int:
        return self.row(name, family, terms, lo=rhs, hi=rhs, key=key)

    def objective(self, name: str, sense: Sense, terms: Mapping[int, float], constant: float = 0.0, rel_tol: float = 1e-9, tie_break: bool = False) -> None:
        self.objectives.append(Objective(name, sense, {i: float(c) for i, c in sorted(terms.items()) if c != 0.0}, constant, rel_tol, tie_break))

    # ------------------------------------------------------------------ checking
    def violations(self, x: Sequence[float], *, tol: float = 1e-6) -> list[str]:
        """Rows and bounds a point breaks (relative tolerance on row activity)."""
        out = []
        for v, val in zip(self.vars, x):
            if val < v.lb - tol or val > v.ub + tol:
                out.append(f"bound {v.name}: {val} not in [{v.lb}, {v.ub}]")
            if v.integer and abs(val - round(val)) > 1e-6:
                out.append(f"integrality {v.name}: {val}")
        for r in self.rows:
            act = math.fsum(c * x[i] for i, c in zip(r.idx, r.coef))
            scale = max(1.0, math.fsum(abs(c * x[i]) for i, c in zip(r.idx, r.coef)), abs(r.lo) if r.lo > -INF else 0.0, abs(r.hi) if r.hi < INF else 0.0)
            if act < r.lo - tol * scale or act > r.hi + tol * scale:
                out.append(f"row {r.name} [{r.family}]: {act} not in [{r.lo}, {r.hi}]")
        return out

    def relaxed(self) -> LinearModel:
        """A copy with every integrality dropped (the LP relaxation)."""
        return LinearModel([replace(v, integer=False) for v in self.vars], self.rows, self.objectives, dict(self._names), dict(self._keys))

    def stats(self) -> dict[str, int]:
        return {
            "variables": len(self.vars),
            "integer_variables": sum(v.integer for v in self.vars),
            "rows": len(self.rows),
            "nonzeros": sum(len(r.idx) for r in self.rows),
        }


@dataclass
class PhaseResult:
    name: str
    status: Status
    objective: float | None = None
    bound: float | None = None
    wall_s: float = 0.0
    deterministic_time: float | None = None


@dataclass
class SolveResult:
    """What a backend returns. `status` and `bound`/`gap` are those of the first objective."""

    solver: str
    status: Status
    values: list[float] | None
    phases: list[PhaseResult] = field(default_factory=list)
    wall_s: float = 0.0
    deterministic_time: float | None = None
    hit_wall_clock: bool = False
    message: str = ""
    lp_iterations: int = 0  # simplex iterations (HiGHS): a deterministic measure of work done
    nodes: int = 0  # branch-and-bound nodes (HiGHS)

    @property
    def objective(self) -> float | None:
        return self.phases[0].objective if self.phases else None

    @property
    def bound(self) -> float | None:
        return self.phases[0].bound if self.phases else None

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.bound, self.status)


def relative_gap(obj: float | None, bound: float | None, status: str) -> float | None:
    if status == "optimal":
        return 0.0
    if obj is None or bound is None or not math.isfinite(bound):
        return None
    if abs(obj) < 1e-12:
        return 0.0 if abs(bound) < 1e-12 else None
    return max(0.0, abs(obj - bound) / abs(obj))


def phase_time_shares(objectives: Sequence[Objective]) -> list[float]:
    """How a work budget is split over lexicographic phases: tie-break phases share 15%, the
    primary phases the rest, the first of them getting twice the share of each later one."""
    if len(objectives) <= 1:
        return [1.0]
    ties = [o.tie_break for o in objectives]
    n_tie = sum(ties)
    n_pri = len(objectives) - n_tie
    tie_total = 0.15 if n_tie and n_pri else (1.0 if n_tie else 0.0)
    pri_total = 1.0 - tie_total
    weights = [2.0] + [1.0] * (n_pri - 1) if n_pri else []
    out = []
    pi = 0
    for t in ties:
        if t:
            out.append(tie_total / n_tie)
        else:
            out.append(pri_total * weights[pi] / sum(weights))
            pi += 1
    return out


def run_phase(objectives: Sequence[Objective], k: int, statuses: Sequence[str]) -> bool:
    """Phase k runs unless it is a tie-break and some earlier phase was not proven optimal."""
    return not objectives[k].tie_break or all(st == "optimal" for st in statuses[:k])


@dataclass
class PhaseOut:
    """One phase's answer from a backend (values: a point of the float model)."""

    status: Status
    values: list[float] | None = None
    bound: float | None = None
    wall_s: float = 0.0
    deterministic_time: float | None = None
    message: str = ""  # the answer is inconsistent: stop here and trust nothing (milp.py)


@dataclass
class Lexicographic:
    """The phases' outcome: status of the first objective, the last phase's point, every phase."""

    status: Status = "unknown"
    values: list[float] | None = None
    phases: list[PhaseResult] = field(default_factory=list)
    message: str = ""


def lexicographic(
    model: LinearModel,
    solve_phase: Callable[[Objective | None, float, list[float] | None], PhaseOut],
    hold: Callable[[Objective, PhaseOut], None],
    start: Sequence[float] | None,
) -> Lexicographic:
    """The one lexicographic driver every backend uses: objective k is optimised with objectives
    0..k-1 held (`hold`) at the value reached; a tie-break phase runs only when every earlier one
    was proven optimal (run_phase); the first phase that finds no point ends the solve. Each phase
    gets its share of the work budget (phase_time_shares) and starts from the previous phase's
    point (the caller's `start` for the first)."""
    objectives = model.objectives
    n_phases = max(1, len(objectives))
    shares = phase_time_shares(objectives)
    out = Lexicographic()
    point = list(start) if start is not None else None
    for k in range(n_phases):
        obj = objectives[k] if objectives else None
        if obj is not None and not run_phase(objectives, k, [ph.status for ph in out.phases]):
            continue
        res = solve_phase(obj, shares[k], point)
        if res.message:
            out.message = res.message
            break
        name = obj.name if obj is not None else "feasibility"
        ok = res.status in ("optimal", "feasible") and res.values is not None
        objval = obj.value(res.values) if ok and obj is not None else None
        out.phases.append(PhaseResult(name, res.status, objval, res.bound if ok else None, res.wall_s, res.deterministic_time))
        if k == 0:
            out.status = res.status
        if not ok:
            if k == 0:
                out.values = None
            break
        out.values = point = res.values
        if obj is not None and k + 1 < n_phases:
            hold(obj, res)
    return out
