"""Gateway API Inference Extension stack: DIR/routing/gateway-api/<cluster>/ (Kustomize-ready).

Everything a cluster needs besides the CRDs and a Gateway implementation (a GatewayClass):
- gateway.yaml: Gateway `maestro-inference`, one HTTP listener on port 80, of the class the
  inventory names (Cluster.gateway_class; default `istio`, the class of llm-d-router's
  config/manifests/gateway/istio/gateway.yaml);
- per model: an InferencePool (inference.networking.k8s.io/v1, GIE v1.x) selecting the model's
  serving pods on its fleet-wide engine port, with its Endpoint Picker: Deployment `<pool>-epp`
  (the llm-d router EPP image at a pinned tag, the flags of its Helm chart), Service `<pool>-epp`
  (gRPC ext-proc port 9002, appProtocol http2 as in GIE's conformance manifests), ServiceAccount,
  Role + RoleBinding (pods, inferencepools, inferenceobjectives: get/watch/list, as the chart's
  rbac.yaml), and an HTTPRoute serving the model under /models/<model>/ (prefix rewritten to /),
  the address LiteLLM uses from other clusters (inventory external_base_url);
- per warm-standby model: an HTTPRoute /models/<model>-standby/ to the standby Service;
- an InferenceObjective (llm-d.ai/v1alpha2) per pool and priority class. The objective API left the
  Gateway API Inference Extension (GIE PR #2973) and lives in the llm-d router; requests choose it
  with the header `x-llm-d-inference-objective: <name>` (llm-d-router pkg/epp/metadata/consts.go
  ObjectiveKey; `x-gateway-inference-objective` is its deprecated alias). routing.json tells each
  workflow role which name to send;
- per request class the plan routes apart from its model (classes.py): an InferencePool of the pods
  serving the class (with its EPP and objectives) and an HTTPRoute sending requests with the header
  `x-maestro-class: <workflow>/<role>` there; requests without it reach the model's pool;
- configmap-epp-config.yaml: the EPP's plugin configuration (the chart's default-plugins.yaml:
  queue, KV-cache-utilisation and prefix-cache scorers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_plan.emit.classes import CLASS_HEADER, ClassSplit, class_label_key, class_pool_name, class_slug, class_split
from maestro_plan.emit.common import (
    BASE_PORT,
    EPP_PORT,
    LABEL_PREFIX,
    NAMESPACE,
    OBJECTIVE_PRIORITY,
    PORT_SPAN,
    dns_label,
    engine_slots,
    header_lines,
    kustomization,
    label_value,
    model_label_key,
    plan_ports,
    pool_name,
    slot_label_key,
    slot_name,
    standby_service_name,
    to_yaml,
    write,
)
from maestro_plan.emit.routing import class_objective_name, objective_name
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan, Replica

POOL_API = "inference.networking.k8s.io/v1"
OBJECTIVE_API = "llm-d.ai/v1alpha2"
GATEWAY_API = "gateway.networking.k8s.io/v1"
GATEWAY_NAME = "maestro-inference"
DEFAULT_GATEWAY_CLASS = "istio"
EPP_IMAGE = "ghcr.io/llm-d/llm-d-router-endpoint-picker:v0.10.0"
"""The llm-d router's Endpoint Picker, release v0.10.0 (its release notes name the image
ghcr.io/llm-d/llm-d-router-endpoint-picker:${VERSION}); it reads llm-d.ai InferenceObjectives."""
EPP_HEALTH_PORT = 9003
"""gRPC health port of the EPP (chart default `grpcHealthPort: 9003`, service `inference-extension`)."""
EPP_CONFIG = "maestro-epp-config"
EPP_PLUGINS = """apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
  parameters:
    scheme: "http"
    path: "/metrics"
    insecureSkipVerify: true
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""
"""llm-d-router v0.10.0 config/charts/routerlib/templates/_config.yaml, default-plugins.yaml for vLLM over HTTP."""
OBJECTIVE_HEADER = "x-llm-d-inference-objective"


