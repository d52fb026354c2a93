"""Per-class routing where the plan splits a model's request classes apart (issue 15: demand keeps
its classes through to routing; Melange: two classes of one model served on different GPU types).

A request class is a workflow role's calls ("<workflow>/<role>", Route.request_class). The model's
Service, InferencePool and LiteLLM group balance over every replica of the model, so a replica the
plan reserved for one class would get the model's mix of classes. Where that matters, the emitters
add, next to (never instead of) the per-model objects:

- a class is *split in a cluster* when the replicas its routes name there are not all of the
  model's serving replicas there. Then its pods carry the label `class.maestro-plan.dev/<slug>:
  serving` (k8s.py), a Service `vllm-<model>-<cluster>-<slug>` and an InferencePool
  `pool-<model>-<slug>` select exactly them, and the model's HTTPRoute sends requests carrying the
  header `x-maestro-class: <workflow>/<role>` to that pool (gateway.py). Requests without the
  header reach the model's pool as before.
- a class is *aliased* when it is split in some cluster, or its routes spread over clusters
  otherwise than the (source, model) pair's merged weights do. Then each LiteLLM config holds a
  model group `<model>@<workflow>/<role>` (litellm.py) with the class's own weights, falling back to
  the model's group; routing.json tells the role to call that name (roles[].class_routing).
Plans where every class of a pair goes where the pair goes get none of this (same files as before).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from maestro_plan.emit.common import LABEL_PREFIX, dns_label, engine_slot, plan_ports, plan_workloads, short_hash
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan

CLASS_HEADER = "x-maestro-class"
"""Request header naming the caller's request class ('<workflow>/<role>'); the model's HTTPRoute
matches it (Gateway API HTTPHeaderMatch, type Exact) to route to the class's InferencePool."""
CLASS_LABEL_PREFIX = f"class.{LABEL_PREFIX}"
WEIGHT_TOLERANCE = 1e-3
"""Cluster shares of a class and of its pair that differ by less than this are the same split:
LiteLLM weights are per mille (litellm.py _weights), so a finer difference cannot be expressed."""


def class_slug(request_class: str) -> str:
    """A DNS-1123 label for a class: its name ('/' and other characters -> '-'), cut to leave room,
    and always a hash of the full name ('a-b/c' and 'a/b-c' stay apart). <= 40 characters, so names
    built from it (Service, pool) keep the model readable."""
    readable = re.sub(r"[^a-z0-9]+", "-", request_class.lower())[:31].strip("-")
    start = "" if readable[:1].isalpha() else "c-"
    return f"{start}{readable}-{short_hash(request_class)}" if readable else f"c-{short_hash(request_class)}"


def class_label_key(request_class: str) -> str:
    """Pod label key of the replicas that serve a split class (value 'serving')."""
    return f"{CLASS_LABEL_PREFIX}/{class_slug(request_class)}"


def class_service_name(model: str, cluster: str, request_class: str) -> str:
    return dns_label("vllm", model, cluster, class_slug(request_class))


def class_pool_name(model: str, request_class: str) -> str:
    return dns_label("pool", model, class_slug(request_class))


def litellm_alias(model: str, request_class: str) -> str:
    """LiteLLM model group of a class: '<model>@<workflow>/<role>'."""
    return f"{model}@{request_class}"


@dataclass
class ClassSplit:
    """Where the plan routes classes apart. split[(model, cluster)]: classes split in that cluster;
    aliased[model]: classes with a LiteLLM group; serves[replica]: classes routed to it."""

    split: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    aliased: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    serves: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    model_of: dict[str, str] = field(default_factory=dict)

    def is_split(self, model: str, cluster: str, request_class: str) -> bool:
        return request_class in self.split.get((model, cluster), set())


