"""MILP backends for a `LinearModel`: HiGHS through highspy, CBC through PuLP (fallback).

HiGHS is called through highspy rather than ortools' pywraplp because pywraplp's HiGHS returns no
solution when its time limit hits, while highspy keeps the incumbent (DESIGN.md 5b). HiGHS runs
with one thread and a fixed `random_seed`. Callers that need a reproducible stopping point give a
node limit (`max_nodes`: HiGHS' mip_max_nodes, CBC's maxNodes); `time_limit` is wall-clock, so a
run that stops on it may differ between machines: that is reported (`hit_wall_clock`). Every
wall-clock limit is also cut to what the running command's deadline leaves (maestro_plan/deadline.py).
CBC comes from PuLP 3.x (the 3.x wheels bundle a CBC binary for Python 3.11; PuLP 4 needs 3.12 and
dropped it). CBC reports no dual bound through PuLP, so its bound/gap are left empty.

Lexicographic objectives: after phase k, the constraint `obj_k <= value_k + tol` (min) holds it.
`solve_lp_relaxation` drops integrality and returns the first objective's LP bound.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

from maestro_plan import deadline
from maestro_plan.solve.model import INF, LinearModel, Objective, PhaseOut, SolveResult, lexicographic

MIP_REL_GAP = 1e-6  # HiGHS' default is 1e-4; tighter so that backends agree on optimal objectives
OBJECTIVE_CHECK_TOL = 1e-6  # relative: HiGHS' reported objective against the returned point's (snapped integers)


def _hold_rhs(value: float, rel_tol: float) -> float:
    """Upper side of a row holding a minimised objective at `value` (later lexicographic phases)."""
    return value + max(1e-9, rel_tol * abs(value))


def _hold_lhs(value: float, rel_tol: float) -> float:
    """Lower side of a row holding a maximised objective at `value`."""
    return value - max(1e-9, rel_tol * abs(value))


# ------------------------------------------------------------------------------------------
# HiGHS
# ------------------------------------------------------------------------------------------


_BANNER_SHOWN = False


def new_highs():
    """A silent highspy.Highs. The first instance of a process prints a banner to file descriptor 1
    before any option can be set; that would corrupt `--json` output, so it goes to /dev/null."""
    global _BANNER_SHOWN
    import highspy

    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    return h


def highs_instance(model: LinearModel, *, relax: bool, seed: int, time_limit: float, threads: int = 1, rel_gap: float = MIP_REL_GAP):
    import highspy

    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", int(seed) % 2147483647)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("time_limit", float(deadline.cap(max(0.05, time_limit))))
    h.setOptionValue("mip_rel_gap", rel_gap)
    inf = highspy.kHighsInf
    n = len(model.vars)
    lb = np.array([v.lb if v.lb != -INF else -inf for v in model.vars], dtype=np.float64)
    ub = np.array([v.ub if v.ub != INF else inf for v in model.vars], dtype=np.float64)
    h.addCols(n, np.zeros(n), lb, ub, 0, np.array([], dtype=np.int32), np.array([], dtype=np.int32), np.array([], dtype=np.float64))
    if model.rows:
        starts, index, value = [], [], []
        for r in model.rows:
            starts.append(len(index))
            index.extend(r.idx)
            value.extend(r.coef)
        rlo = np.array([r.lo if r.lo != -INF else -inf for r in model.rows], dtype=np.float64)
        rhi = np.array([r.hi if r.hi != INF else inf for r in model.rows], dtype=np.float64)
        h.addRows(len(model.rows), rlo, rhi, len(index), np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value, dtype=np.float64))
    if not relax:
        ints = [i for i, v in enumerate(model.vars) if v.integer]
        if ints:
            h.changeColsIntegrality(len(ints), np.array(ints, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * len(ints)))
    return h


def set_objective(h, model: LinearModel, k: int) -> None:
    import highspy

    n = len(model.vars)
    cost = np.zeros(n)
    obj = model.objectives[k]
    for i, c in obj.terms.items():
        cost[i] = c
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize if obj.sense == "min" else highspy.ObjSense.kMaximize)
    h.changeObjectiveOffset(obj.constant)


def solve_highs(
    model: LinearModel,
    *,
    time_limit: float = 60.0,
    seed: int = 0,
    hint: Sequence[float] | None = None,
    relax: bool = False,
    rel_gap: float = MIP_REL_GAP,
    max_nodes: int | None = None,
    options: dict | None = None,
) -> SolveResult:
    """Lexicographic solve with HiGHS. `max_nodes` is a deterministic branch-and-bound limit
    (HiGHS' mip_max_nodes), for callers that need a reproducible stopping point; `options` are
    further HiGHS options by name.

    HiGHS' MIP presolve has known cases of reporting a point as optimal with an objective value
    that is not the point's (ERGO-Code/HiGHS#3094, #3043, #2900). Seen here with highspy 1.16 on
    per-model blocks given a start: "optimal" at 10.71, the returned point (the start) costs 322.79,
    the optimum is 16.11. Every MIP answer is therefore checked: the objective of the returned
    point must be the one HiGHS reports; if not, the solve is repeated without the start, then
    without presolve (deterministic: the same inputs take the same path)."""
    first = _solve_highs(model, time_limit=time_limit, seed=seed, hint=hint, relax=relax, rel_gap=rel_gap, max_nodes=max_nodes, options=options)
    res = first
    retries = [] if relax or not first.message else ([dict(hint=None)] if hint is not None else []) + [dict(hint=None, options={**(options or {}), "presolve": "off"})]
    for kw in retries:
        if not res.message:
            break
        again = _solve_highs(model, time_limit=time_limit, seed=seed, relax=relax, rel_gap=rel_gap, max_nodes=max_nodes, **{"options": options, **kw})
        again.lp_iterations += res.lp_iterations
        again.nodes += res.nodes
        again.wall_s += res.wall_s
        again.hit_wall_clock |= res.hit_wall_clock
        res = again
    if res.message:  # still inconsistent: trust no point and no bound
        res.status, res.values, res.phases = "unknown", None, []
    return res


def _solve_highs(
    model: LinearModel,
    *,
    time_limit: float,
    seed: int,
    hint: Sequence[float] | None,
    relax: bool,
    rel_gap: float,
    max_nodes: int | None,
    options: dict | None,
) -> SolveResult:
    """One solve_highs attempt; `message` is set when HiGHS' reported objective is not that of
    the point it returned."""
    t0 = time.perf_counter()
    h = highs_instance(model, relax=relax, seed=seed, time_limit=time_limit, rel_gap=rel_gap)
    if max_nodes is not None and not relax:
        h.setOptionValue("mip_max_nodes", int(max_nodes))
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    run = _HighsPhases(h, model, time_limit=time_limit, relax=relax)
    lex = lexicographic(model, run.phase, run.hold, hint)
    return SolveResult(
        solver="highs-lp" if relax else "highs",
        status=lex.status,
        values=lex.values,
        phases=lex.phases,
        wall_s=time.perf_counter() - t0,
        hit_wall_clock=run.hit,
        message=lex.message,
        lp_iterations=run.iters,
        nodes=run.nodes,
    )


class _HighsPhases:
    """One highspy instance solved phase after phase (model.lexicographic); holding an objective
    adds the row `obj <= value + tol` (min) or `>= value - tol` (max)."""

    def __init__(self, h, model: LinearModel, *, time_limit: float, relax: bool) -> None:
        self.h, self.model, self.time_limit, self.relax = h, model, time_limit, relax
        self.hit = False
        self.iters = 0
        self.nodes = 0

    def _status(self, st, has_sol: bool) -> str:
        import highspy

        ms = highspy.HighsModelStatus
        if st == ms.kOptimal:
            return "optimal"
        if st == ms.kInfeasible:
            return "infeasible"
        if st == ms.kUnboundedOrInfeasible:
            return "infeasible" if not has_sol else "feasible"
        if st == ms.kTimeLimit:
            self.hit = True
        return "feasible" if has_sol else "unknown"

    def phase(self, obj: Objective | None, share: float, start: list[float] | None) -> PhaseOut:
        import highspy

        h, model, relax = self.h, self.model, self.relax
        if obj is not None:
            set_objective(h, model, model.objectives.index(obj))
        h.setOptionValue("time_limit", float(deadline.cap(max(0.05, self.time_limit * share))))
        if start is not None and not relax:
            h.setSolution(len(start), np.arange(len(start), dtype=np.int32), np.array(start, dtype=np.float64))
        ts = time.perf_counter()
        h.run()
        wall = time.perf_counter() - ts
        info = h.getInfo()
        self.iters += max(0, int(info.simplex_iteration_count))
        self.nodes += max(0, int(info.mip_node_count)) if not relax else 0
        status = self._status(h.getModelStatus(), info.primal_solution_status == highspy.kSolutionStatusFeasible)
        if status not in ("optimal", "feasible"):
            return PhaseOut(status, wall_s=wall)  # type: ignore[arg-type]
        # snap integer variables (HiGHS returns them within its feasibility tolerance)
        values = [float(round(x)) if v.integer and not relax else float(x) for x, v in zip(h.getSolution().col_value, model.vars)]
        objval = obj.value(values) if obj is not None else None
        bound = None
        if obj is not None and relax:
            bound = objval if status == "optimal" else None
        elif obj is not None:
            reported = float(info.objective_function_value)
            if not math.isfinite(reported) or abs(reported - objval) > OBJECTIVE_CHECK_TOL * max(1.0, abs(objval)):
                return PhaseOut(status, message=f"HiGHS reported objective {reported:.6g} for a point of objective {objval:.6g} ({obj.name})")  # type: ignore[arg-type]
            b = info.mip_dual_bound
            bound = float(b) if b is not None and math.isfinite(b) else None
            if status == "optimal" and bound is None:
                bound = objval
        return PhaseOut(status, values, bound, wall)  # type: ignore[arg-type]

    def hold(self, obj: Objective, res: PhaseOut) -> None:
        import highspy

        assert res.values is not None
        idx = np.array(sorted(obj.terms), dtype=np.int32)
        val = np.array([obj.terms[i] for i in sorted(obj.terms)], dtype=np.float64)
        held = obj.value(res.values) - obj.constant
        inf = highspy.kHighsInf
        if obj.sense == "min":
            self.h.addRow(-inf, _hold_rhs(held, obj.rel_tol), len(idx), idx, val)
        else:
            self.h.addRow(_hold_lhs(held, obj.rel_tol), inf, len(idx), idx, val)


def solve_lp_relaxation(model: LinearModel, *, time_limit: float = 30.0, seed: int = 0) -> float | None:
    """The LP bound of the first objective (None when the LP does not solve in time)."""
    one = LinearModel(model.relaxed().vars, model.rows, model.objectives[:1], {})
    r = solve_highs(one, time_limit=time_limit, seed=seed, relax=True)
    return r.objective if r.status == "optimal" else None


# ------------------------------------------------------------------------------------------
# CBC through PuLP
# ------------------------------------------------------------------------------------------


def solve_cbc(
    model: LinearModel,
    *,
    time_limit: float = 60.0,
    seed: int = 0,
    hint: Sequence[float] | None = None,
    max_nodes: int | None = None,
) -> SolveResult:
    """Lexicographic solve with CBC (one thread, fixed seed). `max_nodes`: a deterministic
    branch-and-bound limit per phase; `time_limit` is then the wall-clock safety net, and
    `hit_wall_clock` says whether it (rather than the nodes) stopped a phase."""
    t0 = time.perf_counter()
    run = _CbcPhases(model, time_limit=time_limit, seed=seed, max_nodes=max_nodes)
    lex = lexicographic(model, run.phase, run.hold, hint)
    return SolveResult(solver="cbc", status=lex.status, values=lex.values, phases=lex.phases, wall_s=time.perf_counter() - t0, hit_wall_clock=run.hit)


class _CbcPhases:
    """One PuLP problem solved by CBC phase after phase (model.lexicographic)."""

    def __init__(self, model: LinearModel, *, time_limit: float, seed: int, max_nodes: int | None = None) -> None:
        import pulp

        self.model, self.time_limit, self.seed, self.max_nodes = model, time_limit, seed, max_nodes
        self.hit = False
        self.k = 0  # rows that hold objectives
        prob = pulp.LpProblem("maestro", pulp.LpMinimize)
        self.xs = []
        for i, v in enumerate(model.vars):
            self.xs.append(
                prob.add_variable(  # PuLP >= 3.3; constructing LpVariable directly is deprecated there
                    f"x{i}",
                    lowBound=None if v.lb == -INF else v.lb,
                    upBound=None if v.ub == INF else v.ub,
                    cat=pulp.LpInteger if v.integer else pulp.LpContinuous,
                )
            )
        for j, r in enumerate(model.rows):
            expr = pulp.lpSum(c * self.xs[i] for i, c in zip(r.idx, r.coef))
            if r.lo == r.hi:
                prob += (expr == r.lo), f"r{j}"
            else:
                if r.lo != -INF:
                    prob += (expr >= r.lo), f"r{j}l"
                if r.hi != INF:
                    prob += (expr <= r.hi), f"r{j}u"
        self.prob = prob

    def phase(self, obj: Objective | None, share: float, start: list[float] | None) -> PhaseOut:
        import pulp

        prob, xs = self.prob, self.xs
        if obj is not None:
            sign = 1.0 if obj.sense == "min" else -1.0
            prob.setObjective(pulp.lpSum(sign * c * xs[i] for i, c in obj.terms.items()) + 0.0)
        if start is not None:
            for x, v in zip(xs, start):
                x.setInitialValue(v)
        with warnings.catch_warnings():
            # PuLP 3.3 deprecates PULP_CBC_CMD for COIN_CMD + the separate `pulp[cbc]` binary
            # package; the bundled CBC is what this pin (pulp<3.4) installs everywhere, so it stays
            warnings.filterwarnings("ignore", message=".*PULP_CBC_CMD.*", category=DeprecationWarning)
            limit = max(1, int(math.ceil(deadline.cap(self.time_limit * share))))
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, threads=1, warmStart=start is not None, maxNodes=self.max_nodes, options=[f"randomSeed {int(self.seed) % 2147483647 + 1}"])
        ts = time.perf_counter()
        prob.solve(solver)
        wall = time.perf_counter() - ts
        if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return PhaseOut("infeasible" if prob.status == pulp.LpStatusInfeasible else "unknown", wall_s=wall)
        status = "optimal" if prob.sol_status == pulp.LpSolutionOptimal else "feasible"
        # without a node limit only the clock stops CBC short of optimal; with one, only a phase
        # that ran to its wall-clock limit counts (PuLP does not say which limit stopped CBC)
        self.hit |= status == "feasible" and (self.max_nodes is None or wall >= 0.98 * limit)
        values = [float(round(x.value() or 0.0)) if v.integer else float(x.value() or 0.0) for x, v in zip(xs, self.model.vars)]
        bound = obj.value(values) if obj is not None and status == "optimal" else None  # CBC reports no dual bound through PuLP
        return PhaseOut(status, values, bound, wall)  # type: ignore[arg-type]

    def hold(self, obj: Objective, res: PhaseOut) -> None:
        import pulp

        assert res.values is not None
        held = obj.value(res.values) - obj.constant
        e = pulp.lpSum(c * self.xs[i] for i, c in obj.terms.items())
        k = self.model.objectives.index(obj)
        if obj.sense == "min":
            self.prob += (e <= _hold_rhs(held, obj.rel_tol)), f"hold{k}"
        else:
            self.prob += (e >= _hold_lhs(held, obj.rel_tol)), f"hold{k}"
