"""Column generation over per-model plans (Dantzig-Wolfe on the decomposition of decompose.py):
the strongest bound of that decomposition, and a start chosen by a small integer program.

A *column* is one model's whole configuration: its replica counts per group (so its routing,
zones and change penalty are settled inside the column), the standby options it holds, and what
it uses of the shared resources (GPU units per pool, GPUs per node-shape cut, $/h per budget-capped
cluster, and per swap slot: busy time, models held, host DRAM).

1. Columns to start from: the greedy plan, split per model.
2. Round 0 prices every model's block (decompose.py: a small MILP) at the duals of the LP
   relaxation. Blocks have no flow variables (formulate.routing_rows: the same whole-replica
   plans, and HiGHS closes them at the root where the flow form left 1-4 % open after 500 nodes,
   which was all of the distance between the bound and the master LP on synth 1,000 GPUs seed 0).
   Models that may hold a swap slot may do so in every round; slot types the master has no row
   for yet cost each model held a quarter of the slot (at most STANDBY_MAX_MODELS share one), so
   that every round's Lagrangian bound is valid for the full model.
3. Later rounds: the restricted master LP (a convex combination of columns per model within the
   shared capacities, with priced elastic slack so that it always solves) gives duals; every
   block is solved again at those prices, smoothed towards the best prices so far (Wentges).
   When the smoothed prices find no new column, the next round prices at the master's own duals
   (a mispricing step); when those find none either, the columns are complete. Each block starts
   from its previous solution (only its objective changed). The rounds stop at BUDGET.cg_rounds, then,
   or when the blocks have spent the work budget: HiGHS simplex iterations plus branch-and-bound
   nodes, a count rather than seconds, so that the plan does not depend on the machine's load.
4. Swap slots in the master: a 0/1 variable K per slot type (paid at the slot's GPU share, counted
   in its pool's inventory) and three rows per slot type (busy <= K, models held <= 4 K, DRAM <= cap
   x K). Bound: L = sum of block optima - priced capacities + sum over pools of min(0, cheapest
   reduced cost of opening a slot there); valid for any non-negative prices, since every priced row
   is implied by the full model's rows.
5. Start: the master as an integer program (one column per model, whole GPUs per pool, slots 0/1,
   node-shape cuts and budget caps exact; HiGHS with a node limit). Priced columns fit together on
   average; one per model, picked whole, often do not (synth 1,000 GPUs seed 8: the pick is 5.8 %
   above the master LP). Up to SolveBudget.max_integer_variables the planner then improves the pick
   with lns.py, first over every group some column uses (`Decomposition.column_groups`: seed 8,
   0.8 % above). Above it (where those sub-MIPs take too long: synth 10,000 GPUs, 9 s for a plan
   0.9 % dearer), up to BUDGET.residual_passes times every model is re-planned alone against what the
   others of the pick leave (real prices, exact capacities), and the master picks again.

Co-located engines (sized in bytes, problem.py) enter the master's inventory rows by their aggregate
units, floor(UNITS_PER_GPU x share), a relaxation of their byte packing, so the bound stays valid for
the byte-exact problem; the integer master also writes the dual-feasible-function rows of
formulate._add_dff_rows (per pool, from each column's `dff` units), so that its pick needs no more
GPUs than it pays for wherever those rows see it; place.py packs the bytes exactly and the plan's
cost counts any GPU more.

Measured: benchmarks/results/solver_scale.md. The bound is weakest where standby pays on a slot
type no column holds yet: a model alone on a swap slot pays the whole slot, the bound charges it a
quarter.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from maestro_plan import deadline
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.decompose import (
    BLOCK_REL_GAP,
    Decomposition,
    conflicts,
    cut_rows,
    fits,
    lp_prices,
    priced_capacity,
    repair,
    run_blocks,
    usage,
)
from maestro_plan.solve.formulate import STANDBY_DRAM_FRACTION, STANDBY_MAX_MODELS, Scope, build_model
from maestro_plan.solve.model import LinearModel
from maestro_plan.solve.problem import DFFS, UNITS_PER_GPU, Problem, pool_gpus_needed, pool_usage
from maestro_plan.units import GIB

BLOCK_HIGHS_OPTIONS = {
    # HiGHS' primal heuristics off in the blocks: measured on the 40 blocks of synth 1,000 GPUs
    # seed 0 at the LP's prices, 4.8 s -> 2.8 s with the same optima (sum of dual bounds 0.02 %
    # lower); the blocks are small, the branch-and-bound finds their optima on its own, and from
    # the second round on each block starts from its previous solution
    "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_shifting": False,
    "mip_heuristic_run_zi_round": False,
}
CG_SMOOTHING = 0.5  # Wentges smoothing: prices = a x best-bound prices + (1 - a) x master duals
CG_REL_TOL = 1e-4  # stop when the master LP is within this of the best Lagrangian bound
MASTER_REL_GAP = 1e-4
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
    dff: dict[tuple[int, int], int] = field(default_factory=dict)  # (pool, k) -> units in the DFFS[k] row
    dff_rows: frozenset[tuple[int, int]] = frozenset()  # (pool, k) where an item counts above its face value: the row binds


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


def _column(prob: Problem, model: str, counts: dict[int, int], holds: dict[int, int], slot_use: dict) -> Column:
    units, cut = usage(prob, counts)
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
    dff, rows = _dff_usage(prob, counts)
    return Column(model, dict(counts), dict(units), dict(cut), gpu_cost, change, dict(spend), dict(holds), dict(slot_use), dff, rows)


def _dff_usage(prob: Problem, counts: dict[int, int]) -> tuple[dict[tuple[int, int], int], frozenset[tuple[int, int]]]:
    """A column's units in the DFF rows of formulate.add_inventory (per pool and threshold), and
    the rows where one of its co-located engines counts above its face value (the rows the master writes)."""
    out: dict[tuple[int, int], int] = {}
    rows: set[tuple[int, int]] = set()
    for pi, (_u, whole, sub) in pool_usage(prob, counts).items():
        for k, f in enumerate(DFFS):
            out[(pi, k)] = whole + sum(f.units(x) * n for x, n in sub)
            if any(f.binds(x) for x, _ in sub):
                rows.add((pi, k))
    return out, frozenset(rows)


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
            _dff_master_rows(prob, lm, cols, models, w, K, slot_ts, p.index, g)
        else:
            row(f"inventory[{p.key}]", terms, float(p.units), "unit", p.index, ELASTIC_PRICE * dear)
        p_slots = [t for t in slot_ts if prob.slot_types[t].pool == p.index]
        if p_slots:
            row(f"slots[{p.key}]", {K[t]: 1.0 for t in p_slots}, 1.0, "-", p.index, ELASTIC_PRICE * dear * UNITS_PER_GPU)
    for pi, t in cut_rows(prob):
        p = prob.pools[pi]
        terms = {w[(m, k)]: float(c.cut[(pi, t)]) for m in models for k, c in enumerate(cols.cols[m]) if c.cut.get((pi, t))}
        terms.update({K[st]: float(prob.slot_types[st].tp) for st in slot_ts if prob.slot_types[st].pool == pi and prob.slot_types[st].tp >= t})
        if terms:
            row(f"inventory[{p.key}/tp>={t}]", terms, float(p.cut_capacity(t)), "cut", (pi, t), ELASTIC_PRICE * dear * UNITS_PER_GPU)
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
    return lm, w, K, shared, gvars


def _dff_master_rows(prob: Problem, lm: LinearModel, cols: _Columns, models: list[str], w, K, slot_ts, pi: int, g: int) -> None:
    """The integer master's DFF rows of pool pi (formulate._add_dff_rows): whole GPUs G >= the
    picked columns' DFF units (whole-GPU swap slots count whole; slice slots at f of their share)."""
    p = prob.pools[pi]
    for k, f in enumerate(DFFS):
        if not any((pi, k) in c.dff_rows for m in models for c in cols.cols[m]):
            continue
        terms = {w[(m, j)]: float(c.dff[(pi, k)]) for m in models for j, c in enumerate(cols.cols[m]) if c.dff.get((pi, k))}
        for t in slot_ts:
            st = prob.slot_types[t]
            if st.pool == pi:
                terms[K[t]] = float(st.units if st.units >= UNITS_PER_GPU else f.units(p.slice_share(st.units)))
        terms[g] = -float(UNITS_PER_GPU)
        lm.le(f"inventory[{p.key}/{f.name}]", "inventory", terms, 0.0)


