"""Per-model blocks of the placement model: the pieces column generation (colgen.py) is built from.

The placement model couples models only through shared resources: GPUs of a pool, node-shape
cuts, cluster budgets, and swap slots. Everything else (replica counts per configuration,
routing, zones, change penalty) belongs to one model. Here:

- `lp_prices`: the LP relaxation of the model with GPU shares paid per replica (price x units / 8,
  which is what the LP of the full model pays too) and the duals of its shared rows: lambda_p per
  GPU unit of pool p, per GPU of each node-shape cut, per $ of each budget cap. They price the
  first round of blocks.
- `run_blocks`: every model's block (formulate.build_model with a Scope of one model, paying
  price x share (1 + lambda_budget) + lambda_p x units (+ cut prices) per replica) solved as a
  small MILP by HiGHS, in forked workers, results in input order (deterministic).
- `usage` / `fits`: what replica counts take of the shared resources, and whether they fit.
- `repair`: when no combination of block plans fits, the conflicting models are re-solved one
  after the other against what the others left, the one that finds no room moved first.

Bound (Lagrangian): for prices lambda >= 0, the sum of the blocks' optima (their dual bounds when a
block is not closed) minus the priced capacities is a valid lower bound: every full plan, split per
model, is feasible for the blocks, pays at least their optima, and uses at most the capacities.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from maestro_plan.plan.families import Family
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.formulate import Scope, build_model
from maestro_plan.solve.problem import UNITS_PER_GPU, Problem, pool_gpus_needed

BLOCK_REL_GAP = 1e-4  # blocks stop at 0.01%: the bound adds each block's dual bound, so it stays valid


@dataclass
class Decomposition:
    bound: float | None  # valid lower bound of the cost objective (None if not computed)
    lp_bound: float | None
    counts: dict[int, int] | None  # replica counts per group of a feasible start (None if none)
    rounds: int  # rounds of block solves
    slots: dict[int, int] | None = None  # swap slots of the start (slot type -> 1)
    holds: dict[int, int] | None = None  # standby options held in them (option -> 1)
    hit_wall_clock: bool = False  # a block's wall-clock safety cap fired (result may depend on load)
    work: int = 0  # HiGHS simplex iterations + BUDGET.cg_node_work x nodes spent (deterministic)
    column_groups: frozenset[int] = frozenset()  # replica groups some column uses (colgen.py)
    column_options: frozenset[int] = frozenset()  # standby options some column holds


def lp_prices(prob: Problem, standby: bool = True) -> tuple[float | None, dict[int, float], dict[tuple[int, int], float], dict[str, float]]:
    """LP of the fractional full model; duals of its shared rows (as non-negative prices)."""
    import numpy as np

    from maestro_plan.solve.milp import highs_instance, set_objective

    lm, v = build_model(prob, Scope(fractional=True, tie_break=False, standby=standby))
    lm.objectives = [o for o in lm.objectives if o.name == "cost"]
    h = highs_instance(lm, relax=True, seed=prob.settings.seed, time_limit=60.0)
    set_objective(h, lm, 0)
    h.run()
    import highspy

    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, {}, {}, {}
    duals = np.array(h.getSolution().row_dual)
    obj = float(h.getInfo().objective_function_value)
    unit: dict[int, float] = {}
    cut: dict[tuple[int, int], float] = {}
    budget: dict[str, float] = {}
    for j, r in enumerate(lm.rows):
        lam = max(0.0, -float(duals[j]))  # a binding <= row of a minimisation has a dual <= 0
        if lam <= 1e-12:
            continue
        if r.family == Family.INVENTORY and r.key[0] == "cut":
            _, pi, t = r.key
            cut[(pi, t)] = lam
        elif r.family == Family.INVENTORY:
            unit[r.key[1]] = lam
        elif r.family == Family.BUDGET:
            budget[r.key[1]] = lam
    return obj, unit, cut, budget


def _block(prob: Problem, scope: Scope, seed: int):
    from maestro_plan.solve.milp import solve_highs

    lm, v = build_model(prob, scope)
    return lm, v, solve_highs(lm, time_limit=BUDGET.block_wall_cap_s, seed=seed, rel_gap=BLOCK_REL_GAP, max_nodes=BUDGET.block_max_nodes)


_SHARED: Problem | None = None  # the problem, inherited by forked block workers


def _worker(job):
    assert _SHARED is not None
    _m, scope, seed, fn = job
    return fn(_SHARED, scope, seed)


def run_blocks(prob: Problem, jobs: list[tuple[str, object]], fn, min_parallel: int = 4) -> list:
    """Solve the blocks with `fn(prob, job, seed)` (a module-level function, so that forked
    workers can run it), in `workers` forked processes where the platform allows and there are
    at least `min_parallel` jobs (each block is deterministic, and results are collected in input
    order, so the outcome does not depend on scheduling)."""
    global _SHARED
    workers = max(1, int(prob.settings.workers))
    seed = prob.settings.seed
    if workers > 1 and len(jobs) >= min_parallel:
        import multiprocessing as mp

        try:
            ctx = mp.get_context("fork")
        except ValueError:
            ctx = None
        if ctx is not None:
            from concurrent.futures import ProcessPoolExecutor

            from maestro_plan.lifetime import die_with_parent

            _SHARED = prob
            try:
                # die_with_parent: a killed solve (or a killed sweep's Ray worker) takes its block workers with it
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent) as ex:
                    return list(ex.map(_worker, [(m, sc, seed, fn) for m, sc in jobs], chunksize=1))  # one block per task: block times vary 50x
            except Exception:  # pragma: no cover - e.g. fork refused in a sandbox: run in-process
                pass
            finally:
                _SHARED = None
    return [fn(prob, sc, seed) for _, sc in jobs]


def usage(prob: Problem, counts: dict[int, int]):
    units: dict[int, int] = defaultdict(int)
    cut: dict[tuple[int, int], int] = defaultdict(int)
    for gi, n in counts.items():
        if n <= 0:
            continue
        g = prob.groups[gi]
        c = prob.candidates[g.cand]
        units[g.pool] += n * c.units
        t = 2
        while t <= c.tp:
            cut[(g.pool, t)] += n * c.tp
            t *= 2
    return units, cut


def _overused(prob: Problem, counts: dict[int, int]) -> tuple[set[int], set[str]]:
    """Pools whose GPUs or node-shape cuts, and budget-capped clusters whose $/h, these replica
    counts exceed (whole GPUs per pool)."""
    units, cut = usage(prob, counts)
    need = pool_gpus_needed(prob, counts)  # GPUs by the inventory rows (DFF rows included)
    bad_pools = {pi for pi, n in need.items() if n > prob.pools[pi].gpus}
    for (pi, t), used in cut.items():
        p = prob.pools[pi]
        if p.gpus_per_node % t and used > p.cut_capacity(t):
            bad_pools.add(pi)
    spend: dict[str, float] = defaultdict(float)
    for pi, n in need.items():
        spend[prob.pools[pi].cluster] += n * prob.pools[pi].price_per_gpu_hour
    bad_clusters = {c.name for c in prob.inputs.inventory.clusters if c.budget_per_hour is not None and spend.get(c.name, 0.0) > c.budget_per_hour + 1e-9}
    return bad_pools, bad_clusters


def fits(prob: Problem, counts: dict[int, int]) -> bool:
    """Do these replica counts fit the inventory (whole GPUs per pool, node-shape cuts, budgets)?"""
    bad_pools, bad_clusters = _overused(prob, counts)
    return not bad_pools and not bad_clusters


def cut_rows(prob: Problem) -> list[tuple[int, int]]:
    """(pool, t) of every node-shape cut of the inventory (Pool.cut_sizes)."""
    return [(p.index, t) for p in prob.pools for t in p.cut_sizes]


def priced_capacity(prob: Problem, unit, cut, budget) -> float:
    """sum of lambda x capacity over the dualised rows."""
    const = sum(lam * prob.pools[pi].units for pi, lam in unit.items())
    for (pi, t), lam in cut.items():
        p = prob.pools[pi]
        const += lam * p.cut_capacity(t)
    for c in prob.inputs.inventory.clusters:
        if c.name in budget and c.budget_per_hour is not None:
            const += budget[c.name] * c.budget_per_hour
    return const


def repair(prob: Problem, keep: set[str], redo: list[str], counts: dict[int, int], unit, cut, budget) -> dict[int, int] | None:
    """Re-solve the `redo` models in turn against what the kept ones use. A model that finds no
    room goes first next time, and kept models using any pool it could use join the re-solved
    ones (up to BUDGET.repair_attempts times)."""
    keep = set(keep)
    first: list[str] = []
    model_of = {gi: prob.candidates[prob.groups[gi].cand].model for gi in counts}
    pools_of: dict[str, set[int]] = defaultdict(set)
    for g in prob.groups:
        pools_of[prob.candidates[g.cand].model].add(g.pool)
    used_pools: dict[str, set[int]] = defaultdict(set)
    for gi in counts:
        used_pools[model_of[gi]].add(prob.groups[gi].pool)
    for _ in range(BUDGET.repair_attempts):
        fixed = {gi: n for gi, n in counts.items() if model_of[gi] in keep}
        seq, failed = _sequential(prob, list(redo), unit, cut, budget, fixed, first=first)
        if seq is not None:
            return seq
        if failed is None:
            return None
        evict = sorted(m for m in keep if used_pools[m] & pools_of[failed])
        if first and first[0] == failed and not evict:
            return None  # it finds no room even first, against the re-solved models only
        keep -= set(evict)
        redo = sorted(set(redo) | set(evict))
        first = [failed] + [m for m in first if m != failed]
    return None


def conflicts(prob: Problem, models: list[str], counts: dict[int, int], per_model: dict[str, set[int]]) -> tuple[set[str], list[str]]:
    """Models whose block solution uses an over-used pool, cut or budget, or that have none."""
    bad_pools, bad_clusters = _overused(prob, counts)
    redo = []
    keep = set()
    for m in models:
        pools_m = {prob.groups[gi].pool for gi in per_model.get(m, ())}
        if m not in per_model or pools_m & bad_pools or {prob.pools[pi].cluster for pi in pools_m} & bad_clusters:
            redo.append(m)
        else:
            keep.add(m)
    return keep, redo


def _sequential(prob: Problem, models: list[str], unit, cut_price, budget_price, fixed: dict[int, int] | None = None, first: list[str] | None = None) -> tuple[dict[int, int] | None, str | None]:
    """Models one after the other (`first`, then fewest pools first, then largest), each against
    what is left by `fixed` and the models before it. Returns (counts, None), or (None, the model
    that found no room)."""
    npools: dict[str, set[int]] = defaultdict(set)
    load: dict[str, float] = defaultdict(float)
    for g in prob.groups:
        npools[prob.candidates[g.cand].model].add(g.pool)
    for d in prob.demands:
        load[d.model] += d.rate_rps * d.provision_factor
    order = sorted(models, key=lambda m: (len(npools[m]), -load[m], m))
    order = [m for m in (first or []) if m in order] + [m for m in order if m not in (first or [])]
    seq: dict[int, int] = dict(fixed or {})
    caps = {c.name: c.budget_per_hour for c in prob.inputs.inventory.clusters if c.budget_per_hour is not None}
    for m in order:
        units, cut = usage(prob, seq)
        units_left = {p.index: p.units - units.get(p.index, 0) for p in prob.pools}
        cut_left = {(pi, t): prob.pools[pi].cut_capacity(t) - cut.get((pi, t), 0) for pi, t in cut_rows(prob)}
        spend: dict[str, float] = defaultdict(float)
        for pi, u in units.items():
            p = prob.pools[pi]
            # whole GPUs already paid, plus one more GPU per pool of margin for this model's slices
            spend[p.cluster] += (math.ceil(u / UNITS_PER_GPU) + 1) * p.price_per_gpu_hour
        scope = Scope(
            models=frozenset([m]),
            units_left=units_left,
            cut_left=cut_left,
            budget_left={c: b - spend.get(c, 0.0) for c, b in caps.items()},
            fractional=True,
            standby=False,
            tie_break=False,
            unit_price=unit,
            cut_price=cut_price,
            budget_price=budget_price,
        )
        lm, v, res = _block(prob, scope, prob.settings.seed)
        if res.values is None:
            return None, m
        for gi, vi in v.n.items():
            n = int(round(res.values[vi]))
            if n > 0:
                seq[gi] = n
    return (seq, None) if fits(prob, seq) else (None, None)