def _spread_differs(plan: Plan, cluster_of: dict[str, str]) -> set[tuple[str, str]]:
    """(model, class) whose share per cluster differs from its (source, model) pair's."""
    pair: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    cls: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rt in plan.routes:
        where = cluster_of.get(rt.replica, rt.replica)
        pair[(rt.source, rt.model)][where] += rt.rate_rps
        if rt.request_class:
            cls[(rt.source, rt.model, rt.request_class)][where] += rt.rate_rps
    out = set()
    for (src, model, name), rates in cls.items():
        total, ptotal = sum(rates.values()), sum(pair[(src, model)].values())
        if total <= 0 or ptotal <= 0:
            continue
        if any(abs(rates.get(c, 0.0) / total - v / ptotal) > WEIGHT_TOLERANCE for c, v in pair[(src, model)].items()):
            out.add((model, name))
    return out


def class_split(plan: Plan) -> ClassSplit:
    out = ClassSplit()
    serving: dict[tuple[str, str], set[str]] = defaultdict(set)
    cluster_of: dict[str, str] = {}
    for r in plan.replicas:
        cluster_of[r.id] = r.cluster
        out.model_of[r.id] = r.model
        if not r.swap_models:
            serving[(r.model, r.cluster)].add(r.id)
    routed: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for rt in plan.routes:
        if rt.request_class and rt.rate_rps > 0 and rt.replica in cluster_of:
            routed[(rt.model, cluster_of[rt.replica], rt.request_class)].add(rt.replica)
            out.serves[rt.replica].add(rt.request_class)
    for (model, cluster, name), reps in routed.items():
        if reps & serving[(model, cluster)] != serving[(model, cluster)]:
            out.split[(model, cluster)].add(name)
            out.aliased[model].add(name)
    out.split = {k: v for k, v in out.split.items() if v}
    for model, name in _spread_differs(plan, cluster_of):
        out.aliased[model].add(name)
    return out


def workload_class_labels(split: ClassSplit, cluster: str, replica_ids: list[str]) -> dict[str, str]:
    """Class labels of a pod holding `replica_ids`: a split class's label where every replica of its
    model in the pod serves the class (the label is the pod's, not an engine's)."""
    if not split.split:
        return {}
    by_model: dict[str, list[set[str]]] = defaultdict(list)
    for rid in replica_ids:
        by_model[split.model_of[rid]].append(split.serves.get(rid, set()))
    labels = {}
    for m, served in sorted(by_model.items()):
        for name in sorted(set.intersection(*served) & split.split.get((m, cluster), set())):
            labels[class_label_key(name)] = "serving"
    return labels


def slot_class_warnings(plan: Plan, inputs: Inputs) -> list[str]:
    """Engines the plan routes a split request class to that the class's Service and pool cannot
    reach, named in the report so the gap is never silent: an engine in a pod not labelled for the
    class (another replica of the model in the pod does not serve it: `workload_class_labels`), or a
    second, differently configured engine of the model in a pod (engine slot k >= 1 on port + k*1000,
    common.py engine_slots), which the class objects (slot 0 only) do not target. Both still serve
    the model's traffic (its Service, or the slot's)."""
    split = class_split(plan)
    if not split.split:
        return []
    ports = plan_ports(plan)
    out = []
    for w in plan_workloads(plan, inputs):
        labelled = workload_class_labels(split, w.cluster, w.replica_ids)
        for e in w.engines:
            k = engine_slot(e, ports) if not e.standby_model else 0
            for r in e.replicas if not e.standby_model else []:
                for name in sorted(split.serves.get(r.id, set()) & split.split.get((e.model, w.cluster), set())):
                    if k or class_label_key(name) not in labelled:
                        why = f"engine slot {k} of its pod (port +{k}000)" if k else "its pod also runs replicas of the model outside the class"
                        out.append(f"WARNING: replica {r.id} ({e.model} in {w.cluster}) is planned for request class {name}, but the class's "
                                   f"Service/InferencePool do not reach it ({why}): it serves the model's traffic only.")
    return out