def _master_duals(prob: Problem, cols: _Columns, models: list[str]) -> tuple[float, Prices] | None:
    """(master LP value, prices of the shared rows) or None."""
    import highspy
    import numpy as np

    from maestro_plan.solve.milp import highs_instance, set_objective

    lm, _w, _K, shared, _g = _master(prob, cols, models, integer=False)
    h = highs_instance(lm, relax=True, seed=prob.settings.seed, time_limit=BUDGET.master_wall_cap_s)
    set_objective(h, lm, 0)
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
    return Scope(models=frozenset([m]), fractional=True, standby=standby, slot_cost_share=0.0, tie_break=False, unit_price=unit, cut_price=cut, budget_price=budget, slot_price=slot, aggregate_routing=True)


class _BlockOut(NamedTuple):
    value: float | None  # the block's dual bound (its optimum when closed)
    counts: dict[int, int] | None
    holds: dict[int, int] | None
    slot_use: dict | None
    work: int  # simplex iterations + BUDGET.cg_node_work x nodes
    x: list[float] | None  # the solution (next round's MIP start)
    hit_wall_clock: bool  # BUDGET.block_wall_cap_s fired: the result may depend on machine load


def _block_nodes(prob: Problem) -> int:
    return BUDGET.cg_block_max_nodes if prob.stats.get("integer_variables", 0) <= BUDGET.max_integer_variables else BUDGET.cg_block_max_nodes_large


