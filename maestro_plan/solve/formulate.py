"""Inputs + estimator -> Problem: candidates, service classes, groups, arcs, and the linear model.

Decisions (integer unless said otherwise):
  n[g]      replicas of group g = (candidate, pool, service class)
  G[p]      GPUs used in pool p (whole GPUs; co-located engines counted by the aggregate rows)
  x[a]      continuous, fraction of demand d routed over arc a = (d, g)
  y[m, z]   binary, interactive model m has a replica in failure domain z = (cluster, zone)
  k[t]      binary, swap slot of type t exists (warm standby);  h[o] binary: model held in slot t
  s[a']     continuous, fraction of demand d served by a standby option
  d+/d-     replicas added / removed per (candidate, pool) against --current

Constraints (family names are what explanations and `binding` report):
  capacity   sum_a x_a rate_d pf_d (1 + headroom) / cap_a <= n_g          for every group g
             (cap_a: the group's candidate serving only demand d's request class)
  demand     sum x + sum s = 1 (cost) or <= 1 (goodput: the rest is shed)   for every demand
  inventory  R G_p >= sum units n (+ slots), R = UNITS_PER_GPU: whole GPUs count tp R, a co-located
             engine floor(R x its share of the usable HBM); per pool, for every dual
             feasible function f of DFFS, R G_p >= whole units + sum R f(share) n (valid for any
             byte packing); G_p <= GPUs of p; and for every power of two t that does not divide
             the node size: sum_{tp >= t} tp n <= nodes x floor(G/t) x t. These are aggregate
             rows, a relaxation of the byte-exact packing: place.py packs every GPU by bytes
             (first-fit decreasing, then the pattern packer) and the plan's cost counts any GPU
             the exact packing needs beyond G (assemble.py), so the gap stays honest.
  memory     by construction: a whole-GPU candidate exists only if weights + overhead + a KV pool
             holding one max_model_len request fit gpu_memory_utilization x HBM; a co-located one
             is sized to weights + overhead + the KV of its planned concurrency (problem.py)
  compute    by construction: a co-located engine's compute share is its share of the usable
             HBM, so the bytes on a GPU summing within U keeps the shares within 1
  slo        by construction: an arc exists only where the class's engine budget + 2 x one-way link
             latency fits the demand's per-call budget, and capacity is taken at that budget
  zones      sum_z y[m, z] >= min(min_zones, failure domains of the fleet), y[m,z] <= sum n in z
  budget     sum_p price_p G_p <= budget_per_hour                          per capped cluster
  standby    k slots per pool <= 1; h <= k; <= 4 models per slot; their weights <= half the node's
             host DRAM; sum s rate pf (1+h) (1/cap + cold start) <= k      (time-shared swap slot)

Capacity is additive across request classes: a demand row is one request class (a role of a
(source, model) pair, with its own mix and budget), and cap_a is estimate.replica_capacity (or the
measured --capacity-table row) for that class's own mix at the group's class budget (the tightest
budget of the demands the class may serve). Never a mean or envelope mix: with a measured table
whose throughput is not monotone in length, a mean mix can land in a faster cell than any of its
classes (Melange's published example). The verifier sums the same way with its own arithmetic.
Peaks: a demand is provisioned at max(rate x (1+headroom),
peak rate), i.e. pf = max(1, peak / (rate (1 + headroom))).

Warm standby (hierarchical weight caching, vLLM sleep mode level 1): a swap slot is a GPU slice
where several models' engines sleep with their weights in the node's host DRAM; one is awake at a
time. Waking copies the weights back: cold start = whole-model weight bytes / host-to-GPU bandwidth
+ WAKE_OVERHEAD_MS. The slot is sized for each model it holds with STANDBY_MAX_MODELS - 1 other
sleeping engines' residual memory (non-torch + CUDA graphs) subtracted from the KV pool. Every
request is charged a full swap (busy time = service time at capacity + cold start): sound however
the requests interleave. Interactive demand may use a slot only if the per-call budget still holds
after its own cold start plus the longest cold start of any model that may share the slot (one
swap ahead of it); batch demand may wait. Standby is offered only to models whose provisioned demand
is below one replica of their best configuration (the rarely used ones). Swap slots do not count
towards the zone spread (a sleeping engine is not a serving replica).

Objectives, solved lexicographically (model.py): cost: (1) $/h of GPUs used + change penalty
(change_weight $/h per replica added or removed), (2) request-weighted network latency plus 1e-5
per GPU (fewer hops, then fewer GPUs; never traded against dollars; a tie-break phase, run only
when the cost is proven optimal - otherwise the final routing LP still minimises network latency
for the chosen replicas). goodput: (1) interactive req/s served, (2) batch req/s served, (3) cost,
(4) network.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

from maestro_plan.estimate import (
    VLLM,
    CapacityResult,
    RequestMix,
    compute_demand,
    engine_for,
    replica_capacity,
    replica_memory,
    weight_bytes_total,
)
from maestro_plan.estimate.memory import hbm_bytes
from maestro_plan.load.loader import tp_allowed
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.families import Family
from maestro_plan.solve.model import LinearModel
from maestro_plan.solve.problem import (
    DFFS,
    MIN_SHARE_UNITS,
    ROUTE_RESOLUTION,
    SLICE_UNITS,
    UNITS_PER_GPU,
    Arc,
    Candidate,
    DemandRow,
    Group,
    Pool,
    Problem,
    ServiceClass,
    SlotType,
    SolveSettings,
    StandbyArc,
    StandbyOption,
    Vars,
    units_of_share,
)
from maestro_plan.units import GIB

WAKE_OVERHEAD_MS = 100.0
"""Fixed part of waking a sleeping vLLM engine beyond copying its weights: the vLLM blog
"Zero-Reload Model Switching with vLLM Sleep Mode" (2025-10-26, blog.vllm.ai/2025/10/26/sleep-mode.html)
reports level-1 wake-ups from about 0.1 s (Qwen3-0.6B, whose 1.2 GB copy takes a few tens of ms) to
6 s (235B); the smallest figure bounds the fixed part."""

STANDBY_MAX_MODELS = 4
"""Models time-sharing one swap slot (a planning limit, not a physical constant: each sleeping
engine keeps its CUDA context and graphs on the GPU, which is subtracted from the slot)."""

STANDBY_DRAM_FRACTION = 0.5
"""Share of a node's host DRAM the planner lets standby weights take (a planning reserve: the rest
is left to the OS, the serving engines' own host memory and page cache)."""

SHARED_CONCURRENCY = (1,)
"""Planned concurrencies a co-located engine is sized for (requests in flight of the length
percentile, at least one max_model_len request): the smallest engine a model can run as; larger KV
pools come from the slices (1/2, 1/4, 1/8 of the usable HBM, shared_sizes). Measured with powers of
four up to vLLM's default max_num_seqs of 256 as well (1, 4, 16, 64, 256; same deterministic budget,
plans_identical settings): the 100-GPU synth fleet, seed 0, $393.07/h against $385.90/h with (1,),
the bundled fleet $514.49 against $513.86, seed 1 equal: more candidates, the same search budget,
and a bound lower by 0.1-0.5 %. So they are left out (the plan's gap_covers says so)."""

MAX_CLASSES_PER_CLUSTER = 4
CLASS_GAIN = 1.02  # a per-demand class is kept only where it buys >= 2% capacity over class `all`
GPU_TIE_WEIGHT = 1e-5  # per GPU, in the network phase (average ms per request)


# --------------------------------------------------------------------------------------------
# Inputs -> rows
# --------------------------------------------------------------------------------------------


def pools_of(inputs: Inputs) -> list[Pool]:
    out: list[Pool] = []
    for c in sorted(inputs.inventory.clusters, key=lambda c: c.name):
        for p in sorted(c.node_pools, key=lambda p: p.name):
            gpu = inputs.gpu_types[p.gpu_type]
            price = p.price_per_gpu_hour if p.price_per_gpu_hour is not None else gpu.price_per_gpu_hour
            out.append(
                Pool(
                    index=len(out),
                    key=f"{c.name}/{p.name}",
                    cluster=c.name,
                    name=p.name,
                    zone=p.zone,
                    region=c.region,
                    gpu_type=p.gpu_type,
                    gpus_per_node=p.gpus_per_node,
                    node_count=p.node_count,
                    node_names=tuple(p.node_names),
                    price_per_gpu_hour=float(price),
                    host_dram_bytes=int(p.host_dram_gib * GIB),
                    usable_bytes=usable_hbm_bytes(gpu),
                )
            )
    return out


