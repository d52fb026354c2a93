"""The native routing table, DIR/routing.json (JSON Schema: maestro_plan/data/routing.schema.json).

Per (source, model): the planned replicas with their cluster, endpoint (the model's Service in that
cluster) and weight (the plan's flow fraction, summed over the pair's request classes), the
priority class, the failover order (clusters holding the model with spare capacity, nearest
first), warm standbys with their expected cold start, and per request class (a role's calls,
`classes`) the replicas its calls go to: two classes of one pair may be served on different GPU
types. Per workflow and role: the priority class, the InferenceObjective a request should name, its
request class and, where the plan routes that class apart from its model (classes.py),
`class_routing`: the LiteLLM group to call and the header (with its objective) for the Gateway.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from maestro_plan.emit.classes import CLASS_HEADER, ClassSplit, class_pool_name, class_split, litellm_alias
from maestro_plan.emit.common import (
    BASE_PORT,
    LITELLM_PRIORITY,
    OBJECTIVE_PRIORITY,
    endpoint_url,
    engine_defaults,
    latency_ms,
    pool_name,
    rnd,
    service_name,
    standby_ref,
    standby_service_name,
    to_json,
    write,
)
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan

ROUTING_SCHEMA_VERSION = "1.0"


def objective_name(model: str, priority: str) -> str:
    """InferenceObjective per pool and priority class; requests name it in the header
    x-llm-d-inference-objective (llm-d router EPP; x-gateway-inference-objective is its deprecated alias)."""
    return f"{pool_name(model)}-{priority}"[:253]


def cluster_spare(plan: Plan) -> dict[tuple[str, str], float]:
    """(model, cluster) -> requests/s of capacity not used by planned load."""
    spare: dict[tuple[str, str], float] = defaultdict(float)
    for r in plan.replicas:
        spare[(r.model, r.cluster)] += max(r.capacity_rps - r.load_rps, 0.0)
    return spare


def _merged(routes: list) -> list:
    """A pair's routes with one entry per replica (its request classes' routes summed), by replica."""
    by_rep: dict[str, Any] = {}
    for rt in routes:
        if rt.replica in by_rep:
            prev = by_rep[rt.replica]
            by_rep[rt.replica] = prev.model_copy(update={"fraction": min(1.0, prev.fraction + rt.fraction), "rate_rps": prev.rate_rps + rt.rate_rps, "request_class": ""})
        else:
            by_rep[rt.replica] = rt
    return [by_rep[k] for k in sorted(by_rep)]


def _classes(routes: list) -> list[dict[str, Any]]:
    """Per request class of a pair (routes that name one): its rate and its replicas, weighted
    within the class."""
    per: dict[str, list] = defaultdict(list)
    for rt in routes:
        if rt.request_class:
            per[rt.request_class].append(rt)
    out = []
    for name in sorted(per):
        rate = sum(rt.rate_rps for rt in per[name])
        reps = [{"replica": rt.replica, "weight": rnd(rt.rate_rps / rate) if rate > 0 else 0.0, "rate_rps": rnd(rt.rate_rps)} for rt in sorted(per[name], key=lambda rt: rt.replica)]
        out.append({"request_class": name, "rate_rps": rnd(rate), "replicas": reps})
    return out


def class_objective_name(model: str, request_class: str, priority: str) -> str:
    """InferenceObjective of a split class's pool (gateway.py) per priority class."""
    return f"{class_pool_name(model, request_class)}-{priority}"[:253]


def _class_routing(split: ClassSplit, model: str, request_class: str, priority: str) -> dict[str, Any]:
    """{'class_routing': ...} for a class the plan routes apart from its model (classes.py), else {}."""
    if request_class not in split.aliased.get(model, set()):
        return {}
    return {"class_routing": {"litellm_model": litellm_alias(model, request_class), "header": {CLASS_HEADER: request_class},
                              "objective": class_objective_name(model, request_class, priority)}}


