"""Kubernetes manifests that realise a plan: DIR/manifests/<cluster>/ (Kustomize-ready).

Per cluster folder:
- namespace.yaml: the serving namespace (maestro-serving; kustomization.yaml sets it on every object);
- deployment-<name>.yaml: one Deployment per replica group (identical exclusive replicas on one named
  node, `replicas: N`, each pod TP whole GPUs), per set of co-located replicas, or per planned node
  of a `count` pool (one pod holding all of that node's replicas; see placement.py);
- leaderworkerset-<name>.yaml: a LeaderWorkerSet for a replica that spans nodes (pipeline parallel
  over Ray, the vLLM recipe of the LWS project: docs/examples/vllm/GPU/lws.yaml);
- service-<name>.yaml: one Service per model per cluster (selects every pod serving the model,
  warm-standby engines included);
- configmap-wake-proxy.yaml: the wake proxy of warm-standby swap slots (wake_proxy.py);
- kustomization.yaml listing them all.

Warm standby (a swap slot of the plan, Replica.swap_models): the slot's pod runs one
`vllm serve --enable-sleep-mode` per model (VLLM_SERVER_DEV_MODE=1, so /sleep and /wake_up exist),
each put to sleep once healthy (weights to host DRAM), and a `wake-proxy` sidecar on the models'
ports that wakes the requested engine on demand (after sleeping the slot's other engine).

Co-located engines (replicas of different models sharing one GPU) run the way a plain Kubernetes
cluster can guarantee: ONE pod per set of replicas that share GPUs, holding the union of their GPUs
(nvidia.com/gpu: n, exclusive to that pod), whose single container starts one `vllm serve` per
replica, each pinned with CUDA_VISIBLE_DEVICES to its GPUs of the pod and capped with
--kv-cache-memory-bytes (and --gpu-memory-utilization = the planned memory fraction) so that their
memory adds up as planned. Time-slicing/MPS sharing of the device plugin was not chosen: it hands
out GPU slices without letting a pod choose which physical GPU, so the planned packing (which
engines share which GPU) could not be enforced.
"""

from __future__ import annotations

import json
import math
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

from maestro_plan.emit.checks import check_shell_safe_names
from maestro_plan.emit.classes import (
    ClassSplit,
    class_label_key,
    class_service_name,
    class_slug,
    class_split,
    workload_class_labels,
)
from maestro_plan.emit.common import (
    BASE_PORT,
    ENGINE_CPU_BASE,
    HEALTH_PATH,
    HF_TOKEN_SECRET,
    HOST_HF_CACHE,
    HOST_MEMORY_SHARE,
    LABEL_PREFIX,
    NAMESPACE,
    PORT_SPAN,
    SHM_SIZE,
    SHM_SIZE_MULTI_GPU,
    Workload,
    engine_defaults,
    engine_slot,
    engine_slots,
    header_lines,
    kustomization,
    label_value,
    model_label_key,
    node_index,
    plan_ports,
    plan_workloads,
    rnd,
    service_name,
    slot_label_key,
    slot_name,
    standby_service_name,
    to_yaml,
    write,
)
from maestro_plan.emit.engine import engine_args, pod_engine_args, supervisor_script
from maestro_plan.emit.placement import (
    VENDOR_PRODUCT_LABEL,
    hostname_affinity,
    node_selector,
    planned_node_anti_affinity,
    planned_node_label,
)
from maestro_plan.errors import Collector
from maestro_plan.load.schema import GpuType, Inputs
from maestro_plan.plan.schema import Plan, Replica, Standby
from maestro_plan.units import GIB

MIB = 2**20

STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 360
"""startupProbe budget 360 x 10 s = 1 h: the first start downloads the checkpoint (hundreds of GB for
the largest catalogue models) before /health answers; liveness only starts after that."""

VENDOR_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
"""Extended resource of the GPU device plugins (NVIDIA k8s-device-plugin, ROCm k8s-device-plugin)."""

LWS_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
"""Ray bootstrap script inside the vllm/vllm-openai image, used by the LWS vLLM example."""