def _block(prob: Problem, job, seed: int):
    """(bound contribution, replica counts, holds, slot use, work, solution) of one priced block.
    `job`: a Scope, or (Scope, the same block's solution at other prices: a MIP start, since only
    the objective changes between rounds)."""
    from maestro_plan.solve.milp import solve_highs

    scope, start = job if isinstance(job, tuple) else (job, None)
    lm, v = build_model(prob, scope)
    if start is not None and len(start) != len(lm.vars):
        start = None
    res = solve_highs(lm, time_limit=BUDGET.block_wall_cap_s, seed=seed, rel_gap=BLOCK_REL_GAP, max_nodes=_block_nodes(prob), hint=start, options=BLOCK_HIGHS_OPTIONS)
    val = res.bound if res.bound is not None else (res.objective if res.status == "optimal" else None)
    work = res.lp_iterations + BUDGET.cg_node_work * res.nodes
    if res.values is None:
        return _BlockOut(val, None, None, None, work, None, res.hit_wall_clock)
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
    return _BlockOut(val, counts, holds, {t: tuple(u) for t, u in sorted(use.items())}, work, x, res.hit_wall_clock)


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
    """Simplex iterations the rounds may spend: SolveBudget.cg_share of --time-limit at cg_iterations_per_s
    per worker (at most 2 counted). A count of work, not seconds, so that the number of rounds,
    and so the plan, does not depend on the machine's load."""
    s = prob.settings
    share = BUDGET.cg_share if prob.stats.get("integer_variables", 0) <= BUDGET.max_integer_variables else BUDGET.cg_share_large
    return int(share * s.time_limit_s * BUDGET.cg_iterations_per_s * max(1, min(2, int(s.workers))))