def network(inputs: Inputs) -> dict[tuple[str, str], float]:
    """One-way latency from each source to each cluster it has a direct link to (the inventory's
    links; the verifier reads the same links, so multi-hop paths are not used)."""
    clusters = {c.name for c in inputs.inventory.clusters}
    out: dict[tuple[str, str], float] = {}
    for lk in inputs.inventory.links:
        for s, c in ((lk.a, lk.b), (lk.b, lk.a)):
            if c in clusters and s not in clusters:
                out[(s, c)] = float(lk.latency_ms)
    for s in inputs.inventory.sources:
        if s.name in clusters:  # pragma: no cover - names are unique across the inventory
            out[(s.name, s.name)] = 0.0
    return out


def demand_rows(dm, settings: SolveSettings) -> list[DemandRow]:
    """One row per request class of each (source, model) pair (estimate.DemandClass; a pair
    without classes is one row), so the classes of one pair are routed, and may be served,
    apart. A pair with one class keeps the pair's key."""
    rows: list[DemandRow] = []
    derate = dict(settings.slo_derate)
    for d in sorted(dm.per_model, key=lambda d: (d.model, d.source)):
        classes = tuple(getattr(d, "classes", ()) or ())
        parts = [(c.name, c.rate_rps, c.priority, c.latency_budget_ms, c.mix, (c.name,), c.shared_prefix, c.peak_rate_rps) for c in classes]
        if not parts:
            parts = [("", d.rate_rps, d.priority, d.latency_budget_ms, d.mix, tuple(d.roles), d.shared_prefix, getattr(d, "peak_rate_rps", 0.0))]
        for name, rate, prio, budget, mix, roles, shared, peak in parts:
            if rate <= 0:
                continue
            peak = float(peak or 0.0)
            pf = max(1.0, peak / (rate * (1.0 + settings.headroom))) if peak > 0 else 1.0
            pf *= derate.get(d.model, 1.0)  # the SLO loop's derate of this model's capacity (>= 1)
            key = f"{d.source}/{d.model}" + (f"/{name}" if len(parts) > 1 else "")
            rows.append(DemandRow(len(rows), key, d.source, d.model, float(rate), prio, float(budget), mix, roles, bool(shared), peak, pf, name))
    return rows


def usable_hbm_bytes(gpu, engine=VLLM) -> int:
    """Usable HBM per GPU, floor(HBM x the GPU type's gpu_memory_utilization): what co-located
    engines of several models share (Pool.usable_bytes, shared candidates' sizes, place.py)."""
    return int(hbm_bytes(gpu) * float(engine_for(None, gpu, engine).gpu_memory_utilization))