WAKE_PROXY_CONFIGMAP = "maestro-wake-proxy"
WAKE_PROXY_PATH = "/opt/maestro/wake_proxy.py"
WAKE_PROXY_SOURCE = Path(__file__).resolve().with_name("wake_proxy.py")

__all__ = ["build_k8s", "emit_k8s", "engine_args"]


def plan_label(plan: Plan) -> str:
    return label_value(plan.plan_id[:16])


def _labels(plan: Plan, w: Workload) -> dict[str, str]:
    roles = sorted({role for e in w.engines for role in e.replica.roles})
    priorities = {e.replica.priority for e in w.engines}
    labels = {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/part-of": "maestro-plan",
        "app.kubernetes.io/managed-by": "maestro-plan",
        f"{LABEL_PREFIX}/plan": plan_label(plan),
        f"{LABEL_PREFIX}/workload": w.name,
        f"{LABEL_PREFIX}/model": label_value(w.models[0]) if len(w.models) == 1 else "shared",
        f"{LABEL_PREFIX}/role": label_value(roles[0].split("/")[-1]) if len(roles) == 1 else ("shared" if roles else "none"),
        f"{LABEL_PREFIX}/priority": "interactive" if "interactive" in priorities else "batch",
        f"{LABEL_PREFIX}/cluster": label_value(w.cluster),
    }
    for m in w.models:
        active = any(e.model == m and not e.standby_model for e in w.engines)
        labels[model_label_key(m)] = "serving" if active else "standby"
    ports = plan_ports(plan)
    for e in w.engines:  # a second, differing engine of a model in the pod: its slot's label
        if not e.standby_model and engine_slot(e, ports) > 0:
            labels[slot_label_key(e.model, engine_slot(e, ports))] = "serving"
    labels.update(planned_node_label(w))
    labels.update(w.class_labels)
    return labels


def _annotations(plan: Plan, w: Workload) -> dict[str, str]:
    roles = sorted({role for e in w.engines for role in e.replica.roles})
    return {
        f"{LABEL_PREFIX}/plan-id": plan.plan_id,
        f"{LABEL_PREFIX}/replicas": ",".join(w.replica_ids),
        f"{LABEL_PREFIX}/roles": ",".join(roles),
        f"{LABEL_PREFIX}/engines": json.dumps(
            [
                {
                    "model": e.model,
                    "port": e.port,
                    "standby": e.standby_model is not None,
                    "gpus": e.cuda_visible_devices,
                    "memory_fraction": rnd(e.replica.memory_fraction, 4),
                    "kv_cache_bytes_per_gpu": e.replica.kv_cache_bytes_per_gpu,
                    "capacity_rps": rnd(sum(r.capacity_rps for r in e.replicas), 4),
                    "load_rps": rnd(sum(r.load_rps for r in e.replicas), 4),
                    **({"data_parallel_size": e.dp_size, "replicas": [r.id for r in e.replicas]} if e.dp_size > 1 else {}),
                }
                for e in w.engines
            ],
            sort_keys=True,
        ),
    }


def _gpu(inputs: Inputs, w: Workload) -> GpuType:
    return inputs.gpu_types[w.gpu_type]


def _tolerations(gpu: GpuType) -> list[dict[str, str]]:
    res = VENDOR_RESOURCE.get(gpu.vendor, "nvidia.com/gpu")
    return [{"key": res, "operator": "Exists", "effect": "NoSchedule"}]


def _memory_request(inputs: Inputs, node: str, gpus: int, standby_bytes: int = 0) -> str:
    """The pod's share of the node's host DRAM by GPUs, plus the weights its sleeping standby
    engines keep in host DRAM (sleep level 1 offloads them to CPU memory)."""
    pool = node_index(inputs)[node].pool
    gib = math.floor(pool.host_dram_gib * HOST_MEMORY_SHARE * gpus / pool.gpus_per_node)
    return f"{max(gib, 1) + math.ceil(standby_bytes / GIB)}Gi"


