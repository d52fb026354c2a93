"""OR-Tools CP-SAT backend for a `LinearModel` (the default solver).

Integerisation (see model.py): a continuous variable with resolution r becomes an integer count of
1/r steps; each row is scaled exactly when a power of ten times the lcm of its variables'
resolutions makes it integral, otherwise it is tightened (coefficients rounded up on `<=` sides,
right-hand sides down), so that every CP-SAT solution is feasible for the float model.

Reproducibility: one worker without interleaving (BUDGET.cpsat_workers), stopped by
`max_deterministic_time` (about one unit per second of the machine the coefficients were fitted
on), so that the point and the deterministic time reported are functions of the input. Measured:
two interleaved workers (sat_parameters.proto calls that mode deterministic) still gave different
plans on a loaded machine. A wall-clock cap remains as a safety net; if it fires the result may
depend on the machine's load, and `hit_wall_clock` (and the plan's notes) say so.

Lexicographic objectives: each phase re-solves the same CP model with the previous objectives held
at their (integer, exact) optimum or incumbent, hinted with the previous phase's solution.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence

from ortools.sat.python import cp_model

from maestro_plan import deadline
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.model import INF, LinearModel, Objective, PhaseOut, SolveResult, lexicographic

INT_LIMIT = 2**62
TARGET_COEF = 1e9  # largest coefficient after a non-exact scaling
MIN_COEF_STEPS = 1e7  # smallest coefficient after a non-exact scaling: relative rounding <= 1e-7
DOMAIN_CAP = 2**50


class CpSatScalingError(ValueError):
    """A row cannot be represented exactly or conservatively (a formulation bug)."""


def _lcm(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def _is_int(x: float, tol: float = 1e-9) -> bool:
    return abs(x - round(x)) <= tol * max(1.0, abs(x))


def _exact_scale(coefs: Sequence[float], rhs: Sequence[float], base: int, max_abs_dom: float) -> int | None:
    """Smallest base*10^k (k <= 6) making every coefficient and rhs integral, within overflow bounds."""
    for k in range(7):
        s = base * 10**k
        if all(_is_int(c * s) for c in coefs) and all(_is_int(r * s) for r in rhs):
            if max_abs_dom * s < INT_LIMIT:
                return s
            return None
    return None


class Translator:
    def __init__(self, model: LinearModel) -> None:
        self.model = model
        self.cp = cp_model.CpModel()
        self.ivars: list[cp_model.IntVar] = []
        self.res: list[int] = []
        self.dom_hi: list[int] = []
        for v in model.vars:
            r = 1 if v.integer else max(1, int(v.resolution))
            lo = -INF if v.lb == -INF else math.ceil(v.lb * r - 1e-9)
            hi = INF if v.ub == INF else math.floor(v.ub * r + 1e-9)
            if lo == -INF or hi == INF:
                raise CpSatScalingError(f"variable {v.name} needs finite bounds for CP-SAT")
            if hi > DOMAIN_CAP or lo < -DOMAIN_CAP:
                raise CpSatScalingError(f"variable {v.name}: domain [{lo}, {hi}] too large for CP-SAT")
            if lo > hi:
                lo = hi = max(lo, hi) if v.integer else lo
            self.ivars.append(self.cp.NewIntVar(int(lo), int(hi), v.name))
            self.res.append(r)
            self.dom_hi.append(max(abs(int(lo)), abs(int(hi))))
        for row in model.rows:
            self._add_row(row)

    # a row: lo <= sum a_i x_i <= hi, x_i = y_i / r_i with y_i the CP integer
    def _add_row(self, row) -> None:
        if not row.idx:
            if row.lo > 1e-9 or row.hi < -1e-9:
                self.cp.AddBoolOr([])  # an empty row that cannot hold: infeasible
            return
        a = [c / self.res[i] for i, c in zip(row.idx, row.coef)]
        finite_rhs = [b for b in (row.lo, row.hi) if b not in (-INF, INF)]
        base = _lcm([self.res[i] for i in row.idx])
        max_abs_dom = sum(abs(c) * self.dom_hi[i] for c, i in zip(a, row.idx)) + max((abs(b) for b in finite_rhs), default=0.0)
        s = _exact_scale(a, finite_rhs, base, max_abs_dom)
        ys = [self.ivars[i] for i in row.idx]
        if s is not None:
            coefs = [int(round(c * s)) for c in a]
            expr = cp_model.LinearExpr.WeightedSum(ys, coefs)
            lo = row.lo * s
            hi = row.hi * s
            if row.lo == row.hi:
                self.cp.Add(expr == int(round(lo)))
            else:
                if row.lo != -INF:
                    self.cp.Add(expr >= int(round(lo)))
                if row.hi != INF:
                    self.cp.Add(expr <= int(round(hi)))
            return
        if row.lo == row.hi:
            raise CpSatScalingError(f"equality row {row.name} has coefficients CP-SAT cannot scale exactly")
        for i in row.idx:
            if self.model.vars[i].lb < 0:
                raise CpSatScalingError(f"row {row.name}: conservative rounding needs non-negative variables ({self.model.vars[i].name})")
        amax = max(abs(c) for c in a)
        amin = min(abs(c) for c in a if c != 0)
        # every coefficient keeps >= MIN_COEF_STEPS steps (relative rounding <= 1/MIN_COEF_STEPS),
        # and the largest at least TARGET_COEF, within the overflow bound
        s = max(TARGET_COEF / amax, MIN_COEF_STEPS / amin)
        if max_abs_dom * s >= INT_LIMIT / 4:
            s = (INT_LIMIT / 4) / max(max_abs_dom, 1.0)
        for sign, b in ((1.0, row.hi), (-1.0, -row.lo if row.lo != -INF else INF)):
            if b == INF:
                continue
            # sign * a . x <= b  ->  ceil(sign*a*s) . y <= floor(b*s): tighter for y >= 0
            coefs = [math.ceil(sign * c * s - 1e-12 * abs(c * s)) for c in a]
            rhs = math.floor(b * s + 1e-12 * abs(b * s))
            self.cp.Add(cp_model.LinearExpr.WeightedSum(ys, coefs) <= rhs)

    def objective_expr(self, terms: dict[int, float]) -> tuple[cp_model.LinearExpr, float, list[int], list[int]]:
        """Integer objective expression and its scale: value_float ~= expr / scale."""
        idx = sorted(terms)
        a = [terms[i] / self.res[i] for i in idx]
        if not idx:
            return cp_model.LinearExpr.Sum([]), 1.0, [], []
        base = _lcm([self.res[i] for i in idx])
        max_abs_dom = sum(abs(c) * self.dom_hi[i] for c, i in zip(a, idx))
        s = _exact_scale(a, [], base, max_abs_dom * 4)
        if s is None:
            amax = max(abs(c) for c in a)
            s = TARGET_COEF / amax
            if max_abs_dom * s >= INT_LIMIT / 8:
                s = (INT_LIMIT / 8) / max(max_abs_dom, 1.0)
        coefs = [int(round(c * s)) for c in a]
        keep = [(i, c) for i, c in zip(idx, coefs) if c != 0]
        ids = [i for i, _ in keep]
        cs = [c for _, c in keep]
        return cp_model.LinearExpr.WeightedSum([self.ivars[i] for i in ids], cs), float(s), ids, cs


def _takes_bound(fn: Callable[..., None]) -> bool:
    """Whether a progress callback accepts the optional `bound` keyword (older ones take 3 args)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "bound" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class _Progress(cp_model.CpSolverSolutionCallback):
    """Reports each improving solution: fn(phase, objective, wall_s[, bound=best objective bound])."""

    def __init__(self, fn: Callable[..., None], phase: str, scale: float, constant: float, sign: float) -> None:
        super().__init__()
        self.fn = fn
        self.phase = phase
        self.scale = scale
        self.constant = constant
        self.sign = sign
        self.with_bound = _takes_bound(fn)

    def _value(self, raw: float) -> float:
        return self.sign * raw / self.scale + self.constant

    def on_solution_callback(self) -> None:
        value = self._value(self.ObjectiveValue())
        if self.with_bound:  # display only: the bound never feeds back into the search
            self.fn(self.phase, value, self.WallTime(), bound=self._value(self.BestObjectiveBound()))
        else:
            self.fn(self.phase, value, self.WallTime())


STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "error",
    cp_model.UNKNOWN: "unknown",
}


def solve_cpsat(
    model: LinearModel,
    *,
    time_limit: float = 60.0,
    seed: int = 0,
    workers: int = 2,
    hint: Sequence[float] | None = None,
    wall_cap: float | None = None,
    progress: Callable[[str, float, float], None] | None = None,
    params: dict | None = None,
) -> SolveResult:
    """Solve lexicographically. `time_limit` is the deterministic work budget (CP-SAT units, ~seconds);
    the wall-clock cap (a safety net; if it fires the result may depend on machine load, and
    `hit_wall_clock` says so, in the plan's notes too) defaults to SolveBudget.cpsat_wall_cap_factor x time_limit +
    SolveBudget.cpsat_wall_cap_s. `workers` is accepted for the callers' settings; CP-SAT runs SolveBudget.cpsat_workers."""
    t0 = time.perf_counter()
    tr = Translator(model)
    run = _CpSatPhases(tr, time_limit=time_limit, wall_cap=BUDGET.cpsat_wall_cap_factor * time_limit + BUDGET.cpsat_wall_cap_s if wall_cap is None else wall_cap, seed=seed, workers=workers, progress=progress, params=params or {})
    lex = lexicographic(model, run.phase, run.hold, hint)
    return SolveResult(
        solver="cpsat",
        status=lex.status,
        values=lex.values,
        phases=lex.phases,
        wall_s=time.perf_counter() - t0,
        deterministic_time=run.total_det,
        hit_wall_clock=run.hit_wall,
    )


