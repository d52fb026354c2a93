"""Solve end to end and turn the solution into a Plan (maestro_plan.plan.schema).

    plan, stats = solve(inputs, settings, current_plan=None, progress=None)

Steps: build the Problem once (formulate.py; pre-checks may raise InfeasibleError), greedy warm
start (heuristic.py), LP bound (HiGHS, relaxation of the same model), column generation over
per-model plans (colgen.py: a Lagrangian bound at least the LP's, and a start picked by a small
integer master; skipped above SolveBudget.colgen_max_integer_variables), a neighbourhood search from that start
(lns.py: the model restricted to the columns' groups, then two clusters at a time re-solved with the
rest fixed; see SolveBudget.lns_min_gap and lns_pairs_max_gain for when), the chosen backend (CP-SAT from the
better start, rounded so that it is feasible in CP-SAT's integers; HiGHS; CBC; or the greedy result
itself; if CP-SAT finds nothing, HiGHS on the float model decides before anything is called
infeasible), elastic explanation if infeasibility is proven, the flow LP with every integer fixed
(exact float routing), placement on nodes (place.py), and the Plan. The plan never costs more than
the warm start, and its bound is the best of the backend's, the LP's and column generation's.
Determinism: everything is sorted, the plan holds no wall-clock figure and no timestamp (see
assemble.py for the Plan and its plan_id). Wall-clock seconds go to `stats` (the CLI writes them
to solve-stats.json). The tuning constants are in budget.py, the backends in backends.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_plan import deadline
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan
from maestro_plan.solve import explain, heuristic
from maestro_plan.solve.assemble import Outcome, build_plan
from maestro_plan.solve.backends import run_backend
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.formulate import build_problem
from maestro_plan.solve.model import Objective, PhaseResult, SolveResult, relative_gap
from maestro_plan.solve.place import PlacementError, place
from maestro_plan.solve.problem import Problem, SolveSettings


def _lex_better(objectives, a: list[float], b: list[float]) -> bool:
    """Point a is lexicographically better than b over the primary objectives (tie-breaks ignored)."""
    for o in objectives:
        if o.tie_break:
            continue
        va, vb = o.value(a), o.value(b)
        if abs(va - vb) <= 1e-9 * max(1.0, abs(va), abs(vb)):
            continue
        return _better(o, va, vb)
    return False


def _better(obj: Objective, a: float, b: float) -> bool:
    """a is a strictly better value than b for this objective's sense."""
    return a < b - 1e-12 if obj.sense == "min" else a > b + 1e-12


