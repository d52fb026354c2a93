"""MILP backends for a `LinearModel`: HiGHS through highspy, CBC through PuLP (fallback).

HiGHS is called through highspy rather than ortools' pywraplp because pywraplp's HiGHS returns no
solution when its time limit hits, while highspy keeps the incumbent (DESIGN.md 5b). HiGHS runs
with one thread and a fixed `random_seed`; its limit is wall-clock (`time_limit`), so a run that
stops on the limit may differ between machines: that is reported (`hit_wall_clock`).
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

from maestro_plan.solve.model import INF, LinearModel, PhaseResult, SolveResult, phase_time_shares, run_phase

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


def _highs_instance(model: LinearModel, *, relax: bool, seed: int, time_limit: float, threads: int = 1, rel_gap: float = MIP_REL_GAP):
    import highspy

    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", int(seed) % 2147483647)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("time_limit", float(max(0.05, time_limit)))
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


def _set_objective(h, model: LinearModel, k: int) -> None:
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
    import highspy

    t0 = time.perf_counter()
    message = ""
    h = _highs_instance(model, relax=relax, seed=seed, time_limit=time_limit, rel_gap=rel_gap)
    if max_nodes is not None and not relax:
        h.setOptionValue("mip_max_nodes", int(max_nodes))
    for k, v in (options or {}).items():
        h.setOptionValue(k, v)
    n_phases = max(1, len(model.objectives))
    shares = phase_time_shares(model.objectives)
    phases: list[PhaseResult] = []
    values: list[float] | None = list(hint) if hint is not None else None
    final_status = "unknown"
    hit = False
    iters = 0
    nodes = 0
    ms = highspy.HighsModelStatus
    for k in range(n_phases):
        if model.objectives and not run_phase(model.objectives, k, [ph.status for ph in phases]):
            continue
        if model.objectives:
            _set_objective(h, model, k)
        h.setOptionValue("time_limit", float(max(0.05, time_limit * shares[k])))
        if values is not None and not relax:
            h.setSolution(len(values), np.arange(len(values), dtype=np.int32), np.array(values, dtype=np.float64))
        ts = time.perf_counter()
        h.run()
        wall = time.perf_counter() - ts
        st = h.getModelStatus()
        info = h.getInfo()
        iters += max(0, int(info.simplex_iteration_count))
        nodes += max(0, int(info.mip_node_count)) if not relax else 0
        has_sol = info.primal_solution_status == highspy.kSolutionStatusFeasible
        if st == ms.kOptimal:
            status = "optimal"
        elif st in (ms.kInfeasible,):
            status = "infeasible"
        elif st == ms.kUnboundedOrInfeasible:
            status = "infeasible" if not has_sol else "feasible"
        elif has_sol:
            status = "feasible"
            if st == ms.kTimeLimit:
                hit = True
        else:
            status = "unknown"
            if st == ms.kTimeLimit:
                hit = True
        name = model.objectives[k].name if model.objectives else "feasibility"
        if status in ("optimal", "feasible"):
            sol = list(h.getSolution().col_value)
            # snap integer variables (HiGHS returns them within its feasibility tolerance)
            values = [float(round(x)) if v.integer and not relax else float(x) for x, v in zip(sol, model.vars)]
            obj = model.objectives[k] if model.objectives else None
            objval = obj.value(values) if obj else None
            if obj is not None and not relax:
                reported = float(info.objective_function_value)
                if not math.isfinite(reported) or abs(reported - objval) > OBJECTIVE_CHECK_TOL * max(1.0, abs(objval)):
                    message = f"HiGHS reported objective {reported:.6g} for a point of objective {objval:.6g} ({name})"
                    break
            bound = None
            if obj is not None:
                if relax:
                    bound = objval if status == "optimal" else None
                else:
                    b = info.mip_dual_bound
                    bound = float(b) if b is not None and math.isfinite(b) else None
                    if status == "optimal" and bound is None:
                        bound = objval
            phases.append(PhaseResult(name, status, objval, bound, wall, None))
            if k == 0:
                final_status = status
            if obj is not None and k + 1 < n_phases:
                idx = np.array(sorted(obj.terms), dtype=np.int32)
                val = np.array([obj.terms[i] for i in sorted(obj.terms)], dtype=np.float64)
                held = objval - obj.constant
                inf = highspy.kHighsInf
                if obj.sense == "min":
                    h.addRow(-inf, _hold_rhs(held, obj.rel_tol), len(idx), idx, val)
                else:
                    h.addRow(_hold_lhs(held, obj.rel_tol), inf, len(idx), idx, val)
        else:
            phases.append(PhaseResult(name, status, None, None, wall, None))
            if k == 0:
                final_status = status
                values = None
            break
    return SolveResult(
        solver="highs-lp" if relax else "highs",
        status=final_status,  # type: ignore[arg-type]
        values=values,
        phases=phases,
        wall_s=time.perf_counter() - t0,
        hit_wall_clock=hit,
        message=message,
        lp_iterations=iters,
        nodes=nodes,
    )


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
) -> SolveResult:
    import pulp

    t0 = time.perf_counter()
    prob = pulp.LpProblem("maestro", pulp.LpMinimize)
    xs = []
    for i, v in enumerate(model.vars):
        xs.append(
            prob.add_variable(  # PuLP >= 3.3; constructing LpVariable directly is deprecated there
                f"x{i}",
                lowBound=None if v.lb == -INF else v.lb,
                upBound=None if v.ub == INF else v.ub,
                cat=pulp.LpInteger if v.integer else pulp.LpContinuous,
            )
        )
    for j, r in enumerate(model.rows):
        expr = pulp.lpSum(c * xs[i] for i, c in zip(r.idx, r.coef))
        if r.lo == r.hi:
            prob += (expr == r.lo), f"r{j}"
        else:
            if r.lo != -INF:
                prob += (expr >= r.lo), f"r{j}l"
            if r.hi != INF:
                prob += (expr <= r.hi), f"r{j}u"
    n_phases = max(1, len(model.objectives))
    shares = phase_time_shares(model.objectives)
    values = list(hint) if hint is not None else None
    phases: list[PhaseResult] = []
    final_status = "unknown"
    hit = False
    for k in range(n_phases):
        obj = model.objectives[k] if model.objectives else None
        if obj is not None and not run_phase(model.objectives, k, [ph.status for ph in phases]):
            continue
        if obj is not None:
            sign = 1.0 if obj.sense == "min" else -1.0
            prob.setObjective(pulp.lpSum(sign * c * xs[i] for i, c in obj.terms.items()) + 0.0)
        warm = values is not None
        if warm:
            for x, v in zip(xs, values):
                x.setInitialValue(v)
        with warnings.catch_warnings():
            # PuLP 3.3 deprecates PULP_CBC_CMD for COIN_CMD + the separate `pulp[cbc]` binary
            # package; the bundled CBC is what this pin (pulp<3.4) installs everywhere, so it stays
            warnings.filterwarnings("ignore", message=".*PULP_CBC_CMD.*", category=DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, int(math.ceil(time_limit * shares[k]))), threads=1, warmStart=warm, options=[f"randomSeed {int(seed) % 2147483647 + 1}"])
        ts = time.perf_counter()
        prob.solve(solver)
        wall = time.perf_counter() - ts
        sol_status = prob.sol_status
        name = obj.name if obj else "feasibility"
        if sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            status = "optimal" if sol_status == pulp.LpSolutionOptimal else "feasible"
            if status == "feasible":
                hit = True
            values = [float(round(x.value() or 0.0)) if v.integer else float(x.value() or 0.0) for x, v in zip(xs, model.vars)]
            objval = obj.value(values) if obj else None
            phases.append(PhaseResult(name, status, objval, objval if status == "optimal" else None, wall, None))
            if k == 0:
                final_status = status
            if obj is not None and k + 1 < n_phases:
                held = objval - obj.constant
                e = pulp.lpSum(c * xs[i] for i, c in obj.terms.items())
                if obj.sense == "min":
                    prob += (e <= _hold_rhs(held, obj.rel_tol)), f"hold{k}"
                else:
                    prob += (e >= _hold_lhs(held, obj.rel_tol)), f"hold{k}"
        else:
            status = "infeasible" if prob.status == pulp.LpStatusInfeasible else "unknown"
            phases.append(PhaseResult(name, status, None, None, wall, None))
            if k == 0:
                final_status = status
                values = None
            break
    return SolveResult(
        solver="cbc",
        status=final_status,  # type: ignore[arg-type]
        values=values,
        phases=phases,
        wall_s=time.perf_counter() - t0,
        hit_wall_clock=hit,
    )