def _http_probe(port: int, **kw: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": port}, **kw}


def _exec_probe(ports: list[int], **kw: int) -> dict[str, Any]:
    code = "import urllib.request as u\n" + "".join(
        f"u.urlopen('http://127.0.0.1:{p}{HEALTH_PATH}', timeout=4)\n" for p in ports
    )
    return {"exec": {"command": ["python3", "-c", code]}, **kw}


def _probes(ports: list[int]) -> dict[str, Any]:
    mk = (lambda **kw: _http_probe(ports[0], **kw)) if len(ports) == 1 else (lambda **kw: _exec_probe(ports, **kw))
    return {
        "startupProbe": mk(periodSeconds=STARTUP_PERIOD_S, failureThreshold=STARTUP_FAILURES, timeoutSeconds=5),
        "readinessProbe": mk(periodSeconds=5, failureThreshold=3, timeoutSeconds=5),
        "livenessProbe": mk(periodSeconds=10, failureThreshold=3, timeoutSeconds=5),
    }


def _env(inputs: Inputs, models: list[str]) -> list[dict[str, Any]]:
    """HF_TOKEN from the hf-token Secret: required when a model of the pod is gated."""
    gated = any(inputs.models[m].gated for m in models)
    ref = {"name": HF_TOKEN_SECRET, "key": "token"}
    if not gated:
        ref["optional"] = True
    return [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}}]


def _volumes(gpus_per_pod: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shm = SHM_SIZE if gpus_per_pod <= 1 else SHM_SIZE_MULTI_GPU
    volumes = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}},
        {"name": "hf-cache", "hostPath": {"path": HOST_HF_CACHE, "type": "DirectoryOrCreate"}},
    ]
    mounts = [
        {"name": "shm", "mountPath": "/dev/shm"},
        {"name": "hf-cache", "mountPath": "/root/.cache/huggingface"},
    ]
    return volumes, mounts


def _standby_bytes(plan: Plan, w: Workload) -> int:
    held = {(s.slot_replica, s.model): s.host_dram_bytes for s in plan.standby}
    return sum(held.get((e.replica.id, e.standby_model), 0) for e in w.engines if e.standby_model)


def _container(plan: Plan, inputs: Inputs, w: Workload, gpu: GpuType) -> dict[str, Any]:
    eng = engine_defaults()
    res_name = VENDOR_RESOURCE.get(gpu.vendor, "nvidia.com/gpu")
    # a DP server: one API server, and per rank one EngineCore plus TP workers (common.py _dp_groups)
    cpu = sum(ENGINE_CPU_BASE + e.replica.tp + (e.dp_size - 1) * (ENGINE_CPU_BASE - 1 + e.replica.tp) for e in w.engines)
    c: dict[str, Any] = {"name": "vllm", "image": eng.image, "imagePullPolicy": "IfNotPresent"}
    if len(w.engines) == 1 and not w.has_standby:
        c["command"] = ["vllm", "serve"]
        c["args"] = pod_engine_args(w.engines[0], inputs)
    else:
        c["command"] = ["/bin/bash", "-c", supervisor_script(inputs, w.engines)]
    ports = [e.listen_port for e in w.engines]
    if not w.has_standby:  # standby engines listen on 127.0.0.1 only; the wake proxy owns the ports
        c["ports"] = [{"name": f"http-{i}" if len(ports) > 1 else "http", "containerPort": p, "protocol": "TCP"} for i, p in enumerate(ports)]
    c["env"] = _env(inputs, w.models)
    c["resources"] = {
        "requests": {"cpu": str(cpu), "memory": _memory_request(inputs, w.node, w.gpus_per_pod, _standby_bytes(plan, w))},
        "limits": {res_name: str(w.gpus_per_pod)},
    }
    c.update(_probes(ports))
    c["volumeMounts"] = _volumes(w.gpus_per_pod)[1]
    return c