def _merge_bound(res: SolveResult, obj: Objective, bound: float | None) -> None:
    """Take the better of the backend's bound and an external one (decomposition, LP)."""
    if bound is None or not res.phases or res.phases[0].name != obj.name:
        return
    ph = res.phases[0]
    tighter = (bound > ph.bound) if (ph.bound is not None and obj.sense == "min") else (ph.bound is not None and bound < ph.bound)
    if ph.bound is None or tighter:
        ph.bound = bound
    if ph.objective is not None and ph.bound is not None and ph.status == "feasible":
        if abs(ph.objective - ph.bound) <= 1e-6 * max(1.0, abs(ph.objective)):
            ph.status = "optimal"
            res.status = "optimal"


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the stages hand on to each other, and the wall-clock seconds they took (stats only)."""

    prob: Problem
    stage: Callable[[str], None] | None
    timings: dict[str, float] = field(default_factory=dict)
    t: float = field(default_factory=time.perf_counter)
    hint: list[float] | None = None  # the best start so far (a feasible point of prob.lm)
    heur_obj: float | None = None
    heur_cost: float | None = None
    lp_bound: float | None = None
    dec_bound: float | None = None
    dec_start: float | None = None
    lns_cost: float | None = None
    hit_wall: bool = False  # a stage stopped on a wall-clock limit (a safety net, or the deadline's cut)

    def say(self, what: str) -> None:
        if self.stage:
            self.stage(what)

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.t, 4)
        self.t = now

    @property
    def settings(self) -> SolveSettings:
        return self.prob.settings

    @property
    def cost(self) -> Objective:
        return next(o for o in self.prob.lm.objectives if o.name == "cost")


def _warm_start(run: _Run) -> dict[int, int] | None:
    """Greedy first-fit decreasing, completed to a point by the routing LP."""
    run.say("greedy warm start")
    prob = run.prob
    counts = heuristic.greedy(prob)
    run.hint = heuristic.complete(prob, counts)
    run.heur_obj = prob.lm.objectives[0].value(run.hint) if run.hint is not None else None
    run.heur_cost = run.cost.value(run.hint) if run.hint is not None else None
    run.mark("heuristic_s")
    return counts


def _lp_bound(run: _Run) -> None:
    s = run.settings
    if s.lp_bound and s.solver != "greedy":
        from maestro_plan.solve.milp import solve_lp_relaxation

        run.lp_bound = solve_lp_relaxation(run.prob.lm, time_limit=BUDGET.lp_bound_max_s, seed=s.seed)
        run.mark("lp_bound_s")


def _column_generation(run: _Run, counts: dict[int, int] | None) -> None:
    """Column generation's bound and start, improved by the neighbourhood search where its gates
    (SolveBudget.lns_*) say so; the start replaces the hint where it is better."""
    prob, s = run.prob, run.settings
    if s.solver == "greedy" or s.objective != "cost" or prob.stats.get("integer_variables", 0) > BUDGET.colgen_max_integer_variables:
        return
    if deadline.expired("column generation"):
        return
    run.say("column generation over per-model plans")
    from maestro_plan.solve.colgen import column_generation

    dec = column_generation(prob, counts, report=run.stage)
    prob.stats["column_generation"] = dec.rounds
    prob.stats["column_generation_work"] = dec.work
    run.hit_wall |= dec.hit_wall_clock
    if dec.hit_wall_clock:
        prob.notes.append("a column-generation block stopped on its wall-clock safety cap: with another machine load the same inputs may give a different plan")
    run.dec_bound = dec.bound
    dhint = heuristic.complete(prob, dec.counts, slots=dec.slots, holds=dec.holds) if dec.counts is not None else None
    run.dec_start = run.cost.value(dhint) if dhint is not None else None
    run.mark("decompose_s")
    gap = relative_gap(run.dec_start, dec.bound, "feasible")
    if dhint is not None and gap is not None and gap > BUDGET.lns_min_gap and prob.stats.get("integer_variables", 0) <= BUDGET.max_integer_variables and not deadline.expired("neighbourhood search"):
        # above BUDGET.max_integer_variables, colgen's residual passes improve the pick instead (colgen.py, step 5)
        dhint = _neighbourhood_search(run, dec, dhint)
    obj0 = prob.lm.objectives[0]
    if dhint is not None and (run.hint is None or _better(obj0, obj0.value(dhint), obj0.value(run.hint))):
        run.hint = dhint


def _neighbourhood_search(run: _Run, dec, dhint: list[float]) -> list[float]:
    from maestro_plan.solve import lns
    from maestro_plan.solve.colgen import work_budget

    prob = run.prob
    run.say("neighbourhood search")
    bound, start_cost, budget = dec.bound, run.dec_start, work_budget(prob)

    def pairs_if(cost: float) -> bool:
        left = relative_gap(cost, bound, "feasible")
        return left is not None and left > BUDGET.lns_min_gap and dec.work <= budget and cost > (1.0 - BUDGET.lns_pairs_max_gain) * start_cost

    search = lns.improve(prob, dhint, columns=(dec.column_groups, dec.column_options), pairs_if=pairs_if, report=run.stage)
    if search is not None:
        prob.stats["neighbourhood_search_sub_mips"] = search.neighbourhoods
        run.hit_wall |= search.hit_wall_clock
        if search.hit_wall_clock:
            prob.notes.append("a neighbourhood-search sub-MIP stopped on its wall-clock safety cap: with another machine load the same inputs may give a different plan")
        if search.counts is not None:
            point = heuristic.complete(prob, search.counts, slots=search.slots, holds=search.holds)
            if point is not None and run.cost.value(point) < run.cost.value(dhint):
                dhint = point
                run.lns_cost = run.cost.value(point)
    run.mark("neighbourhood_search_s")
    return dhint


def _greedy_result(run: _Run) -> tuple[SolveResult, str]:
    prob = run.prob
    if run.hint is None:
        raise explain.elastic(prob)
    obj = prob.lm.objectives[0].value(run.hint)
    return SolveResult("greedy", "feasible", run.hint, [PhaseResult(prob.lm.objectives[0].name, "feasible", obj, None)]), "heuristic"


def _backend_result(run: _Run, progress: Callable | None) -> tuple[SolveResult, str]:
    """The chosen backend from the best start (or the start itself, see SolveBudget
    .cpsat_after_cg_max_integer_variables), with the external bounds merged in; HiGHS decides
    where CP-SAT found nothing."""
    prob, s, hint = run.prob, run.settings, run.hint
    run.say(f"solving with {s.solver}")
    obj0 = prob.lm.objectives[0]
    if s.solver == "cpsat" and run.dec_start is not None and hint is not None and prob.stats.get("integer_variables", 0) > BUDGET.cpsat_after_cg_max_integer_variables:
        result = SolveResult("cpsat", "feasible", hint, [PhaseResult(obj0.name, "feasible", obj0.value(hint), None)])
        prob.notes.append(f"CP-SAT skipped: above {BUDGET.cpsat_after_cg_max_integer_variables:,} integer variables it has not improved a column-generation start within its budget")
    elif hint is not None and deadline.expired(s.solver):
        result = SolveResult(s.solver, "feasible", hint, [PhaseResult(obj0.name, "feasible", obj0.value(hint), None)])
    else:
        result = run_backend(prob, hint, progress)
        run.hit_wall |= result.hit_wall_clock
    _merge_bound(result, obj0, run.dec_bound)
    _merge_bound(result, obj0, run.lp_bound)
    status = result.status
    if result.values is None and hint is None and s.solver == "cpsat":
        result, status = _highs_fallback(run, result)
    if status == "infeasible" and hint is None:
        raise explain.elastic(prob)
    if result.values is None or status == "infeasible":
        # CP-SAT's integer rounding can lose a point that exists in floats; the warm start is
        # feasible for the float model, so it is used rather than reporting infeasibility
        if hint is None:
            raise explain.elastic(prob, proved=False, limit_s=s.time_limit_s)
        result.values = hint
        status = "feasible"
        ph = result.phases[0] if result.phases else None
        if ph is not None:
            ph.objective = obj0.value(hint)
            ph.status = "feasible"
        prob.notes.append(f"{s.solver} found no better solution within its work budget; the warm start (greedy or decomposition) is used")
    elif hint is not None and _lex_better(prob.lm.objectives, hint, result.values):
        result.values = hint  # never return worse than the warm start
        for ph in result.phases:
            o = next((o for o in prob.lm.objectives if o.name == ph.name), None)
            if o is not None:
                ph.objective = o.value(hint)
    return result, ("feasible" if status == "unknown" else status)


def _highs_fallback(run: _Run, result: SolveResult) -> tuple[SolveResult, str]:
    """CP-SAT found nothing (its conservative integer rounding can even make a tight but feasible
    model infeasible): HiGHS on the float model decides."""
    from maestro_plan.solve.milp import solve_highs

    prob, s = run.prob, run.settings
    obj0 = prob.lm.objectives[0]
    fb = solve_highs(prob.lm, time_limit=max(5.0, s.time_limit_s), seed=s.seed)
    if fb.values is not None:
        _merge_bound(fb, obj0, run.dec_bound)
        _merge_bound(fb, obj0, run.lp_bound)
        prob.notes.append("CP-SAT found no plan in its work budget; this one is HiGHS' on the float model (a wall-clock limit: the result may depend on machine load)")
        return fb, fb.status
    return result, ("infeasible" if fb.status == "infeasible" else "unknown")


def _placed_plan(run: _Run, result: SolveResult, status: str, current_plan) -> Plan:
    """Replica counts from the solution, exact routing (the flow LP with every integer fixed),
    placement on nodes, and the Plan."""
    run.say("routing and placement")
    prob = run.prob
    values = result.values
    assert values is not None
    counts = {gi: int(round(values[vi])) for gi, vi in prob.v.n.items() if round(values[vi]) > 0}
    slots = {ti: int(round(values[vi])) for ti, vi in prob.v.slot.items() if round(values[vi]) > 0}
    holds = {oi: int(round(values[vi])) for oi, vi in prob.v.hold.items() if round(values[vi]) > 0 and prob.standby_options[oi].slot in slots}
    pol = heuristic.polish(prob, heuristic.fixed_values(prob, counts, slots, holds))
    if pol.values is None:  # pragma: no cover - the solver's point is feasible for this LP
        raise RuntimeError("internal error: the routing LP has no solution for the solver's replica counts")
    placed = place(prob, counts, slots, current_plan)
    run.mark("place_s")
    cut = deadline.note(run.hit_wall)
    if cut is not None:
        prob.notes.append(cut)
    plan = build_plan(prob, pol.values, placed=placed, holds=holds, outcome=Outcome(result, status, run.heur_obj, run.lp_bound))
    run.mark("plan_s")
    return plan


PLACE_REPAIR_ROUNDS = 3  # re-solves when the exact packing of co-located engines overflows a pool (count, not time)


def _place_with_repair(run: _Run, result: SolveResult, status: str, current_plan, progress) -> tuple[Plan, SolveResult]:
    """Place the solution; where the byte-exact packing of a pool's co-located engines needs more
    GPUs than the pool has (the solver counted them by aggregate rows, formulate.add_inventory),
    lower that pool's GPU bound by the shortfall and solve again, at most PLACE_REPAIR_ROUNDS
    times. The re-solved model is a restriction, so the first solve's bound (valid for the
    unrestricted problem) is the one reported, and the plan is at most `feasible`."""
    bound = result.phases[0].bound if result.phases else None
    for k in range(PLACE_REPAIR_ROUNDS + 1):
        try:
            return _placed_plan(run, result, status, current_plan), result
        except PlacementError as e:
            if k == PLACE_REPAIR_ROUNDS or e.pool < 0 or run.settings.solver == "greedy" or e.pool not in run.prob.v.gpus:
                raise
            var = run.prob.lm.vars[run.prob.v.gpus[e.pool]]
            used = round(result.values[run.prob.v.gpus[e.pool]]) if result.values is not None else int(var.ub)
            var.ub = float(max(0, min(var.ub, used - (e.needed - run.prob.pools[e.pool].gpus))))
            run.prob.notes.append(f"placement: the exact packing of {run.prob.pools[e.pool].key} needed {e.needed} GPUs; re-solved with at most {int(var.ub)} counted there")
            run.hint = None  # the start may break the lowered bound
            result, status = _backend_result(run, progress)
            status = "feasible" if status == "optimal" else status
            if result.phases and bound is not None:
                result.phases[0].bound = bound if result.phases[0].bound is None else min(bound, result.phases[0].bound)
    raise AssertionError("unreachable")  # pragma: no cover


def _stats(run: _Run, plan: Plan, result: SolveResult, t0: float) -> dict[str, Any]:
    s = run.settings
    run.timings["total_s"] = round(time.perf_counter() - t0, 4)
    return {
        "solver": s.solver,
        "status": plan.solve.status,
        "objective": plan.solve.objective,
        "bound": plan.solve.bound,
        "gap": plan.solve.gap,
        "cost_per_hour": plan.cost_per_hour,
        "heuristic_cost_per_hour": run.heur_cost,
        "lp_bound": run.lp_bound,
        "decomposition_bound": run.dec_bound,
        "decomposition_start_cost": run.dec_start,
        "neighbourhood_search_cost": run.lns_cost,
        "deterministic_time": result.deterministic_time,
        "hit_wall_clock": result.hit_wall_clock,
        "phases": [
            {"name": p.name, "status": p.status, "objective": p.objective, "bound": p.bound, "wall_s": round(p.wall_s, 4), "deterministic_time": p.deterministic_time}
            for p in result.phases
        ],
        "timings": run.timings,
        "model": dict(sorted(run.prob.stats.items())),
        "settings": {"time_limit_s": s.time_limit_s, "seed": s.seed, "workers": s.workers},
    }


def solve(
    inputs: Inputs,
    settings: SolveSettings,
    *,
    current_plan=None,
    progress: Callable[[str, float, float], None] | None = None,
    stage: Callable[[str], None] | None = None,
    dump_model: str | Path | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """Solve end to end: (Plan, stats with wall-clock timings for solve-stats.json). `dump_model`:
    write the model of the final solve there (dump.py: .mps or .pb.txt), to reproduce it outside."""
    t0 = time.perf_counter()
    if stage:
        stage("building the model")
    run = _Run(build_problem(inputs, settings, current_plan=current_plan), stage, t=t0)
    run.mark("formulate_s")
    counts = _warm_start(run)
    _lp_bound(run)
    _column_generation(run, counts)
    result, status = _greedy_result(run) if settings.solver == "greedy" else _backend_result(run, progress)
    run.mark("solve_s")
    if dump_model is not None:
        from maestro_plan.solve.dump import dump_model as dump

        dump(run.prob.lm, dump_model, seed=settings.seed)
    plan, result = _place_with_repair(run, result, status, current_plan, progress)
    return plan, _stats(run, plan, result, t0)
