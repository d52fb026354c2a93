"""Solve end to end and turn the solution into a Plan (maestro_plan.plan.schema).

    plan, stats = solve(inputs, settings, current_plan=None, progress=None)

Steps: build the Problem once (formulate.py; pre-checks may raise InfeasibleError), greedy warm
start (heuristic.py), LP bound (HiGHS, relaxation of the same model), column generation over
per-model plans (colgen.py: a Lagrangian bound at least the LP's, and a start picked by a small
integer master; skipped above COLGEN_MAX_INTEGER_VARIABLES), a neighbourhood search from that start
(lns.py: the model restricted to the columns' groups, then two clusters at a time re-solved with the
rest fixed; see LNS_MIN_GAP and LNS_PAIRS_MAX_GAIN for when), the chosen backend (CP-SAT from the
better start, rounded so that it is feasible in CP-SAT's integers; HiGHS; CBC; or the greedy result
itself; if CP-SAT finds nothing, HiGHS on the float model decides before anything is called
infeasible), elastic explanation if infeasibility is proven, the flow LP with every integer fixed
(exact float routing), placement on nodes (place.py), and the Plan. The plan never costs more than
the warm start, and its bound is the best of the backend's, the LP's and column generation's.
Determinism: everything is sorted, the plan holds no wall-clock figure and no timestamp;
`plan_id` is the SHA-256 of the input digests and the settings. Wall-clock seconds go to `stats`
(the CLI writes them to solve-stats.json).

Replica fields: memory_fraction is the engine's --gpu-memory-utilization (the slice f x the
engine default, so engines sharing a GPU add up to the default); kv_cache_bytes_per_gpu is the KV
reservation: predicted = what the capacity's concurrency needs at the class's request mix (never
less than one max_model_len request, vLLM's start-up check); naive = max_num_seqs requests of
max_model_len tokens each. A replica group's flows are split evenly over its replicas.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from maestro_plan import __version__
from maestro_plan.estimate import VLLM, kv_bytes_per_token_per_gpu, latency_at_load
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import (
    Binding,
    Demand,
    InputDigest,
    KvSummary,
    Plan,
    Replica,
    Route,
    Settings,
    SolveInfo,
    Standby,
)
from maestro_plan.solve import explain, heuristic
from maestro_plan.solve.decompose import MAX_INTEGER_VARIABLES
from maestro_plan.solve.formulate import build_problem
from maestro_plan.solve.model import SolveResult, relative_gap
from maestro_plan.solve.place import Placed, place
from maestro_plan.solve.problem import UNITS_PER_GPU, Problem, SolveSettings

STANDBY_PREFIX = "standby:"
FLOW_EPS = 1e-9
CPSAT_SHARE = 0.4  # CP-SAT's deterministic work budget, x --time-limit (greedy, LP and the per-model
# decomposition are bounded work that takes most of the rest; see decompose.py)
COLGEN_MAX_INTEGER_VARIABLES = 100000  # column generation above this is not measured (synth 10,000 GPUs: 23,348)
CPSAT_AFTER_CG_MAX_INTEGER_VARIABLES = 2000
"""CP-SAT runs after column generation only up to this many integer variables. Measured: on the
bundled fleet (986 integer variables) it improved the start ($498.54/h -> $497.24/h); on synth
1,000 GPUs (3,569-5,118, four seeds) and 10,000 GPUs (23,348) it never did, and spent 1.5-2 s and
14 s (its presolve overshoots a small work budget), time column generation uses better."""
LNS_MIN_GAP = 0.005  # lns.improve only while column generation's start is further than this from its
# bound (it can gain at most the gap; synth 1,000 GPUs seed 1: 0.37 %, 5.6 s, nothing found)
LNS_PAIRS_MAX_GAIN = 0.01
"""After the columns' neighbourhood (0.6-2.6 s on synth 1,000 GPUs), the pairs of clusters (1.3-6.8 s)
run only while the gap is still above LNS_MIN_GAP, column generation stayed within its work budget
(colgen.work_budget: past it, it had used 6-9 s of 10 on seeds 4, 6 and 9), and the columns'
neighbourhood gained less than this: a large gain there means conflicting columns, where the
pairs' sub-MIPs were slowest (seed 8: 6.8 s for 1.3 % more, seed 10: 6.7 s)."""
CPSAT_SHARE_AFTER_CG = 0.05  # after column generation (colgen.py) took most of the budget
CPSAT_SHARE_LARGE = 0.2  # above decompose.MAX_INTEGER_VARIABLES: CP-SAT's presolve alone overshoots
# its deterministic limit there (37.7 units for a budget of 20.4 on synth 10,000 GPUs / 100 models)


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


