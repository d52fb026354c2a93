"""Why no plan exists, in a capacity planner's words (InfeasibleError with Shortfall items, exit 3).

Before solving (`precheck`, `precheck_routes`), per model that some workflow calls:
  1. memory: no GPU type of the fleet holds one replica at any allowed TP a node can take (weights +
     activation + non-torch + CUDA graphs + one max_model_len request of KV): the closest option
     and by how much it falls short per GPU;
  2. slo: it fits, but no configuration meets a demand's per-call budget even idle: the fastest
     configuration's idle call time plus the network round trip from the source, against the budget;
  3. routes: a source reaches no cluster (direct inventory link) whose GPUs can serve it in time;
  4. zones: an interactive model can run in fewer failure domains than the spread requires.
After a solver proves infeasibility (`elastic`): the same model with penalised slack per
constraint family (extra GPUs per pool, node-shape cuts, budget overrun, missing zones, unserved
demand) is solved with HiGHS; every non-zero slack becomes a Shortfall naming the resource, the
demand that needs it, what it needs and what exists, e.g. "[inventory] interactive demand for
llama-3.1-70b from users-us-east in us-east: needs 14 h100-sxm GPUs, has 8 (short by 6)".
Penalty weights are in GPU-equivalents (1 per extra GPU, 1 per dollar over budget divided by the
cheapest price, 10 per missing zone, 1000 per unserved demand), so the explanation prefers the
smallest change in hardware.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

from maestro_plan.errors import InfeasibleError, Shortfall
from maestro_plan.estimate import latency_at_load, replica_memory
from maestro_plan.plan.families import Family
from maestro_plan.solve.budget import BUDGET
from maestro_plan.solve.model import INF, LinearModel
from maestro_plan.units import GIB


def precheck(inputs, settings, demands, all_cands, candidates, classes, caps, pools, net) -> None:
    reasons: list[str] = []
    shortfalls: list[Shortfall] = []
    models = sorted({d.model for d in demands})
    kept_models = {c.model for c in candidates}
    fleet: dict[str, int] = defaultdict(int)
    for p in pools:
        fleet[p.gpu_type] = max(fleet[p.gpu_type], p.gpus_per_node)
    for mid in models:
        m = inputs.models[mid]
        if not any(c.model == mid for c in all_cands):
            best = None
            for gid, per_node in sorted(fleet.items()):
                gpu = inputs.gpu_types[gid]
                for tp in m.tp_degrees:
                    if tp > per_node:
                        continue
                    mem = replica_memory(m, gpu, tp, max_model_len=m.context_len)
                    need = mem.budget_bytes_per_gpu + mem.shortfall_bytes_per_gpu
                    if best is None or mem.shortfall_bytes_per_gpu < best[0]:
                        best = (mem.shortfall_bytes_per_gpu, gid, tp, need, mem.budget_bytes_per_gpu)
            if best is None:
                reasons.append(f"model '{mid}': no node of the fleet has enough GPUs for any of its TP degrees {m.tp_degrees}")
                continue
            short, gid, tp, need, have = best
            shortfalls.append(
                Shortfall(
                    "memory",
                    f"model '{mid}' on {gid} at TP {tp} (the closest fit in this fleet)",
                    round(need / GIB, 2),
                    round(have / GIB, 2),
                    "GiB per GPU",
                    f"weights, engine overhead and one {m.context_len}-token request do not fit any GPU type at any TP up to the node size; "
                    "use larger GPUs or nodes, a quantized checkpoint, or a smaller max_model_len",
                )
            )
        elif mid not in kept_models:
            for d in (d for d in demands if d.model == mid):
                best = None
                for c in all_cands:
                    if c.model != mid:
                        continue
                    gpu = inputs.gpu_types[c.gpu_type]
                    nets = [net[(d.source, p.cluster)] for p in pools if p.gpu_type == c.gpu_type and (d.source, p.cluster) in net]
                    if not nets:
                        continue
                    lat = latency_at_load(m, gpu, c.tp, d.mix, 0.0, compute_share=c.compute_share) + 2 * min(nets)
                    if best is None or lat < best[0]:
                        best = (lat, c.gpu_type, c.tp, min(nets))
                if best is None:
                    reasons.append(f"{d.priority} demand for '{mid}' from '{d.source}': no cluster linked to the source has a GPU type that holds the model")
                    continue
                lat, gid, tp, nms = best
                shortfalls.append(
                    Shortfall(
                        "slo",
                        f"{d.priority} demand for '{mid}' from '{d.source}'",
                        round(lat, 1),
                        round(d.budget_ms, 1),
                        "ms per call",
                        f"the fastest configuration ({gid} TP {tp}) needs {lat - 2 * nms:.0f} ms per call even idle, plus {2 * nms:g} ms network round trip; "
                        "relax the workflow's SLO, shorten the role's outputs, or add faster GPUs near the source",
                    )
                )
    if reasons or shortfalls:
        raise InfeasibleError("no plan can exist: some models cannot be placed anywhere in this fleet", shortfalls, reasons)


def precheck_routes(inputs, settings, demands, groups, arcs, sarcs, pools, candidates, zones_required) -> None:
    shortfalls: list[Shortfall] = []
    has_arc = {a.demand for a in arcs} | {a.demand for a in sarcs}
    for d in demands:
        if d.index not in has_arc:
            linked = sorted(c for (s, c) in _links(inputs) if s == d.source)
            shortfalls.append(
                Shortfall(
                    "slo",
                    f"{d.priority} demand for '{d.model}' from '{d.source}'",
                    1,
                    0,
                    "reachable cluster(s)",
                    f"no cluster linked to '{d.source}' ({', '.join(linked) or 'none'}) has a GPU that serves '{d.model}' within the {d.budget_ms:.0f} ms per-call budget after the network round trip",
                )
            )
    doms: dict[str, set] = defaultdict(set)
    for g in groups:
        doms[candidates[g.cand].model].add(pools[g.pool].failure_domain)
    for m, need in sorted(zones_required.items()):
        have = len(doms.get(m, ()))
        if have < need:
            where = ", ".join(f"{c}/{z}" for c, z in sorted(doms.get(m, ()))) or "none"
            shortfalls.append(
                Shortfall(
                    "zones",
                    f"interactive model '{m}'",
                    need,
                    have,
                    "failure domains",
                    f"only these zones have GPUs that can serve it: {where}; add capable GPUs in another zone or lower --min-zones",
                )
            )
    if shortfalls:
        raise InfeasibleError("no plan can exist: some demand has nowhere to go", shortfalls)


def _links(inputs) -> set[tuple[str, str]]:
    out = set()
    for lk in inputs.inventory.links:
        out.add((lk.a, lk.b))
        out.add((lk.b, lk.a))
    return out


# --------------------------------------------------------------------------------------------
# Elastic relaxation
# --------------------------------------------------------------------------------------------


def elastic(prob, *, proved: bool = True, limit_s: float | None = None) -> InfeasibleError:
    """Solve the model with penalised slack per constraint family; describe what is short.
    `proved`: a backend proved the model infeasible (otherwise none found a plan within
    `limit_s` seconds of work, and the message says so)."""
    from maestro_plan.solve.milp import solve_highs

    lm, slack_of = _elastic_model(prob)
    res = solve_highs(lm, time_limit=BUDGET.explain_wall_cap_s, seed=prob.settings.seed, max_nodes=BUDGET.explain_max_nodes)
    if res.values is None:
        return InfeasibleError(
            "no plan satisfies the constraints, and the relaxed model did not solve in time to say why",
            reasons=["try a longer --time-limit, or check the binding resources with --objective goodput"],
        )
    shortfalls = _shortfalls(prob, res.values, slack_of)
    if not proved:
        lead = f"no plan found within the time limit ({limit_s:g} s of solver work)" if limit_s is not None else "no plan found"
        if not shortfalls:
            return InfeasibleError(f"{lead}, and the relaxed model finds no resource short: a plan may exist; try a longer --time-limit or another --solver")
        return InfeasibleError(f"{lead}; the smallest additions that make one possible:", shortfalls)
    if not shortfalls:
        return InfeasibleError("no plan satisfies the constraints (the solver proved it), but no single resource is short: check budget caps and zone spread together")
    return InfeasibleError("no plan satisfies the constraints; the smallest additions that make one possible:", shortfalls)


def _elastic_model(prob) -> tuple[LinearModel, dict[int, tuple[str, object]]]:
    """The model with penalised slack on inventory (extra GPUs per pool), node-shape cuts, budget
    caps, zone spreads and demand; the slack variables and what each stands for."""
    base = prob.lm
    lm = LinearModel()
    for v in base.vars:
        lm.vars.append(replace(v))
    lm._names = dict(base._names)
    lm._keys = dict(base._keys)
    pools, cands, groups = prob.pools, prob.candidates, prob.groups
    penalty: dict[int, float] = {}
    slack_of: dict[int, tuple[str, object]] = {}
    # replicas may exceed what a pool holds; GPUs used may exceed the pool
    total_need: dict[str, float] = defaultdict(float)
    for d in prob.demands:
        total_need[d.model] += d.provisioned_rps(prob.settings.headroom)
    for g in groups:
        vi = prob.v.n[g.index]
        extra = math.ceil(total_need[cands[g.cand].model] / max(g.capacity.rps, 1e-9)) + 2
        lm.vars[vi].ub = float(g.max_count + extra)
    min_price = min((p.price_per_gpu_hour for p in pools if p.price_per_gpu_hour > 0), default=1.0)
    for pi, vi in prob.v.gpus.items():
        p = pools[pi]
        lm.vars[vi].ub = INF
        e = lm.var(f"extra_gpus[{p.key}]", 0, INF)
        lm.le(f"elastic_inventory[{p.key}]", Family.INVENTORY, {vi: 1.0, e: -1.0}, float(p.gpus), key=("elastic", pi))
        penalty[e] = 1.0
        slack_of[e] = ("inventory", pi)
    for r in base.rows:
        terms = dict(zip(r.idx, r.coef))
        lo, hi = r.lo, r.hi
        fam = r.family
        if fam == Family.INVENTORY and r.key[0] == "cut":
            e = lm.var(f"slack[{r.name}]", 0, INF)
            terms[e] = -1.0
            penalty[e] = 1.0
            slack_of[e] = ("cut", r.key[1:])
        elif fam == Family.BUDGET:
            e = lm.var(f"slack[{r.name}]", 0, INF)
            terms[e] = -1.0
            penalty[e] = 1.0 / min_price
            slack_of[e] = ("budget", r.key[1])
        elif fam == Family.ZONES and r.key[0] == "spread":
            e = lm.var(f"slack[{r.name}]", 0, INF)
            terms[e] = 1.0
            penalty[e] = 10.0
            slack_of[e] = ("zones", r.key[1])
        elif fam == Family.DEMAND:
            e = lm.var(f"slack[{r.name}]", 0, 1)
            terms[e] = 1.0
            penalty[e] = 1000.0
            slack_of[e] = ("demand", r.key[1])
        lm.row(r.name, fam, terms, lo=lo, hi=hi, key=r.key)
    lm.objective("slack", "min", penalty)
    return lm, slack_of


def _shortfalls(prob, x: list[float], slack_of: dict[int, tuple[str, object]]) -> list[Shortfall]:
    """What the relaxed solution x adds: GPUs per (cluster, GPU type) and who needs them, cut
    capacity, budget, failure domains, unserved demand."""
    pools, groups = prob.pools, prob.groups
    shortfalls: list[Shortfall] = []
    # who uses each pool in the relaxed solution
    users: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for a in prob.arcs:
        if x[prob.v.flow[a.index]] > 1e-6:
            d = prob.demands[a.demand]
            users[groups[a.group].pool].append((d.priority, d.model, d.source))
    by_ct: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e, (kind, ref) in slack_of.items():
        if kind == "inventory" and x[e] > 1e-6:
            p = pools[ref]
            by_ct[(p.cluster, p.gpu_type)].append(ref)
    for (cl, gt), pis in sorted(by_ct.items()):
        all_pools = [p for p in pools if p.cluster == cl and p.gpu_type == gt]
        have = sum(p.gpus for p in all_pools)
        need = sum(round(x[prob.v.gpus[p.index]]) if p.index in prob.v.gpus else 0 for p in all_pools)
        who = sorted({u for pi in pis for u in users[pi]})
        shortfalls.append(Shortfall("inventory", _who(who, cl), need, have, f"{gt} GPUs", f"pools {', '.join(pools[pi].name for pi in pis)}"))
    for e, (kind, ref) in sorted(slack_of.items()):
        val = x[e]
        if val <= 1e-6 or kind == "inventory":
            continue
        if kind == "cut":
            pi, t = ref
            p = pools[pi]
            cap = p.cut_capacity(t)
            shortfalls.append(
                Shortfall("inventory", f"replicas of TP >= {t} in pool {p.name} ({p.cluster})", cap + round(val), cap, "GPUs", f"nodes of {p.gpus_per_node} GPUs hold at most {p.gpus_per_node // t} such group(s) each")
            )
        elif kind == "budget":
            cl = ref
            cap = next(c.budget_per_hour for c in prob.inputs.inventory.clusters if c.name == cl)
            shortfalls.append(Shortfall("budget", f"cluster '{cl}'", round(cap + val, 2), round(cap, 2), "$/h", "the demand it must serve costs more than its budget cap"))
        elif kind == "zones":
            m = ref
            need = prob.zones_required.get(m, 0)
            shortfalls.append(Shortfall("zones", f"interactive model '{m}'", need, need - round(val), "failure domains", "not enough capacity left in other zones for a second replica"))
        elif kind == "demand":
            d = prob.demands[ref]
            shortfalls.append(Shortfall("demand", f"{d.priority} demand for '{d.model}' from '{d.source}'", round(d.rate_rps, 6), round(d.rate_rps * (1 - val), 6), "req/s", "no capacity can be routed to it"))
    return shortfalls


def _who(users: list[tuple[str, str, str]], cluster: str) -> str:
    if not users:
        return f"demand in {cluster}"
    prios = sorted({u[0] for u in users})
    models = sorted({u[1] for u in users})
    sources = sorted({u[2] for u in users})
    return f"{'/'.join(prios)} demand for {', '.join(models)} from {', '.join(sources)} in {cluster}"