def _wake_proxy(w: Workload) -> dict[str, Any]:
    """Sidecar that owns the standby models' ports and wakes their engine on demand (wake_proxy.py)."""
    eng = engine_defaults()
    routes = [f"{e.port}={e.listen_port}" for e in w.engines if e.standby_model]
    ports = [e.port for e in w.engines if e.standby_model]
    return {
        "name": "wake-proxy",
        "image": eng.image,  # the vLLM image has python3; the proxy needs the standard library only
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", WAKE_PROXY_PATH, *routes],
        "ports": [{"name": f"http-{i}" if len(ports) > 1 else "http", "containerPort": p, "protocol": "TCP"} for i, p in enumerate(ports)],
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}},
        "readinessProbe": _http_probe(ports[0], periodSeconds=5, failureThreshold=3, timeoutSeconds=5),
        "volumeMounts": [{"name": "wake-proxy", "mountPath": str(Path(WAKE_PROXY_PATH).parent), "readOnly": True}],
    }


def wake_proxy_configmap(plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": WAKE_PROXY_CONFIGMAP, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "maestro-plan", f"{LABEL_PREFIX}/plan": plan_label(plan)}},
        "data": {Path(WAKE_PROXY_PATH).name: WAKE_PROXY_SOURCE.read_text(encoding="utf-8")},
    }


def _pod_spec(inputs: Inputs, w: Workload, gpu: GpuType, containers: list[dict[str, Any]], *, node: str | None,
              affinity: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if node is not None:
        spec["nodeSelector"] = node_selector(inputs, node, gpu, pinned=w.pinned)
    elif gpu.vendor in VENDOR_PRODUCT_LABEL:
        spec["nodeSelector"] = {k: v for k, v in node_selector(inputs, w.node, gpu, pinned=False).items() if k in VENDOR_PRODUCT_LABEL.values()}
    affinity = dict(affinity or {})
    if not w.pinned:
        terms = planned_node_anti_affinity()["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        have = affinity.get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [*have, *terms]}
    if affinity:
        spec["affinity"] = affinity
    spec["tolerations"] = _tolerations(gpu)
    spec["topologySpreadConstraints"] = [
        {
            # zone spread as a soft guard: pods are pinned to planned nodes or pools, whose zones the
            # solver already spread; ScheduleAnyway never blocks a planned pod
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {model_label_key(w.models[0]): "serving"}},
        }
    ]
    spec["containers"] = containers
    volumes = _volumes(w.gpus_per_pod)[0]
    if w.has_standby:
        volumes.append({"name": "wake-proxy", "configMap": {"name": WAKE_PROXY_CONFIGMAP}})
    spec["volumes"] = volumes
    return spec


def _containers(plan: Plan, inputs: Inputs, w: Workload, gpu: GpuType) -> list[dict[str, Any]]:
    main = _container(plan, inputs, w, gpu)
    return [main, _wake_proxy(w)] if w.has_standby else [main]


def deployment(plan: Plan, inputs: Inputs, w: Workload) -> dict[str, Any]:
    gpu = _gpu(inputs, w)
    labels = _labels(plan, w)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": w.name, "namespace": NAMESPACE, "labels": labels, "annotations": _annotations(plan, w)},
        "spec": {
            "replicas": w.count,
            # pods are pinned to the planned node's GPUs: a surge pod would find no free GPU
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {f"{LABEL_PREFIX}/workload": w.name}},
            "template": {
                "metadata": {"labels": labels, "annotations": _annotations(plan, w)},
                "spec": _pod_spec(inputs, w, gpu, _containers(plan, inputs, w, gpu), node=w.node),
            },
        },
    }