def build_routing(plan: Plan, inputs: Inputs) -> dict[str, Any]:
    eng = engine_defaults()
    reps = {r.id: r for r in plan.replicas}
    standby = {standby_ref(s): s for s in plan.standby}
    spare = cluster_spare(plan)
    clusters_of: dict[str, set[str]] = defaultdict(set)
    for r in plan.replicas:
        clusters_of[r.model].add(r.cluster)
    demand = {(d.source, d.model): d for d in plan.demand}
    pairs = sorted(set(demand) | {(rt.source, rt.model) for rt in plan.routes})
    by_pair: dict[tuple[str, str], list] = defaultdict(list)
    for rt in plan.routes:
        by_pair[(rt.source, rt.model)].append(rt)

    entries = []
    for src, model in pairs:
        d = demand.get((src, model))
        classes = _classes(by_pair.get((src, model), []))
        routes = _merged(by_pair.get((src, model), []))
        replicas = []
        standbys = []
        for rt in routes:
            if rt.replica in reps:
                r = reps[rt.replica]
                replicas.append(
                    {
                        "replica": r.id,
                        "cluster": r.cluster,
                        "zone": r.zone,
                        "node": r.node,
                        "service": service_name(model, r.cluster),
                        "endpoint": endpoint_url(model, r.cluster, BASE_PORT),
                        "weight": rnd(rt.fraction),
                        "rate_rps": rnd(rt.rate_rps),
                        "network_latency_ms": rnd(rt.network_latency_ms, 3),
                        "predicted_latency_ms": None if r.predicted_latency_ms is None else rnd(r.predicted_latency_ms, 3),
                    }
                )
            else:
                s = standby[rt.replica]
                standbys.append(
                    {
                        "cluster": s.cluster,
                        "node": s.node,
                        "service": standby_service_name(model, s.cluster),
                        "endpoint": endpoint_url(model, s.cluster, BASE_PORT, standby=True),
                        "weight": rnd(rt.fraction),
                        "rate_rps": rnd(rt.rate_rps),
                        "cold_start_ms": rnd(s.cold_start_ms, 1),
                    }
                )
        # standbys of the model that no route names are still a last resort for this source
        named = {(s["cluster"], s["node"]) for s in standbys}
        for s in sorted(plan.standby, key=lambda s: (s.cluster, s.node)):
            if s.model == model and (s.cluster, s.node) not in named:
                standbys.append(
                    {
                        "cluster": s.cluster,
                        "node": s.node,
                        "service": standby_service_name(model, s.cluster),
                        "endpoint": endpoint_url(model, s.cluster, BASE_PORT, standby=True),
                        "weight": 0.0,
                        "rate_rps": 0.0,
                        "cold_start_ms": rnd(s.cold_start_ms, 1),
                    }
                )
        standbys.sort(key=lambda s: (-s["weight"], s["cold_start_ms"], s["cluster"], s["node"]))
        failover = []
        for c in clusters_of.get(model, set()):
            sp = spare[(model, c)]
            if rnd(sp) <= 0:  # spare that rounds to nothing in routing.json is no failover target
                continue
            lat = latency_ms(inputs, src, c)
            failover.append(
                {
                    "cluster": c,
                    "service": service_name(model, c),
                    "endpoint": endpoint_url(model, c, BASE_PORT),
                    "spare_rps": rnd(sp),
                    "network_latency_ms": None if lat is None else rnd(lat, 3),
                }
            )
        failover.sort(key=lambda f: (f["network_latency_ms"] is None, f["network_latency_ms"] or 0.0, -f["spare_rps"], f["cluster"]))
        priority = d.priority if d else (routes[0].priority if routes else "interactive")
        entries.append(
            {
                "source": src,
                "model": model,
                "priority": priority,
                "objective": objective_name(model, priority),
                "demand_rps": rnd(d.rate_rps) if d else rnd(sum(rt.rate_rps for rt in routes)),
                "served_rps": rnd(d.served_rps) if d else rnd(sum(rt.rate_rps for rt in routes)),
                "shed_rps": rnd(d.shed_rps) if d else 0.0,
                "latency_budget_ms": rnd(d.latency_budget_ms, 3) if d else None,
                "replicas": replicas,
                "failover": failover,
                "standby": standbys,
                **({"classes": classes} if classes else {}),
            }
        )

    split = class_split(plan)
    workflows = []
    for w in sorted(inputs.workflows, key=lambda w: w.name):
        prio = w.priority.value
        workflows.append(
            {
                "workflow": w.name,
                "priority": prio,
                "slo_ms": rnd(w.slo.latency_ms, 3),
                "slo_percentile": rnd(w.slo.percentile, 3),
                "sources": sorted(a.source for a in w.arrivals),
                "roles": [
                    {
                        "role": r.name,
                        "model": r.model,
                        "priority": prio,
                        "objective": objective_name(r.model, prio),
                        "calls_per_query": rnd(r.calls_per_query),
                        "request_class": f"{w.name}/{r.name}",
                        **_class_routing(split, r.model, f"{w.name}/{r.name}", prio),
                    }
                    for r in w.roles
                ],
            }
        )
    return {
        "schema_version": ROUTING_SCHEMA_VERSION,
        "plan_id": plan.plan_id,
        "generator": plan.generator,
        "engine": {"name": eng.name, "version": eng.version, "image": eng.image},
        "endpoints_note": (
            "Endpoints are the in-cluster DNS names of each model's Service (one per model per cluster, unique names). "
            "A router outside that cluster reaches the model at <cluster external_base_url>/models/<model>/v1 "
            "(the emitted Gateway's HTTPRoute; warm standbys at /models/<model>-standby/v1)."
        ),
        "objective_header": "x-llm-d-inference-objective",
        "priority_classes": {k: {"objective_priority": v, "litellm_priority": LITELLM_PRIORITY[k]} for k, v in sorted(OBJECTIVE_PRIORITY.items())},
        "routes": entries,
        "workflows": workflows,
    }


def emit_routing(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    return [write(out_dir, "routing.json", to_json(build_routing(plan, inputs)))]
