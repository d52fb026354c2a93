"""The registry of solver backends: every name the CLI, the plan's settings and the planner know.

A backend solves the problem's linear model lexicographically from a start point (model.py's
`lexicographic` driver does the phases; each backend solves one phase). `greedy` is not a
backend: it is the warm start on its own (planner.py).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.model import SolveResult
from maestro_plan.solve.problem import Problem


class SolverName(StrEnum):
    cpsat = "cpsat"
    highs = "highs"
    cbc = "cbc"
    greedy = "greedy"


SOLVER_NAMES = tuple(s.value for s in SolverName)


class Backend(Protocol):
    def __call__(self, prob: Problem, hint: list[float] | None, progress: Callable | None) -> SolveResult: ...


def _cpsat(prob: Problem, hint: list[float] | None, progress: Callable | None) -> SolveResult:
    from maestro_plan.solve import heuristic
    from maestro_plan.solve.cpsat import solve_cpsat

    s = prob.settings
    start = heuristic.cpsat_hint(prob, hint) or hint
    share = BUDGET.cpsat_share if prob.stats.get("integer_variables", 0) <= BUDGET.max_integer_variables else BUDGET.cpsat_share_large
    if prob.stats.get("column_generation"):
        share = BUDGET.cpsat_share_after_cg
    return solve_cpsat(prob.lm, time_limit=share * s.time_limit_s, seed=s.seed, workers=s.workers, hint=start, progress=progress)


def _node_limit(prob: Problem) -> tuple[int, float]:
    """(branch-and-bound nodes, far wall-clock safety cap in seconds) of a HiGHS or CBC final solve
    (SolveBudget.backend_nodes_per_s): the node count stops it, so the plan does not depend on load."""
    t = prob.settings.time_limit_s
    return max(1, int(BUDGET.backend_nodes_per_s * t)), BUDGET.backend_wall_cap_factor * t + BUDGET.backend_wall_cap_s


def _highs(prob: Problem, hint: list[float] | None, progress: Callable | None) -> SolveResult:
    from maestro_plan.solve.milp import solve_highs

    nodes, wall = _node_limit(prob)
    return solve_highs(prob.lm, time_limit=wall, seed=prob.settings.seed, hint=hint, max_nodes=nodes)


def _cbc(prob: Problem, hint: list[float] | None, progress: Callable | None) -> SolveResult:
    from maestro_plan.solve.milp import solve_cbc

    nodes, wall = _node_limit(prob)
    return solve_cbc(prob.lm, time_limit=wall, seed=prob.settings.seed, hint=hint, max_nodes=nodes)


BACKENDS: dict[SolverName, Backend] = {SolverName.cpsat: _cpsat, SolverName.highs: _highs, SolverName.cbc: _cbc}


def run_backend(prob: Problem, hint: list[float] | None, progress: Callable | None = None) -> SolveResult:
    """Solve prob.lm with the backend its settings name, from `hint`."""
    try:
        backend = BACKENDS[SolverName(prob.settings.solver)]
    except (ValueError, KeyError):
        raise ValueError(f"unknown solver {prob.settings.solver!r}; known: {', '.join(SOLVER_NAMES)}") from None
    return backend(prob, hint, progress)
