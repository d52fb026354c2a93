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
4. Start: the blocks' solutions, priced by lambda, often fit together. If they do not, up to
   LAGRANGE_ROUNDS subgradient rounds raise the price of over-used pools and re-solve only the
   blocks that use them (prices only rise, so the other blocks stay optimal and every round gives
   a valid bound; the best is kept). What still conflicts (or uses swap slots) is repaired by
   re-solving those models one after the other, most constrained first, against what the others
   left (standby is then left to the full solve).
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
BLOCK_MAX_NODES = 2000  # deterministic work limit per block (its dual bound still counts)
MAX_INTEGER_VARIABLES = 20000  # above this the full model skips the decomposition (see planner.py)
LAGRANGE_ROUNDS = 0  # subgradient rounds on over-used pools before the sequential repair. Measured on
# `maestro-plan synth --gpus 1000 --models 40 --workflows 8 --seed 1`: 0 rounds start $905.8/h,
# 1 round $922.9/h, 3 rounds $933.1/h, with the same bound; so none by default
LAGRANGE_STEP = 0.5  # price increase per round: step x GPU-share price x relative over-use


@dataclass
class Decomposition:
    bound: float | None  # valid lower bound of the cost objective (None if not computed)
    lp_bound: float | None
    counts: dict[int, int] | None  # replica counts per group of a feasible start (None if none)
    exact_fit: bool  # the priced blocks' own optima fit together
    wall_s: float
    blocks: int


def _prices(prob: Problem, standby: bool = True) -> tuple[float | None, dict[int, float], dict[tuple[int, int], float], dict[str, float]]:
    """LP of the fractional full model; duals of its shared rows (as non-negative prices)."""
    import numpy as np

    from maestro_plan.solve.milp import _highs_instance, _set_objective

    lm, v = build_model(prob, Scope(fractional=True, tie_break=False, standby=standby))
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
    return lm, v, solve_highs(lm, time_limit=BLOCK_WALL_CAP_S, seed=seed, rel_gap=BLOCK_REL_GAP, max_nodes=BLOCK_MAX_NODES)


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


def _const(prob: Problem, unit, cut, budget) -> float:
    """sum of lambda x capacity over the dualised rows."""
    const = sum(lam * prob.pools[pi].units for pi, lam in unit.items())
    for (pi, t), lam in cut.items():
        p = prob.pools[pi]
        const += lam * p.node_count * (p.gpus_per_node // t) * t
    for c in prob.inputs.inventory.clusters:
        if c.name in budget and c.budget_per_hour is not None:
            const += budget[c.name] * c.budget_per_hour
    return const


def _scope(m: str, unit, cut, budget) -> Scope:
    return Scope(models=frozenset([m]), fractional=True, standby=True, slot_cost_share=1.0 / STANDBY_MAX_MODELS, tie_break=False, unit_price=unit, cut_price=cut, budget_price=budget)


def decompose(prob: Problem) -> Decomposition:
    t0 = time.perf_counter()
    s = prob.settings
    models = sorted({d.model for d in prob.demands})
    if s.objective != "cost" or not models:
        return Decomposition(None, None, None, False, 0.0, 0)
    lp, unit, cut, budget = _prices(prob)
    if lp is None:
        return Decomposition(None, None, None, False, time.perf_counter() - t0, 0)
    cut0, budget0 = cut, budget
    unit0 = dict(unit)
    val: dict[str, float | None] = {}
    got: dict[str, dict[int, int] | None] = {}
    slot: dict[str, bool] = {}
    todo = list(models)
    best_bound: float | None = None
    for it in range(LAGRANGE_ROUNDS + 1):
        jobs = [(m, _scope(m, unit, cut, budget)) for m in todo]
        for m, (v_, g_, s_) in zip(todo, _run_blocks(prob, jobs)):
            val[m], got[m], slot[m] = v_, g_, s_
        if all(val[m] is not None for m in models):
            b = math.fsum(val[m] for m in models) - _const(prob, unit, cut, budget)  # type: ignore[misc]
            best_bound = b if best_bound is None else max(best_bound, b)
        counts = {gi: n for m in models for gi, n in (got[m] or {}).items()}
        complete = all(got[m] is not None for m in models)
        standby_used = any(slot.values())
        if complete and not standby_used and counts and fits(prob, counts):
            bound = None if best_bound is None else max(lp, best_bound)
            return Decomposition(bound, lp, counts, True, time.perf_counter() - t0, len(models))
        if it == LAGRANGE_ROUNDS:
            break
        # subgradient step on the over-used pools only (prices only rise, so a block that uses
        # none of them keeps its optimum and need not be solved again)
        units, _ = _usage(prob, counts)
        raised = set()
        for pi, u in sorted(units.items()):
            p = prob.pools[pi]
            if u > p.units:
                step = LAGRANGE_STEP * p.price_per_gpu_hour / UNITS_PER_GPU * (u - p.units) / p.units
                unit = {**unit, pi: unit.get(pi, 0.0) + step}
                raised.add(pi)
        if not raised:
            break
        todo = [m for m in models if got[m] is None or any(prob.groups[gi].pool in raised for gi in (got[m] or {}))]
    bound = None if best_bound is None else max(lp, best_bound)
    # the start uses no swap slot (the full solve may add them): blocks that chose one are solved
    # again without standby, at the same prices
    slot_models = sorted(m for m in models if slot.get(m))
    if slot_models:
        jobs = [(m, Scope(models=frozenset([m]), fractional=True, standby=False, tie_break=False, unit_price=unit0, cut_price=cut0, budget_price=budget0)) for m in slot_models]
        for m, (_v, g_, _s) in zip(slot_models, _run_blocks(prob, jobs)):
            got[m] = g_
    # repair: keep the blocks that touch no over-used resource, re-solve the others in turn
    per_model = {m: set((got[m] or {}).keys()) for m in models if got[m] is not None}
    counts = {gi: n for m in models for gi, n in (got[m] or {}).items()}
    if all(got[m] is not None for m in models) and counts and fits(prob, counts):
        return Decomposition(bound, lp, counts, False, time.perf_counter() - t0, len(models))
    keep, redo = _conflicts(prob, models, counts, per_model, set())
    seq = _sequential(prob, redo, unit0, cut0, budget0, {gi: n for gi, n in counts.items() if prob.candidates[prob.groups[gi].cand].model in keep})
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