def column_generation(
    prob: Problem, start: dict[int, int] | None = None, *, rounds: int = BUDGET.cg_rounds, work_limit: int | None = None, report: Callable[[str], None] | None = None
) -> Decomposition:
    """Bound and start for the cost objective (see the module docstring). `start`: replica counts
    of a feasible plan (the greedy one) whose per-model parts seed the columns. Rounds stop after
    `rounds`, or once the blocks have spent `work_limit` simplex iterations (default work_budget).
    `report` receives a line of progress after each round."""
    work_limit = work_budget(prob) if work_limit is None else work_limit
    work = 0
    models = sorted({d.model for d in prob.demands})
    if prob.settings.objective != "cost" or not models:
        return Decomposition(None, None, None, 0)
    lp, unit, cut, budget = lp_prices(prob)
    if lp is None:
        return Decomposition(None, None, None, 0)
    pr: Prices = (unit, cut, budget, {})
    cols = _Columns()
    if start:
        for m, c in sorted(_split(prob, start).items()):
            cols.add(prob, m, c)
    best: tuple[float, Prices] | None = None  # (L, prices) of the best bound so far
    last: dict[str, dict[int, int] | None] = {}
    prev: dict[str, list[float]] = {}  # each block's last solution: the next round's MIP start
    rounds_done = 0
    wall_hit = False  # a block's wall-clock safety cap fired
    slot_models = set(o.model for o in prob.standby_options) & set(models)
    master_slot: dict[int, tuple[float, float, float]] = {}  # the last master LP's slot prices
    mispriced = False  # the last round's smoothed prices found no new column
    for it in range(rounds + 1):
        if it > 0:
            if deadline.expired("column generation rounds"):
                break  # the whole command's --time-limit (maestro_plan/deadline.py); the plan's notes say so
            if any(not cols.cols[m] for m in models):
                break  # a model without a column: the master cannot price it
            md = _master_duals(prob, cols, models)
            if md is None:
                break
            master_lp, pr = md
            master_slot = pr[3]
            if best is not None and master_lp - best[0] <= CG_REL_TOL * max(1.0, abs(master_lp)):
                break
            if best is not None and not mispriced:
                a = CG_SMOOTHING
                pr = tuple(_mix(a, b, x) for b, x in zip(best[1], pr))  # type: ignore[assignment]
        # slot types the master prices keep its prices, the others a quarter share each
        # (_default_slot_prices: their K term is zero), so that every round's L is valid
        pr = _default_slot_prices(prob, pr, set(master_slot))
        jobs = [(m, (_scope(m, pr, standby=m in slot_models), None if it == 0 else prev.get(m))) for m in models]
        res = run_blocks(prob, jobs, fn=_block)
        rounds_done += 1
        vals: dict[str, float] = {}
        new = 0
        for m, (val, counts, holds, use, iters, x, hit) in zip(models, res):
            wall_hit |= hit
            if val is not None:
                vals[m] = val
            if x is not None:
                prev[m] = x
            last[m] = counts
            new += cols.add(prob, m, counts, holds, use)
            work += iters
        if len(vals) == len(models):
            L = math.fsum(vals.values()) - priced_capacity(prob, pr[0], pr[1], pr[2]) + _slot_term(prob, pr)
            if best is None or L > best[0]:
                best = (L, pr)
        if report is not None:
            report(f"column generation: round {it + 1}, {len(models)} models, bound ${max(lp, best[0]) if best else lp:,.2f}/h, {sum(len(c) for c in cols.cols.values())} columns, work {100 * work / max(1, work_limit):.0f}%")
        if work >= work_limit or (it > 0 and new == 0 and (mispriced or CG_SMOOTHING == 0)):
            break
        mispriced = it > 0 and new == 0
    bound = lp if best is None else max(lp, best[0])
    spent = [work]  # the rounds' work, then the integer masters' and residual blocks'
    picked = _integer_master(prob, cols, models, spent=spent)
    large = prob.stats.get("integer_variables", 0) > BUDGET.max_integer_variables
    for _ in range(BUDGET.residual_passes if picked is not None and large else 0):
        if not _residual_columns(prob, cols, models, picked[:3], spent):
            break
        again = _integer_master(prob, cols, models, start=picked[3], spent=spent)
        if again is None or _plan_cost(prob, again[:3]) >= _plan_cost(prob, picked[:3]) - 1e-9:
            break
        picked = again
    if picked is not None:
        counts, slots, holds, _pick = picked
        used = frozenset(gi for m in models for c in cols.cols[m] for gi in c.counts)
        options = frozenset(oi for m in models for c in cols.cols[m] for oi in c.holds)
        return Decomposition(bound, lp, counts, rounds_done, slots, holds, hit_wall_clock=wall_hit, work=spent[0], column_groups=used, column_options=options)
    # no column combination fits (no greedy start and conflicting blocks): repair the last round's
    # block plans one model after the other (without standby; the full solve may add it)
    got = {gi: n for m in models for gi, n in (last.get(m) or {}).items()}
    per_model = {m: set((last.get(m) or {}).keys()) for m in models if last.get(m) is not None}
    keep, redo = conflicts(prob, models, got, per_model)
    counts = repair(prob, keep, redo, got, unit, cut, budget)
    return Decomposition(bound, lp, counts, rounds_done, hit_wall_clock=wall_hit, work=spent[0])