class _CpSatPhases:
    """One CP model solved phase after phase (model.lexicographic): a phase sets its objective and
    hint; holding an objective adds `expr <= incumbent` (exact in CP-SAT's integers)."""

    def __init__(self, tr: Translator, *, time_limit: float, wall_cap: float, seed: int, workers: int, progress, params: dict) -> None:
        self.tr, self.time_limit, self.wall_cap, self.seed, self.workers = tr, time_limit, wall_cap, seed, workers
        self.progress, self.params = progress, params
        self.total_det = 0.0
        self.hit_wall = False
        self._held: tuple[list[int], list[int], float] = ([], [], 0.0)  # the last phase's objective terms, incumbent

    def _parameters(self, solver: cp_model.CpSolver, share: float) -> None:
        p = solver.parameters
        # one worker, no interleaving: the only setting measured to give the same point and the
        # same deterministic time on an idle and on a loaded machine (2 interleaved workers did
        # not: synth 100 GPUs seed 3, $516.18/h vs $513.90/h between two runs of the same code)
        p.num_workers = BUDGET.cpsat_workers
        p.interleave_search = False
        p.random_seed = int(self.seed)
        p.max_deterministic_time = max(0.05, self.time_limit * share)
        p.max_time_in_seconds = deadline.cap(max(0.5, self.wall_cap * share))
        p.log_search_progress = False
        for k_, v_ in self.params.items():
            setattr(p, k_, v_)

    def phase(self, obj: Objective | None, share: float, start: list[float] | None) -> PhaseOut:
        tr, cp = self.tr, self.tr.cp
        cp.ClearObjective()
        scale, ids, cs = 1.0, [], []
        if obj is not None:
            expr, scale, ids, cs = tr.objective_expr(obj.terms)
            cp.Minimize(expr) if obj.sense == "min" else cp.Maximize(expr)
        cp.ClearHints()
        if start is not None:
            for i, v in enumerate(start):
                cp.AddHint(tr.ivars[i], int(round(v * tr.res[i])))
        solver = cp_model.CpSolver()
        self._parameters(solver, share)
        ts = time.perf_counter()
        if self.progress is not None and obj is not None:
            st = solver.Solve(cp, _Progress(self.progress, obj.name, scale, obj.constant, 1.0))
        else:
            st = solver.Solve(cp)
        wall = time.perf_counter() - ts
        det = solver.deterministic_time
        self.total_det += det
        status = STATUS.get(st, "unknown")
        p = solver.parameters
        if wall >= 0.98 * p.max_time_in_seconds and det < 0.98 * p.max_deterministic_time and status in ("feasible", "unknown"):
            self.hit_wall = True
        if status not in ("optimal", "feasible"):
            return PhaseOut(status, wall_s=wall, deterministic_time=det)  # type: ignore[arg-type]
        values = [solver.Value(v) / r for v, r in zip(tr.ivars, tr.res)]
        bound = None
        if obj is not None:
            b = solver.BestObjectiveBound()
            bound = obj.value(values) if status == "optimal" else (b / scale + obj.constant if math.isfinite(b) else None)
            self._held = (ids, cs, solver.ObjectiveValue())
        return PhaseOut(status, values, bound, wall, det)  # type: ignore[arg-type]

    def hold(self, obj: Objective, res: PhaseOut) -> None:
        ids, cs, incumbent = self._held
        held = int(round(incumbent))
        e = cp_model.LinearExpr.WeightedSum([self.tr.ivars[i] for i in ids], cs)
        self.tr.cp.Add(e <= held) if obj.sense == "min" else self.tr.cp.Add(e >= held)
