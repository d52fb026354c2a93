"""The solver's point -> a Plan (maestro_plan.plan.schema): replicas, routes, standby, demand, KV
summary, binding constraints, solve information, and the plan's identity.

Replica fields: memory_fraction is the engine's --gpu-memory-utilization (the slice f x the
engine default, so engines sharing a GPU add up to the default); kv_cache_bytes_per_gpu is the KV
reservation: predicted = what the capacity's concurrency needs at the class's request mix (never
less than one max_model_len request, vLLM's start-up check); naive = max_num_seqs requests of
max_model_len tokens each. A replica group's flows are split evenly over its replicas.

Determinism: everything is sorted, the plan holds no wall-clock figure and no timestamp;
`plan_id` is the SHA-256 of the plan's own content (see plan_id).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from maestro_plan import __version__
from maestro_plan.estimate import VLLM, kv_bytes_per_token_per_gpu, latency_at_load
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.families import Family
from maestro_plan.plan.schema import Binding, Demand, InputDigest, KvSummary, Plan, Replica, Route, Settings, SolveInfo, Standby
from maestro_plan.solve.model import SolveResult, relative_gap
from maestro_plan.solve.place import Placed
from maestro_plan.solve.problem import UNITS_PER_GPU, Problem, SolveSettings

STANDBY_PREFIX = "standby:"  # route target of a standby model: standby:<model>@<node>
FLOW_EPS = 1e-9  # flows below this fraction of a demand are solver noise, not routes


@dataclass
class Outcome:
    """What the solve stages decided, besides the point itself."""

    result: SolveResult
    status: str  # optimal | feasible | heuristic
    heuristic_objective: float | None
    lp_bound: float | None


def sha(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_digest(inputs: Inputs) -> InputDigest:
    """SHA-256 of each parsed input's canonical JSON (the verifier computes the same)."""
    return InputDigest(
        inventory_name=inputs.inventory.name,
        inventory_sha256=sha(inputs.inventory.model_dump(mode="json")),
        models_sha256=sha({k: m.model_dump(mode="json") for k, m in sorted(inputs.models.items())}),
        workloads_sha256=sha([w.model_dump(mode="json") for w in sorted(inputs.workflows, key=lambda w: w.name)]),
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
        capacity_table_sha256=sha([r.model_dump() for r in s.capacity_table.rows]) if s.capacity_table is not None else None,
    )


# --------------------------------------------------------------------------------------------
# Flows and GPUs
# --------------------------------------------------------------------------------------------


@dataclass
class _Flows:
    """Flows per replica group and per standby option as (demand, fraction), normalised so that a
    demand's fractions add up exactly; the fraction of each demand served."""

    groups: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    options: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    served: dict[int, float] = field(default_factory=dict)
    share: dict[int, float] = field(default_factory=dict)  # demand row -> its class's share of its (source, model) pair
    arc: dict[tuple[int, int], Any] = field(default_factory=dict)  # (group, demand) -> Arc


def _flows(prob: Problem, x: list[float]) -> _Flows:
    out = _Flows()
    v = prob.v
    pair: dict[tuple[str, str], float] = defaultdict(float)
    for d in prob.demands:
        pair[(d.source, d.model)] += d.rate_rps
    out.share = {d.index: (1.0 if d.rate_rps == pair[(d.source, d.model)] else d.rate_rps / pair[(d.source, d.model)]) for d in prob.demands}
    out.arc = {(a.group, a.demand): a for a in prob.arcs}
    for d in prob.demands:
        parts = [(ai, max(0.0, x[v.flow[ai]])) for ai in prob.arcs_of_demand.get(d.index, [])]
        sparts = [(ai, max(0.0, x[v.sflow[ai]])) for ai in prob.sarcs_of_demand.get(d.index, [])]
        parts = [(a, f) for a, f in parts if f > FLOW_EPS]
        sparts = [(a, f) for a, f in sparts if f > FLOW_EPS]
        tot = math.fsum(f for _, f in parts) + math.fsum(f for _, f in sparts)
        target = 1.0 if prob.settings.objective == "cost" else min(1.0, tot)
        scale = target / tot if tot > 0 else 0.0
        out.served[d.index] = target if tot > 0 else 0.0
        for ai, f in parts:
            out.groups[prob.arcs[ai].group].append((d.index, f * scale))
        for ai, f in sparts:
            out.options[prob.standby_arcs[ai].option].append((d.index, f * scale))
    return out