def _is_pow2(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _envelope(mixes: list[RequestMix], max_model_len: int) -> RequestMix:
    return RequestMix(
        mean_input=max(m.mean_input for m in mixes),
        mean_output=max(m.mean_output for m in mixes),
        kv_tokens_per_request=max(m.kv_tokens_per_request for m in mixes),
        max_model_len=max_model_len,
    )


def _kv_tokens_per_request(mid: str, demands: list[DemandRow], settings: SolveSettings, max_model_len: int) -> int:
    """KV tokens one request of `mid` reserves at the length percentile: the largest over its
    demands (their class mixes, so naive reservation gives max_model_len)."""
    per = [_class_mix(d.mix, settings, max_model_len).kv_tokens_per_request for d in demands if d.model == mid]
    return max(1, math.ceil(max(per))) if per else max_model_len


def _class_mix(mix: RequestMix, settings: SolveSettings, max_model_len: int) -> RequestMix:
    if settings.kv_reservation == "naive":
        # naive reservation: every request reserves a full max_model_len of KV
        return replace(mix, kv_tokens_per_request=float(max_model_len), max_model_len=max_model_len)
    return replace(mix, max_model_len=max_model_len)


# --------------------------------------------------------------------------------------------
# Problem construction
# --------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, inputs: Inputs, settings: SolveSettings, dm, current_plan) -> None:
        self.inputs = inputs
        self.s = settings
        self.engine = VLLM
        self.dm = dm if dm is not None else compute_demand(inputs, percentile=settings.length_percentile, slowdown_scale=dict(settings.slo_slowdown_scale), budget_rule=settings.slo_budget_rule)
        self.current_plan = current_plan
        self.notes: list[str] = []
        self.cap_cache: dict[tuple, CapacityResult | None] = {}
        self.mem_cache: dict[tuple, object] = {}  # (model, GPU type, tp, units) -> replica_memory
        self.weight_cache: dict[str, int] = {}  # model -> whole-model weight bytes

    # ---------------------------------------------------------------- candidates
    def candidates(self, models: list[str], pools: list[Pool], demands: list[DemandRow] | None = None) -> list[Candidate]:
        """Whole-GPU candidates (every allowed power-of-two TP that fits), and for TP 1 (with
        co-location on) the co-located engines of shared_candidates."""
        per_node: dict[str, int] = defaultdict(int)
        for p in pools:
            per_node[p.gpu_type] = max(per_node[p.gpu_type], p.gpus_per_node)
        out: list[Candidate] = []
        for mid in models:
            m = self.inputs.models[mid]
            a = m.architecture
            kvh = 1 if a.is_mla else a.kv_heads
            skipped = sorted({t for t in m.tp_degrees if not _is_pow2(t)})
            if skipped:
                self.notes.append(f"{mid}: TP {skipped} skipped (placement packs power-of-two TP degrees exactly; others are not planned)")
            for gid in sorted(per_node):
                gpu = self.inputs.gpu_types[gid]
                for tp in m.tp_degrees:
                    if not _is_pow2(tp) or tp > per_node[gid] or not tp_allowed(a.num_attention_heads, kvh, tp):
                        continue
                    util = self.util_of(mid, gid)  # the GPU type's / model's reserves (engine_for)
                    mem = replica_memory(m, gpu, tp, gpu_memory_utilization=util, max_model_len=m.context_len, engine=self.engine)
                    if not mem.fits:
                        continue
                    out.append(self._candidate(len(out), f"{mid}@{gid}/tp{tp}/u{tp * UNITS_PER_GPU}", mid, gid, tp, tp * UNITS_PER_GPU, 1.0, util, mem, 0))
                    if tp == 1 and self.s.colocation:
                        for c in self.shared_candidates(mid, gid, _kv_tokens_per_request(mid, demands or [], self.s, m.context_len)):
                            out.append(replace(c, index=len(out)))
        return out

    def util_of(self, mid: str, gid: str) -> float:
        """gpu_memory_utilization for `mid` on GPU type `gid` (engine_for: the model's, then the GPU
        type's reserves, then the engine default)."""
        return float(engine_for(self.inputs.models[mid], self.inputs.gpu_types[gid], self.engine).gpu_memory_utilization)

    def _candidate(self, index: int, key: str, mid: str, gid: str, tp: int, units: int, share: float, frac: float, mem, mem_bytes: int, usable: int = 0) -> Candidate:
        overhead = int(mem.activation_bytes_per_gpu) + int(mem.non_torch_bytes_per_gpu) + int(getattr(mem, "cuda_graph_bytes_per_gpu", 0))
        return Candidate(
            index=index, key=key, model=mid, gpu_type=gid, tp=tp, units=units, compute_share=share, memory_fraction=frac,
            weights_bytes_per_gpu=int(mem.weights_bytes_per_gpu), overhead_bytes_per_gpu=overhead, kv_pool_bytes_per_gpu=int(mem.kv_pool_bytes_per_gpu),
            kv_bytes_per_token_per_gpu=int(mem.kv_bytes_per_token_per_gpu), max_model_len=self.inputs.models[mid].context_len, mem_bytes=mem_bytes,
            usable_bytes=usable,
        )

    def shared_candidates(self, mid: str, gid: str, per_request: int) -> list[Candidate]:
        """Co-located engines of `mid` on one GPU of type `gid`, sized in bytes: weights + reserves
        + the KV of c requests of `per_request` tokens (the length percentile; at least one
        max_model_len request; whole KV blocks) for the planned concurrencies c of
        SHARED_CONCURRENCY, and today's slices (1/2, 1/4, 1/8 of the usable HBM U, the KV taking
        what the weights leave) where they hold one max_model_len request; each at least
        MIN_SHARE_UNITS / UNITS_PER_GPU of U and below U (all of U is the whole-GPU candidate).
        One candidate per aggregate size (unique keys). Index 0: set by the caller."""
        m, gpu = self.inputs.models[mid], self.inputs.gpu_types[gid]
        usable = usable_hbm_bytes(gpu, self.engine)
        base = replica_memory(m, gpu, 1, kv_cache_bytes_per_gpu=0, engine=self.engine)
        fixed = int(base.weights_bytes_per_gpu) + int(base.activation_bytes_per_gpu) + int(base.non_torch_bytes_per_gpu) + int(getattr(base, "cuda_graph_bytes_per_gpu", 0))
        block = int(self.engine.block_size)
        block_bytes = int(base.kv_bytes_per_token_per_gpu) * block
        if block_bytes <= 0:
            return []
        least = fixed + -(-m.context_len // block) * block_bytes
        out: list[Candidate] = []
        seen: set[int] = set()
        for b in sorted(x for x in self.shared_sizes(mid, usable, fixed, block_bytes, per_request) if least <= x < usable):
            units = units_of_share(b / usable)
            if units in seen:
                continue
            seen.add(units)
            kv = (b - fixed) // block_bytes * block_bytes  # whole blocks: what vLLM allocates of the pool
            mem = replica_memory(m, gpu, 1, kv_cache_bytes_per_gpu=kv, max_model_len=m.context_len, engine=self.engine)
            out.append(self._candidate(0, f"{mid}@{gid}/tp1/u{units}", mid, gid, 1, units, b / usable, b / hbm_bytes(gpu), mem, b, usable))
        return out

    def shared_sizes(self, mid: str, usable: int, fixed: int, block_bytes: int, per_request: int) -> set[int]:
        """Bytes of the co-located engines offered for `mid` (see shared_candidates; `fixed`: weights
        and reserves, `block_bytes`: one KV block). benchmarks/binpack_planner.py replaces it to
        give every model one engine of an OR-Library item's size."""
        block = int(self.engine.block_size)
        m = self.inputs.models[mid]
        floor_b = usable * MIN_SHARE_UNITS // UNITS_PER_GPU  # floor: MAX_ENGINES_PER_GPU of them fit U
        sizes = {max(fixed + -(-max(m.context_len, c * per_request) // block) * block_bytes, floor_b) for c in SHARED_CONCURRENCY}
        return sizes | {usable * u // UNITS_PER_GPU for u in SLICE_UNITS[1:]}

    def capacity(self, cand: Candidate, mix: RequestMix, budget: float) -> CapacityResult | None:
        key = (cand.model, cand.gpu_type, cand.tp, cand.units, cand.kv_pool_bytes_per_gpu, mix.mean_input, mix.mean_output, mix.kv_tokens_per_request, round(budget, 6))
        if key not in self.cap_cache:
            m = self.inputs.models[cand.model]
            gpu = self.inputs.gpu_types[cand.gpu_type]
            r = replica_capacity(
                m,
                gpu,
                cand.tp,
                mix,
                latency_budget_ms=budget,
                kv_pool_bytes_per_gpu=cand.kv_pool_bytes_per_gpu,
                compute_share=cand.compute_share,
                table=self.s.capacity_table,
            )
            self.cap_cache[key] = r if (r is not None and r.rps > 0) else None
        return self.cap_cache[key]

    # ---------------------------------------------------------------- service classes
    def classes(self, demands: list[DemandRow], clusters: list[str], net) -> list[ServiceClass]:
        """Engine latency budgets per (model, cluster): class `all` at the tightest budget of every
        reachable demand (it may serve them all), and, with service_classes, up to
        MAX_CLASSES_PER_CLUSTER - 1 looser budgets (_budget_levels), each serving the demands whose
        budget it meets. A class is a budget, not a mix: capacities are per demand class (_capacities),
        and a replica's load is summed over the classes it serves (add_capacity). The class mix
        is the envelope of what it serves, for reports only."""
        out: list[ServiceClass] = []
        by_model: dict[str, list[DemandRow]] = defaultdict(list)
        for d in demands:
            by_model[d.model].append(d)
        for mid in sorted(by_model):
            L = self.inputs.models[mid].context_len
            for cl in clusters:
                reach = []
                for d in by_model[mid]:
                    if (d.source, cl) not in net:
                        continue
                    e = d.budget_ms - 2.0 * net[(d.source, cl)]
                    if e > 0:
                        reach.append((d, e))
                if not reach:
                    continue
                budgets = _budget_levels([(d.rate_rps, e) for d, e in reach], MAX_CLASSES_PER_CLUSTER if self.s.service_classes else 1)
                seen: set[float] = set()
                for i, b in enumerate(budgets):
                    if round(b, 6) in seen:
                        continue
                    seen.add(round(b, 6))
                    served = sorted((d for d, e in reach if e >= b - 1e-9), key=lambda d: d.index)
                    env = _envelope([_class_mix(d.mix, self.s, L) for d in served], L)
                    tag = "all" if i == 0 else f"b{b:.0f}"
                    out.append(ServiceClass(len(out), f"{mid}@{cl}/{tag}/{len(out)}", mid, cl, env, b, tuple(d.index for d in served), i == 0))
        return out


def _budget_levels(reach: list[tuple[float, float]], k: int) -> list[float]:
    """Up to k engine budgets for the classes of one (model, cluster), the tightest first (class
    `all`, which every reachable demand may use). Each further level is the demand budget that
    most raises sum_d rate_d x log(level d may use): a demand uses the loosest level within its own
    budget, and capacity grows with the budget, so levels go where the traffic is and where its
    budgets are far above the tightest (e.g. a rare 0.6 s role beside 50 s roles of one model)."""
    levels = [min(e for _, e in reach)]
    cands = sorted({e for _, e in reach})

    def value(ls: list[float]) -> float:
        return math.fsum(r * math.log(max(b for b in ls if b <= e + 1e-9)) for r, e in reach)

    while len(levels) < k:
        best = max(((value(levels + [b]), -b) for b in cands if b not in levels), default=None)
        if best is None or best[0] <= value(levels) * (1 + 1e-12) + 1e-12:
            break
        levels.append(-best[1])
    return levels


def build_problem(inputs: Inputs, settings: SolveSettings, *, demand_model=None, current_plan=None) -> Problem:
    """Build the candidate table and the linear model. Raises InfeasibleError when a model cannot be
    placed at all (explain.precheck), before any solver runs."""
    from maestro_plan.solve import explain

    b = _Builder(inputs, settings, demand_model, current_plan)
    pools = pools_of(inputs)
    net = network(inputs)
    demands = demand_rows(b.dm, settings)
    if settings.slo_derate:
        b.notes.append("the SLO loop derated the capacity of " + ", ".join(f"{m} {k:g}x" for m, k in settings.slo_derate) + " (its replicas were overloaded in the latency model at their planned load)")
    models = sorted({d.model for d in demands})
    all_cands = b.candidates(models, pools, demands)
    classes = b.classes(demands, sorted({p.cluster for p in pools}), net)
    cls_by_model: dict[str, list[ServiceClass]] = defaultdict(list)
    for c in classes:
        cls_by_model[c.model].append(c)
    caps = _capacities(b, all_cands, cls_by_model, demands)
    protected, cur_raw = _current_replicas(current_plan)
    usable = [c for c in all_cands if any((c.index, sc.index) in caps for sc in cls_by_model[c.model])]
    dominated = _dominated(usable, caps, cls_by_model, protected)
    candidates, caps = _reindex([c for c in usable if c.index not in dominated], caps)
    explain.precheck(inputs, settings, demands, all_cands, candidates, classes, caps, pools, net)
    groups, arcs = _groups_and_arcs(candidates, pools, cls_by_model, caps, demands, net)
    zones_required = _zones_required(models, demands, pools, settings)
    slot_types, options, sarcs = _standby(b, pools, demands, all_cands, groups, candidates, net) if settings.standby else ([], [], [])
    current = _current_counts(cur_raw, candidates, pools, b.notes) if current_plan is not None else {}
    explain.precheck_routes(inputs, settings, demands, groups, arcs, sarcs, pools, candidates, zones_required)
    stats = {
        "candidates_enumerated": len(all_cands),
        "candidates_without_capacity": len(all_cands) - len(usable),
        "candidates_dominated": len(dominated),
        "candidates": len(candidates),
        "service_classes": len(classes),
        "groups": len(groups),
        "arcs": len(arcs),
        "standby_slot_types": len(slot_types),
        "standby_options": len(options),
        "standby_arcs": len(sarcs),
    }
    prob = Problem(settings, pools, demands, candidates, classes, groups, arcs, slot_types, options, sarcs, net, zones_required, current, b.notes, stats, demand_model=b.dm, inputs=inputs)
    for a in arcs:
        prob.arcs_of_group.setdefault(a.group, []).append(a.index)
        prob.arcs_of_demand.setdefault(a.demand, []).append(a.index)
    for a in sarcs:
        prob.sarcs_of_demand.setdefault(a.demand, []).append(a.index)
    build_model(prob)
    prob.stats.update(prob.lm.stats())
    return prob


def _capacities(b: _Builder, cands: list[Candidate], cls_by_model: dict[str, list[ServiceClass]], demands: list[DemandRow]) -> dict[tuple[int, int], dict[int, CapacityResult]]:
    """Capacity of every candidate, per service class of its model, for each demand the class
    serves: one replica serving only that demand's request class (its own mix, never a mean or
    envelope mix) at the class's budget. (cand, class) -> {demand: capacity}, where it has any."""
    caps: dict[tuple[int, int], dict[int, CapacityResult]] = {}
    for cand in cands:
        L = b.inputs.models[cand.model].context_len
        for sc in cls_by_model[cand.model]:
            per: dict[int, CapacityResult] = {}
            for di in sc.demands:
                r = b.capacity(cand, _class_mix(demands[di].mix, b.s, L), sc.budget_ms)
                if r is not None:
                    per[di] = r
            if per:
                caps[(cand.index, sc.index)] = per
    return caps


def _current_replicas(current_plan) -> tuple[set[str], dict[tuple[str, str, str], int]]:
    """The plan in force (change penalty): candidate keys to protect from pruning, and replica
    counts per (candidate key, cluster, pool)."""
    protected: set[str] = set()
    cur_raw: dict[tuple[str, str, str], int] = defaultdict(int)
    if current_plan is not None:
        for r in current_plan.replicas:
            units = units_of_share(r.compute_share) if (r.tp == 1 and r.compute_share < 1.0) else r.tp * UNITS_PER_GPU
            key = f"{r.model}@{r.gpu_type}/tp{r.tp}/u{units}"
            protected.add(key)
            cur_raw[(key, r.cluster, r.node_pool)] += 1
    return protected, cur_raw


def _dominated(usable: list[Candidate], caps, cls_by_model, protected: set[str]) -> set[int]:
    """Candidates some other one of the same model and GPU type dominates: k copies of a smaller
    one (k = the size ratio) serve at least as much in every class."""
    dominated: set[int] = set()
    by_mg: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for c in usable:
        by_mg[(c.model, c.gpu_type)].append(c)
    for (mid, _), cs in sorted(by_mg.items()):
        for A in cs:
            if A.key in protected:
                continue
            for B in cs:
                if B.index == A.index or B.index in dominated or A.units % B.units or not _packs_into(B, A):
                    continue
                if _dominates(B, A, caps, cls_by_model[mid]):
                    dominated.add(A.index)
                    break
    return dominated


def _packs_into(B: Candidate, A: Candidate) -> bool:
    """k = A.units / B.units copies of B fit wherever one A does: always for whole GPUs; a
    co-located B only if k x its bytes fit A's bytes, or (A on whole GPUs) k copies fit A's tp GPUs."""
    if not B.shared:
        return True
    k = A.units // B.units
    if A.shared:
        return k * B.mem_bytes <= A.mem_bytes
    return (B.usable_bytes // B.mem_bytes) * A.tp >= k


def _dominates(B: Candidate, A: Candidate, caps, scs: list[ServiceClass]) -> bool:
    """k = A.units / B.units copies of B serve at least what A serves, for every demand class in
    every service class (strictly more somewhere, or k > 1, or a tie broken by key)."""
    k = A.units // B.units
    strict = False
    for sc in scs:
        ca = caps.get((A.index, sc.index), {})
        cb = caps.get((B.index, sc.index), {})
        for di in sorted(set(ca) | set(cb)):
            va = ca[di].rps if di in ca else 0.0
            vb = k * (cb[di].rps if di in cb else 0.0)
            if vb < va * (1 - 1e-12):
                return False
            if vb > va * (1 + 1e-12):
                strict = True
    return strict or k > 1 or B.key < A.key


def _reindex(kept: list[Candidate], caps) -> tuple[list[Candidate], dict[tuple[int, int], CapacityResult]]:
    remap = {c.index: i for i, c in enumerate(kept)}
    candidates = [replace(c, index=remap[c.index]) for c in kept]
    return candidates, {(remap[ci], si): r for (ci, si), r in caps.items() if ci in remap}


def _groups_and_arcs(candidates, pools, cls_by_model, caps, demands, net) -> tuple[list[Group], list[Arc]]:
    """A group per (candidate, pool of its GPU type, class of the pool's cluster) where the class
    has capacity (a looser class only where it buys CLASS_GAIN over class `all` for some demand);
    an arc per demand the class serves with capacity, carrying that demand class's capacity and
    its load factor against the group's reference capacity (the smallest of its arcs')."""
    groups: list[Group] = []
    arcs: list[Arc] = []
    for cand in candidates:
        for p in pools:
            if p.gpu_type != cand.gpu_type or cand.tp > p.gpus_per_node:
                continue
            max_count = p.units // cand.units
            if cand.tp > 1 and p.gpus_per_node % cand.tp:
                max_count = min(max_count, p.node_count * (p.gpus_per_node // cand.tp))
            if max_count <= 0:
                continue
            base: dict[int, CapacityResult] = {}
            for sc in cls_by_model[cand.model]:
                if sc.cluster == p.cluster and sc.is_all:
                    base = caps.get((cand.index, sc.index), {})
            for sc in cls_by_model[cand.model]:
                per = caps.get((cand.index, sc.index), {}) if sc.cluster == p.cluster else {}
                if not per or (not sc.is_all and not _gains(per, base)):
                    continue
                ref = min(per.values(), key=lambda r: r.rps)
                g = Group(len(groups), f"{cand.key}@{p.key}/{sc.index}", cand.index, p.index, sc.index, ref, max_count)
                groups.append(g)
                for di in sc.demands:
                    if di in per:
                        d = demands[di]
                        arcs.append(Arc(len(arcs), di, g.index, net[(d.source, p.cluster)], per[di], ref.rps / per[di].rps))
    return groups, arcs


def _gains(per: dict[int, CapacityResult], base: dict[int, CapacityResult]) -> bool:
    """A looser class is worth a group where, for some demand it serves, it has CLASS_GAIN times
    class `all`'s capacity (or class `all` has none)."""
    return any(di not in base or r.rps > CLASS_GAIN * base[di].rps for di, r in per.items())


def _zones_required(models: list[str], demands: list[DemandRow], pools: list[Pool], settings: SolveSettings) -> dict[str, int]:
    """Failure domains each model with interactive demand must span (at most the fleet's)."""
    all_domains = {p.failure_domain for p in pools}
    out: dict[str, int] = {}
    for mid in models:
        if any(d.model == mid and d.priority == "interactive" for d in demands):
            out[mid] = min(max(0, settings.min_zones_interactive), len(all_domains))
    return out


def _current_counts(cur_raw, candidates: list[Candidate], pools: list[Pool], notes: list[str]) -> dict[tuple[int, int], int]:
    """Replicas of the plan in force per (candidate, pool) of these inputs; a note for the lost."""
    cand_by_key = {c.key: c.index for c in candidates}
    pool_by_key = {(p.cluster, p.name): p.index for p in pools}
    current: dict[tuple[int, int], int] = {}
    lost = 0
    for (ck, cl, pn), cnt in sorted(cur_raw.items()):
        if ck in cand_by_key and (cl, pn) in pool_by_key:
            current[(cand_by_key[ck], pool_by_key[(cl, pn)])] = cnt
        else:
            lost += cnt
    if lost:
        notes.append(f"{lost} replica(s) of the current plan have no counterpart in these inputs (configuration no longer fits or pool gone); they are removed")
    return current


def _standby(b: _Builder, pools, demands, all_cands, groups, candidates, net) -> tuple[list[SlotType], list[StandbyOption], list[StandbyArc]]:
    """Swap-slot types, the models each may hold, and the standby routing arcs (see module doc).
    At most one slot type per pool; options and arcs are numbered as they are kept."""
    rare = _rare_models(b.s.headroom, demands, groups, candidates)
    if not rare:
        return [], [], []
    configs: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for c in all_cands:
        if c.model in rare:  # swap slots stay power-of-two slices: whole GPUs, or 1/2, 1/4, 1/8 of one
            configs[c.gpu_type].update([(c.tp, c.units)] if not c.shared else [(1, u) for u in SLICE_UNITS[1:]])
    slot_types: list[SlotType] = []
    options: list[StandbyOption] = []
    sarcs: list[StandbyArc] = []
    for p in pools:
        choice = _slot_choice(b, p, rare, configs.get(p.gpu_type, ()))
        if choice is None:
            continue
        units, tp, f, frac, held = choice
        st = SlotType(len(slot_types), f"slot@{p.key}/tp{tp}/u{units}", p.index, tp, units, frac, f)
        max_cold = max(o.cold_start_ms for o in held)
        kept = []
        for o in held:
            o = replace(o, index=len(options) + len(kept), key=f"{o.model}@{st.key}", slot=st.index)
            arcs_here = _standby_arcs(b, p, st, o, max_cold, demands, net, first_index=len(sarcs))
            if arcs_here:
                kept.append(o)
                sarcs.extend(arcs_here)
        if kept:
            slot_types.append(st)
            options.extend(kept)
    return slot_types, options, sarcs


def _rare_models(headroom: float, demands, groups, candidates) -> list[str]:
    """Models whose provisioned demand is below one replica of their best configuration."""
    best_cap: dict[str, float] = defaultdict(float)
    for g in groups:
        c = candidates[g.cand]
        best_cap[c.model] = max(best_cap[c.model], g.capacity.rps)
    need: dict[str, float] = defaultdict(float)
    for d in demands:
        need[d.model] += d.provisioned_rps(headroom)
    return sorted(m for m in need if best_cap.get(m, 0.0) > 0 and need[m] < best_cap[m])


def _slot_choice(b: _Builder, p: Pool, rare: list[str], configs) -> tuple[int, int, float, float, list[StandbyOption]] | None:
    """The pool's swap-slot configuration: the one that can hold the most rare models (smallest
    first on ties, which keeps the model small), as (units, tp, share, memory fraction, options
    with index, key and slot still to be set); None when no configuration holds any."""
    choices = []
    for tp, units in sorted(configs, key=lambda t: (t[1], t[0])):
        if tp > p.gpus_per_node:
            continue
        f = units / (UNITS_PER_GPU * tp)
        frac = engine_for(None, b.inputs.gpu_types[p.gpu_type], b.engine).gpu_memory_utilization * f
        held = [o for o in (_standby_option(b, p, mid, tp, units, frac) for mid in rare) if o is not None]
        if held:
            choices.append((-len(held), units, tp, f, frac, held))
    if not choices:
        return None
    _, units, tp, f, frac, held = min(choices, key=lambda c: c[:3])
    return units, tp, f, frac, held


def _standby_option(b: _Builder, p: Pool, mid: str, tp: int, units: int, frac: float) -> StandbyOption | None:
    """Model `mid` sleeping in a slot of `units` x tp GPUs of pool p: its KV pool after the other
    sleeping engines' residual memory must hold one max_model_len request, and its weights fit
    the DRAM reserve; cold start = weights / host-to-GPU bandwidth + WAKE_OVERHEAD_MS."""
    engine = b.engine
    gpu = b.inputs.gpu_types[p.gpu_type]
    m = b.inputs.models[mid]
    if tp not in m.tp_degrees:
        return None
    eng = engine_for(m, gpu, engine)
    residual = eng.non_torch_bytes(tp) + int(getattr(eng, "cuda_graph_bytes", 0))
    mk = (mid, gpu.id, tp, units)
    if mk not in b.mem_cache:
        b.mem_cache[mk] = replica_memory(m, gpu, tp, gpu_memory_utilization=frac, max_model_len=m.context_len, engine=engine)
    mem = b.mem_cache[mk]
    pool_bytes = int(mem.kv_pool_bytes_per_gpu) - (STANDBY_MAX_MODELS - 1) * residual
    if pool_bytes <= 0 or mem.kv_bytes_per_token_per_gpu <= 0:
        return None
    tokens = pool_bytes // (mem.kv_bytes_per_token_per_gpu * engine.block_size) * engine.block_size
    if tokens < m.context_len:
        return None
    if mid not in b.weight_cache:
        b.weight_cache[mid] = int(weight_bytes_total(m))
    wbytes = b.weight_cache[mid]
    if wbytes > STANDBY_DRAM_FRACTION * p.host_dram_bytes:
        return None
    cold = wbytes / (gpu.host_to_gpu_gbps * 1e9) * 1000.0 + WAKE_OVERHEAD_MS
    overhead = int(mem.activation_bytes_per_gpu) + int(mem.non_torch_bytes_per_gpu) + int(getattr(mem, "cuda_graph_bytes_per_gpu", 0))
    return StandbyOption(0, "", 0, mid, wbytes, cold, int(mem.weights_bytes_per_gpu), overhead, pool_bytes, m.context_len)


def _standby_arcs(b: _Builder, p: Pool, st: SlotType, o: StandbyOption, max_cold: float, demands, net, *, first_index: int) -> list[StandbyArc]:
    """Demands of o's model that the slot can serve within their budget: interactive ones after
    their own cold start plus the longest of any model sharing the slot (one swap ahead)."""
    m = b.inputs.models[o.model]
    pseudo = Candidate(-1, "", o.model, p.gpu_type, st.tp, st.units, st.compute_share, st.memory_fraction, o.weights_bytes_per_gpu, o.overhead_bytes_per_gpu, o.kv_pool_bytes_per_gpu, 0, o.max_model_len)
    out: list[StandbyArc] = []
    for d in demands:
        if d.model != o.model or (d.source, p.cluster) not in net:
            continue
        e = d.budget_ms - 2.0 * net[(d.source, p.cluster)]
        if d.priority == "interactive":
            e -= o.cold_start_ms + max_cold
        if e <= 0:
            continue
        cap = b.capacity(pseudo, _class_mix(d.mix, b.s, m.context_len), e)
        if cap is None:
            continue
        busy = 1.0 / cap.rps + o.cold_start_ms / 1000.0
        out.append(StandbyArc(first_index + len(out), d.index, o.index, net[(d.source, p.cluster)], cap, busy))
    return out


# --------------------------------------------------------------------------------------------
# The linear model
# --------------------------------------------------------------------------------------------


@dataclass
class Scope:
    """Which part of the problem a linear model covers. The full model: everything. A per-model
    block (decompose.py): one model's groups, arcs, zones and standby, against the inventory left
    (`units_left`, `cut_left`, `budget_left`), paying price x GPU share per replica instead of whole
    GPUs per pool (`fractional`), and a share of each swap slot's price (`slot_cost_share`)."""

    models: frozenset[str] | None = None
    units_left: dict[int, int] | None = None
    cut_left: dict[tuple[int, int], int] | None = None
    budget_left: dict[str, float] | None = None
    fractional: bool = False
    standby: bool = True
    slot_cost_share: float = 1.0
    tie_break: bool = True
    # Lagrangian prices of dualised shared resources (fractional scopes only): $/h per GPU unit of
    # a pool, per GPU of a node-shape cut (pool, t), per $ of a cluster's budget
    unit_price: dict[int, float] | None = None
    cut_price: dict[tuple[int, int], float] | None = None
    budget_price: dict[str, float] | None = None
    # prices of the swap slots' shared rows (colgen.py; with them a slot itself costs the block
    # nothing, since the master pays for it): per slot type, ($/h per busy second per second,
    # $/h per model held, $/h per GiB of host DRAM held)
    slot_price: dict[int, tuple[float, float, float]] | None = None
    # replica counts without per-arc flows (routing_rows): exact for whole replicas, and HiGHS'
    # knapsack cuts then work on the capacity rows directly (cost objective, no tie-break)
    aggregate_routing: bool = False


MAX_AGGREGATE_DEMANDS = 8  # routing_rows writes one row per connected set of a model's demands (2^k - 1
# at most); models with more keep their flow variables


def routing_rows(prob: Problem, lm: LinearModel, v: Vars, demands: list[DemandRow], groups: list[Group]) -> None:
    """Routing of one model's demands without flow variables. Whole replicas with capacities c_g can carry demands r_d
    (each only to the groups it has arcs to) iff, for every set S of demands, the demands of S fit
    in the replicas S can reach: sum_{d in S} r_d (1 - standby share of d) <= sum_{g in N(S)} c_g n_g
    (Gale's supply-demand theorem; the sets whose demands share no group are implied by smaller
    ones and left out). Plus: some replica a demand reaches, unless standby serves it all. The
    same integer solutions as the capacity/link/demand rows of the flow model, without the flows."""
    h = prob.settings.headroom
    in_scope = {g.index for g in groups}
    reach: dict[int, frozenset[int]] = {}
    need: dict[int, float] = {}
    share: dict[int, dict[int, float]] = {}
    for d in demands:
        reach[d.index] = frozenset(prob.arcs[ai].group for ai in prob.arcs_of_demand.get(d.index, []) if prob.arcs[ai].group in in_scope)
        need[d.index] = d.provisioned_rps(h)
        share[d.index] = {v.sflow[ai]: 1.0 for ai in prob.sarcs_of_demand.get(d.index, []) if ai in v.sflow}
    ids = [d.index for d in demands]
    for mask in range(1, 1 << len(ids)):
        S = [ids[i] for i in range(len(ids)) if mask >> i & 1]
        if not _connected(S, reach):
            continue
        terms: dict[int, float] = defaultdict(float)
        for gi in sorted(frozenset().union(*(reach[di] for di in S))):
            terms[v.n[gi]] -= prob.groups[gi].capacity.rps
        for di in S:
            for vi in share[di]:
                terms[vi] -= need[di]
        name = "+".join(prob.demands[di].key for di in S)
        lm.le(f"routing[{name}]", Family.CAPACITY, dict(terms), -math.fsum(need[di] for di in S), key=("routing", tuple(S)))
    for d in demands:
        if need[d.index] <= 0:
            continue
        terms = {v.n[gi]: 1.0 for gi in sorted(reach[d.index])}
        terms.update(share[d.index])
        lm.ge(f"reach[{d.key}]", Family.DEMAND, terms, 1.0, key=("reach", d.index))
        if share[d.index]:
            lm.le(f"standby_share[{d.key}]", Family.DEMAND, share[d.index], 1.0, key=("standby_share", d.index))


def _connected(S: list[int], reach: dict[int, frozenset[int]]) -> bool:
    """Whether the demands of S are linked through groups they share."""
    seen = {S[0]}
    todo = [S[0]]
    while todo:
        a = todo.pop()
        for b in S:
            if b not in seen and reach[a] & reach[b]:
                seen.add(b)
                todo.append(b)
    return len(seen) == len(S)


@dataclass
class _Part:
    """What one linear model covers (build_model's scope applied): the objects it has rows and
    variables for, the model and its variable indices. Each add_* function reads it and adds one
    constraint family."""

    prob: Problem
    sc: Scope
    lm: LinearModel
    v: Vars
    groups: list[Group]
    demands: list[DemandRow]
    arcs: list[Arc]
    options: list[StandbyOption]
    sarcs: list[StandbyArc]
    slot_types: list[SlotType]
    used_pools: list[int]
    aggregated: set[str]  # models routed by routing_rows (no flow variables)

    @property
    def headroom(self) -> float:
        return self.prob.settings.headroom

    def model_of(self, g: Group) -> str:
        return self.prob.candidates[g.cand].model


def build_model(prob: Problem, scope: Scope | None = None) -> tuple[LinearModel, Vars]:
    """The linear model of `prob` (or of a scope of it; see Scope), one constraint family at a
    time, in this order (solvers are sensitive to row order: keep it). The full model is also
    stored on prob.lm / prob.v."""
    part = _part(prob, scope or Scope())
    add_variables(part)
    add_routing(part)
    add_capacity(part)
    add_demand(part)
    add_inventory(part)
    add_zones(part)
    add_budget(part)
    add_standby(part)
    change = add_change(part)
    add_objectives(part, change)
    if scope is None:
        prob.lm, prob.v = part.lm, part.v
    return part.lm, part.v


def model_index(prob: Problem) -> dict[str, dict[str, list[int]]]:
    """model -> {"groups", "demands", "arcs", "options", "sarcs"}: positions in prob's lists of the
    objects that belong to it, in list order. Built once per Problem (its lists do not change after
    build_problem) so that a per-model block does not scan the whole problem: on synth 1,000 GPUs
    that scan was 12 s of the 58 s that column generation's 520 block models took under cProfile."""
    key = (len(prob.groups), len(prob.demands), len(prob.arcs), len(prob.standby_options), len(prob.standby_arcs))
    cached = getattr(prob, "_model_index", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    cands = prob.candidates
    idx = defaultdict(lambda: {"groups": [], "demands": [], "arcs": [], "options": [], "sarcs": []})
    for i, g in enumerate(prob.groups):
        idx[cands[g.cand].model]["groups"].append(i)
    for i, d in enumerate(prob.demands):
        idx[d.model]["demands"].append(i)
    for i, a in enumerate(prob.arcs):
        idx[prob.demands[a.demand].model]["arcs"].append(i)
    for i, o in enumerate(prob.standby_options):
        idx[o.model]["options"].append(i)
    for i, a in enumerate(prob.standby_arcs):
        idx[prob.standby_options[a.option].model]["sarcs"].append(i)
    idx = dict(idx)
    prob._model_index = (key, idx)  # type: ignore[attr-defined]
    return idx


def _in_scope(prob: Problem, models: frozenset[str] | None, kind: str, items: list) -> list:
    """The objects of `items` (prob's list `kind`) that belong to `models` (all when None), in list order."""
    if models is None:
        return list(items)
    idx = model_index(prob)
    return [items[i] for i in sorted(i for m in models if m in idx for i in idx[m][kind])]


def _part(prob: Problem, sc: Scope) -> _Part:
    """The groups, demands, arcs and standby objects within the scope's models."""
    groups = _in_scope(prob, sc.models, "groups", prob.groups)
    demands = _in_scope(prob, sc.models, "demands", prob.demands)
    arcs = _in_scope(prob, sc.models, "arcs", prob.arcs)
    options = _in_scope(prob, sc.models, "options", prob.standby_options) if sc.standby else []
    sarcs = _in_scope(prob, sc.models, "sarcs", prob.standby_arcs) if sc.standby else []
    slot_types = [prob.slot_types[t] for t in sorted({o.slot for o in options})]
    used_pools = sorted({g.pool for g in groups} | {t.pool for t in slot_types})
    aggregated: set[str] = set()
    if sc.aggregate_routing and prob.settings.objective == "cost" and not sc.tie_break:
        per_model: dict[str, int] = defaultdict(int)
        for d in demands:
            per_model[d.model] += 1
        # Gale's condition (routing_rows) is exact only where every arc of the model has load
        # factor 1 (one capacity per group); models with per-class capacities keep their flows
        mixed = {prob.candidates[prob.groups[a.group].cand].model for a in arcs if a.load != 1.0}
        aggregated = {m for m, k in per_model.items() if k <= MAX_AGGREGATE_DEMANDS and m not in mixed}
    return _Part(prob, sc, LinearModel(), Vars(), groups, demands, arcs, options, sarcs, slot_types, used_pools, aggregated)


def add_variables(part: _Part) -> None:
    """n (replicas per group), G (GPUs per pool, whole-GPU models only), x (flows, except for
    aggregated models), k / h (swap slots, models held), s (standby flows)."""
    prob, lm, v = part.prob, part.lm, part.v
    for g in part.groups:
        v.n[g.index] = lm.var(f"n[{g.key}]", 0, g.max_count, integer=True, family="replicas", key=("n", g.index))
    if not part.sc.fractional:
        for pi in part.used_pools:
            p = prob.pools[pi]
            v.gpus[pi] = lm.var(f"G[{p.key}]", 0, p.gpus, integer=True, family="gpus", key=("G", pi))
    for a in part.arcs:
        d = prob.demands[a.demand]
        if d.model not in part.aggregated:
            v.flow[a.index] = lm.var(f"x[{d.key}->{prob.groups[a.group].key}]", 0, 1, resolution=ROUTE_RESOLUTION, family="flow", key=("x", a.index))
    for t in part.slot_types:
        v.slot[t.index] = lm.var(f"k[{t.key}]", 0, 1, integer=True, family="standby", key=("k", t.index))
    for o in part.options:
        v.hold[o.index] = lm.var(f"h[{o.key}]", 0, 1, integer=True, family="standby", key=("h", o.index))
    for a in part.sarcs:
        d = prob.demands[a.demand]
        v.sflow[a.index] = lm.var(f"s[{d.key}->{prob.standby_options[a.option].key}]", 0, 1, resolution=ROUTE_RESOLUTION, family="flow", key=("s", a.index))


def add_routing(part: _Part) -> None:
    """Capacity and demand of aggregated models without flows (routing_rows)."""
    for m in sorted(part.aggregated):
        routing_rows(part.prob, part.lm, part.v, [d for d in part.demands if d.model == m], [g for g in part.groups if part.model_of(g) == m])


def add_capacity(part: _Part) -> None:
    """capacity: additive load per group, sum over its arcs of provisioned load / capacity of the
    arc's demand class <= replicas, written in req/s of the group's reference capacity (each arc's
    coefficient scaled by its load factor, Arc.load); linking cuts."""
    prob, lm, v = part.prob, part.lm, part.v
    for g in part.groups:
        if part.model_of(g) in part.aggregated:
            continue
        terms = {v.n[g.index]: -g.capacity.rps}
        for ai in prob.arcs_of_group.get(g.index, []):
            a = prob.arcs[ai]
            terms[v.flow[ai]] = prob.demands[a.demand].provisioned_rps(part.headroom) * a.load
        lm.le(f"capacity[{g.key}]", Family.CAPACITY, terms, 0.0, key=("group", g.index))
        # linking cut (fixed-charge flow strengthening): any traffic on a group needs a replica,
        # x_a <= n_g (x_a <= 1); valid, and tight in the LP where a small demand uses a group
        for ai in prob.arcs_of_group.get(g.index, []):
            lm.le(f"link[{ai}]", Family.CAPACITY, {v.flow[ai]: 1.0, v.n[g.index]: -1.0}, 0.0, key=("link", ai))


def add_demand(part: _Part) -> None:
    """demand: a demand's fractions add up to 1 (cost) or at most 1 (goodput: the rest is shed)."""
    prob, lm, v = part.prob, part.lm, part.v
    for d in part.demands:
        if d.model in part.aggregated:
            continue
        terms = {v.flow[ai]: 1.0 for ai in prob.arcs_of_demand.get(d.index, [])}
        terms.update({v.sflow[ai]: 1.0 for ai in prob.sarcs_of_demand.get(d.index, []) if ai in v.sflow})
        if prob.settings.objective == "goodput":
            lm.le(f"demand[{d.key}]", Family.DEMAND, terms, 1.0, key=("demand", d.index))
        else:
            lm.eq(f"demand[{d.key}]", Family.DEMAND, terms, 1.0, key=("demand", d.index))


def add_inventory(part: _Part) -> None:
    """inventory per pool: GPU units used (whole GPUs G, or the units left in a fractional scope),
    node-shape cuts; the pool's one-swap-slot row follows its pool's rows (row order)."""
    prob, lm, v, sc = part.prob, part.lm, part.v, part.sc
    cands = prob.candidates
    by_pool: dict[int, list[Group]] = defaultdict(list)
    for g in part.groups:
        by_pool[g.pool].append(g)
    slots_by_pool: dict[int, list[SlotType]] = defaultdict(list)
    for t in part.slot_types:
        slots_by_pool[t.pool].append(t)
    for pi in part.used_pools:
        p = prob.pools[pi]
        if sc.fractional:
            left = p.units if sc.units_left is None else sc.units_left.get(pi, p.units)
            terms = {v.n[g.index]: float(cands[g.cand].units) for g in by_pool[pi]}
            terms.update({v.slot[t.index]: float(t.units) for t in slots_by_pool[pi]})
            lm.le(f"inventory[{p.key}]", Family.INVENTORY, terms, float(left), key=("pool", pi))
        else:
            terms = {v.gpus[pi]: float(UNITS_PER_GPU)}
            for g in by_pool[pi]:
                terms[v.n[g.index]] = -float(cands[g.cand].units)
            for t in slots_by_pool[pi]:
                terms[v.slot[t.index]] = -float(t.units)
            lm.ge(f"inventory[{p.key}]", Family.INVENTORY, terms, 0.0, key=("pool", pi))
            _add_dff_rows(part, p, by_pool[pi], slots_by_pool[pi])
        for t in p.cut_sizes:
            cut = {v.n[g.index]: float(cands[g.cand].tp) for g in by_pool[pi] if cands[g.cand].tp >= t}
            cut.update({v.slot[st.index]: float(st.tp) for st in slots_by_pool[pi] if st.tp >= t})
            cap = p.cut_capacity(t) if sc.cut_left is None else sc.cut_left.get((pi, t), p.cut_capacity(t))
            if cut:
                lm.le(f"inventory[{p.key}/tp>={t}]", Family.INVENTORY, cut, float(cap), key=("cut", pi, t))
        if slots_by_pool[pi]:
            lm.le(f"standby[{p.key}/slots]", Family.STANDBY, {v.slot[st.index]: 1.0 for st in slots_by_pool[pi]}, 1.0, key=("slots", pi))


def _add_dff_rows(part: _Part, p: Pool, groups: list[Group], slots: list[SlotType]) -> None:
    """inventory[pool/dff-...]: for each dual feasible function f of DFFS (problem.py),
    R G >= units of whole GPUs + R f(share) of every sub-GPU item (co-located engines, slice swap
    slots). Valid for any byte-feasible packing; they close the main row's gap where it is widest
    (three engines of 0.6 count 1.8 GPUs there, 3 here; five of 0.4: 2 there, 3 here). A row is
    written only where some item of the pool counts above its face value (else the main row implies it)."""
    cands, v = part.prob.candidates, part.v
    sub = [(v.n[g.index], cands[g.cand].share_exact) for g in groups if cands[g.cand].shared]
    sub += [(v.slot[t.index], p.slice_share(t.units)) for t in slots if t.units < UNITS_PER_GPU]
    whole = {v.n[g.index]: -float(cands[g.cand].units) for g in groups if not cands[g.cand].shared}
    whole.update({v.slot[t.index]: -float(t.units) for t in slots if t.units >= UNITS_PER_GPU})
    for f in DFFS:
        if not any(f.binds(x) for _, x in sub):
            continue
        terms = {v.gpus[p.index]: float(UNITS_PER_GPU), **whole}
        terms.update({vi: -float(f.units(x)) for vi, x in sub if f.units(x)})
        part.lm.ge(f"inventory[{p.key}/{f.name}]", Family.INVENTORY, terms, 0.0, key=("dff", p.index, f.name))


def add_zones(part: _Part) -> None:
    """zones: y[m, z] <= replicas of m in domain z; sum_z y[m, z] >= the domains m needs."""
    prob, lm, v, sc = part.prob, part.lm, part.v, part.sc
    dom_groups: dict[tuple[str, tuple[str, str]], list[int]] = defaultdict(list)
    for g in part.groups:
        m = part.model_of(g)
        if m in prob.zones_required:
            dom_groups[(m, prob.pools[g.pool].failure_domain)].append(g.index)
    for m, need in sorted(prob.zones_required.items()):
        if need <= 0 or not (sc.models is None or m in sc.models):
            continue
        ys = {}
        for (mm, dom), gis in sorted(dom_groups.items()):
            if mm != m:
                continue
            y = lm.var(f"y[{m}@{dom[0]}/{dom[1]}]", 0, 1, integer=True, family="zones", key=("y", m, dom))
            v.zone[(m, dom)] = y
            terms = {y: 1.0}
            terms.update({v.n[gi]: -1.0 for gi in gis})
            lm.le(f"zone[{m}@{dom[0]}/{dom[1]}]", Family.ZONES, terms, 0.0, key=("domain", m, dom))
            ys[y] = 1.0
        lm.ge(f"zones[{m}]", Family.ZONES, ys, float(need), key=("spread", m))


def add_budget(part: _Part) -> None:
    """budget: $/h of a capped cluster (whole GPUs, or GPU shares in a fractional scope)."""
    prob, lm, v, sc = part.prob, part.lm, part.v, part.sc
    pools, cands = prob.pools, prob.candidates
    for c in sorted(prob.inputs.inventory.clusters, key=lambda c: c.name):
        if c.budget_per_hour is None:
            continue
        cap = c.budget_per_hour if sc.budget_left is None else sc.budget_left.get(c.name, c.budget_per_hour)
        if sc.fractional:
            terms = {v.n[g.index]: pools[g.pool].price_per_gpu_hour * cands[g.cand].units / UNITS_PER_GPU for g in part.groups if pools[g.pool].cluster == c.name}
            terms.update({v.slot[t.index]: pools[t.pool].price_per_gpu_hour * t.units / UNITS_PER_GPU * sc.slot_cost_share for t in part.slot_types if pools[t.pool].cluster == c.name})
        else:
            terms = {v.gpus[pi]: pools[pi].price_per_gpu_hour for pi in part.used_pools if pools[pi].cluster == c.name}
        if terms:
            lm.le(f"budget[{c.name}]", Family.BUDGET, terms, float(cap), key=("cluster", c.name))


def add_standby(part: _Part) -> None:
    """standby: flows only to held models, holds only in existing slots, at most
    STANDBY_MAX_MODELS per slot, their weights within the DRAM reserve (memory), and the slot's
    busy time (service + cold start per request) within 1 (capacity)."""
    prob, lm, v = part.prob, part.lm, part.v
    opts_by_slot: dict[int, list[StandbyOption]] = defaultdict(list)
    for o in part.options:
        opts_by_slot[o.slot].append(o)
    sarcs_by_slot: dict[int, list[StandbyArc]] = defaultdict(list)
    for a in part.sarcs:
        o = prob.standby_options[a.option]
        sarcs_by_slot[o.slot].append(a)
        lm.le(f"standby[{a.index}/held]", Family.STANDBY, {v.sflow[a.index]: 1.0, v.hold[o.index]: -1.0}, 0.0, key=("held", a.index))
    for t in part.slot_types:
        opts = opts_by_slot[t.index]
        for o in opts:
            lm.le(f"standby[{o.key}/slot]", Family.STANDBY, {v.hold[o.index]: 1.0, v.slot[t.index]: -1.0}, 0.0, key=("in_slot", o.index))
        lm.le(f"standby[{t.key}/models]", Family.STANDBY, {v.hold[o.index]: 1.0 for o in opts}, float(STANDBY_MAX_MODELS), key=("models", t.index))
        dram = STANDBY_DRAM_FRACTION * prob.pools[t.pool].host_dram_bytes / GIB
        lm.le(f"standby[{t.key}/dram]", Family.MEMORY, {v.hold[o.index]: float(o.weight_bytes) / GIB for o in opts}, dram, key=("dram", t.index))
        terms = {v.slot[t.index]: -1.0}
        for a in sarcs_by_slot[t.index]:
            terms[v.sflow[a.index]] = prob.demands[a.demand].provisioned_rps(part.headroom) * a.busy_s_per_request
        lm.le(f"capacity[{t.key}]", Family.CAPACITY, terms, 0.0, key=("slot", t.index))


def add_change(part: _Part) -> dict[int, float]:
    """change: n - d+ + d- = replicas in the plan in force, per (candidate, pool); returns the
    penalty terms (change_weight $/h per replica added or removed) for the cost objective."""
    prob, lm, v = part.prob, part.lm, part.v
    s, pools, cands = prob.settings, prob.pools, prob.candidates
    out: dict[int, float] = {}
    if not (s.change_weight > 0 and prob.current):
        return out
    by_cp: dict[tuple[int, int], list[int]] = defaultdict(list)
    for g in part.groups:
        by_cp[(g.cand, g.pool)].append(g.index)
    for key in sorted(set(by_cp) | set(prob.current)):
        cur = prob.current.get(key, 0)
        gis = by_cp.get(key, [])
        if not gis:
            continue  # removal is forced and constant
        where = f"{cands[key[0]].key}@{pools[key[1]].key}"
        ub = max(pools[key[1]].units // cands[key[0]].units, 1)
        dp = lm.var(f"d+[{where}]", 0, ub, integer=True, family="change", key=("d+", *key))
        dm = lm.var(f"d-[{where}]", 0, max(cur, 0), integer=True, family="change", key=("d-", *key))
        v.dplus[key] = dp
        v.dminus[key] = dm
        terms = {v.n[gi]: 1.0 for gi in gis}
        terms[dp] = -1.0
        terms[dm] = 1.0
        lm.eq(f"change[{where}]", Family.CHANGE, terms, float(cur), key=("change", *key))
        out[dp] = s.change_weight
        out[dm] = s.change_weight
    return out


def add_objectives(part: _Part, change: dict[int, float]) -> None:
    """goodput only: interactive, then batch req/s served; then cost; then (tie-break) network."""
    prob, lm, v = part.prob, part.lm, part.v
    cost = _fractional_cost(part) if part.sc.fractional else {v.gpus[pi]: prob.pools[pi].price_per_gpu_hour for pi in part.used_pools}
    for k, c in change.items():
        cost[k] = cost.get(k, 0.0) + c
    if prob.settings.objective == "goodput":
        for cls_name in ("interactive", "batch"):
            terms: dict[int, float] = {}
            for d in part.demands:
                if d.priority != cls_name:
                    continue
                for ai in prob.arcs_of_demand.get(d.index, []):
                    terms[v.flow[ai]] = d.rate_rps
                for ai in prob.sarcs_of_demand.get(d.index, []):
                    if ai in v.sflow:
                        terms[v.sflow[ai]] = d.rate_rps
            if terms:
                lm.objective(f"{cls_name}_served", "max", terms, rel_tol=1e-10)
    lm.objective("cost", "min", cost, rel_tol=1e-9)
    if part.sc.tie_break:
        lm.objective("network", "min", _network_terms(part), rel_tol=1e-7, tie_break=True)


def _network_terms(part: _Part) -> dict[int, float]:
    """Request-weighted one-way network ms (average per request), plus GPU_TIE_WEIGHT per GPU."""
    prob, v = part.prob, part.v
    total_rate = math.fsum(d.rate_rps for d in prob.demands) or 1.0
    netw: dict[int, float] = {}
    for a in part.arcs:
        if a.net_ms > 0 and a.index in v.flow:
            netw[v.flow[a.index]] = prob.demands[a.demand].rate_rps * a.net_ms / total_rate
    for a in part.sarcs:
        if a.net_ms > 0:
            netw[v.sflow[a.index]] = prob.demands[a.demand].rate_rps * a.net_ms / total_rate
    for pi in v.gpus:
        netw[v.gpus[pi]] = netw.get(v.gpus[pi], 0.0) + GPU_TIE_WEIGHT
    return netw


def _fractional_cost(part: _Part) -> dict[int, float]:
    """A block's cost (decompose.py, colgen.py): price x GPU share per replica, with the
    Lagrangian prices of the shared rows and of the swap slots."""
    prob, v, sc = part.prob, part.v, part.sc
    pools, cands = prob.pools, prob.candidates
    up, cp, bp = sc.unit_price or {}, sc.cut_price or {}, sc.budget_price or {}

    def item_cost(pi: int, units: int, tp: int) -> float:
        p = pools[pi]
        c = p.price_per_gpu_hour * units / UNITS_PER_GPU * (1.0 + bp.get(p.cluster, 0.0)) + up.get(pi, 0.0) * units
        t = 2
        while t <= tp:
            c += cp.get((pi, t), 0.0) * tp
            t *= 2
        return c

    cost = {v.n[g.index]: item_cost(g.pool, cands[g.cand].units, cands[g.cand].tp) for g in part.groups}
    if sc.slot_price is None:
        cost.update({v.slot[t.index]: item_cost(t.pool, t.units, t.tp) * sc.slot_cost_share for t in part.slot_types})
        return cost
    for a in part.sarcs:
        o = prob.standby_options[a.option]
        busy = sc.slot_price.get(o.slot, (0.0, 0.0, 0.0))[0]
        if busy:
            d = prob.demands[a.demand]
            cost[v.sflow[a.index]] = busy * d.rate_rps * d.provision_factor * (1.0 + part.headroom) * a.busy_s_per_request
    for o in part.options:
        _b, held, dram = sc.slot_price.get(o.slot, (0.0, 0.0, 0.0))
        if held or dram:
            cost[v.hold[o.index]] = held + dram * o.weight_bytes / GIB
    return cost