def leaderworkerset(plan: Plan, inputs: Inputs, w: Workload) -> dict[str, Any]:
    """A replica over 1 + len(worker_nodes) nodes: leader on `node` runs Ray head + `vllm serve`,
    workers join the Ray cluster (LWS injects LWS_GROUP_SIZE and LWS_LEADER_ADDRESS)."""
    gpu = _gpu(inputs, w)
    labels = _labels(plan, w)
    e = w.engines[0]
    leader = _container(plan, inputs, w, gpu)
    serve = " ".join(shlex.quote(a) for a in ["vllm", "serve", *engine_args(e.replica, inputs, e.port)])
    leader["name"] = "vllm-leader"
    leader["command"] = ["/bin/bash", "-c", f"bash {LWS_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE)\nexec {serve}\n"]
    leader.pop("args", None)
    worker = _container(plan, inputs, w, gpu)
    worker["name"] = "vllm-worker"
    worker["command"] = ["/bin/bash", "-c", f"bash {LWS_SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)\n"]
    worker.pop("args", None)
    for k in ("startupProbe", "readinessProbe", "livenessProbe", "ports"):
        worker.pop(k, None)  # the API server (and its /health) runs on the leader only
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {f"{LABEL_PREFIX}/workload": w.name}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    # workers: on the planned worker nodes by name, or anywhere in the pool (count pools)
    worker_aff = {**hostname_affinity(w.worker_nodes), **anti} if w.pinned else anti
    worker_node = None if w.pinned else w.node
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": w.name, "namespace": NAMESPACE, "labels": labels, "annotations": _annotations(plan, w)},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 1 + len(w.worker_nodes),
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": labels},
                    "spec": _pod_spec(inputs, w, gpu, [leader], node=w.node, affinity=anti),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**labels, **{model_label_key(m): "worker" for m in w.models}}},
                    "spec": _pod_spec(inputs, w, gpu, [worker], node=worker_node, affinity=worker_aff),
                },
            },
        },
    }


def _standby_by_model(plan: Plan, cluster: str) -> dict[str, list[Standby]]:
    out: dict[str, list[Standby]] = defaultdict(list)
    for s in plan.standby:
        if s.cluster == cluster:
            out[s.model].append(s)
    return {m: sorted(v, key=lambda s: s.node) for m, v in sorted(out.items())}


def service(plan: Plan, inputs: Inputs, cluster: str, model: str, port: int, replicas: list[Replica], standbys: list[Standby]) -> dict[str, Any]:
    """ClusterIP Service per model per cluster on port 8000, forwarding to the model's fleet-wide
    engine port. Annotations carry what a router needs: capacity, and warm-standby cold starts.
    With `standbys` and no `replicas`: the model's standby Service (selects its sleeping engines,
    whose wake proxy listens on the same port)."""
    ann = {
        f"{LABEL_PREFIX}/plan-id": plan.plan_id,
        f"{LABEL_PREFIX}/model": model,
        f"{LABEL_PREFIX}/replicas": str(len(replicas)),
        f"{LABEL_PREFIX}/capacity-rps": repr(rnd(sum(r.capacity_rps for r in replicas), 4)),
        f"{LABEL_PREFIX}/load-rps": repr(rnd(sum(r.load_rps for r in replicas), 4)),
    }
    if standbys:
        ann[f"{LABEL_PREFIX}/warm-standby"] = json.dumps(
            [{"node": s.node, "cold_start_ms": rnd(s.cold_start_ms, 1)} for s in standbys], sort_keys=True
        )
        ann[f"{LABEL_PREFIX}/standby-cold-start-ms"] = repr(rnd(min(s.cold_start_ms for s in standbys), 1))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(model, cluster) if replicas else standby_service_name(model, cluster),
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": "maestro-plan",
                "app.kubernetes.io/managed-by": "maestro-plan",
                f"{LABEL_PREFIX}/plan": plan_label(plan),
                f"{LABEL_PREFIX}/model": label_value(model),
                f"{LABEL_PREFIX}/cluster": label_value(cluster),
            },
            "annotations": ann,
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {model_label_key(model): "serving" if replicas else "standby"},
            "ports": [{"name": "http", "port": BASE_PORT, "targetPort": port, "protocol": "TCP"}],
        },
    }


