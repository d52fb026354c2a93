"""LiteLLM router configs: DIR/routing/litellm.yaml (one router for all traffic) and
DIR/routing/litellm-by-source/<source>.yaml (one router per source, e.g. per region).

Built from the routing table (routing.py, the same numbers as routing.json), per model group:
- `order: 1` deployments: the clusters the plan routes the source's traffic to, weighted by the
  planned flows (`weight`, per mille; LiteLLM's simple-shuffle picks by weight when the group's
  first deployment has one: litellm/router_strategy/simple_shuffle.py);
- `order: 2` deployments: routing.json's failover clusters (spare capacity, nearest first) that the
  plan does not already use. LiteLLM only routes to the lowest `order` among deployments that are
  not cooling down (litellm/utils.py _get_order_filtered_deployments, applied by the router's
  pre-call checks, hence `enable_pre_call_checks: true`), so a failed cluster's traffic moves to
  the failover clusters once LiteLLM cools the failed deployment down;
- warm standbys: a deployment of the model's standby Service in the planned group when the plan
  routes to it, else in a `<model>-standby` group that `fallbacks` names (the last resort when every
  cluster of the group fails);
- per request class the plan routes apart from its model (classes.py), a group
  `<model>@<workflow>/<role>`: `order: 1` deployments of the class's own clusters with the class's
  weights, each reaching the replicas that serve the class (the class's Service in the home
  cluster; elsewhere the cluster's Gateway with the header `x-maestro-class`, `extra_headers`,
  which LiteLLM sends with every request to the deployment), and `fallbacks` to the model's group
  (its failover tiers and standbys) when they all fail. Callers that only know the model name keep
  calling the model's group (every class, merged weights); routing.json roles[].class_routing
  names the group a role should call.
Every deployment carries `timeout` and `model_info.max_input_tokens` (the engines' max_model_len:
vLLM rejects longer prompts). rpm/tpm are left out: under simple-shuffle LiteLLM's pre-call check
compares rpm with the requests in flight, not per minute, so a planned per-minute capacity would
throttle wrongly; the planned capacity is in model_info for reference.

Addresses: a router serving a source reaches the clusters of the source's region by their in-cluster
Service names and every other cluster through its Gateway (inventory `external_base_url`,
<url>/models/<model>/v1: gateway.py). The all-sources file uses the external URLs throughout.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from maestro_plan.emit.classes import CLASS_HEADER, class_service_name, class_split, litellm_alias
from maestro_plan.emit.common import (
    BASE_PORT,
    LITELLM_PRIORITY,
    NAMESPACE,
    endpoint_url,
    engine_slots,
    external_url,
    header_lines,
    rnd,
    service_name,
    slot_name,
    to_yaml,
    write,
)
from maestro_plan.emit.routing import build_routing
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan, Replica

ALLOWED_FAILS = 1
"""Failures per minute a deployment may have before LiteLLM cools it down: one transient error is
tolerated, the second moves traffic to the next `order` (LiteLLM's default is 3: constants.py)."""
COOLDOWN_S = 30
"""Seconds a failed deployment stays out of rotation: the time Kubernetes itself takes to declare a
dead engine (livenessProbe 3 failures x 10 s in the emitted pods, k8s.py)."""
NUM_RETRIES = 2
"""Retries of a failed request: with ALLOWED_FAILS 1 the third attempt already goes to a failover cluster."""


def home_clusters(inputs: Inputs, source: str | None) -> set[str]:
    """Clusters a source's router runs next to (same region): reached by in-cluster Service names."""
    if source is None:
        return set()
    region = next((s.region for s in inputs.inventory.sources if s.name == source), None)
    return {c.name for c in inputs.inventory.clusters if region is not None and c.region == region}


def _in_cluster(inputs: Inputs, model: str, cluster: str, home: set[str]) -> bool:
    """Whether a router reaches the model in the cluster by its Services (else through the Gateway)."""
    return cluster in home or external_url(inputs, model, cluster) is None


def _api_base(inputs: Inputs, model: str, cluster: str, home: set[str], standby: bool, missing: set[str], request_class: str = "", slot: int = 0) -> str:
    """The model's (or, with request_class, the split class's; with slot, its engine slot's) address in a cluster."""
    ext = external_url(inputs, model, cluster)
    if cluster in home or ext is None:
        if cluster not in home:
            missing.add(cluster)
        if request_class:
            return f"http://{class_service_name(model, cluster, request_class)}.{NAMESPACE}.svc.cluster.local:{BASE_PORT}/v1"
        if slot:
            return f"http://{slot_name(service_name(model, cluster), slot)}.{NAMESPACE}.svc.cluster.local:{BASE_PORT}/v1"
        return endpoint_url(model, cluster, BASE_PORT, standby=standby) + "/v1"
    return (ext + "-standby" if standby else ext) + "/v1"


def _timeout_s(inputs: Inputs, model: str) -> float:
    """Request timeout: the longest workflow SLO (whole query, seconds) among the workflows that call
    the model; a single call cannot usefully outlive its query's deadline."""
    slos = [w.slo.latency_ms for w in inputs.workflows for r in w.roles if r.model == model]
    return rnd(max(slos) / 1000, 3) if slos else 600.0


def _weights(rates: dict[Any, float]) -> dict[Any, int]:
    total = sum(rates.values())
    if total <= 0:
        return {k: 1 for k in rates}  # no planned traffic at all: equal split
    return {k: (max(1, round(1000 * v / total)) if v > 0 else 0) for k, v in rates.items()}


def _group_tiers(entries: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], float], dict[str, float], set[str]]:
    """(cluster, kind) -> planned requests/s; failover cluster -> spare requests/s; standby-only clusters."""
    planned: dict[tuple[str, str], float] = defaultdict(float)
    failover: dict[str, float] = {}
    standby: set[str] = set()
    for e in entries:
        for r in e["replicas"]:
            planned[(r["cluster"], "serving")] += r["rate_rps"]
        for s in e["standby"]:
            if s["weight"] > 0:
                planned[(s["cluster"], "standby")] += s["rate_rps"]
            else:
                standby.add(s["cluster"])
        for f in e["failover"]:
            failover[f["cluster"]] = f["spare_rps"]
    for c, kind in planned:
        if kind == "serving":
            failover.pop(c, None)
    standby -= {c for c, kind in planned if kind == "standby"}
    return planned, failover, standby


