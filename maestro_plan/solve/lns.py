"""Large-neighbourhood search on a feasible plan: re-solve the replica counts of two clusters at a
time with everything else fixed.

Column generation (colgen.py) picks one plan per model, and each model's plan was priced alone:
what it cannot see is how replicas that take a fraction of a GPU pack together, and how a model
that must span failure domains can trade a replica in one zone for one in another. On synth
1,000 GPUs the plans it picks are locally optimal for every single cluster and every single GPU
type, but not for pairs of clusters: seed 2, $814.58/h -> $809.46/h by re-packing A100 slices over
the three zones of eu-west-1 while one interactive model moves a replica to us-east-1.

Each neighbourhood is a sub-MIP of the full model in its flow-free form (formulate.routing_rows):
the replica counts of the groups in the neighbourhood's pools are free, every other count and
every standby choice is fixed, GPUs per pool, zones and standby routing follow. HiGHS solves it
from the current plan with a node limit (its root heuristics found every improvement measured, at
LNS_MAX_NODES = 1), in forked workers, results taken in neighbourhood order (deterministic). A
pass tries every pair of clusters from the same plan and keeps the cheapest result; passes repeat
while one improves, at most LNS_PASSES times. Where it runs is the planner's choice
(planner.LNS_MIN_GAP and the work gate beside it): a pass takes 1.3-3.4 s on synth 1,000 GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

from maestro_plan.solve.decompose import _run_blocks
from maestro_plan.solve.formulate import Scope, build_model
from maestro_plan.solve.model import LinearModel, Var
from maestro_plan.solve.problem import Problem

LNS_MAX_NODES = 1  # root node only: on synth 1,000 GPUs seeds 0-3 every improvement came from HiGHS'
# root heuristics; 10 or 50 nodes found the same plans, later
LNS_PASSES = 1  # a second pass from the improved plan gained only on synth 1,000 GPUs seed 3
# ($1,628.84/h -> $1,626.54/h, of seeds 0-3) and took 2.6-3.0 s more
LNS_WALL_CAP_S = 20.0  # safety net only (a sub-MIP's root took 0.1-4.3 s on synth 1,000 GPUs)
LNS_REL_GAP = 1e-4
LNS_MAX_CLUSTERS = 4  # above, the pairs (6 at 4 clusters) would take longer than the rest of the solve


@dataclass
class Search:
    counts: dict[int, int] | None  # the better plan's replica counts (None: none found)
    slots: dict[int, int] | None
    holds: dict[int, int] | None
    cost: float  # $/h of the cost objective (the change penalty included) of the best plan
    start_cost: float
    neighbourhoods: int  # sub-MIPs solved
    hit_wall_clock: bool  # a sub-MIP stopped on LNS_WALL_CAP_S: the result may depend on machine load


def neighbourhoods(prob: Problem) -> list[tuple[str, frozenset[int]]]:
    """(name, pool indices): every pair of clusters; one cluster or two: the whole fleet."""
    clusters = sorted({p.cluster for p in prob.pools})
    if len(clusters) <= 2:
        return [("+".join(clusters), frozenset(p.index for p in prob.pools))]
    return [(f"{a}+{b}", frozenset(p.index for p in prob.pools if p.cluster in (a, b))) for a, b in combinations(clusters, 2)]


def _sub(prob: Problem, job, seed: int):
    """One neighbourhood's sub-MIP: (values or None, its objective, hit the wall-clock cap)."""
    from maestro_plan.solve.milp import solve_highs

    lm0, fixed, x = job
    vs = [Var(v.name, x[i], x[i], v.integer, v.resolution, v.family) if i in fixed else v for i, v in enumerate(lm0.vars)]
    lm = LinearModel(vs, lm0.rows, lm0.objectives[:1], {})
    res = solve_highs(lm, time_limit=LNS_WALL_CAP_S, seed=seed, hint=x, max_nodes=LNS_MAX_NODES, rel_gap=LNS_REL_GAP)
    return res.values, res.objective, res.hit_wall_clock


def improve(prob: Problem, point: list[float], *, report: Callable[[str], None] | None = None) -> Search | None:
    """Search for a cheaper plan than `point` (a feasible point of prob.lm, the cost objective);
    None when not searched (another objective, or more than LNS_MAX_CLUSTERS clusters)."""
    hoods = neighbourhoods(prob)
    if prob.settings.objective != "cost" or len({p.cluster for p in prob.pools}) > LNS_MAX_CLUSTERS:
        return None
    lm0, v = build_model(prob, Scope(aggregate_routing=True, tie_break=False))
    index = {var.name: i for i, var in enumerate(prob.lm.vars)}
    x = [point[index[var.name]] if var.name in index else 0.0 for var in lm0.vars]
    cost = lm0.objectives[0]
    start = best = cost.value(x)
    standby = set(v.hold.values()) | set(v.slot.values())
    solved = 0
    hit = False
    for p in range(LNS_PASSES):
        jobs = []
        for name, pools in hoods:
            fixed = standby | {vi for gi, vi in v.n.items() if prob.groups[gi].pool not in pools}
            jobs.append((name, (lm0, fixed, x)))
        # largest sub-MIP first, so that two workers finish together (results are read in this
        # order, which depends on the inputs only)
        jobs.sort(key=lambda j: (len(j[1][1]), j[0]))
        found = None
        for (name, _job), (vals, obj, h) in zip(jobs, _run_blocks(prob, jobs, fn=_sub, min_parallel=2)):
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