def _meta(plan: Plan, name: str, model: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "maestro-plan", "app.kubernetes.io/managed-by": "maestro-plan"}
    if model is not None:
        labels[f"{LABEL_PREFIX}/model"] = label_value(model)
    return {"name": name, "namespace": NAMESPACE, "labels": labels, "annotations": {f"{LABEL_PREFIX}/plan-id": plan.plan_id}}


def epp_name(model: str) -> str:
    return dns_label(pool_name(model), "epp")


def inference_pool(plan: Plan, model: str, port: int, pool: str | None = None, class_label: str | None = None) -> dict[str, Any]:
    """The model's pool, or (`pool` named) a request class's pool: with `class_label`, only the pods
    that carry it (the class is split in this cluster: classes.py); without, the model's pods."""
    name = pool or pool_name(model)
    sel = {model_label_key(model): "serving"} | ({class_label: "serving"} if class_label else {})
    return {
        "apiVersion": POOL_API,
        "kind": "InferencePool",
        "metadata": _meta(plan, name, model),
        "spec": {
            "selector": {"matchLabels": sel},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {"name": dns_label(name, "epp"), "port": {"number": EPP_PORT}, "failureMode": "FailClose"},
        },
    }


def inference_objective(plan: Plan, model: str, priority: str, request_class: str = "") -> dict[str, Any]:
    name = class_objective_name(model, request_class, priority) if request_class else objective_name(model, priority)
    meta = _meta(plan, name, model)
    meta["labels"][f"{LABEL_PREFIX}/priority"] = priority
    meta["annotations"][f"{LABEL_PREFIX}/request-header"] = f"{OBJECTIVE_HEADER}: {name}"
    return {
        "apiVersion": OBJECTIVE_API,
        "kind": "InferenceObjective",
        "metadata": meta,
        "spec": {
            "poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": class_pool_name(model, request_class) if request_class else pool_name(model)},
            "priority": OBJECTIVE_PRIORITY[priority],
        },
    }


def _epp_rbac(plan: Plan, model: str) -> dict[str, dict[str, Any]]:
    name = epp_name(model)
    read = ["get", "watch", "list"]
    return {
        "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(plan, name, model)},
        "role": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(plan, name, model),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": read},
                {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"], "verbs": read},
                {"apiGroups": ["llm-d.ai"], "resources": ["inferenceobjectives", "inferencemodelrewrites"], "verbs": read},
            ],
        },
        "rolebinding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(plan, name, model),
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        },
    }


def _epp_deployment(plan: Plan, model: str, pool: str | None = None) -> dict[str, Any]:
    """The Endpoint Picker of the model's pool or of `pool` (a class's pool; it runs as the model's
    EPP ServiceAccount, whose Role reads every pool and pod of the namespace)."""
    pool = pool or pool_name(model)
    name = dns_label(pool, "epp")
    labels = {"app.kubernetes.io/name": "maestro-epp", f"{LABEL_PREFIX}/epp": name}
    grpc = {"grpc": {"port": EPP_HEALTH_PORT, "service": "inference-extension"}, "initialDelaySeconds": 5, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan, name, model),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {f"{LABEL_PREFIX}/epp": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": epp_name(model),
                    # the chart: "this timeout should mirror the longest grace period of the pods within the pool"
                    "terminationGracePeriodSeconds": 130,
                    "containers": [
                        {
                            "name": "epp",
                            "image": EPP_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--pool-name", pool, "--pool-namespace", NAMESPACE, "--pool-group", "inference.networking.k8s.io",
                                     "--zap-encoder", "json", "--config-file", "/config/default-plugins.yaml", "--grpc-health-port", str(EPP_HEALTH_PORT)],
                            "ports": [{"name": "grpc", "containerPort": EPP_PORT}, {"name": "grpc-health", "containerPort": EPP_HEALTH_PORT},
                                      {"name": "metrics", "containerPort": 9090}],
                            "livenessProbe": grpc,
                            "readinessProbe": grpc,
                            "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": EPP_CONFIG}}],
                },
            },
        },
    }