class _Gpus:
    """GPUs the plan takes, counted once each however many slices share them, and their cost."""

    def __init__(self, prob: Problem) -> None:
        self.pools = prob.pools
        self.used: dict[str, set[tuple[str, int]]] = defaultdict(set)  # cluster -> (node, GPU index)
        self.cost_by_cluster: dict[str, float] = defaultdict(float)
        self.by_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # cluster -> GPU type -> GPUs

    def touch(self, pool_i: int, node: str, idx: tuple[int, ...]) -> None:
        p = self.pools[pool_i]
        for i in idx:
            if (node, i) not in self.used[p.cluster]:
                self.used[p.cluster].add((node, i))
                self.cost_by_cluster[p.cluster] += p.price_per_gpu_hour
                self.by_type[p.cluster][p.gpu_type] += 1


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


def _where(p, pl: Placed, gpus: float) -> dict[str, Any]:
    """The location fields of a Replica: its pool's cluster, zone and GPU type, its node and GPU
    indices, and the price of the GPU share it takes (`gpus`: GPUs, or the share of one)."""
    return {
        "cluster": p.cluster,
        "zone": p.zone,
        "node_pool": p.name,
        "node": pl.node,
        "gpu_type": p.gpu_type,
        "gpu_indices": list(pl.gpu_indices),
        "price_per_hour": p.price_per_gpu_hour * gpus,
    }


def _kv_min_bytes(cand) -> int:
    block = VLLM.block_size
    return int(math.ceil(cand.max_model_len / block) * block * cand.kv_bytes_per_token_per_gpu)


# --------------------------------------------------------------------------------------------
# Replicas, swap slots, demand, KV, binding
# --------------------------------------------------------------------------------------------


def _serving_replicas(prob: Problem, per_group: dict[int, list[Placed]], flows: _Flows, gpus: _Gpus, taken: set[str]) -> tuple[list[Replica], list[Route]]:
    replicas: list[Replica] = []
    routes: list[Route] = []
    for gi in sorted(per_group, key=lambda gi: prob.groups[gi].key):
        g = prob.groups[gi]
        items = per_group[gi]
        gflows = flows.groups.get(gi, [])
        for pl in sorted(items, key=lambda pl: (pl.node, pl.gpu_indices, pl.offset)):
            rep = _serving_replica(prob, g, pl, gflows, len(items), taken, flows)
            gpus.touch(g.pool, pl.node, pl.gpu_indices)
            replicas.append(rep)
            p = prob.pools[g.pool]
            for di, f in gflows:
                d = prob.demands[di]
                frac = f / len(items)
                routes.append(Route(source=d.source, model=d.model, replica=rep.id, fraction=frac * flows.share[di], rate_rps=frac * d.rate_rps, network_latency_ms=prob.net[(d.source, p.cluster)], priority=d.priority, request_class=d.cls))  # type: ignore[arg-type]
    return replicas, routes


def _replica_capacity(g, gflows: list[tuple[int, float]], flows: _Flows, demands) -> tuple[float, int, int]:
    """(capacity in req/s, concurrency, KV bytes per GPU needed) of one replica of group g at its
    flows' class shares: the capacity is the harmonic one (load / sum of load / class capacity,
    additive load), the concurrency and KV the most any one class needs at its capacity (a
    replica at additive load <= 1 holds sum_c u_c B_c <= max_c B_c sequences). Unloaded: the
    group's reference capacity."""
    arcs = [(flows.arc[(g.index, di)], f * demands[di].rate_rps) for di, f in gflows if f > 0 and (g.index, di) in flows.arc]
    caps = [a.capacity for a, _ in arcs if a.capacity is not None] or [g.capacity]
    rate = math.fsum(r for _, r in arcs)
    busy = math.fsum(r / a.capacity.rps for a, r in arcs if a.capacity is not None)
    rps = rate / busy if rate > 0 and busy > 0 else g.capacity.rps
    return rps, max(int(c.batch) for c in caps), max(int(c.kv_bytes_per_gpu_needed) for c in caps)


