"""Large-neighbourhood search on a feasible plan: the whole model restricted to what column
generation's columns use, then the replica counts of two clusters at a time with the rest fixed.

Column generation (colgen.py) picks one plan per model, and each model's plan was priced alone:
what it cannot see is how replicas that take a fraction of a GPU pack together, and how a model
that must span failure domains can trade a replica in one zone for one in another. On synth
1,000 GPUs the plans it picks are locally optimal for every single cluster and every single GPU
type, but not for pairs of clusters: seed 2, $814.58/h -> $809.46/h by re-packing A100 slices over
the three zones of eu-west-1 while one interactive model moves a replica to us-east-1.

Each neighbourhood is a sub-MIP of the full model in its flow-free form (formulate.routing_rows).
The columns' neighbourhood: every replica group and standby option some column uses is free,
the others are 0, so plans may mix parts of several columns of a model (the integer master picks
one whole column per model, and priced columns conflict where capacity is tight: synth 1,000
GPUs seed 8, $1,186.49/h -> $1,129.50/h). A pair's neighbourhood: the replica counts of the
groups in its pools are free, every other count and every standby choice is fixed. GPUs per pool,
zones and standby routing follow. HiGHS solves it
from the current plan with a node limit (its root heuristics found every improvement measured, at
SolveBudget.lns_max_nodes = 1), in forked workers, results taken in neighbourhood order (deterministic). A
pass tries every pair of clusters from the same plan and keeps the cheapest result; passes repeat
while one improves, at most SolveBudget.lns_passes times. Where it runs is the planner's choice
(SolveBudget.lns_min_gap and the work gate beside it, budget.py): a pass takes 1.3-3.4 s on synth 1,000 GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations

from maestro_plan import deadline
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.decompose import run_blocks
from maestro_plan.solve.formulate import Scope, build_model
from maestro_plan.solve.model import LinearModel
from maestro_plan.solve.problem import Problem

LNS_REL_GAP = 1e-4


@dataclass
class Search:
    counts: dict[int, int] | None  # the better plan's replica counts (None: none found)
    slots: dict[int, int] | None
    holds: dict[int, int] | None
    cost: float  # $/h of the cost objective (the change penalty included) of the best plan
    start_cost: float
    neighbourhoods: int  # sub-MIPs solved
    hit_wall_clock: bool  # a sub-MIP stopped on BUDGET.lns_wall_cap_s: the result may depend on machine load


def neighbourhoods(prob: Problem) -> list[tuple[str, frozenset[int]]]:
    """(name, pool indices): every pair of clusters; one cluster or two: the whole fleet."""
    clusters = sorted({p.cluster for p in prob.pools})
    if len(clusters) <= 2:
        return [("+".join(clusters), frozenset(p.index for p in prob.pools))]
    return [(f"{a}+{b}", frozenset(p.index for p in prob.pools if p.cluster in (a, b))) for a, b in combinations(clusters, 2)]


def _sub(prob: Problem, job, seed: int):
    """One neighbourhood's sub-MIP: (values or None, its objective, hit the wall-clock cap).
    job: (model, variables fixed at x, variables fixed at 0, x, node limit)."""
    from maestro_plan.solve.milp import solve_highs

    lm0, fixed, zero, x, nodes = job
    vs = [replace(v, lb=x[i], ub=x[i]) if i in fixed else (replace(v, lb=0.0, ub=0.0) if i in zero else v) for i, v in enumerate(lm0.vars)]
    lm = LinearModel(vs, lm0.rows, lm0.objectives[:1], {})
    res = solve_highs(lm, time_limit=BUDGET.lns_wall_cap_s, seed=seed, hint=x, max_nodes=nodes, rel_gap=LNS_REL_GAP)
    return res.values, res.objective, res.hit_wall_clock


def improve(
    prob: Problem,
    point: list[float],
    *,
    columns: tuple[frozenset[int], frozenset[int]] | None = None,
    pairs_if: Callable[[float], bool] | None = None,
    report: Callable[[str], None] | None = None,
) -> Search | None:
    """Search for a cheaper plan than `point` (a feasible point of prob.lm, the cost objective);
    None when not searched (another objective). `columns`: (replica groups, standby options) that
    column generation's columns use: first the whole model restricted to them (any mix of the
    columns' parts, BUDGET.lns_column_nodes nodes). Then the pairs of clusters, if `pairs_if(cost so far)`
    says so (default: always) and there are at most BUDGET.lns_max_clusters clusters."""
    if prob.settings.objective != "cost":
        return None
    hoods = neighbourhoods(prob) if len({p.cluster for p in prob.pools}) <= BUDGET.lns_max_clusters else []
    lm0, v = build_model(prob, Scope(aggregate_routing=True, tie_break=False))
    index = [prob.lm.index_of(var.key) for var in lm0.vars]  # the same variable in the full model
    x = [point[i] if i is not None else 0.0 for i in index]
    cost = lm0.objectives[0]
    start = best = cost.value(x)
    standby = set(v.hold.values()) | set(v.slot.values())
    solved = 0
    hit = False
    if columns is not None:
        groups, options = columns
        slots = {prob.standby_options[oi].slot for oi in options} | {ti for ti, vi in v.slot.items() if x[vi] > 0.5}
        zero = (
            frozenset(vi for gi, vi in v.n.items() if gi not in groups and x[vi] < 0.5)
            | frozenset(vi for oi, vi in v.hold.items() if oi not in options and x[vi] < 0.5)
            | frozenset(vi for ti, vi in v.slot.items() if ti not in slots)
        )
        vals, obj, h = _sub(prob, (lm0, frozenset(), zero, x, BUDGET.lns_column_nodes), prob.settings.seed)
        solved += 1
        hit |= h
        if vals is not None and obj is not None and obj < best - 1e-6 * max(1.0, abs(best)):
            x, best = vals, cost.value(vals)
        if report is not None:
            report(f"neighbourhood search: the columns' groups, ${best:,.2f}/h")
    if (pairs_if is not None and not pairs_if(best)) or (hoods and deadline.expired("neighbourhood search pairs")):
        hoods = []
    for p in range(BUDGET.lns_passes if hoods else 0):
        jobs = []
        for name, pools in hoods:
            fixed = standby | {vi for gi, vi in v.n.items() if prob.groups[gi].pool not in pools}
            jobs.append((name, (lm0, fixed, frozenset(), x, BUDGET.lns_max_nodes)))
        # largest sub-MIP first, so that two workers finish together (results are read in this
        # order, which depends on the inputs only)
        jobs.sort(key=lambda j: (len(j[1][1]), j[0]))
        found = None
        for (name, _job), (vals, obj, h) in zip(jobs, run_blocks(prob, jobs, fn=_sub, min_parallel=2)):
            solved += 1
            hit |= h
            if vals is not None and obj is not None and obj < best - 1e-6 * max(1.0, abs(best)) and (found is None or obj < found[1]):
                found = (vals, obj, name)
        if report is not None:
            report(f"neighbourhood search: pass {p + 1}, {len(jobs)} sub-MIPs, ${(found[1] if found else best):,.2f}/h")
        if found is None:
            break
        x, best = found[0], cost.value(found[0])
    if best >= start - 1e-6 * max(1.0, abs(start)):
        return Search(None, None, None, start, start, solved, hit)
    counts = {gi: int(round(x[vi])) for gi, vi in v.n.items() if round(x[vi]) > 0}
    slots = {ti: 1 for ti, vi in v.slot.items() if x[vi] > 0.5}
    holds = {oi: 1 for oi, vi in v.hold.items() if x[vi] > 0.5}
    return Search(counts, slots, holds, best, start, solved, hit)