def _epp_service(plan: Plan, model: str, pool: str | None = None) -> dict[str, Any]:
    name = dns_label(pool or pool_name(model), "epp")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, name, model),
        "spec": {
            "type": "ClusterIP",
            "selector": {f"{LABEL_PREFIX}/epp": name},
            "ports": [{"name": "grpc", "protocol": "TCP", "port": EPP_PORT, "targetPort": EPP_PORT, "appProtocol": "http2"}],
        },
    }


def http_route(plan: Plan, model: str, cluster: str, *, standby: bool = False) -> dict[str, Any]:
    """/models/<model>/ (or /models/<model>-standby/) on the Gateway, prefix rewritten to /: the
    model's InferencePool, or the standby Service (its wake proxy wakes the engine)."""
    prefix = f"/models/{model}-standby/" if standby else f"/models/{model}/"
    if standby:
        backend = {"kind": "Service", "name": standby_service_name(model, cluster), "port": BASE_PORT}
    else:
        backend = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)}
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": _meta(plan, dns_label("route", model, "standby" if standby else ""), model),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                    "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                    "backendRefs": [backend],
                }
            ],
        },
    }


def class_route(plan: Plan, model: str, request_class: str) -> dict[str, Any]:
    """/models/<model>/ with the header `x-maestro-class: <class>` to the class's pool. A route of its
    own (HTTPRoute allows 16 rules; a model may have more classes): the Gateway API merges the rules
    of routes on one Gateway and prefers, at equal path, the match with more header matches
    (gateway-api apis/v1/httproute_types.go, HTTPRouteRule.Matches: "Across all rules specified on
    applicable Routes ... Largest number of header matches"), so these requests leave the model's
    route and those without the header stay on it."""
    route = http_route(plan, model, "")
    route["metadata"] = _meta(plan, dns_label("route", model, class_slug(request_class)), model)
    route["metadata"]["annotations"][f"{LABEL_PREFIX}/request-class"] = request_class
    rule = route["spec"]["rules"][0]
    rule["matches"][0]["headers"] = [{"type": "Exact", "name": CLASS_HEADER, "value": request_class}]
    rule["backendRefs"] = [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": class_pool_name(model, request_class)}]
    return route


def _slot_files(plan: Plan, model: str, port: int, slots: dict[int, list[Replica]], route: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per engine slot k >= 1 of the model in this cluster (a pod running a second, differently
    configured engine of the model on port + k*PORT_SPAN: common.py _pod_engines) an InferencePool
    `pool-<model>-s<k>` selecting only the pods labelled for slot k (each listens on that port) with
    its own EPP; the model's HTTPRoute then splits its traffic over the pools by weight, in
    proportion to the planned capacity behind each (gateway-api apis/v1/httproute_types.go
    BackendRef.Weight: the proportion of requests is "weight/(sum of all weights in this
    BackendRefs list)")."""
    files: dict[str, dict[str, Any]] = {}
    cap = {k: sum(r.capacity_rps for r in reps) for k, reps in slots.items()}
    total = sum(cap.values()) or 1.0
    refs = []
    for k in sorted(slots):
        name = slot_name(pool_name(model), k)
        refs.append({"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name, "weight": max(1, round(1000 * cap[k] / total))})
        if k == 0:
            continue
        pool = inference_pool(plan, model, port + k * PORT_SPAN, name)
        pool["spec"]["selector"]["matchLabels"] = {slot_label_key(model, k): "serving"}
        files[f"inferencepool-{name}.yaml"] = pool
        files[f"deployment-{dns_label(name, 'epp')}.yaml"] = _epp_deployment(plan, model, name)
        files[f"service-{dns_label(name, 'epp')}.yaml"] = _epp_service(plan, model, name)
    route["spec"]["rules"][0]["backendRefs"] = refs
    return files


def _class_files(plan: Plan, model: str, cluster: str, port: int, split: ClassSplit, priorities: set[str]) -> dict[str, dict[str, Any]]:
    """Per aliased class of the model (classes.py): its pool (the pods labelled for it where it is split
    in this cluster, else the model's pods, so the header always resolves), EPP, objectives, route."""
    files: dict[str, dict[str, Any]] = {}
    for name in sorted(split.aliased.get(model, set())):
        pool = class_pool_name(model, name)
        label = class_label_key(name) if split.is_split(model, cluster, name) else None
        files[f"inferencepool-{pool}.yaml"] = inference_pool(plan, model, port, pool, label)
        files[f"deployment-{dns_label(pool, 'epp')}.yaml"] = _epp_deployment(plan, model, pool)
        files[f"service-{dns_label(pool, 'epp')}.yaml"] = _epp_service(plan, model, pool)
        route = class_route(plan, model, name)
        files[f"httproute-{route['metadata']['name']}.yaml"] = route
        for prio in sorted(priorities):
            files[f"inferenceobjective-{class_objective_name(model, name, prio)}.yaml"] = inference_objective(plan, model, prio, name)
    return files


def gateway(plan: Plan, inputs: Inputs, cluster: str) -> dict[str, Any]:
    c = next(c for c in inputs.inventory.clusters if c.name == cluster)
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": _meta(plan, GATEWAY_NAME),
        "spec": {
            "gatewayClassName": c.gateway_class or DEFAULT_GATEWAY_CLASS,
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}],
        },
    }


def _priority_classes(plan: Plan, inputs: Inputs) -> dict[str, set[str]]:
    classes: dict[str, set[str]] = {}
    for w in inputs.workflows:
        for role in w.roles:
            classes.setdefault(role.model, set()).add(w.priority.value)
    for d in plan.demand:
        classes.setdefault(d.model, set()).add(d.priority)
    for r in plan.replicas:
        if not r.swap_models:
            classes.setdefault(r.model, set()).add(r.priority)
    return classes


def build_gateway(plan: Plan, inputs: Inputs) -> dict[str, dict[str, dict[str, Any]]]:
    """cluster -> file name -> object. Objectives exist for every priority class that calls the model
    (the workflows' classes, so routing.json's per-role objective names all resolve)."""
    ports = plan_ports(plan)
    classes = _priority_classes(plan, inputs)
    split = class_split(plan)
    slots = engine_slots(plan, inputs)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in sorted({r.cluster for r in plan.replicas} | {s.cluster for s in plan.standby}):
        files: dict[str, dict[str, Any]] = {
            "gateway.yaml": gateway(plan, inputs, c),
            "configmap-epp-config.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(plan, EPP_CONFIG), "data": {"default-plugins.yaml": EPP_PLUGINS}},
        }
        for m in sorted({r.model for r in plan.replicas if r.cluster == c and not r.swap_models}):
            pool = pool_name(m)
            files[f"inferencepool-{pool}.yaml"] = inference_pool(plan, m, ports[m])
            files[f"deployment-{epp_name(m)}.yaml"] = _epp_deployment(plan, m)
            files[f"service-{epp_name(m)}.yaml"] = _epp_service(plan, m)
            for kind, obj in _epp_rbac(plan, m).items():
                files[f"{kind}-{epp_name(m)}.yaml"] = obj
            route = http_route(plan, m, c)
            if (c, m) in slots:
                files |= _slot_files(plan, m, ports[m], slots[(c, m)], route)
            files[f"httproute-{route['metadata']['name']}.yaml"] = route
            for prio in sorted(classes.get(m, {"interactive"})):
                files[f"inferenceobjective-{objective_name(m, prio)}.yaml"] = inference_objective(plan, m, prio)
            files |= _class_files(plan, m, c, ports[m], split, classes.get(m, {"interactive"}))
        for m in sorted({s.model for s in plan.standby if s.cluster == c}):
            route = http_route(plan, m, c, standby=True)
            files[f"httproute-{route['metadata']['name']}.yaml"] = route
        files["kustomization.yaml"] = kustomization(files)
        out[c] = dict(sorted(files.items()))
    return out


def emit_gateway(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    head = (header_lines(plan) + f"\nNeeds the CRDs of InferencePool ({POOL_API}), InferenceObjective ({OBJECTIVE_API}) and the Gateway API "
            f"({GATEWAY_API}), and a Gateway implementation with Inference Extension support (GatewayClass).")
    written = []
    for cluster, files in build_gateway(plan, inputs).items():
        for name, obj in files.items():
            written.append(write(out_dir, f"routing/gateway-api/{cluster}/{name}", to_yaml(obj, header=head)))
    return written