def _better(obj, a: float, b: float) -> bool:
    """a is a strictly better value than b for this objective's sense."""
    return a < b - 1e-12 if obj.sense == "min" else a > b + 1e-12


def _sha(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_digest(inputs: Inputs) -> InputDigest:
    """SHA-256 of each parsed input's canonical JSON (the verifier computes the same)."""
    try:
        from maestro_plan.plan.digest import input_digest as plan_digest  # type: ignore[import-not-found]

        return plan_digest(inputs)
    except ImportError:
        pass
    return InputDigest(
        inventory_name=inputs.inventory.name,
        inventory_sha256=_sha(inputs.inventory.model_dump(mode="json")),
        models_sha256=_sha({k: m.model_dump(mode="json") for k, m in sorted(inputs.models.items())}),
        workloads_sha256=_sha([w.model_dump(mode="json") for w in sorted(inputs.workflows, key=lambda w: w.name)]),
        models=sorted(inputs.models),
        workflows=sorted(w.name for w in inputs.workflows),
    )


def plan_settings(s: SolveSettings) -> Settings:
    return Settings(
        objective=s.objective,  # type: ignore[arg-type]
        solver=s.solver,  # type: ignore[arg-type]
        seed=s.seed,
        time_limit_s=s.time_limit_s,
        headroom=s.headroom,
        kv_reservation=s.kv_reservation,  # type: ignore[arg-type]
        length_percentile=s.length_percentile,
        min_zones_interactive=s.min_zones_interactive,
        change_weight=s.change_weight,
        vllm_version=VLLM.version,
        gpu_memory_utilization=float(VLLM.gpu_memory_utilization),
        capacity_table_sha256=_sha([r.model_dump() for r in s.capacity_table.rows]) if s.capacity_table is not None else None,
    )


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def run_backend(prob: Problem, hint: list[float] | None, progress: Callable | None = None) -> SolveResult:
    s = prob.settings
    if s.solver == "cpsat":
        from maestro_plan.solve.cpsat import solve_cpsat
        from maestro_plan.solve.decompose import MAX_INTEGER_VARIABLES

        start = heuristic.cpsat_hint(prob, hint) or hint
        share = CPSAT_SHARE if prob.stats.get("integer_variables", 0) <= MAX_INTEGER_VARIABLES else CPSAT_SHARE_LARGE
        if prob.stats.get("column_generation"):
            share = CPSAT_SHARE_AFTER_CG
        return solve_cpsat(prob.lm, time_limit=share * s.time_limit_s, seed=s.seed, workers=s.workers, hint=start, progress=progress)
    if s.solver == "highs":
        from maestro_plan.solve.milp import solve_highs

        return solve_highs(prob.lm, time_limit=s.time_limit_s, seed=s.seed, hint=hint)
    if s.solver == "cbc":
        from maestro_plan.solve.milp import solve_cbc

        return solve_cbc(prob.lm, time_limit=s.time_limit_s, seed=s.seed, hint=hint)
    raise ValueError(f"unknown solver {s.solver!r}")


def _merge_bound(res: SolveResult, obj, bound: float | None) -> None:
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


def solve(
    inputs: Inputs,
    settings: SolveSettings,
    *,
    current_plan=None,
    progress: Callable[[str, float, float], None] | None = None,
    stage: Callable[[str], None] | None = None,
) -> tuple[Plan, dict[str, Any]]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    if stage:
        stage("building the model")
    prob = build_problem(inputs, settings, current_plan=current_plan)
    t = mark("formulate_s", t0)

    if stage:
        stage("greedy warm start")
    counts = heuristic.greedy(prob)
    hint = heuristic.complete(prob, counts)
    heur_obj = prob.lm.objectives[0].value(hint) if hint is not None else None
    cost_obj = next(o for o in prob.lm.objectives if o.name == "cost")
    heur_cost = cost_obj.value(hint) if hint is not None else None
    t = mark("heuristic_s", t)

    lp_bound = None
    dec_bound = None
    if settings.lp_bound and settings.solver != "greedy":
        from maestro_plan.solve.milp import solve_lp_relaxation

        lp_bound = solve_lp_relaxation(prob.lm, time_limit=max(1.0, min(30.0, settings.time_limit_s)), seed=settings.seed)
        t = mark("lp_bound_s", t)
    dec = None
    dec_start = None
    lns_cost = None
    if settings.solver != "greedy" and settings.objective == "cost" and prob.stats.get("integer_variables", 0) <= COLGEN_MAX_INTEGER_VARIABLES:
        if stage:
            stage("column generation over per-model plans")
        from maestro_plan.solve.colgen import column_generation, work_budget

        dec = column_generation(prob, counts, report=stage)
        prob.stats["column_generation"] = dec.rounds
        prob.stats["column_generation_work"] = dec.work
        if dec.hit_wall_clock:
            prob.notes.append("a column-generation block stopped on its wall-clock safety cap: with another machine load the same inputs may give a different plan")
        dec_bound = dec.bound
        dhint = heuristic.complete(prob, dec.counts, slots=dec.slots, holds=dec.holds) if dec.counts is not None else None
        dec_start = cost_obj.value(dhint) if dhint is not None else None
        t = mark("decompose_s", t)
        gap = relative_gap(dec_start, dec.bound, "feasible")
        if dhint is not None and gap is not None and gap > LNS_MIN_GAP and prob.stats.get("integer_variables", 0) <= MAX_INTEGER_VARIABLES:
            # above, colgen's residual passes improve the pick instead (see colgen.py, step 5)
            from maestro_plan.solve import lns

            if stage:
                stage("neighbourhood search")
            bound, start_cost, budget = dec.bound, dec_start, work_budget(prob)

            def pairs_if(cost: float) -> bool:
                left = relative_gap(cost, bound, "feasible")
                return left is not None and left > LNS_MIN_GAP and dec.work <= budget and cost > (1.0 - LNS_PAIRS_MAX_GAIN) * start_cost

            search = lns.improve(prob, dhint, columns=(dec.column_groups, dec.column_options), pairs_if=pairs_if, report=stage)
            if search is not None:
                prob.stats["neighbourhood_search_sub_mips"] = search.neighbourhoods
                if search.hit_wall_clock:
                    prob.notes.append("a neighbourhood-search sub-MIP stopped on its wall-clock safety cap: with another machine load the same inputs may give a different plan")
                if search.counts is not None:
                    point = heuristic.complete(prob, search.counts, slots=search.slots, holds=search.holds)
                    if point is not None and cost_obj.value(point) < cost_obj.value(dhint):
                        dhint = point
                        lns_cost = cost_obj.value(point)
            t = mark("neighbourhood_search_s", t)
        if dhint is not None and (hint is None or _better(prob.lm.objectives[0], prob.lm.objectives[0].value(dhint), prob.lm.objectives[0].value(hint))):
            hint = dhint

    result: SolveResult
    if settings.solver == "greedy":
        if hint is None:
            raise explain.elastic(prob, time_limit=max(5.0, settings.time_limit_s))
        obj = prob.lm.objectives[0].value(hint)
        from maestro_plan.solve.model import PhaseResult

        result = SolveResult("greedy", "feasible", hint, [PhaseResult(prob.lm.objectives[0].name, "feasible", obj, None)])
        status = "heuristic"
    else:
        if stage:
            stage(f"solving with {settings.solver}")
        obj0 = prob.lm.objectives[0]
        from maestro_plan.solve.model import PhaseResult

        if settings.solver == "cpsat" and dec_start is not None and hint is not None and prob.stats.get("integer_variables", 0) > CPSAT_AFTER_CG_MAX_INTEGER_VARIABLES:
            # the start is the plan: see CPSAT_AFTER_CG_MAX_INTEGER_VARIABLES
            result = SolveResult("cpsat", "feasible", hint, [PhaseResult(obj0.name, "feasible", obj0.value(hint), None)])
            prob.notes.append(f"CP-SAT skipped: above {CPSAT_AFTER_CG_MAX_INTEGER_VARIABLES:,} integer variables it has not improved a column-generation start within its budget")
        else:
            result = run_backend(prob, hint, progress)
        _merge_bound(result, obj0, dec_bound)
        _merge_bound(result, obj0, lp_bound)
        status = result.status
        if result.values is None and hint is None and settings.solver == "cpsat":
            # CP-SAT found nothing (its conservative integer rounding can even make a tight but
            # feasible model infeasible): HiGHS on the float model decides
            from maestro_plan.solve.milp import solve_highs

            fb = solve_highs(prob.lm, time_limit=max(5.0, settings.time_limit_s), seed=settings.seed)
            if fb.values is not None:
                _merge_bound(fb, obj0, dec_bound)
                _merge_bound(fb, obj0, lp_bound)
                result, status = fb, fb.status
                prob.notes.append("CP-SAT found no plan in its work budget; this one is HiGHS' on the float model (a wall-clock limit: the result may depend on machine load)")
            elif fb.status == "infeasible":
                status = "infeasible"
            else:
                status = "unknown"
        if status == "infeasible" and hint is None:
            raise explain.elastic(prob, time_limit=max(5.0, settings.time_limit_s))
        if result.values is None or status == "infeasible":
            # CP-SAT's integer rounding can lose a point that exists in floats; the warm start is
            # feasible for the float model, so it is used rather than reporting infeasibility
            if hint is None:
                raise explain.elastic(prob, time_limit=max(5.0, settings.time_limit_s), proved=False, limit_s=settings.time_limit_s)
            result.values = hint
            status = "feasible"
            ph = result.phases[0] if result.phases else None
            if ph is not None:
                ph.objective = obj0.value(hint)
                ph.status = "feasible"
            prob.notes.append(f"{settings.solver} found no better solution within its work budget; the warm start (greedy or decomposition) is used")
        elif hint is not None and _lex_better(prob.lm.objectives, hint, result.values):
            result.values = hint  # never return worse than the warm start
            for ph in result.phases:
                o = next((o for o in prob.lm.objectives if o.name == ph.name), None)
                if o is not None:
                    ph.objective = o.value(hint)
        if status == "unknown":
            status = "feasible"
    t = mark("solve_s", t)

    if stage:
        stage("routing and placement")
    values = result.values
    assert values is not None
    counts_sol = {gi: int(round(values[vi])) for gi, vi in prob.v.n.items() if round(values[vi]) > 0}
    slots = {ti: int(round(values[vi])) for ti, vi in prob.v.slot.items() if round(values[vi]) > 0}
    holds = {oi: int(round(values[vi])) for oi, vi in prob.v.hold.items() if round(values[vi]) > 0 and prob.standby_options[oi].slot in slots}
    fixed = heuristic.fixed_values(prob, counts_sol, slots, holds)
    pol = heuristic.polish(prob, fixed)
    if pol.values is None:  # pragma: no cover - the solver's point is feasible for this LP
        raise RuntimeError("internal error: the routing LP has no solution for the solver's replica counts")
    values = pol.values
    placed = place(prob, counts_sol, slots, current_plan)
    t = mark("place_s", t)
    plan = build_plan(prob, values, counts_sol, slots, holds, placed, result, status, heur_obj, lp_bound, heur_cost)
    t = mark("plan_s", t)
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    stats = {
        "solver": settings.solver,
        "status": plan.solve.status,
        "objective": plan.solve.objective,
        "bound": plan.solve.bound,
        "gap": plan.solve.gap,
        "cost_per_hour": plan.cost_per_hour,
        "heuristic_cost_per_hour": heur_cost,
        "lp_bound": lp_bound,
        "decomposition_bound": dec_bound,
        "decomposition_start_cost": dec_start,
        "neighbourhood_search_cost": lns_cost,
        "deterministic_time": result.deterministic_time,
        "hit_wall_clock": result.hit_wall_clock,
        "phases": [
            {"name": p.name, "status": p.status, "objective": p.objective, "bound": p.bound, "wall_s": round(p.wall_s, 4), "deterministic_time": p.deterministic_time}
            for p in result.phases
        ],
        "timings": timings,
        "model": dict(sorted(prob.stats.items())),
        "settings": {"time_limit_s": settings.time_limit_s, "seed": settings.seed, "workers": settings.workers},
    }
    return plan, stats


# --------------------------------------------------------------------------------------------
# Plan construction
# --------------------------------------------------------------------------------------------


def _replica_id(model: str, cluster: str, node: str, gpus: tuple[int, ...], offset: int, units: int) -> str:
    rid = f"{model}.{cluster}.{node}.g{gpus[0]}"
    if units < UNITS_PER_GPU:
        rid += f"s{offset}"
    return rid


def _unique(rid: str, taken: set[str]) -> str:
    """A pinned id is kept as is (it is in `taken` already); a new id that collides gets a suffix."""
    if rid not in taken:
        taken.add(rid)
        return rid
    k = 1
    while f"{rid}-{k}" in taken:
        k += 1
    taken.add(f"{rid}-{k}")
    return f"{rid}-{k}"


def _where(p, pl: Placed, units: int) -> dict[str, Any]:
    """The location fields of a Replica: its pool's cluster, zone and GPU type, its node and GPU
    indices, and the price of the GPU share it takes."""
    return {
        "cluster": p.cluster,
        "zone": p.zone,
        "node_pool": p.name,
        "node": pl.node,
        "gpu_type": p.gpu_type,
        "gpu_indices": list(pl.gpu_indices),
        "price_per_hour": p.price_per_gpu_hour * units / UNITS_PER_GPU,
    }


def _kv_min_bytes(cand) -> int:
    block = VLLM.block_size
    return int(math.ceil(cand.max_model_len / block) * block * cand.kv_bytes_per_token_per_gpu)


def build_plan(prob: Problem, x: list[float], counts, slots, holds, placed: list[Placed], result: SolveResult, status: str, heur_obj, lp_bound, heur_cost) -> Plan:
    s = prob.settings
    inputs = prob.inputs
    pools, cands, groups, demands = prob.pools, prob.candidates, prob.groups, prob.demands
    v = prob.v

    # flows per group and per demand (normalised so that a demand's fractions add up exactly)
    flows: dict[int, list[tuple[int, float]]] = defaultdict(list)  # group -> (demand, fraction)
    sflows: dict[int, list[tuple[int, float]]] = defaultdict(list)  # standby option -> (demand, fraction)
    served: dict[int, float] = {}
    for d in demands:
        parts = [(ai, max(0.0, x[v.flow[ai]])) for ai in prob.arcs_of_demand.get(d.index, [])]
        sparts = [(ai, max(0.0, x[v.sflow[ai]])) for ai in prob.sarcs_of_demand.get(d.index, [])]
        parts = [(a, f) for a, f in parts if f > FLOW_EPS]
        sparts = [(a, f) for a, f in sparts if f > FLOW_EPS]
        tot = math.fsum(f for _, f in parts) + math.fsum(f for _, f in sparts)
        target = 1.0 if s.objective == "cost" else min(1.0, tot)
        scale = target / tot if tot > 0 else 0.0
        served[d.index] = target if tot > 0 else 0.0
        for ai, f in parts:
            flows[prob.arcs[ai].group].append((d.index, f * scale))
        for ai, f in sparts:
            sflows[prob.standby_arcs[ai].option].append((d.index, f * scale))

    # replicas
    replicas: list[Replica] = []
    routes: list[Route] = []
    per_group_ids: dict[int, list[Placed]] = defaultdict(list)
    for pl in placed:
        if pl.kind == "replica":
            per_group_ids[pl.ref].append(pl)
    used_gpus: dict[str, set[tuple[str, int]]] = defaultdict(set)
    cost_by_cluster: dict[str, float] = defaultdict(float)
    gpus_used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def touch(pool_i: int, node: str, idx: tuple[int, ...]) -> None:
        p = pools[pool_i]
        for i in idx:
            if (node, i) not in used_gpus[p.cluster]:
                used_gpus[p.cluster].add((node, i))
                cost_by_cluster[p.cluster] += p.price_per_gpu_hour
                gpus_used[p.cluster][p.gpu_type] += 1

    # ids of pinned replicas first, so that new ones never take them
    taken: set[str] = {pl.keep_id for pl in placed if pl.keep_id}
    for gi in sorted(per_group_ids, key=lambda gi: groups[gi].key):
        g = groups[gi]
        c = cands[g.cand]
        p = pools[g.pool]
        sc = prob.classes[g.cls]
        model = inputs.models[c.model]
        gpu = inputs.gpu_types[c.gpu_type]
        items = per_group_ids[gi]
        n = len(items)
        gflows = flows.get(gi, [])
        load_each = math.fsum(f * demands[di].rate_rps for di, f in gflows) / n
        cap = g.capacity
        # what the capacity's concurrency needs at the class mix (naive: max_model_len per request,
        # since the class mix then reserves that much), never less than one max_model_len request
        kv_bytes = max(int(cap.kv_bytes_per_gpu_needed), _kv_min_bytes(c))
        kv_bytes = min(kv_bytes, c.kv_pool_bytes_per_gpu)
        block = VLLM.block_size
        kv_tokens = int(kv_bytes // (c.kv_bytes_per_token_per_gpu * block) * block) if c.kv_bytes_per_token_per_gpu else 0
        lat = latency_at_load(model, gpu, c.tp, sc.mix, load_each, compute_share=c.compute_share)
        served_demands = sorted({di for di, f in gflows if f > 0})
        prio = "interactive" if any(demands[di].priority == "interactive" for di in served_demands) else ("batch" if served_demands else ("interactive" if c.model in prob.zones_required else "batch"))
        roles = sorted({r for di in served_demands for r in demands[di].roles})
        for pl in sorted(items, key=lambda pl: (pl.node, pl.gpu_indices, pl.offset)):
            rid = pl.keep_id or _unique(_replica_id(c.model, p.cluster, pl.node, pl.gpu_indices, pl.offset, c.units), taken)
            touch(g.pool, pl.node, pl.gpu_indices)
            replicas.append(
                Replica(
                    id=rid,
                    model=c.model,
                    **_where(p, pl, c.units),
                    tp=c.tp,
                    memory_fraction=c.memory_fraction,
                    compute_share=c.compute_share,
                    weights_bytes_per_gpu=c.weights_bytes_per_gpu,
                    kv_cache_bytes_per_gpu=kv_bytes,
                    overhead_bytes_per_gpu=c.overhead_bytes_per_gpu,
                    max_model_len=c.max_model_len,
                    max_num_seqs=max(1, int(cap.batch)),
                    kv_tokens=kv_tokens,
                    capacity_rps=float(cap.rps),
                    load_rps=0.0,
                    latency_budget_ms=float(sc.budget_ms),
                    predicted_latency_ms=float(lat) if math.isfinite(lat) else None,
                    priority=prio,  # type: ignore[arg-type]
                    roles=roles,
                    prefix_caching=any(demands[di].shared_prefix for di in served_demands),
                )
            )
            for di, f in gflows:
                d = demands[di]
                frac = f / n
                routes.append(
                    Route(
                        source=d.source,
                        model=d.model,
                        replica=rid,
                        fraction=frac,
                        rate_rps=frac * d.rate_rps,
                        network_latency_ms=prob.net[(d.source, p.cluster)],
                        priority=d.priority,  # type: ignore[arg-type]
                    )
                )

    # swap slots (warm standby)
    standby: list[Standby] = []
    for pl in placed:
        if pl.kind != "slot":
            continue
        t = prob.slot_types[pl.ref]
        p = pools[t.pool]
        opts = [prob.standby_options[oi] for oi in sorted(holds) if prob.standby_options[oi].slot == t.index]
        if not opts:
            continue
        big = max(opts, key=lambda o: (o.weight_bytes, o.model))
        rid = _unique(_replica_id(big.model, p.cluster, pl.node, pl.gpu_indices, pl.offset, t.units) + ".swap", taken)
        touch(t.pool, pl.node, pl.gpu_indices)
        bmodel = inputs.models[big.model]
        kv_tok = int(kv_bytes_per_token_per_gpu(bmodel, t.tp))
        block = VLLM.block_size
        replicas.append(
            Replica(
                id=rid,
                model=big.model,
                **_where(p, pl, t.units),
                tp=t.tp,
                memory_fraction=t.memory_fraction,
                compute_share=t.compute_share,
                weights_bytes_per_gpu=big.weights_bytes_per_gpu,
                kv_cache_bytes_per_gpu=big.kv_pool_bytes_per_gpu,
                overhead_bytes_per_gpu=big.overhead_bytes_per_gpu,
                max_model_len=big.max_model_len,
                max_num_seqs=1,
                kv_tokens=int(big.kv_pool_bytes_per_gpu // (kv_tok * block) * block) if kv_tok else 0,
                capacity_rps=0.0,
                load_rps=0.0,
                priority="batch",
                roles=[],
                swap_models=sorted(o.model for o in opts),
            )
        )
        for o in sorted(opts, key=lambda o: o.model):
            sid = f"{STANDBY_PREFIX}{o.model}@{pl.node}"
            of = sflows.get(o.index, [])
            rate = math.fsum(f * demands[di].rate_rps for di, f in of)
            caps = [a.capacity.rps for a in prob.standby_arcs if a.option == o.index]
            standby.append(
                Standby(
                    model=o.model,
                    cluster=p.cluster,
                    node=pl.node,
                    host_dram_bytes=o.weight_bytes,
                    cold_start_ms=o.cold_start_ms,
                    serves_rate_rps=rate,
                    reason=f"rarely used: {rate:.4g} req/s does not justify HBM; woken from host DRAM in {o.cold_start_ms:.0f} ms on swap slot {rid}",
                    slot_replica=rid,
                    gpu_indices=list(pl.gpu_indices),
                    capacity_rps=float(min(caps)) if caps else 0.0,
                )
            )
            for di, f in of:
                d = demands[di]
                routes.append(Route(source=d.source, model=d.model, replica=sid, fraction=f, rate_rps=f * d.rate_rps, network_latency_ms=prob.net[(d.source, p.cluster)], priority=d.priority))  # type: ignore[arg-type]

    # loads
    load: dict[str, float] = defaultdict(float)
    for r in routes:
        load[r.replica] += r.rate_rps
    replicas = [r.model_copy(update={"load_rps": load.get(r.id, 0.0)}) for r in replicas]
    replicas.sort(key=lambda r: r.id)
    routes.sort(key=lambda r: (r.source, r.model, r.replica))
    standby.sort(key=lambda s_: (s_.model, s_.node))

    # demand (all pairs the workloads ask for, zero-rate ones included)
    by_key = {(d.source, d.model): d for d in demands}
    demand_out: list[Demand] = []
    for md in sorted(prob.demand_model.per_model, key=lambda d: (d.source, d.model)):
        row = by_key.get((md.source, md.model))
        sv = md.rate_rps * served[row.index] if row is not None else 0.0
        if s.objective == "cost":
            sv = md.rate_rps
        demand_out.append(
            Demand(
                source=md.source,
                model=md.model,
                rate_rps=md.rate_rps,
                priority=md.priority,
                latency_budget_ms=md.latency_budget_ms,
                mean_input_tokens=md.mix.mean_input,
                mean_output_tokens=md.mix.mean_output,
                served_rps=sv,
                shed_rps=max(0.0, md.rate_rps - sv),
            )
        )

    # KV summary
    pred = sum(r.kv_cache_bytes_per_gpu * r.tp for r in replicas if not r.swap_models)
    naive = 0
    for r in replicas:
        if r.swap_models:
            continue
        m = inputs.models[r.model]
        naive += int(kv_bytes_per_token_per_gpu(m, r.tp)) * r.max_model_len * r.max_num_seqs * r.tp
    kv = KvSummary(predicted_bytes=int(pred), naive_bytes=int(naive), saved_fraction=(1.0 - pred / naive) if naive > 0 else 0.0) if replicas else None

    # binding constraints
    binding: list[Binding] = []
    gpus_by_pool: dict[int, int] = defaultdict(int)
    node_pool = {nd: p.index for p in pools for nd in p.node_names}
    for gs in used_gpus.values():
        for node, _i in gs:
            gpus_by_pool[node_pool[node]] += 1
    for pi, used in sorted(gpus_by_pool.items()):
        p = pools[pi]
        if used >= p.gpus:
            binding.append(Binding(constraint="inventory", subject=f"{p.cluster}/{p.name} ({p.gpu_type})", slack=float(p.gpus - used), unit="GPUs"))
    for c in inputs.inventory.clusters:
        if c.budget_per_hour is not None and cost_by_cluster.get(c.name, 0.0) >= 0.99 * c.budget_per_hour:
            binding.append(Binding(constraint="budget", subject=c.name, slack=float(c.budget_per_hour - cost_by_cluster.get(c.name, 0.0)), unit="$/h"))
    for gi in sorted(per_group_ids, key=lambda gi: groups[gi].key):
        g = groups[gi]
        n = len(per_group_ids[gi])
        prov = math.fsum(f * demands[di].rate_rps * demands[di].provision_factor * (1 + s.headroom) for di, f in flows.get(gi, []))
        slack = n * g.capacity.rps - prov
        if slack <= 1e-3 * n * g.capacity.rps:
            binding.append(Binding(constraint="capacity", subject=f"{cands[g.cand].model} on {cands[g.cand].gpu_type} TP{cands[g.cand].tp} in {pools[g.pool].key}", slack=float(slack), unit="req/s"))
    for m, need in sorted(prob.zones_required.items()):
        doms = {(r.cluster, r.zone) for r in replicas if r.model == m and not r.swap_models}
        if need >= 2 and len(doms) == need:
            binding.append(Binding(constraint="zones", subject=m, slack=0.0, unit="failure domains"))
    shed = [d for d in demand_out if d.shed_rps > 1e-9]
    for d in shed:
        binding.append(Binding(constraint="demand", subject=f"{d.source} -> {d.model} ({d.priority})", slack=-d.shed_rps, unit="req/s shed"))
    binding.sort(key=lambda b: (b.constraint, b.subject))

    cost = math.fsum(cost_by_cluster.values())
    obj = result.phases[0].objective if result.phases else None
    bound = result.phases[0].bound if result.phases else None
    if status == "heuristic":
        bound = None
    gap = relative_gap(obj, bound, status if status != "heuristic" else "feasible")
    notes = list(prob.notes)
    if result.hit_wall_clock:
        notes.append("the solver stopped on a wall-clock limit (HiGHS' and CBC's limits are wall-clock; for CP-SAT its safety cap fired before the work budget): with another machine load the same inputs may give a different plan")
    if gap is not None and gap > 1e-9 and status == "feasible":
        notes.append(f"not proven optimal: {100 * gap:.2f}% gap to the best bound when the work budget ran out")
    if shed:
        notes.append(f"{len(shed)} demand pair(s) partly shed under --objective goodput: {sum(d.shed_rps for d in shed):.4g} req/s in total")
    digest = input_digest(inputs)
    settings_out = plan_settings(s)
    plan_id = _sha({"inputs": digest.model_dump(mode="json"), "settings": settings_out.model_dump(mode="json"), "capacity_table": s.capacity_table_path and _sha([r.model_dump() for r in s.capacity_table.rows]) if s.capacity_table else None})
    det = result.deterministic_time
    return Plan(
        plan_id=plan_id,
        generator=f"maestro-plan {__version__}",
        inputs=digest,
        settings=settings_out,
        solve=SolveInfo(
            status=status,  # type: ignore[arg-type]
            objective=obj,
            bound=bound,
            gap=gap,
            deterministic_time=round(det, 3) if det is not None else None,
            heuristic_objective=heur_obj,
            lp_bound=lp_bound,
        ),
        cost_per_hour=cost,
        gpus_used={c: dict(sorted(v_.items())) for c, v_ in sorted(gpus_used.items())},
        replicas=replicas,
        standby=standby,
        routes=routes,
        demand=demand_out,
        kv=kv,
        binding=binding,
        notes=notes,
    )