def _deployment(inputs: Inputs, group: str, model: str, cluster: str, kind: str, order: int | None, weight: int | None,
                home: set[str], missing: set[str], info: dict[str, Any], request_class: str = "", slot: int = 0) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"hosted_vllm/{model}", "api_base": _api_base(inputs, model, cluster, home, kind == "standby", missing, request_class, slot)}
    if request_class and cluster not in home and external_url(inputs, model, cluster) is not None:
        params["extra_headers"] = {CLASS_HEADER: request_class}
    if weight is not None:
        params["weight"] = weight
    if order is not None:
        params["order"] = order
    params["timeout"] = _timeout_s(inputs, model)
    ident = f"{group}@{cluster}/{kind}" + (f"/s{slot}" if slot else "")
    return {"model_name": group, "litellm_params": params, "model_info": {"id": ident, "cluster": cluster, "kind": kind, **info}}


def _by_slot(rates: dict[tuple[str, str], float], slots: dict[str, dict[int, list[Replica]]], by_replica: dict[str, float],
             via_svc: set[str]) -> dict[tuple[str, str, int], float]:
    """(cluster, kind) rates -> (cluster, kind, slot) rates: a cluster whose model runs engines on
    several slots (common.py engine_slots) and is reached through its Services (`via_svc`) gets one
    deployment per slot Service, with the cluster's rate split by `by_replica` (planned requests/s of
    each replica, or its capacity) over the replicas behind each slot; others keep slot 0."""
    out: dict[tuple[str, str, int], float] = {}
    for (c, kind), v in rates.items():
        if kind != "serving" or c not in slots or c not in via_svc:
            out[(c, kind, 0)] = v
            continue
        part = {k: sum(by_replica.get(r.id, 0.0) for r in reps) for k, reps in slots[c].items()}
        total = sum(part.values())
        for k, p in part.items():
            out[(c, kind, k)] = v * p / total if total > 0 else v / len(part)
    return out


def _class_rates(entries: list[dict[str, Any]], aliased: set[str]) -> dict[str, dict[tuple[str, str], float]]:
    """Aliased class -> (cluster, kind) -> its planned requests/s, from routing.json's `classes`."""
    where = {r["replica"]: (r["cluster"], "serving") for e in entries for r in e["replicas"]}
    for e in entries:
        where |= {f"standby:{e['model']}@{s['node']}": (s["cluster"], "standby") for s in e["standby"]}
    out: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for e in entries:
        for c in e.get("classes", []):
            if c["request_class"] in aliased:
                for r in c["replicas"]:
                    out[c["request_class"]][where[r["replica"]]] += r["rate_rps"]
    return {k: v for k, v in sorted(out.items()) if any(x > 0 for x in v.values())}