def slot_services(plan: Plan, inputs: Inputs, cluster: str, model: str, port: int, slots: dict[int, list[Replica]]) -> list[dict[str, Any]]:
    """The model's Service (slot 0), and per slot k >= 1 (a pod running a second, differently
    configured engine of the model: common.py _pod_engines) a Service `<service>-s<k>` that selects
    the pods labelled for slot k and targets port + k*PORT_SPAN, which exactly those pods listen on."""
    out = []
    for k, reps in sorted(slots.items()):
        svc = service(plan, inputs, cluster, model, port + k * PORT_SPAN, reps, [])
        if k:
            svc["metadata"]["name"] = slot_name(service_name(model, cluster), k)
            svc["metadata"]["annotations"][f"{LABEL_PREFIX}/engine-slot"] = str(k)
            svc["spec"]["selector"] = {slot_label_key(model, k): "serving"}
        out.append(svc)
    return out


def class_service(plan: Plan, inputs: Inputs, cluster: str, model: str, port: int, request_class: str, split: ClassSplit) -> dict[str, Any]:
    """The Service of a split request class in a cluster (classes.py): the model's pods that serve the class."""
    reps = sorted((r for r in plan.replicas if r.cluster == cluster and r.model == model and request_class in split.serves.get(r.id, set())), key=lambda r: r.id)
    svc = service(plan, inputs, cluster, model, port, reps, [])
    svc["metadata"]["name"] = class_service_name(model, cluster, request_class)
    svc["metadata"]["labels"][f"{LABEL_PREFIX}/request-class"] = class_slug(request_class)
    svc["metadata"]["annotations"][f"{LABEL_PREFIX}/request-class"] = request_class
    svc["spec"]["selector"][class_label_key(request_class)] = "serving"
    return svc


def build_k8s(plan: Plan, inputs: Inputs) -> dict[str, dict[str, dict[str, Any]]]:
    """cluster -> file name -> object (kustomization.yaml included), for every cluster of the inventory
    that the plan uses."""
    col = Collector()
    check_shell_safe_names(plan, col, "plan.json")
    col.raise_if_any()
    workloads = plan_workloads(plan, inputs)
    split = class_split(plan)
    for w in workloads:
        w.class_labels = workload_class_labels(split, w.cluster, w.replica_ids)
    ports = plan_ports(plan)
    slots = engine_slots(plan, inputs)
    clusters = sorted({r.cluster for r in plan.replicas} | {s.cluster for s in plan.standby})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for c in clusters:
        files: dict[str, dict[str, Any]] = {
            "namespace.yaml": {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "maestro-plan", f"{LABEL_PREFIX}/plan": plan_label(plan)}},
            }
        }
        mine = [w for w in workloads if w.cluster == c]
        for w in mine:
            if w.multi_node:
                files[f"leaderworkerset-{w.name}.yaml"] = leaderworkerset(plan, inputs, w)
            else:
                files[f"deployment-{w.name}.yaml"] = deployment(plan, inputs, w)
        if any(w.has_standby for w in mine):
            files["configmap-wake-proxy.yaml"] = wake_proxy_configmap(plan)
        standby = _standby_by_model(plan, c)
        for m in sorted({r.model for r in plan.replicas if r.cluster == c and not r.swap_models}):
            reps = sorted((r for r in plan.replicas if r.cluster == c and r.model == m and not r.swap_models), key=lambda r: r.id)
            for svc in slot_services(plan, inputs, c, m, ports[m], slots.get((c, m), {0: reps})):
                files[f"service-{svc['metadata']['name']}.yaml"] = svc
            for name in sorted(split.split.get((m, c), set())):
                svc = class_service(plan, inputs, c, m, ports[m], name, split)
                files[f"service-{svc['metadata']['name']}.yaml"] = svc
        for m, sb in standby.items():
            svc = service(plan, inputs, c, m, ports[m], [], sb)
            files[f"service-{svc['metadata']['name']}.yaml"] = svc
        files["kustomization.yaml"] = kustomization(files)
        out[c] = dict(sorted(files.items()))
    return out


def emit_k8s(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Write DIR/manifests/<cluster>/*.yaml. Returns the files written."""
    written = []
    head = header_lines(plan)
    for cluster, files in build_k8s(plan, inputs).items():
        for name, obj in files.items():
            written.append(write(out_dir, f"manifests/{cluster}/{name}", to_yaml(obj, header=head)))
    return written
