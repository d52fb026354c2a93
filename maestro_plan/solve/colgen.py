"""Column generation over per-model plans (Dantzig-Wolfe on the decomposition of decompose.py):
the strongest bound of that decomposition, and a start chosen by a small integer program.

A *column* is one model's whole configuration: its replica counts per group (so its routing,
zones and change penalty are settled inside the column), with what it uses of the shared
resources (GPU units per pool, GPUs per node-shape cut, $/h per budget-capped cluster).

1. Columns to start from: the greedy plan and the decomposition blocks at the duals of the LP
   relaxation, split per model.
2. Restricted master LP: choose a convex combination of columns per model within the shared
   capacities (with priced elastic slack on the capacity rows, so that it always solves). Its
   duals price the shared resources; every model's block (decompose.py, a small MILP) is solved
   at those prices and its optimum joins the columns. Prices are smoothed towards the best
   prices seen so far (Wentges), which damps the usual oscillation of column generation.
   The rounds are a fixed number (CG_ROUNDS, or until no block finds a better column): the
   work does not depend on the machine, so the result is deterministic.
3. Swap slots (warm standby) are shared too: the master owns a 0/1 variable K per slot type
   (paid at the slot's GPU share, counted in its pool's inventory), and three rows per slot type
   price what a model's column takes of it: busy time (sum <= K), models held (sum <= 4 K) and
   host DRAM (sum <= cap x K). A block pays those prices for its standby flows and holds; its own
   slot variable is free (the master pays for the slot).
4. Bound: every round's prices give a Lagrangian bound, L = sum of block optima - priced
   capacities + sum over pools of min(0, cheapest reduced cost of opening a swap slot there). It
   is valid for any non-negative prices, because every row priced is implied by the full model's
   rows (busy <= k, holds <= k and <= 4, DRAM <= cap), so any full plan split per model is feasible
   for the blocks and pays at least L.
5. Start: the master as an integer program (one column per model, whole GPUs per pool, slots 0/1,
   node-shape cuts and budget caps exact), solved by HiGHS with a node limit. The columns of an LP-optimal
   combination are seldom the cheapest integer combination on their own; the smoothed rounds
   leave a spread of near-optimal columns from which the integer master picks.

Measured (benchmarks/results/solver_scale.md, synth 1,000 GPUs / 40 models, 10 s): on seed 1 the
gap fell from 6.4 % (per-model decomposition alone) to 3.7 %; with more rounds than the 10 s work
budget allows (8 rounds, about 17 s) it reaches $959/h over a bound of $948/h (1.1 %), where HiGHS
on the full model reached $962.8/h after 170 s. The rounds are the slow part: each solves every
model's block (tens of milliseconds each).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

from maestro_plan.solve.decompose import BLOCK_MAX_NODES, BLOCK_REL_GAP, BLOCK_WALL_CAP_S, Decomposition, _const, _prices, _run_blocks, _usage, fits
from maestro_plan.solve.formulate import GIB, STANDBY_DRAM_FRACTION, STANDBY_MAX_MODELS, Scope, build_model
from maestro_plan.solve.model import LinearModel
from maestro_plan.solve.problem import UNITS_PER_GPU, Problem

CG_ROUNDS = 8  # at most this many master LP -> block rounds after the first (LP-dual) round
CG_SHARE = 0.35  # share of --time-limit the rounds may spend (the standby round, the integer master
# and CP-SAT take most of the rest)
CG_ITERATIONS_PER_S = 10000  # HiGHS simplex iterations per second and worker in the blocks, measured
# on the benchmark machine (2 cores, synth 1,000 GPUs seed 0: 47,626 iterations in 4.83 s)
CG_SMOOTHING = 0.5  # Wentges smoothing: prices = a x best-bound prices + (1 - a) x master duals
CG_REL_TOL = 1e-4  # stop when the master LP is within this of the best Lagrangian bound
MASTER_MAX_NODES = 20000  # deterministic branch-and-bound limit of the integer master
MASTER_WALL_CAP_S = 30.0  # safety net only
ELASTIC_PRICE = 100.0  # master LP slack on shared rows: x the dearest GPU's $/h per GPU unit

Prices = tuple[dict[int, float], dict[tuple[int, int], float], dict[str, float], dict[int, tuple[float, float, float]]]


@dataclass
class Column:
    model: str
    counts: dict[int, int]
    units: dict[int, int]
    cut: dict[tuple[int, int], int]
    gpu_cost: float  # price x GPU share ($/h, fractional GPUs)
    change_cost: float  # change penalty against the plan in force ($/h)
    spend: dict[str, float]  # $/h per cluster (fractional GPUs)
    holds: dict[int, int] = field(default_factory=dict)  # standby option -> 1
    slot_use: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # slot type -> (busy, models, GiB)


@dataclass
class _Columns:
    cols: dict[str, list[Column]] = field(default_factory=lambda: defaultdict(list))
    seen: set = field(default_factory=set)

    def add(self, prob: Problem, model: str, counts: dict[int, int] | None, holds: dict[int, int] | None = None, slot_use: dict | None = None) -> bool:
        if counts is None:
            return False
        key = (model, tuple(sorted(counts.items())), tuple(sorted((holds or {}).items())))
        if key in self.seen:
            return False
        self.seen.add(key)
        self.cols[model].append(_column(prob, model, counts, holds or {}, slot_use or {}))
        return True


def _cut_rows(prob: Problem) -> list[tuple[int, int]]:
    out = []
    for p in prob.pools:
        t = 2
        while t <= p.gpus_per_node:
            if p.gpus_per_node % t:
                out.append((p.index, t))
            t *= 2
    return out


def _column(prob: Problem, model: str, counts: dict[int, int], holds: dict[int, int], slot_use: dict) -> Column:
    units, cut = _usage(prob, counts)
    gpu_cost = 0.0
    spend: dict[str, float] = defaultdict(float)
    for pi, u in units.items():
        p = prob.pools[pi]
        c = p.price_per_gpu_hour * u / UNITS_PER_GPU
        gpu_cost += c
        spend[p.cluster] += c
    change = 0.0
    w = prob.settings.change_weight
    if w > 0 and prob.current:
        tot: dict[tuple[int, int], int] = defaultdict(int)
        for gi, n in counts.items():
            g = prob.groups[gi]
            tot[(g.cand, g.pool)] += n
        offered = {(g.cand, g.pool) for g in prob.groups if prob.candidates[g.cand].model == model}
        for k in sorted(offered & (set(prob.current) | set(tot))):
            change += w * abs(tot.get(k, 0) - prob.current.get(k, 0))
    return Column(model, dict(counts), dict(units), dict(cut), gpu_cost, change, dict(spend), dict(holds), dict(slot_use))


def _split(prob: Problem, counts: dict[int, int]) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for gi, n in counts.items():
        if n > 0:
            out[prob.candidates[prob.groups[gi].cand].model][gi] = n
    return out


def _slot_capacity(prob: Problem, t: int) -> tuple[float, float]:
    """(models, GiB of host DRAM) one swap slot of type t may hold."""
    return float(STANDBY_MAX_MODELS), STANDBY_DRAM_FRACTION * prob.pools[prob.slot_types[t].pool].host_dram_bytes / GIB


def _master(prob: Problem, cols: _Columns, models: list[str], *, integer: bool):
    """The restricted master: an LP with priced elastic slack on every shared row (so that it
    always solves and its duals are bounded), or the exact integer program (whole GPUs, 0/1 slots)."""
    lm = LinearModel()
    w: dict[tuple[str, int], int] = {}
    shared: dict[int, tuple[str, object]] = {}  # row index -> (kind, key) for the duals
    cost: dict[int, float] = defaultdict(float)
    dear = max((p.price_per_gpu_hour / UNITS_PER_GPU for p in prob.pools), default=1.0)
    for m in models:
        for k, _c in enumerate(cols.cols[m]):
            w[(m, k)] = lm.var(f"w[{m}#{k}]", 0, 1, integer=integer)
    for m in models:
        lm.eq(f"convexity[{m}]", "master", {w[(m, k)]: 1.0 for k in range(len(cols.cols[m]))}, 1.0)
    slot_ts = sorted({t for m in models for c in cols.cols[m] for t in c.slot_use})
    K = {t: lm.var(f"K[{prob.slot_types[t].key}]", 0, 1, integer=integer) for t in slot_ts}

    def row(name: str, terms: dict[int, float], hi: float, kind: str, key: object, slack_price: float) -> None:
        if not integer:
            e = lm.var(f"slack[{name}]", 0, math.inf)
            terms[e] = -1.0
            cost[e] += slack_price
            shared[len(lm.rows)] = (kind, key)
        lm.le(name, "master", terms, hi)

    gvars: dict[int, int] = {}
    for p in prob.pools:
        terms = {w[(m, k)]: float(c.units[p.index]) for m in models for k, c in enumerate(cols.cols[m]) if c.units.get(p.index)}
        terms.update({K[t]: float(prob.slot_types[t].units) for t in slot_ts if prob.slot_types[t].pool == p.index})
        if not terms:
            continue
        if integer:
            g = lm.var(f"G[{p.key}]", 0, p.gpus, integer=True)
            gvars[p.index] = g
            terms[g] = -float(UNITS_PER_GPU)
            cost[g] += p.price_per_gpu_hour
            lm.le(f"inventory[{p.key}]", "inventory", terms, 0.0)
        else:
            row(f"inventory[{p.key}]", terms, float(p.units), "unit", p.index, ELASTIC_PRICE * dear)
        p_slots = [t for t in slot_ts if prob.slot_types[t].pool == p.index]
        if p_slots:
            row(f"slots[{p.key}]", {K[t]: 1.0 for t in p_slots}, 1.0, "-", p.index, ELASTIC_PRICE * dear * UNITS_PER_GPU)
    for pi, t in _cut_rows(prob):
        p = prob.pools[pi]
        terms = {w[(m, k)]: float(c.cut[(pi, t)]) for m in models for k, c in enumerate(cols.cols[m]) if c.cut.get((pi, t))}
        terms.update({K[st]: float(prob.slot_types[st].tp) for st in slot_ts if prob.slot_types[st].pool == pi and prob.slot_types[st].tp >= t})
        if terms:
            row(f"inventory[{p.key}/tp>={t}]", terms, float(p.node_count * (p.gpus_per_node // t) * t), "cut", (pi, t), ELASTIC_PRICE * dear * UNITS_PER_GPU)
    for t in slot_ts:
        models_cap, dram_cap = _slot_capacity(prob, t)
        for j, (kind, cap) in enumerate((("busy", 1.0), ("held", models_cap), ("dram", dram_cap))):
            terms = {w[(m, k)]: c.slot_use[t][j] for m in models for k, c in enumerate(cols.cols[m]) if t in c.slot_use and c.slot_use[t][j] > 0}
            if terms:
                terms[K[t]] = -cap
                row(f"slot_{kind}[{prob.slot_types[t].key}]", terms, 0.0, kind, t, ELASTIC_PRICE * dear * UNITS_PER_GPU)
    for c in sorted(prob.inputs.inventory.clusters, key=lambda c: c.name):
        if c.budget_per_hour is None:
            continue
        if integer:
            terms = {gvars[p.index]: p.price_per_gpu_hour for p in prob.pools if p.cluster == c.name and p.index in gvars}
        else:
            terms = {w[(m, k)]: col.spend[c.name] for m in models for k, col in enumerate(cols.cols[m]) if col.spend.get(c.name)}
            for t in slot_ts:
                p = prob.pools[prob.slot_types[t].pool]
                if p.cluster == c.name:
                    terms[K[t]] = p.price_per_gpu_hour * prob.slot_types[t].units / UNITS_PER_GPU
        if terms:
            row(f"budget[{c.name}]", terms, float(c.budget_per_hour), "budget", c.name, ELASTIC_PRICE)
    for (m, k), vi in w.items():
        col = cols.cols[m][k]
        cost[vi] += col.change_cost + (0.0 if integer else col.gpu_cost)
    if not integer:
        for t in slot_ts:
            st = prob.slot_types[t]
            cost[K[t]] += prob.pools[st.pool].price_per_gpu_hour * st.units / UNITS_PER_GPU
    lm.objective("cost", "min", dict(cost))
    return lm, w, K, shared


def _master_duals(prob: Problem, cols: _Columns, models: list[str]) -> tuple[float, Prices] | None:
    """(master LP value, prices of the shared rows) or None."""
    import highspy
    import numpy as np

    from maestro_plan.solve.milp import _highs_instance, _set_objective

    lm, _w, _K, shared = _master(prob, cols, models, integer=False)
    h = _highs_instance(lm, relax=True, seed=prob.settings.seed, time_limit=MASTER_WALL_CAP_S)
    _set_objective(h, lm, 0)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    duals = np.array(h.getSolution().row_dual)
    unit: dict[int, float] = {}
    cut: dict[tuple[int, int], float] = {}
    budget: dict[str, float] = {}
    slot: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for j, (kind, ref) in shared.items():
        lam = max(0.0, -float(duals[j]))  # a binding <= row of a minimisation has a dual <= 0
        if lam <= 1e-12:
            continue
        if kind == "unit":
            unit[ref] = lam  # type: ignore[index]
        elif kind == "cut":
            cut[ref] = lam  # type: ignore[index]
        elif kind == "budget":
            budget[ref] = lam  # type: ignore[index]
        elif kind in ("busy", "held", "dram"):
            slot[ref][("busy", "held", "dram").index(kind)] = lam  # type: ignore[index]
    return float(h.getInfo().objective_function_value), (unit, cut, budget, {t: (a, b, c) for t, (a, b, c) in sorted(slot.items())})


def _mix(a: float, x: dict, y: dict) -> dict:
    out = {}
    for k in sorted(set(x) | set(y), key=repr):
        xv, yv = x.get(k, 0.0), y.get(k, 0.0)
        if isinstance(xv, tuple) or isinstance(yv, tuple):
            xt = xv if isinstance(xv, tuple) else (0.0, 0.0, 0.0)
            yt = yv if isinstance(yv, tuple) else (0.0, 0.0, 0.0)
            out[k] = tuple(a * p + (1.0 - a) * q for p, q in zip(xt, yt))
        elif a * xv + (1.0 - a) * yv > 1e-12:
            out[k] = a * xv + (1.0 - a) * yv
    return out


def _scope(m: str, pr: Prices, standby: bool) -> Scope:
    unit, cut, budget, slot = pr
    return Scope(models=frozenset([m]), fractional=True, standby=standby, slot_cost_share=0.0, tie_break=False, unit_price=unit, cut_price=cut, budget_price=budget, slot_price=slot)


def _block(prob: Problem, scope: Scope, seed: int):
    """(bound contribution, replica counts, holds, slot use, simplex iterations) of one priced block."""
    from maestro_plan.solve.milp import solve_highs

    lm, v = build_model(prob, scope)
    res = solve_highs(lm, time_limit=BLOCK_WALL_CAP_S, seed=seed, rel_gap=BLOCK_REL_GAP, max_nodes=BLOCK_MAX_NODES)
    val = res.bound if res.bound is not None else (res.objective if res.status == "optimal" else None)
    if res.values is None:
        return val, None, None, None, res.lp_iterations
    x = res.values
    counts = {gi: int(round(x[vi])) for gi, vi in v.n.items() if round(x[vi]) > 0}
    holds = {oi: 1 for oi, vi in v.hold.items() if x[vi] > 0.5}
    use: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    h = prob.settings.headroom
    for ai, vi in v.sflow.items():
        a = prob.standby_arcs[ai]
        o = prob.standby_options[a.option]
        if o.index in holds and x[vi] > 0:
            d = prob.demands[a.demand]
            use[o.slot][0] += x[vi] * d.rate_rps * d.provision_factor * (1.0 + h) * a.busy_s_per_request
    for oi in holds:
        o = prob.standby_options[oi]
        use[o.slot][1] += 1.0
        use[o.slot][2] += o.weight_bytes / GIB
    return val, counts, holds, {t: tuple(u) for t, u in sorted(use.items())}, res.lp_iterations


def _slot_base(prob: Problem, t, unit, cut, budget) -> float:
    """What opening a swap slot of type t costs at these prices ($/h)."""
    p = prob.pools[t.pool]
    rc = p.price_per_gpu_hour * t.units / UNITS_PER_GPU * (1.0 + budget.get(p.cluster, 0.0)) + unit.get(p.index, 0.0) * t.units
    c = 2
    while c <= t.tp:
        rc += cut.get((p.index, c), 0.0) * t.tp
        c *= 2
    return rc


def _default_slot_prices(prob: Problem, pr: Prices, known: set[int]) -> Prices:
    """Slot types the master has no row for yet are priced as shared by STANDBY_MAX_MODELS models
    (each model held pays a quarter of the slot): the K term of the bound is then zero for them,
    which is the plain per-model decomposition's bound."""
    unit, cut, budget, slot = pr
    slot = dict(slot)
    for t in prob.slot_types:
        if t.index not in known:
            slot[t.index] = (0.0, _slot_base(prob, t, unit, cut, budget) / STANDBY_MAX_MODELS, 0.0)
    return unit, cut, budget, slot


