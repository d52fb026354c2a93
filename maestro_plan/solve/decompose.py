"""Per-model Lagrangian decomposition: a lower bound at least as strong as the LP's, and a
strong starting plan, from one LP and one tiny MILP per model.

The placement model couples models only through shared resources: GPUs of a pool, node-shape
cuts, cluster budgets, and swap slots. Everything else (replica counts per configuration,
routing, zones, change penalty) belongs to one model. So:

1. Solve the LP relaxation of the model with GPU shares paid per replica (price x units / 8,
   which is what the LP of the full model pays too) and read the duals of the shared rows:
   lambda_p per GPU unit of pool p, per GPU of each node-shape cut, per $ of each budget cap.
2. Dualise those rows: each model's block pays price x share (1 + lambda_budget) + lambda_p x
   units (+ cut prices) per replica, and 1/STANDBY_MAX_MODELS of that for a swap slot (a slot
   serves at most that many models); solve every block as a MILP (HiGHS, tens of integers each).
3. Bound: L(lambda) = sum of block optima (their dual bounds when a block is not closed) - sum of
   lambda x capacity. It is a valid lower bound for any lambda >= 0 (every full solution restricted
   to a model is feasible for its block, pays at least the block's cost, and uses no more than the
   capacity), and with the LP's lambda it is at least the LP bound, because each block keeps the
   integrality of its replica counts and zone spread, where the LP loses most.
4. Start: the blocks' solutions, priced by lambda, usually fit together; if they do not (or use
   swap slots), models are re-solved one after the other, most constrained first, against what
   the previous ones left (standby is then left to the full solve).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from maestro_plan.solve.formulate import STANDBY_MAX_MODELS, Scope, build_model
from maestro_plan.solve.problem import UNITS_PER_GPU, Problem

BLOCK_WALL_CAP_S = 10.0
BLOCK_REL_GAP = 1e-4  # blocks stop at 0.01%: the bound adds each block's dual bound, so it stays valid


@dataclass
class Decomposition:
    bound: float | None  # valid lower bound of the cost objective (None if not computed)
    lp_bound: float | None
    counts: dict[int, int] | None  # replica counts per group of a feasible start (None if none)
    exact_fit: bool  # the priced blocks' own optima fit together
    wall_s: float
    blocks: int


def _prices(prob: Problem) -> tuple[float | None, dict[int, float], dict[tuple[int, int], float], dict[str, float]]:
    """LP of the fractional full model; duals of its shared rows (as non-negative prices)."""
    import numpy as np

    from maestro_plan.solve.milp import _highs_instance, _set_objective

    lm, v = build_model(prob, Scope(fractional=True, tie_break=False))
    lm.objectives = [o for o in lm.objectives if o.name == "cost"]
    h = _highs_instance(lm, relax=True, seed=prob.settings.seed, time_limit=60.0)
    _set_objective(h, lm, 0)
    h.run()
    import highspy

    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, {}, {}, {}
    duals = np.array(h.getSolution().row_dual)
    obj = float(h.getInfo().objective_function_value)
    unit: dict[int, float] = {}
    cut: dict[tuple[int, int], float] = {}
    budget: dict[str, float] = {}
    by_key = {p.key: p.index for p in prob.pools}
    for j, r in enumerate(lm.rows):
        lam = max(0.0, -float(duals[j]))  # a binding <= row of a minimisation has a dual <= 0
        if lam <= 1e-12:
            continue
        if r.family == "inventory":
            name = r.name[len("inventory[") : -1]
            if "/tp>=" in name:
                pk, t = name.split("/tp>=")
                cut[(by_key[pk], int(t))] = lam
            else:
                unit[by_key[name]] = lam
        elif r.family == "budget":
            budget[r.name[len("budget[") : -1]] = lam
    return obj, unit, cut, budget


def _block(prob: Problem, scope: Scope, seed: int):
    from maestro_plan.solve.milp import solve_highs

    lm, v = build_model(prob, scope)
    return lm, v, solve_highs(lm, time_limit=BLOCK_WALL_CAP_S, seed=seed, rel_gap=BLOCK_REL_GAP)


_SHARED: Problem | None = None  # the problem, inherited by forked block workers


def _block_result(prob: Problem, scope: Scope, seed: int) -> tuple[float | None, dict[int, int] | None, bool]:
    """(bound contribution, replica counts, uses a swap slot) of one block."""
    lm, v, res = _block(prob, scope, seed)
    val = res.bound if res.bound is not None else (res.objective if res.status == "optimal" else None)
    if res.values is None:
        return val, None, False
    got = {gi: int(round(res.values[vi])) for gi, vi in v.n.items() if round(res.values[vi]) > 0}
    return val, got, any(res.values[vi] > 0.5 for vi in v.slot.values())


def _worker(job: tuple[str, Scope, int]) -> tuple[float | None, dict[int, int] | None, bool]:
    assert _SHARED is not None
    return _block_result(_SHARED, job[1], job[2])


def _run_blocks(prob: Problem, jobs: list[tuple[str, Scope]]) -> list[tuple[float | None, dict[int, int] | None, bool]]:
    """Solve the blocks, in `workers` forked processes where the platform allows (each block is
    deterministic, and results are collected in input order, so the outcome does not depend on
    scheduling)."""
    global _SHARED
    workers = max(1, int(prob.settings.workers))
    seed = prob.settings.seed
    if workers > 1 and len(jobs) >= 4:
        import multiprocessing as mp

        try:
            ctx = mp.get_context("fork")
        except ValueError:
            ctx = None
        if ctx is not None:
            from concurrent.futures import ProcessPoolExecutor

            _SHARED = prob
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                    return list(ex.map(_worker, [(m, sc, seed) for m, sc in jobs], chunksize=max(1, len(jobs) // (4 * workers))))
            except Exception:  # pragma: no cover - e.g. fork refused in a sandbox: run in-process
                pass
            finally:
                _SHARED = None
    return [_block_result(prob, sc, seed) for _, sc in jobs]


def _usage(prob: Problem, counts: dict[int, int]):
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


def fits(prob: Problem, counts: dict[int, int]) -> bool:
    """Do these replica counts fit the inventory (whole GPUs per pool, node-shape cuts, budgets)?"""
    units, cut = _usage(prob, counts)
    spend: dict[str, float] = defaultdict(float)
    for pi, u in units.items():
        p = prob.pools[pi]
        if u > p.units:
            return False
        spend[p.cluster] += math.ceil(u / UNITS_PER_GPU) * p.price_per_gpu_hour
    for (pi, t), used in cut.items():
        p = prob.pools[pi]
        if p.gpus_per_node % t and used > p.node_count * (p.gpus_per_node // t) * t:
            return False
    for c in prob.inputs.inventory.clusters:
        if c.budget_per_hour is not None and spend.get(c.name, 0.0) > c.budget_per_hour + 1e-9:
            return False
    return True


def decompose(prob: Problem) -> Decomposition:
    t0 = time.perf_counter()
    s = prob.settings
    models = sorted({d.model for d in prob.demands})
    if s.objective != "cost" or not models:
        return Decomposition(None, None, None, False, 0.0, 0)
    lp, unit, cut, budget = _prices(prob)
    if lp is None:
        return Decomposition(None, None, None, False, time.perf_counter() - t0, 0)
    const = sum(lam * prob.pools[pi].units for pi, lam in unit.items())
    for (pi, t), lam in cut.items():
        p = prob.pools[pi]
        const += lam * p.node_count * (p.gpus_per_node // t) * t
    for c in prob.inputs.inventory.clusters:
        if c.name in budget and c.budget_per_hour is not None:
            const += budget[c.name] * c.budget_per_hour
    total: float | None = 0.0
    counts: dict[int, int] = {}
    standby_used = False
    complete = True
    per_model: dict[str, set[int]] = defaultdict(set)
    slot_models: set[str] = set()
    jobs = [(m, Scope(models=frozenset([m]), fractional=True, standby=True, slot_cost_share=1.0 / STANDBY_MAX_MODELS, tie_break=False, unit_price=unit, cut_price=cut, budget_price=budget)) for m in models]
    for m, (val, got, slot) in zip(models, _run_blocks(prob, jobs)):
        if val is None or total is None:
            total = None
        else:
            total += val
        if got is None:
            complete = False
            continue
        for gi, n in got.items():
            counts[gi] = n
            per_model[m].add(gi)
        if slot:
            standby_used = True
            slot_models.add(m)
    bound = None if total is None else max(lp, total - const)
    if complete and not standby_used and counts and fits(prob, counts):
        return Decomposition(bound, lp, counts, True, time.perf_counter() - t0, len(models))
    # repair: keep the blocks that touch no over-used resource, re-solve the others in turn
    keep, redo = _conflicts(prob, models, counts, per_model, slot_models)
    seq = _sequential(prob, redo, unit, cut, budget, {gi: n for gi, n in counts.items() if prob.candidates[prob.groups[gi].cand].model in keep})
    return Decomposition(bound, lp, seq, False, time.perf_counter() - t0, len(models))


def _conflicts(prob: Problem, models: list[str], counts: dict[int, int], per_model: dict[str, set[int]], slot_models: set[str]) -> tuple[set[str], list[str]]:
    """Models whose block solution uses an over-used pool, cut or budget (or a swap slot)."""
    units, cut = _usage(prob, counts)
    bad_pools = {pi for pi, u in units.items() if u > prob.pools[pi].units}
    for (pi, t), used in cut.items():
        p = prob.pools[pi]
        if p.gpus_per_node % t and used > p.node_count * (p.gpus_per_node // t) * t:
            bad_pools.add(pi)
    spend: dict[str, float] = defaultdict(float)
    for pi, u in units.items():
        spend[prob.pools[pi].cluster] += math.ceil(u / UNITS_PER_GPU) * prob.pools[pi].price_per_gpu_hour
    bad_clusters = {c.name for c in prob.inputs.inventory.clusters if c.budget_per_hour is not None and spend.get(c.name, 0.0) > c.budget_per_hour + 1e-9}
    redo = []
    keep = set()
    for m in models:
        pools_m = {prob.groups[gi].pool for gi in per_model.get(m, ())}
        if m in slot_models or m not in per_model or pools_m & bad_pools or {prob.pools[pi].cluster for pi in pools_m} & bad_clusters:
            redo.append(m)
        else:
            keep.add(m)
    return keep, redo


def _sequential(prob: Problem, models: list[str], unit, cut_price, budget_price, fixed: dict[int, int] | None = None) -> dict[int, int] | None:
    """Models one after the other (fewest pools first, then largest), each against what is left
    by `fixed` and the models before it."""
    npools: dict[str, set[int]] = defaultdict(set)
    load: dict[str, float] = defaultdict(float)
    for g in prob.groups:
        npools[prob.candidates[g.cand].model].add(g.pool)
    for d in prob.demands:
        load[d.model] += d.rate_rps * d.provision_factor
    order = sorted(models, key=lambda m: (len(npools[m]), -load[m], m))
    seq: dict[int, int] = dict(fixed or {})
    caps = {c.name: c.budget_per_hour for c in prob.inputs.inventory.clusters if c.budget_per_hour is not None}
    for m in order:
        units, cut = _usage(prob, seq)
        units_left = {p.index: p.units - units.get(p.index, 0) for p in prob.pools}
        cut_left = {}
        for p in prob.pools:
            t = 2
            while t <= p.gpus_per_node:
                if p.gpus_per_node % t:
                    cut_left[(p.index, t)] = p.node_count * (p.gpus_per_node // t) * t - cut.get((p.index, t), 0)
                t *= 2
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
            return None
        for gi, vi in v.n.items():
            n = int(round(res.values[vi]))
            if n > 0:
                seq[gi] = n
    return seq if fits(prob, seq) else None
