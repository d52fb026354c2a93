"""Solve stage: candidates, the integer program, solver backends, placement, the Plan.

Public API:

    solve(inputs, settings, *, current_plan=None, progress=None, stage=None) -> (Plan, stats)
    SolveSettings                      the knobs (objective, solver, time_limit_s, seed, headroom, ...)
    build_problem(inputs, settings)    the typed candidate table + LinearModel (formulate.py)
    greedy(problem) / column_generation(problem, start)   warm starts and bounds
    solve_cpsat / solve_highs / solve_cbc  backends for any LinearModel

Modules: model (solver-neutral LinearModel, the lexicographic driver), problem (typed candidate
table), formulate (inputs + estimator -> Problem; the model one constraint family per function),
budget (tuning constants), backends (registry: cpsat / highs / cbc), heuristic (first-fit
decreasing), decompose (per-model blocks), colgen (column generation: Lagrangian bound and
integer-master start), lns (neighbourhood search), cpsat / milp (backends), place (nodes and GPU
indices), explain (infeasibility), assemble (the Plan and its plan_id), dump (--dump-model),
planner (the stages). Constraint family names: maestro_plan.plan.families.
"""

from maestro_plan.solve.problem import Problem, SolveSettings


def solve(inputs, settings, **kw):  # noqa: ANN001, ANN003 - thin re-export, see planner.solve
    from maestro_plan.solve.planner import solve as _solve

    return _solve(inputs, settings, **kw)


def build_problem(inputs, settings, **kw):  # noqa: ANN001, ANN003
    from maestro_plan.solve.formulate import build_problem as _build

    return _build(inputs, settings, **kw)


__all__ = ["Problem", "SolveSettings", "build_problem", "solve"]