def _replica_rates(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Replica id -> planned requests/s routed to it (routing.json replicas[].rate_rps)."""
    out: dict[str, float] = defaultdict(float)
    for e in entries:
        for r in e["replicas"]:
            out[r["replica"]] += r["rate_rps"]
    return out


def _slot_cap(cap: dict[tuple[str, str], float], mslots: dict[str, dict[int, list[Replica]]], model: str, cluster: str, slot: int) -> float:
    """Planned capacity behind one deployment: the cluster's, or (split per slot) its slot's replicas'."""
    if cluster not in mslots:
        return cap[(model, cluster)]
    return sum(r.capacity_rps for r in mslots[cluster].get(slot, []))


def build_litellm(plan: Plan, inputs: Inputs, source: str | None = None) -> dict[str, Any]:
    """The LiteLLM config for all sources (source=None) or for one source."""
    table = build_routing(plan, inputs)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in table["routes"]:
        if source is None or e["source"] == source:
            by_model[e["model"]].append(e)
    cap: dict[tuple[str, str], float] = defaultdict(float)
    lens: dict[str, int] = {}
    for r in plan.replicas:
        cap[(r.model, r.cluster)] += r.capacity_rps
        lens[r.model] = min(lens.get(r.model, r.max_model_len), r.max_model_len)
    home = home_clusters(inputs, source)
    slots = engine_slots(plan, inputs)
    capacity = {r.id: r.capacity_rps for r in plan.replicas}
    split = class_split(plan)
    missing: set[str] = set()
    model_list: list[dict[str, Any]] = []
    fallbacks: list[dict[str, list[str]]] = []
    for m in sorted(by_model):
        planned, failover, standby = _group_tiers(by_model[m])
        if not planned and not failover:
            continue
        base_info = {"max_input_tokens": lens.get(m, inputs.models[m].architecture.max_position_embeddings)}
        mslots = {c: v for (c, mm), v in slots.items() if mm == m}
        via_svc = {c for c in mslots if _in_cluster(inputs, m, c, home)}
        rates = _by_slot(dict(planned), mslots, _replica_rates(by_model[m]), via_svc)
        for (c, kind, k), w in sorted(_weights(rates).items()):
            info = {**base_info, "planned_rps": rnd(rates[(c, kind, k)]),
                    "planned_capacity_rps": rnd(_slot_cap(cap, mslots, m, c, k)) if kind == "serving" else 0.0}
            model_list.append(_deployment(inputs, m, m, c, kind, 1, w, home, missing, info, slot=k))
        spare_rates = _by_slot({(c, "serving"): v for c, v in failover.items()}, mslots, capacity, via_svc)
        spare = _weights(spare_rates)  # among the failover tier, by spare capacity
        for (c, _kind, k) in sorted(spare_rates):
            info = {**base_info, "planned_rps": 0.0, "planned_capacity_rps": rnd(_slot_cap(cap, mslots, m, c, k)), "spare_rps": rnd(spare_rates[(c, "serving", k)])}
            model_list.append(_deployment(inputs, m, m, c, "serving", 2, spare[(c, "serving", k)], home, missing, info, slot=k))
        if standby:
            group = f"{m}-standby"
            for c in sorted(standby):
                model_list.append(_deployment(inputs, group, m, c, "standby", None, None, home, missing, {**base_info, "planned_rps": 0.0}))
            fallbacks.append({m: [group]})
        for name, rates in _class_rates(by_model[m], split.aliased.get(m, set())).items():
            alias = litellm_alias(m, name)
            for (c, kind), w in sorted(_weights(dict(rates)).items()):
                cls = name if kind == "serving" and split.is_split(m, c, name) else ""
                info = {**base_info, "planned_rps": rnd(rates[(c, kind)]), "request_class": name}
                model_list.append(_deployment(inputs, alias, m, c, kind, 1, w, home, missing, info, cls))
            fallbacks.append({alias: [m]})
    settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "enable_pre_call_checks": True,
        "num_retries": NUM_RETRIES,
        "allowed_fails": ALLOWED_FAILS,
        "cooldown_time": COOLDOWN_S,
    }
    if fallbacks:
        settings["fallbacks"] = fallbacks
    return {"model_list": model_list, "router_settings": settings, "_unreachable": sorted(missing)}


def _header(plan: Plan, cfg: dict[str, Any], extra: str = "") -> str:
    head = (header_lines(plan) + "\nLiteLLM router config (litellm --config this file, or Router(model_list=..., **router_settings))."
            + "\nPriority: send priority=" + ", ".join(f"{v} ({k})" for k, v in sorted(LITELLM_PRIORITY.items(), key=lambda kv: kv[1]))
            + " with each request (routing.json workflows[].priority); LiteLLM's scheduler serves lower values first." + extra)
    missing = cfg.pop("_unreachable")
    if missing:
        head += (f"\nWARNING: the inventory gives no external_base_url for cluster(s) {', '.join(missing)}; their in-cluster "
                 "addresses are used and resolve only inside that cluster.")
    return head


def emit_litellm(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    cfg = build_litellm(plan, inputs)
    written = [write(out_dir, "routing/litellm.yaml", to_yaml(cfg, header=_header(plan, cfg)))]
    for src in sorted({rt.source for rt in plan.routes}):
        cfg = build_litellm(plan, inputs, source=src)
        head = _header(plan, cfg, f"\nRoutes of source '{src}' only.")
        written.append(write(out_dir, f"routing/litellm-by-source/{src}.yaml", to_yaml(cfg, header=head)))
    return written
