"""Gateway API Inference Extension objects: DIR/routing/gateway-api/<cluster>/ (Kustomize-ready).

- InferencePool (inference.networking.k8s.io/v1, stable since GIE v1.0) per model and cluster:
  selects every pod serving the model (label model.maestro-plan.dev/<model>=serving) on the model's
  fleet-wide engine port, with an Endpoint Picker at Service `<pool>-epp`:9002 (the name the
  upstream `inferencepool` Helm chart gives the EPP of a release named like the pool).
- InferenceObjective per pool and priority class (interactive, batch) carrying the priority.
  The objective API left the Gateway API Inference Extension in 2026 (GIE PR #2973 removed the
  v1alpha2 InferenceObjective, InferenceModelRewrite and EndpointPickerConfig) and now lives in the
  llm-d router under the API group llm-d.ai (llm-d/llm-d-router config/crd/bases/
  llm-d.ai_inferenceobjectives.yaml, version v1alpha2). Requests choose it with the header
  `x-gateway-inference-objective: <name>`; routing.json tells each workflow role which name to send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_plan.emit.common import (
    EPP_PORT,
    LABEL_PREFIX,
    NAMESPACE,
    OBJECTIVE_PRIORITY,
    header_lines,
    kustomization,
    label_value,
    model_label_key,
    model_ports,
    pool_name,
    to_yaml,
    write,
)
from maestro_plan.emit.routing import objective_name
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan

POOL_API = "inference.networking.k8s.io/v1"
OBJECTIVE_API = "llm-d.ai/v1alpha2"


def inference_pool(plan: Plan, model: str, port: int) -> dict[str, Any]:
    name = pool_name(model)
    return {
        "apiVersion": POOL_API,
        "kind": "InferencePool",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "maestro-plan", f"{LABEL_PREFIX}/model": label_value(model)},
            "annotations": {f"{LABEL_PREFIX}/plan-id": plan.plan_id},
        },
        "spec": {
            "selector": {"matchLabels": {model_label_key(model): "serving"}},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {"name": f"{name}-epp", "port": {"number": EPP_PORT}, "failureMode": "FailClose"},
        },
    }


def inference_objective(plan: Plan, model: str, priority: str) -> dict[str, Any]:
    return {
        "apiVersion": OBJECTIVE_API,
        "kind": "InferenceObjective",
        "metadata": {
            "name": objective_name(model, priority),
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": "maestro-plan",
                f"{LABEL_PREFIX}/model": label_value(model),
                f"{LABEL_PREFIX}/priority": priority,
            },
            "annotations": {f"{LABEL_PREFIX}/plan-id": plan.plan_id},
        },
        "spec": {
            "poolRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool_name(model)},
            "priority": OBJECTIVE_PRIORITY[priority],
        },
    }


def build_gateway(plan: Plan, inputs: Inputs) -> dict[str, dict[str, dict[str, Any]]]:
    """cluster -> file name -> object. Objectives exist for every priority class that calls the model
    (the workflows' classes, so routing.json's per-role objective names all resolve)."""
    ports = model_ports([r.model for r in plan.replicas] + [s.model for s in plan.standby])
    classes: dict[str, set[str]] = {}
    for w in inputs.workflows:
        for role in w.roles:
            classes.setdefault(role.model, set()).add(w.priority.value)
    for d in plan.demand:
        classes.setdefault(d.model, set()).add(d.priority)
    for r in plan.replicas:
        classes.setdefault(r.model, set()).add(r.priority)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in sorted({r.cluster for r in plan.replicas} | {s.cluster for s in plan.standby}):
        files: dict[str, dict[str, Any]] = {}
        models = sorted({r.model for r in plan.replicas if r.cluster == c} | {s.model for s in plan.standby if s.cluster == c})
        for m in models:
            files[f"inferencepool-{pool_name(m)}.yaml"] = inference_pool(plan, m, ports[m])
            for prio in sorted(classes.get(m, {"interactive"})):
                files[f"inferenceobjective-{objective_name(m, prio)}.yaml"] = inference_objective(plan, m, prio)
        files["kustomization.yaml"] = kustomization(files)
        out[c] = dict(sorted(files.items()))
    return out


def emit_gateway(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    head = header_lines(plan) + f"\nNeeds the CRDs of InferencePool ({POOL_API}) and InferenceObjective ({OBJECTIVE_API})."
    written = []
    for cluster, files in build_gateway(plan, inputs).items():
        for name, obj in files.items():
            written.append(write(out_dir, f"routing/gateway-api/{cluster}/{name}", to_yaml(obj, header=head)))
    return written
