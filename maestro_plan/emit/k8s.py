"""Kubernetes manifests that realise a plan: DIR/manifests/<cluster>/ (Kustomize-ready).

Per cluster folder:
- namespace.yaml: the serving namespace;
- deployment-<name>.yaml: one Deployment per replica group (identical exclusive replicas on one node,
  `replicas: N`, each pod TP whole GPUs), or per set of co-located replicas (see below);
- leaderworkerset-<name>.yaml: a LeaderWorkerSet for a replica that spans nodes (pipeline parallel
  over Ray, the vLLM recipe of the LWS project: docs/examples/vllm/GPU/lws.yaml);
- service-<name>.yaml: one Service per model per cluster (selects every pod serving the model);
- daemonset-<name>.yaml: warm-standby weight staging (host tmpfs) on the nodes the plan names;
- kustomization.yaml listing them all.

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

from maestro_plan.emit.common import (
    BASE_PORT,
    ENGINE_CPU_BASE,
    HEALTH_PATH,
    HOST_HF_CACHE,
    HOST_MEMORY_SHARE,
    HOST_STAGING_DIR,
    LABEL_PREFIX,
    NAMESPACE,
    SHM_SIZE,
    Engine,
    Workload,
    dns_label,
    engine_defaults,
    gpu_product_label,
    group_replicas,
    header_lines,
    kustomization,
    label_value,
    model_label_key,
    node_index,
    rnd,
    service_name,
    to_yaml,
    write,
)
from maestro_plan.load.schema import GpuType, Inputs
from maestro_plan.plan.schema import Plan, Replica, Standby

MIB = 2**20

STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 360
"""startupProbe budget 360 x 10 s = 1 h: the first start downloads the checkpoint (hundreds of GB for
the largest catalogue models) before /health answers; liveness only starts after that."""

VENDOR_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
"""Extended resource of the GPU device plugins (NVIDIA k8s-device-plugin, ROCm k8s-device-plugin)."""
VENDOR_PRODUCT_LABEL = {"nvidia": "nvidia.com/gpu.product", "amd": "amd.com/gpu.product-name"}
"""Node labels set by NVIDIA GPU Feature Discovery and by the ROCm node labeller."""

LWS_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
"""Ray bootstrap script inside the vllm/vllm-openai image, used by the LWS vLLM example."""


def plan_label(plan: Plan) -> str:
    return label_value(plan.plan_id[:16])


def _kv_dtype_flag(kv_dtype: str) -> str | None:
    """Catalogue kv_cache_dtype -> vLLM --kv-cache-dtype value (vllm/config/cache.py CacheDType)."""
    return {"auto": None, "bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"}[kv_dtype]


def engine_args(r: Replica, inputs: Inputs, port: int) -> list[str]:
    """The `vllm serve` arguments that realise one planned replica (model as positional argument:
    `--model` with `vllm serve` is deprecated and logs a warning since v0.11)."""
    eng = engine_defaults()
    spec = inputs.models[r.model]
    args = [spec.hf_repo, "--served-model-name", r.model, "--port", str(port), "--tensor-parallel-size", str(r.tp)]
    if r.worker_nodes:
        args += ["--pipeline-parallel-size", str(1 + len(r.worker_nodes)), "--distributed-executor-backend", "ray"]
    if r.memory_fraction > 0:
        args += ["--gpu-memory-utilization", repr(round(r.memory_fraction, 4))]
    args += ["--max-model-len", str(r.max_model_len), "--max-num-seqs", str(r.max_num_seqs)]
    if eng.kv_cache_memory_flag and r.kv_cache_bytes_per_gpu > 0:
        args += [eng.kv_cache_memory_flag, str(r.kv_cache_bytes_per_gpu)]
    kvd = _kv_dtype_flag(spec.kv_cache_dtype)
    if kvd:
        args += ["--kv-cache-dtype", kvd]
    args.append("--enable-prefix-caching" if r.prefix_caching else "--no-enable-prefix-caching")
    return args


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
        labels[model_label_key(m)] = "serving"
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
                    "model": e.replica.model,
                    "port": e.port,
                    "gpus": e.cuda_visible_devices,
                    "memory_fraction": rnd(e.replica.memory_fraction, 4),
                    "kv_cache_bytes_per_gpu": e.replica.kv_cache_bytes_per_gpu,
                    "capacity_rps": rnd(e.replica.capacity_rps, 4),
                    "load_rps": rnd(e.replica.load_rps, 4),
                }
                for e in w.engines
            ],
            sort_keys=True,
        ),
    }


def _gpu(inputs: Inputs, w: Workload) -> GpuType:
    return inputs.gpu_types[w.gpu_type]


def _node_selector(inputs: Inputs, node: str | None, gpu: GpuType) -> dict[str, str]:
    sel = {}
    if node is not None:
        sel["kubernetes.io/hostname"] = node
    product = gpu_product_label(gpu)
    if product and gpu.vendor in VENDOR_PRODUCT_LABEL:
        sel[VENDOR_PRODUCT_LABEL[gpu.vendor]] = product
    return sel


def _tolerations(gpu: GpuType) -> list[dict[str, str]]:
    res = VENDOR_RESOURCE.get(gpu.vendor, "nvidia.com/gpu")
    return [{"key": res, "operator": "Exists", "effect": "NoSchedule"}]


def _memory_request(inputs: Inputs, node: str, gpus: int) -> str:
    pool = node_index(inputs)[node].pool
    gib = math.floor(pool.host_dram_gib * HOST_MEMORY_SHARE * gpus / pool.gpus_per_node)
    return f"{max(gib, 1)}Gi"


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


def _env() -> list[dict[str, Any]]:
    return [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}}},
    ]


def _volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        {"name": "hf-cache", "hostPath": {"path": HOST_HF_CACHE, "type": "DirectoryOrCreate"}},
    ]
    mounts = [
        {"name": "shm", "mountPath": "/dev/shm"},
        {"name": "hf-cache", "mountPath": "/root/.cache/huggingface"},
    ]
    return volumes, mounts


def _supervisor_script(inputs: Inputs, engines: list[Engine]) -> str:
    """Start the co-located `vllm serve` processes one after another (each only once the previous
    one answers /health, so that no two engines size their memory at the same time), then wait: if
    any engine exits, stop the others and exit, so the pod restarts as a whole and a dead engine
    never hides behind a healthy one."""
    lines = ["set -uo pipefail", "pids=()"]
    for e in engines:
        argv = " ".join(shlex.quote(a) for a in ["vllm", "serve", *engine_args(e.replica, inputs, e.port)])
        probe = f"python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{e.port}{HEALTH_PATH}', timeout=4)\""
        lines.append(f"# replica {e.replica.id}")
        lines.append(f"CUDA_VISIBLE_DEVICES={e.cuda_visible_devices} {argv} &")
        lines.append("pids+=($!)")
        lines.append(f'until {probe} 2>/dev/null; do kill -0 "${{pids[-1]}}" 2>/dev/null || exit 1; sleep 5; done')
    lines += ["wait -n", "status=$?", 'kill "${pids[@]}" 2>/dev/null || true', "exit $status"]
    return "\n".join(lines) + "\n"


def _container(inputs: Inputs, w: Workload, gpu: GpuType) -> dict[str, Any]:
    eng = engine_defaults()
    volumes_mounts = _volumes()[1]
    ports = [e.port for e in w.engines]
    res_name = VENDOR_RESOURCE.get(gpu.vendor, "nvidia.com/gpu")
    cpu = sum(ENGINE_CPU_BASE + e.replica.tp for e in w.engines)
    c: dict[str, Any] = {"name": "vllm", "image": eng.image}
    if len(w.engines) == 1:
        c["command"] = ["vllm", "serve"]
        c["args"] = engine_args(w.engines[0].replica, inputs, w.engines[0].port)
    else:
        c["command"] = ["/bin/bash", "-c", _supervisor_script(inputs, w.engines)]
    c["ports"] = [{"name": f"http-{i}" if len(ports) > 1 else "http", "containerPort": p, "protocol": "TCP"} for i, p in enumerate(ports)]
    c["env"] = _env()
    c["resources"] = {
        "requests": {"cpu": str(cpu), "memory": _memory_request(inputs, w.node, w.gpus_per_pod)},
        "limits": {res_name: str(w.gpus_per_pod)},
    }
    c.update(_probes(ports))
    c["volumeMounts"] = volumes_mounts
    return c


def _pod_spec(inputs: Inputs, w: Workload, gpu: GpuType, container: dict[str, Any], *, node: str | None, affinity: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeSelector": _node_selector(inputs, node, gpu)}
    if affinity:
        spec["affinity"] = affinity
    spec["tolerations"] = _tolerations(gpu)
    spec["topologySpreadConstraints"] = [
        {
            # zone spread as a soft guard: pods are pinned to planned nodes, whose zones the solver
            # already spread; ScheduleAnyway never blocks a planned pod
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {model_label_key(w.models[0]): "serving"}},
        }
    ]
    spec["containers"] = [container]
    spec["volumes"] = _volumes()[0]
    return spec


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
                "spec": _pod_spec(inputs, w, gpu, _container(inputs, w, gpu), node=w.node),
            },
        },
    }


def leaderworkerset(plan: Plan, inputs: Inputs, w: Workload) -> dict[str, Any]:
    """A replica over 1 + len(worker_nodes) nodes: leader on `node` runs Ray head + `vllm serve`,
    workers join the Ray cluster (LWS injects LWS_GROUP_SIZE and LWS_LEADER_ADDRESS)."""
    gpu = _gpu(inputs, w)
    labels = _labels(plan, w)
    e = w.engines[0]
    leader = _container(inputs, w, gpu)
    serve = " ".join(shlex.quote(a) for a in ["vllm", "serve", *engine_args(e.replica, inputs, e.port)])
    leader["name"] = "vllm-leader"
    leader["command"] = ["/bin/bash", "-c", f"bash {LWS_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE)\nexec {serve}\n"]
    leader.pop("args", None)
    worker = _container(inputs, w, gpu)
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

    def on_nodes(nodes: list[str]) -> dict[str, Any]:
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]}]
                }
            },
            **anti,
        }

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
                    "spec": _pod_spec(inputs, w, gpu, leader, node=w.node, affinity=anti),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**labels, **{model_label_key(m): "worker" for m in w.models}}},
                    "spec": _pod_spec(inputs, w, gpu, worker, node=None, affinity=on_nodes(sorted(w.worker_nodes))),
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


def standby_daemonset(plan: Plan, inputs: Inputs, cluster: str, model: str, standbys: list[Standby]) -> dict[str, Any]:
    """Stage a warm-standby model's weights into host DRAM (a tmpfs under /dev/shm on the host) on
    the planned nodes, so that loading it onto GPUs costs weight bytes / host-to-GPU bandwidth
    instead of a download. The pod stays running so the memory stays accounted to it."""
    eng = engine_defaults()
    spec = inputs.models[model]
    name = dns_label("standby", model, limit=50)
    nodes = sorted(s.node for s in standbys)
    target = f"/staging/{model}"
    script = (
        "set -euo pipefail\n"
        f"python3 -c 'from huggingface_hub import snapshot_download; snapshot_download(repo_id={spec.hf_repo!r}, local_dir={target!r})'\n"
        f"touch {target}/.complete\n"
        "exec sleep infinity\n"
    )
    host_bytes = max(s.host_dram_bytes for s in standbys)
    mem = f"{math.ceil(host_bytes / MIB) + 1024}Mi"  # the staged bytes + 1 GiB for the downloader itself
    labels = {
        "app.kubernetes.io/name": "maestro-standby",
        "app.kubernetes.io/part-of": "maestro-plan",
        "app.kubernetes.io/managed-by": "maestro-plan",
        f"{LABEL_PREFIX}/plan": plan_label(plan),
        f"{LABEL_PREFIX}/workload": name,
        f"{LABEL_PREFIX}/model": label_value(model),
        f"{LABEL_PREFIX}/cluster": label_value(cluster),
    }
    annotations = {
        f"{LABEL_PREFIX}/plan-id": plan.plan_id,
        f"{LABEL_PREFIX}/warm-standby": json.dumps(
            [{"node": s.node, "cold_start_ms": rnd(s.cold_start_ms, 1), "host_dram_bytes": s.host_dram_bytes, "path": f"{HOST_STAGING_DIR}/{model}"} for s in standbys],
            sort_keys=True,
        ),
    }
    gpu_types = {node_index(inputs)[n].pool.gpu_type for n in nodes}
    tolerations = sorted({VENDOR_RESOURCE.get(inputs.gpu_types[g].vendor, "nvidia.com/gpu") for g in gpu_types})
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {f"{LABEL_PREFIX}/workload": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]}]
                            }
                        }
                    },
                    "tolerations": [{"key": t, "operator": "Exists", "effect": "NoSchedule"} for t in tolerations],
                    "containers": [
                        {
                            "name": "stage-weights",
                            "image": eng.image,
                            "command": ["/bin/bash", "-c", script],
                            "env": _env(),
                            "resources": {"requests": {"cpu": "1", "memory": mem}, "limits": {"memory": mem}},
                            "readinessProbe": {"exec": {"command": ["test", "-f", f"{target}/.complete"]}, "periodSeconds": 30},
                            "volumeMounts": [{"name": "staging", "mountPath": "/staging"}],
                        }
                    ],
                    "volumes": [{"name": "staging", "hostPath": {"path": HOST_STAGING_DIR, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }


def service(plan: Plan, inputs: Inputs, cluster: str, model: str, port: int, replicas: list[Replica], standbys: list[Standby]) -> dict[str, Any]:
    """ClusterIP Service per model per cluster on port 8000, forwarding to the model's fleet-wide
    engine port. Annotations carry what a router needs: capacity, and warm-standby cold starts."""
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
            "name": service_name(model, cluster),
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
            "selector": {model_label_key(model): "serving"},
            "ports": [{"name": "http", "port": BASE_PORT, "targetPort": port, "protocol": "TCP"}],
        },
    }


def build_k8s(plan: Plan, inputs: Inputs) -> dict[str, dict[str, dict[str, Any]]]:
    """cluster -> file name -> object (kustomization.yaml included), for every cluster of the inventory
    that the plan uses."""
    workloads = group_replicas(plan)
    from maestro_plan.emit.common import model_ports

    ports = model_ports([r.model for r in plan.replicas] + [s.model for s in plan.standby])
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
        for w in (w for w in workloads if w.cluster == c):
            if w.multi_node:
                files[f"leaderworkerset-{w.name}.yaml"] = leaderworkerset(plan, inputs, w)
            else:
                files[f"deployment-{w.name}.yaml"] = deployment(plan, inputs, w)
        standby = _standby_by_model(plan, c)
        for m, sb in standby.items():
            ds = standby_daemonset(plan, inputs, c, m, sb)
            files[f"daemonset-{ds['metadata']['name']}.yaml"] = ds
        models = sorted({r.model for r in plan.replicas if r.cluster == c} | set(standby))
        for m in models:
            reps = sorted((r for r in plan.replicas if r.cluster == c and r.model == m), key=lambda r: r.id)
            svc = service(plan, inputs, c, m, ports[m], reps, standby.get(m, []))
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