def _routed_mix(sc, gflows: list[tuple[int, float]], demands):
    """The rate-weighted mean mix of a replica's flows (its class envelope when it has none): the
    latency prediction's mix."""
    rate = math.fsum(f * demands[di].rate_rps for di, f in gflows)
    if rate <= 0:
        return sc.mix
    mean_in = math.fsum(f * demands[di].rate_rps * demands[di].mix.mean_input for di, f in gflows) / rate
    mean_out = math.fsum(f * demands[di].rate_rps * demands[di].mix.mean_output for di, f in gflows) / rate
    return replace(sc.mix, mean_input=mean_in, mean_output=mean_out)


def _serving_replica(prob: Problem, g, pl: Placed, gflows: list[tuple[int, float]], n: int, taken: set[str], flows: _Flows) -> Replica:
    """One replica of group g placed at pl, carrying 1/n of the group's flows."""
    demands = prob.demands
    c, p, sc = prob.candidates[g.cand], prob.pools[g.pool], prob.classes[g.cls]
    model, gpu = prob.inputs.models[c.model], prob.inputs.gpu_types[c.gpu_type]
    load_each = math.fsum(f * demands[di].rate_rps for di, f in gflows) / n
    cap_rps, batch, kv_need = _replica_capacity(g, gflows, flows, demands)
    # what the capacity's concurrency needs at the classes' mixes (naive: max_model_len per
    # request, since the class mix then reserves that much), never less than one max_model_len
    # request; a co-located engine keeps the KV pool it was sized for (its bytes on the shared GPU)
    kv_bytes = c.kv_pool_bytes_per_gpu if c.shared else min(max(kv_need, _kv_min_bytes(c)), c.kv_pool_bytes_per_gpu)
    block = VLLM.block_size
    kv_tokens = int(kv_bytes // (c.kv_bytes_per_token_per_gpu * block) * block) if c.kv_bytes_per_token_per_gpu else 0
    lat = latency_at_load(model, gpu, c.tp, _routed_mix(sc, gflows, demands), load_each, compute_share=c.compute_share)
    served = sorted({di for di, f in gflows if f > 0})
    prio = "interactive" if any(demands[di].priority == "interactive" for di in served) else ("batch" if served else ("interactive" if c.model in prob.zones_required else "batch"))
    return Replica(
        id=pl.keep_id or _unique(_replica_id(c.model, p.cluster, pl.node, pl.gpu_indices, pl.offset, c.units), taken),
        model=c.model,
        **_where(p, pl, c.compute_share if c.shared else c.units / UNITS_PER_GPU),
        tp=c.tp,
        memory_fraction=c.memory_fraction,
        compute_share=c.compute_share,
        weights_bytes_per_gpu=c.weights_bytes_per_gpu,
        kv_cache_bytes_per_gpu=kv_bytes,
        overhead_bytes_per_gpu=c.overhead_bytes_per_gpu,
        max_model_len=c.max_model_len,
        max_num_seqs=max(1, batch),
        kv_tokens=kv_tokens,
        capacity_rps=float(cap_rps),
        load_rps=0.0,
        latency_budget_ms=float(sc.budget_ms),
        predicted_latency_ms=float(lat) if math.isfinite(lat) else None,
        priority=prio,  # type: ignore[arg-type]
        roles=sorted({r for di in served for r in demands[di].roles}),
        prefix_caching=any(demands[di].shared_prefix for di in served),
    )


def _swap_slots(prob: Problem, placed: list[Placed], holds: dict[int, int], flows: _Flows, gpus: _Gpus, taken: set[str]) -> tuple[list[Replica], list[Standby], list[Route]]:
    """Each placed swap slot as a replica (the largest model it holds) and its standby models."""
    replicas: list[Replica] = []
    standby: list[Standby] = []
    routes: list[Route] = []
    for pl in placed:
        if pl.kind != "slot":
            continue
        t = prob.slot_types[pl.ref]
        p = prob.pools[t.pool]
        opts = [prob.standby_options[oi] for oi in sorted(holds) if prob.standby_options[oi].slot == t.index]
        if not opts:
            continue
        big = max(opts, key=lambda o: (o.weight_bytes, o.model))
        rid = _unique(_replica_id(big.model, p.cluster, pl.node, pl.gpu_indices, pl.offset, t.units) + ".swap", taken)
        gpus.touch(t.pool, pl.node, pl.gpu_indices)
        replicas.append(_slot_replica(prob, t, pl, big, rid, sorted(o.model for o in opts)))
        for o in sorted(opts, key=lambda o: o.model):
            sid = f"{STANDBY_PREFIX}{o.model}@{pl.node}"
            of = flows.options.get(o.index, [])
            rate = math.fsum(f * prob.demands[di].rate_rps for di, f in of)
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
                d = prob.demands[di]
                routes.append(Route(source=d.source, model=d.model, replica=sid, fraction=f * flows.share[di], rate_rps=f * d.rate_rps, network_latency_ms=prob.net[(d.source, p.cluster)], priority=d.priority, request_class=d.cls))  # type: ignore[arg-type]
    return replicas, standby, routes


def _slot_replica(prob: Problem, t, pl: Placed, big, rid: str, models: list[str]) -> Replica:
    """A swap slot as a replica: sized for its largest model, serving through its standby entries."""
    kv_tok = int(kv_bytes_per_token_per_gpu(prob.inputs.models[big.model], t.tp))
    block = VLLM.block_size
    return Replica(
        id=rid,
        model=big.model,
        **_where(prob.pools[t.pool], pl, t.units / UNITS_PER_GPU),
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
        swap_models=models,
    )


def _demand(prob: Problem, served: dict[int, float]) -> list[Demand]:
    """Every pair the workloads ask for (zero-rate ones included), with what is served and shed."""
    rows: dict[tuple[str, str], list] = defaultdict(list)
    for d in prob.demands:
        rows[(d.source, d.model)].append(d)
    out: list[Demand] = []
    for md in sorted(prob.demand_model.per_model, key=lambda d: (d.source, d.model)):
        mine = rows.get((md.source, md.model), [])
        sv = md.rate_rps * served[mine[0].index] if len(mine) == 1 else math.fsum(d.rate_rps * served[d.index] for d in mine)
        if prob.settings.objective == "cost":
            sv = md.rate_rps
        out.append(
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
    return out


def _kv_summary(prob: Problem, replicas: list[Replica]) -> KvSummary | None:
    """KV reserved by the plan's serving replicas against the naive reservation."""
    if not replicas:
        return None
    pred = sum(r.kv_cache_bytes_per_gpu * r.tp for r in replicas if not r.swap_models)
    naive = 0
    for r in replicas:
        if not r.swap_models:
            naive += int(kv_bytes_per_token_per_gpu(prob.inputs.models[r.model], r.tp)) * r.max_model_len * r.max_num_seqs * r.tp
    return KvSummary(predicted_bytes=int(pred), naive_bytes=int(naive), saved_fraction=(1.0 - pred / naive) if naive > 0 else 0.0)


def _binding(prob: Problem, replicas: list[Replica], per_group: dict[int, list[Placed]], flows: _Flows, gpus: _Gpus, demand: list[Demand]) -> list[Binding]:
    """Constraints at their limit: full pools, budgets within 1 %, groups at capacity, zone
    spreads exactly met, and shed demand."""
    pools, cands, demands = prob.pools, prob.candidates, prob.demands
    out: list[Binding] = []
    gpus_by_pool: dict[int, int] = defaultdict(int)
    node_pool = {nd: p.index for p in pools for nd in p.node_names}
    for gs in gpus.used.values():
        for node, _i in gs:
            gpus_by_pool[node_pool[node]] += 1
    for pi, used in sorted(gpus_by_pool.items()):
        p = pools[pi]
        if used >= p.gpus:
            out.append(Binding(constraint=Family.INVENTORY.value, subject=f"{p.cluster}/{p.name} ({p.gpu_type})", slack=float(p.gpus - used), unit="GPUs"))
    for c in prob.inputs.inventory.clusters:
        spent = gpus.cost_by_cluster.get(c.name, 0.0)
        if c.budget_per_hour is not None and spent >= 0.99 * c.budget_per_hour:
            out.append(Binding(constraint=Family.BUDGET.value, subject=c.name, slack=float(c.budget_per_hour - spent), unit="$/h"))
    for gi in sorted(per_group, key=lambda gi: prob.groups[gi].key):
        g = prob.groups[gi]
        n = len(per_group[gi])
        # f x rate x factor x (1 + headroom), multiplied in this order (plans stay byte-identical)
        prov = math.fsum(f * demands[di].rate_rps * demands[di].provision_factor * (1 + prob.settings.headroom) * flows.arc[(gi, di)].load for di, f in flows.groups.get(gi, []))
        slack = n * g.capacity.rps - prov
        if slack <= 1e-3 * n * g.capacity.rps:
            c = cands[g.cand]
            out.append(Binding(constraint=Family.CAPACITY.value, subject=f"{c.model} on {c.gpu_type} TP{c.tp} in {pools[g.pool].key}", slack=float(slack), unit="req/s"))
    for m, need in sorted(prob.zones_required.items()):
        doms = {(r.cluster, r.zone) for r in replicas if r.model == m and not r.swap_models}
        if need >= 2 and len(doms) == need:
            out.append(Binding(constraint=Family.ZONES.value, subject=m, slack=0.0, unit="failure domains"))
    for d in demand:
        if d.shed_rps > 1e-9:
            out.append(Binding(constraint=Family.DEMAND.value, subject=f"{d.source} -> {d.model} ({d.priority})", slack=-d.shed_rps, unit="req/s shed"))
    out.sort(key=lambda b: (b.constraint, b.subject))
    return out


GAP_COVERS = (
    "bound: the best of the backend's (CP-SAT or HiGHS), the LP relaxation's and column generation's Lagrangian bound, all of "
    "the model whose per-pool inventory rows relax the byte-exact packing, so a lower bound of the byte-exact problem; after a "
    "placement repair (re-solve with a lower GPU bound) the first solve's bound is kept",
    "tensor parallel degrees: powers of two that divide into a node (odd TP degrees are not planned)",
    "co-located engines (TP 1): sized for one request (max_model_len, at least the length percentile) or 1/2, 1/4, 1/8 of the "
    "usable HBM, each at least 1/8 of it (at most 8 per GPU); compute share = memory share (interference model: time-shared in "
    "proportion to bytes); packed byte-exactly per GPU, counted in the bound by aggregate and dual-feasible-function rows per pool",
    "usable HBM per GPU = gpu_memory_utilization x HBM (maestro_plan/data/vllm.yaml)",
    "service classes: the envelope class `all` plus up to 3 per-demand classes per model and cluster",
    "swap slots (warm standby): whole GPUs or 1/2, 1/4, 1/8 of one, one per pool",
)
"""The candidate restrictions the reported bound is valid within (plan.json solve.gap_covers)."""


def _packing_extra(prob: Problem, x: list[float], gpus: _Gpus) -> float:
    """$/h of GPUs the exact placement uses beyond the solver's counted GPUs (co-located engines
    counted by the aggregate rows, packed by bytes in place.py); 0 when none."""
    counted = math.fsum(prob.pools[pi].price_per_gpu_hour * round(x[vi]) for pi, vi in prob.v.gpus.items())
    extra = math.fsum(gpus.cost_by_cluster.values()) - counted
    return extra if extra > 1e-6 else 0.0


def _solve_info(prob: Problem, outcome: Outcome, demand: list[Demand], extra: float = 0.0) -> tuple[SolveInfo, list[str]]:
    """Status, objective, bound and gap of the first objective, and the plan's notes. `extra`: $/h
    of GPUs the exact packing added (cost objective: added to the objective, so the gap is the
    distance from the plan's real cost to the bound)."""
    result, status = outcome.result, outcome.status
    obj = result.phases[0].objective if result.phases else None
    bound = result.phases[0].bound if result.phases and status != "heuristic" else None
    notes = list(prob.notes)
    if extra > 0 and obj is not None and prob.settings.objective == "cost":
        obj += extra
        notes.append(f"the byte-exact packing of co-located engines needed GPUs beyond the solver's aggregate count (+${extra:.4g}/h): counted in the objective and the gap")
        status = "feasible" if status == "optimal" else status
    gap = relative_gap(obj, bound, status if status != "heuristic" else "feasible")
    if result.hit_wall_clock:
        notes.append("the solver stopped on a wall-clock limit before its work budget (a far safety cap, or what the command's --time-limit left): with another machine load the same inputs may give a different plan")
    if gap is not None and gap > 1e-9 and status == "feasible":
        notes.append(f"not proven optimal: {100 * gap:.2f}% gap to the best bound when the work budget ran out")
    shed = [d for d in demand if d.shed_rps > 1e-9]
    if shed:
        notes.append(f"{len(shed)} demand pair(s) partly shed under --objective goodput: {sum(d.shed_rps for d in shed):.4g} req/s in total")
    det = result.deterministic_time
    info = SolveInfo(
        status=status,  # type: ignore[arg-type]
        objective=obj,
        bound=bound,
        gap=gap,
        deterministic_time=round(det, 3) if det is not None else None,
        heuristic_objective=outcome.heuristic_objective,
        lp_bound=outcome.lp_bound,
        gap_covers=list(GAP_COVERS) if bound is not None else [],
    )
    return info, notes


def build_plan(prob: Problem, x: list[float], *, placed: list[Placed], holds: dict[int, int], outcome: Outcome) -> Plan:
    """The Plan of point x (flows exact, replica counts as placed) and the solve's outcome."""
    flows = _flows(prob, x)
    per_group: dict[int, list[Placed]] = defaultdict(list)
    for pl in placed:
        if pl.kind == "replica":
            per_group[pl.ref].append(pl)
    gpus = _Gpus(prob)
    taken: set[str] = {pl.keep_id for pl in placed if pl.keep_id}  # pinned ids first: new ones never take them
    replicas, routes = _serving_replicas(prob, per_group, flows, gpus, taken)
    slot_replicas, standby, standby_routes = _swap_slots(prob, placed, holds, flows, gpus, taken)
    replicas += slot_replicas
    routes += standby_routes
    load: dict[str, float] = defaultdict(float)
    for r in routes:
        load[r.replica] += r.rate_rps
    replicas = sorted((r.model_copy(update={"load_rps": load.get(r.id, 0.0)}) for r in replicas), key=lambda r: r.id)
    routes.sort(key=lambda r: (r.source, r.model, r.replica, r.request_class))
    standby.sort(key=lambda s_: (s_.model, s_.node))
    demand = _demand(prob, flows.served)
    info, notes = _solve_info(prob, outcome, demand, _packing_extra(prob, x, gpus))
    plan = Plan(
        plan_id="",
        generator=f"maestro-plan {__version__}",
        inputs=input_digest(prob.inputs),
        settings=plan_settings(prob.settings),
        solve=info,
        cost_per_hour=math.fsum(gpus.cost_by_cluster.values()),
        gpus_used={c: dict(sorted(v_.items())) for c, v_ in sorted(gpus.by_type.items())},
        replicas=replicas,
        standby=standby,
        routes=routes,
        demand=demand,
        kv=_kv_summary(prob, replicas),
        binding=_binding(prob, replicas, per_group, flows, gpus, demand),
        notes=notes,
    )
    return plan.model_copy(update={"plan_id": plan_id(plan)})


def plan_id(plan: Plan) -> str:
    """SHA-256 of the plan's whole content (inputs' digests, settings, solve figures, replicas,
    routes, ... everything but plan_id itself): two different plans never share an id."""
    doc = plan.model_dump(mode="json")
    doc.pop("plan_id", None)
    return sha(doc)