def _slot_term(prob: Problem, pr: Prices) -> float:
    """sum over pools of min(0, the cheapest reduced cost of opening one of its swap slots)."""
    unit, cut, budget, slot = pr
    best: dict[int, float] = {}
    for t in prob.slot_types:
        rc = _slot_base(prob, t, unit, cut, budget)
        models_cap, dram_cap = _slot_capacity(prob, t.index)
        sb, sh, sd = slot.get(t.index, (0.0, 0.0, 0.0))
        rc -= sb + sh * models_cap + sd * dram_cap
        best[t.pool] = min(best.get(t.pool, 0.0), rc)
    return math.fsum(best.values())


def work_budget(prob: Problem) -> int:
    """Simplex iterations the rounds may spend: CG_SHARE of --time-limit at CG_ITERATIONS_PER_S
    per worker (at most 2 counted). A count of work, not seconds, so that the number of rounds,
    and so the plan, does not depend on the machine's load."""
    s = prob.settings
    return int(CG_SHARE * s.time_limit_s * CG_ITERATIONS_PER_S * max(1, min(2, int(s.workers))))


def column_generation(prob: Problem, start: dict[int, int] | None = None, *, rounds: int = CG_ROUNDS, work_limit: int | None = None) -> Decomposition:
    """Bound and start for the cost objective (see the module docstring). `start`: replica counts
    of a feasible plan (the greedy one) whose per-model parts seed the columns. Rounds stop after
    `rounds`, or once the blocks have spent `work_limit` simplex iterations (default work_budget)."""
    work_limit = work_budget(prob) if work_limit is None else work_limit
    work = 0
    t0 = time.perf_counter()
    models = sorted({d.model for d in prob.demands})
    if prob.settings.objective != "cost" or not models:
        return Decomposition(None, None, None, False, 0.0, 0)
    lp, unit, cut, budget = _prices(prob)
    if lp is None:
        return Decomposition(None, None, None, False, time.perf_counter() - t0, 0)
    pr: Prices = (unit, cut, budget, {})
    cols = _Columns()
    if start:
        for m, c in sorted(_split(prob, start).items()):
            cols.add(prob, m, c)
    best: tuple[float, Prices, dict[str, float]] | None = None  # (L, prices, block values)
    last: dict[str, dict[int, int] | None] = {}
    rounds_done = 0
    for it in range(rounds + 1):
        if it > 0:
            if any(not cols.cols[m] for m in models):
                break  # a model without a column: the master cannot price it
            md = _master_duals(prob, cols, models)
            if md is None:
                break
            master_lp, pr = md
            if best is not None and master_lp - best[0] <= CG_REL_TOL * max(1.0, abs(master_lp)):
                break
            if best is not None:
                a = CG_SMOOTHING
                pr = tuple(_mix(a, b, x) for b, x in zip(best[1], pr))  # type: ignore[assignment]
        res = _run_blocks(prob, [(m, _scope(m, pr, standby=False)) for m in models], fn=_block)
        rounds_done += 1
        vals: dict[str, float] = {}
        new = 0
        for m, (val, counts, holds, use, iters) in zip(models, res):
            if val is not None:
                vals[m] = val
            last[m] = counts
            new += cols.add(prob, m, counts, holds, use)
            work += iters
        if len(vals) == len(models):
            L = math.fsum(vals.values()) - _const(prob, pr[0], pr[1], pr[2])
            if best is None or L > best[0]:
                best = (L, pr, vals)
        if (it > 0 and new == 0) or work >= work_limit:
            break
    # the rounds leave warm standby out, so their L bounds the model without it; the bound of the
    # full model takes, at the best prices, the blocks of the models that may hold a swap slot
    # with standby allowed (each model held paying a quarter of the slot: _default_slot_prices,
    # whose K term is zero), and their plans join the columns (the integer master opens the slots)
    L_valid: float | None = None
    if best is not None:
        pr_b = _default_slot_prices(prob, best[1], set())
        vals = dict(best[2])
        slot_models = sorted({o.model for o in prob.standby_options} & set(models))
        res = _run_blocks(prob, [(m, _scope(m, pr_b, standby=True)) for m in slot_models], fn=_block) if slot_models else []
        for m, (val, counts, holds, use, _iters) in zip(slot_models, res):
            if val is None:
                vals.pop(m, None)
            else:
                vals[m] = min(vals[m], val)
            cols.add(prob, m, counts, holds, use)
        if len(vals) == len(models):
            L_valid = math.fsum(vals.values()) - _const(prob, pr_b[0], pr_b[1], pr_b[2]) + _slot_term(prob, pr_b)
    bound = lp if L_valid is None else max(lp, L_valid)
    picked = _integer_master(prob, cols, models)
    if picked is not None:
        counts, slots, holds = picked
        return Decomposition(bound, lp, counts, False, time.perf_counter() - t0, rounds_done, slots, holds)
    # no column combination fits (no greedy start and conflicting blocks): repair the last round's
    # block plans one model after the other (without standby; the full solve may add it)
    from maestro_plan.solve.decompose import _conflicts, _repair

    got = {gi: n for m in models for gi, n in (last.get(m) or {}).items()}
    per_model = {m: set((last.get(m) or {}).keys()) for m in models if last.get(m) is not None}
    keep, redo = _conflicts(prob, models, got, per_model, set())
    counts = _repair(prob, keep, redo, got, unit, cut, budget)
    return Decomposition(bound, lp, counts, False, time.perf_counter() - t0, rounds_done)


def _integer_master(prob: Problem, cols: _Columns, models: list[str]) -> tuple[dict[int, int], dict[int, int], dict[int, int]] | None:
    from maestro_plan.solve.milp import solve_highs

    if any(not cols.cols[m] for m in models):
        return None
    lm, w, K, _ = _master(prob, cols, models, integer=True)
    res = solve_highs(lm, time_limit=MASTER_WALL_CAP_S, seed=prob.settings.seed, rel_gap=1e-6, max_nodes=MASTER_MAX_NODES)
    if res.values is None:
        return None
    counts: dict[int, int] = {}
    holds: dict[int, int] = {}
    for (m, k), vi in sorted(w.items()):
        if res.values[vi] > 0.5:
            counts.update(cols.cols[m][k].counts)
            holds.update(cols.cols[m][k].holds)
    slots = {t: 1 for t, vi in K.items() if res.values[vi] > 0.5}
    if not fits(prob, counts):
        return None
    return counts, slots, holds