def _integer_master(prob: Problem, cols: _Columns, models: list[str], start: dict[str, int] | None = None, spent: list[int] | None = None):
    """(counts, slots, holds, the column picked per model) of the integer master, or None.
    `start`: a column per model of an earlier pick, the MIP start (columns are only ever added,
    so it stays feasible). Its work is added to spent[0]."""
    from maestro_plan.solve.milp import solve_highs

    if any(not cols.cols[m] for m in models):
        return None
    lm, w, K, _, gvars = _master(prob, cols, models, integer=True)
    hint = None
    if start is not None and all(m in start for m in models):
        hint = [0.0] * len(lm.vars)
        counts: dict[int, int] = {}
        for m in models:
            c = cols.cols[m][start[m]]
            hint[w[(m, start[m])]] = 1.0
            counts.update(c.counts)
            for t in c.slot_use:
                if t in K:
                    hint[K[t]] = 1.0
        need = pool_gpus_needed(prob, counts, {t: 1 for t, vi in K.items() if hint[vi] > 0.5})
        for pi, vi in gvars.items():
            hint[vi] = float(need.get(pi, 0))
    res = solve_highs(lm, time_limit=BUDGET.master_wall_cap_s, seed=prob.settings.seed, rel_gap=MASTER_REL_GAP, max_nodes=BUDGET.master_max_nodes, hint=hint)
    if spent is not None:
        spent[0] += res.lp_iterations + BUDGET.cg_node_work * res.nodes
    if res.values is None:
        return None
    counts: dict[int, int] = {}
    holds: dict[int, int] = {}
    pick: dict[str, int] = {}
    for (m, k), vi in sorted(w.items()):
        if res.values[vi] > 0.5:
            counts.update(cols.cols[m][k].counts)
            holds.update(cols.cols[m][k].holds)
            pick[m] = k
    slots = {t: 1 for t, vi in K.items() if res.values[vi] > 0.5}
    if not fits(prob, counts):
        return None
    return counts, slots, holds, pick


def _plan_cost(prob: Problem, picked: tuple[dict[int, int], dict[int, int], dict[int, int]]) -> float:
    """$/h of whole GPUs for replica counts and swap slots (the fewest the inventory rows allow)."""
    counts, slots, _holds = picked
    return math.fsum(n * prob.pools[pi].price_per_gpu_hour for pi, n in pool_gpus_needed(prob, counts, slots).items())


def _residual_columns(prob: Problem, cols: _Columns, models: list[str], picked, spent: list[int]) -> int:
    """Each model re-planned alone against what the others of the picked plan leave (real prices,
    exact capacities left): columns that fit next to the rest by construction, where the priced
    rounds only offer columns that fit on average. Returns how many are new."""
    counts, slots, holds = picked
    per = _split(prob, counts)
    slot_units: dict[int, int] = defaultdict(int)
    slot_cut: dict[tuple[int, int], int] = defaultdict(int)
    for t in slots:
        st = prob.slot_types[t]
        slot_units[st.pool] += st.units
        c = 2
        while c <= st.tp:
            slot_cut[(st.pool, c)] += st.tp
            c *= 2
    total_units, total_cut = usage(prob, counts)
    caps = {c.name: c.budget_per_hour for c in prob.inputs.inventory.clusters if c.budget_per_hour is not None}
    held_by = {m for m in models if any(prob.standby_options[o].model == m for o in holds)}
    jobs = []
    for m in models:
        if m in held_by:
            continue  # its standby share stays as picked
        mu, mc = usage(prob, per.get(m, {}))
        units_left = {p.index: p.units - total_units.get(p.index, 0) + mu.get(p.index, 0) - slot_units.get(p.index, 0) for p in prob.pools}
        cut_left = {k: prob.pools[k[0]].cut_capacity(k[1]) - total_cut.get(k, 0) + mc.get(k, 0) - slot_cut.get(k, 0) for k in cut_rows(prob)}
        spend: dict[str, float] = defaultdict(float)
        for pi, u in total_units.items():
            p = prob.pools[pi]
            # whole GPUs the others pay for, plus one GPU per pool of margin for this model's slices
            spend[p.cluster] += (math.ceil((u - mu.get(pi, 0) + slot_units.get(pi, 0)) / UNITS_PER_GPU) + 1) * p.price_per_gpu_hour
        scope = Scope(models=frozenset([m]), units_left=units_left, cut_left=cut_left, budget_left={c: b - spend.get(c, 0.0) for c, b in caps.items()}, fractional=True, standby=False, tie_break=False, aggregate_routing=True)
        jobs.append((m, scope))
    new = 0
    for (m, _sc), (_val, got, h_, use, work, _x, _hit) in zip(jobs, run_blocks(prob, jobs, fn=_block)):
        new += cols.add(prob, m, got, h_, use)
        spent[0] += work
    return new
