"""Shared pieces of the emitters: plan/input cross-checks, names, labels, ports, grouping, YAML.

Everything here is a pure function of the plan and the inputs it references, so that emitting
twice gives byte-identical files (sorted iteration everywhere, no clocks, no randomness).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.errors import InputError
from maestro_plan.load.schema import Cluster, GpuType, Inputs, NodePool
from maestro_plan.plan.schema import Plan, Replica, Standby

# --------------------------------------------------------------------------------------------
# Fixed choices of the emitted deployment (one place; each says where it comes from)
# --------------------------------------------------------------------------------------------

NAMESPACE = "maestro-serving"
"""Namespace of every emitted object (kustomization.yaml sets it too, so it can be overridden there)."""

LABEL_PREFIX = "maestro-plan.dev"
MODEL_LABEL_PREFIX = f"model.{LABEL_PREFIX}"
"""Pods carry `model.maestro-plan.dev/<model-id>: serving` for every model they serve; Services and
InferencePools select on it (a pod running several co-located engines serves several models)."""

BASE_PORT = 8000
"""vLLM's OpenAI-compatible server listens on port 8000 unless --port says otherwise (`vllm serve --help`)."""

PORT_SPAN = 1000
"""Model ports are 8000..8999: each model gets one fleet-wide port (see `model_ports`)."""

EPP_PORT = 9002
"""Endpoint Picker gRPC port: the InferencePool v1 CRD says implementations infer 9002 when unset."""

HEALTH_PATH = "/health"
"""Health endpoint of vLLM's OpenAI-compatible server (GET /health: 200 when the engine is up; the
vLLM Kubernetes guide points its liveness and readiness probes at it)."""

SHM_SIZE = "2Gi"
"""/dev/shm of a one-GPU pod: the vLLM Kubernetes guide mounts an emptyDir with medium Memory and
sizeLimit 2Gi (docs.vllm.ai/en/latest/deployment/k8s.html)."""

SHM_SIZE_MULTI_GPU = "15Gi"
"""/dev/shm of a pod with several GPUs (tensor parallel: NCCL's shared-memory transport and vLLM's
multiprocessing executor pass tensors through it): 15Gi, the size of the LWS project's vLLM example
for 8-GPU pods (kubernetes-sigs/lws docs/examples/vllm/GPU/lws.yaml, volume dshm)."""

HF_TOKEN_SECRET = "hf-token"
"""Secret (key `token`) holding a Hugging Face access token. Required (not optional) in pods that
serve a gated model (ModelSpec.gated): without it the download fails with 401 and the pod would
crash-loop, so the pod rather stays in CreateContainerConfigError until the Secret exists."""

HOST_HF_CACHE = "/var/lib/maestro-plan/hf-cache"
"""Host path of the Hugging Face cache shared by engines on a node (weights download once per node)."""

HOST_MEMORY_SHARE = 0.9
"""Fraction of a node's host DRAM that engines request in proportion to the GPUs they use; the rest
is left to the kubelet's system reservation, the OS page cache and standby staging (DESIGN.md 6)."""

OBJECTIVE_PRIORITY = {"interactive": 10, "batch": -10}
"""InferenceObjective priorities per workflow class. The CRD: higher is served first, unset means 0,
negative values allowed; so interactive work goes ahead of unlabelled traffic and batch after it."""

LITELLM_PRIORITY = {"interactive": 0, "batch": 1}
"""LiteLLM request priority per workflow class: a request sent with `priority=` goes through the
Router's scheduler queue, which serves lower values first (litellm/scheduler.py: "lower values
indicate higher priority", 0..255); so interactive calls overtake queued batch calls of one model."""

ENGINE_CPU_BASE = 2
"""CPU cores requested per engine beyond one per GPU: vLLM V1 runs an API-server process and an
EngineCore process besides one worker process per GPU (docs.vllm.ai/en/latest/design/arch_overview.html,
'V1 process architecture'), so an engine on TP GPUs keeps 2 + TP processes busy."""


def engine_defaults() -> Any:
    """The pinned vLLM defaults (image, version, flags) from the estimator's engine table."""
    try:
        from maestro_plan.estimate import VLLM  # the contract's re-export
    except ImportError:  # pragma: no cover - before the estimator re-exports it
        from maestro_plan.estimate.engine import VLLM
    return VLLM


# --------------------------------------------------------------------------------------------
# Plan <-> inputs cross-check: maestro_plan/emit/checks.py (re-exported here for callers of old)
# --------------------------------------------------------------------------------------------


def check_plan_matches(plan: Plan, inputs: Inputs, plan_file: str | Path | None = None) -> None:
    """See maestro_plan.emit.checks.check_plan_matches."""
    from maestro_plan.emit.checks import check_plan_matches as check

    check(plan, inputs, plan_file)


def standby_ref(s: Standby) -> str:
    """How a Route names a standby: 'standby:<model>@<node>' (plan/schema.py Route.replica)."""
    return f"standby:{s.model}@{s.node}"


# --------------------------------------------------------------------------------------------
# Inventory lookups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    cluster: Cluster
    pool: NodePool


def node_index(inputs: Inputs) -> dict[str, NodeInfo]:
    out: dict[str, NodeInfo] = {}
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            for n in p.node_names:
                out[n] = NodeInfo(c, p)
    return out


def latency_ms(inputs: Inputs, a: str, b: str) -> float | None:
    """One-way latency between two places from the inventory links (0 inside one place)."""
    if a == b:
        return 0.0
    for link in inputs.inventory.links:
        if {link.a, link.b} == {a, b}:
            return float(link.latency_ms)
    return None


def gpu_product_label(gpu: GpuType) -> str | None:
    """The GPU Feature Discovery value of nvidia.com/gpu.product for a GPU type (its first product label).

    GFD writes the NVML product name with every space replaced by '-' (NVIDIA/k8s-device-plugin,
    gpu-feature-discovery README: "NVIDIA-H100-80GB-HBM3" for "NVIDIA H100 80GB HBM3"), so a label
    given in nvidia-smi spelling is converted the same way. A value that is still not a valid
    Kubernetes label value is refused (InputError, exit 2) rather than emitted into a selector."""
    if not gpu.product_labels:
        return None
    raw = gpu.product_labels[0]
    value = "-".join(raw.split())
    if not is_label_value(value):
        raise InputError(
            f"GPU type '{gpu.id}': product label {raw!r} cannot be a Kubernetes label value (even as {value!r}).",
            field=f"gpu_types[{gpu.id}].product_labels[0]",
            hint="give the GPU Feature Discovery value of nvidia.com/gpu.product first (letters, digits, '-', '_', '.'; at most 63 characters), "
            "e.g. NVIDIA-H100-80GB-HBM3 (`kubectl get nodes -L nvidia.com/gpu.product` shows it).",
        )
    return value


# --------------------------------------------------------------------------------------------
# Names and labels (Kubernetes validation rules)
# --------------------------------------------------------------------------------------------

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def short_hash(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dns_label(*parts: str, limit: int = 63) -> str:
    """A DNS-1035 label (Service names, container names): lower-case letters, digits, '-', starting
    with a letter, at most `limit` characters. Characters outside that set become '-'. When the
    result had to be cut, a hash of the full text keeps it unique."""
    raw = "-".join(p for p in parts if p)
    s = re.sub(r"[^a-z0-9-]+", "-", raw.lower())
    s = re.sub(r"-{2,}", "-", s).strip("-")
    if not s or not s[0].isalpha():
        s = "x-" + s
    if len(s) > limit:
        h = short_hash(raw)
        s = s[: limit - len(h) - 1].rstrip("-") + "-" + h
    assert _DNS1035.match(s), s
    return s


def label_value(text: str) -> str:
    """A valid label value (<= 63 chars, alphanumeric ends, [-_.A-Za-z0-9] inside)."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    s = s.strip("-_.")
    if len(s) > 63:
        h = short_hash(text)
        s = s[: 63 - len(h) - 1].rstrip("-_.") + "-" + h
    assert _LABEL_VALUE.match(s), s
    return s


def is_label_value(text: str) -> bool:
    return len(text) <= 63 and bool(_LABEL_VALUE.match(text))


def model_label_key(model: str) -> str:
    """`model.maestro-plan.dev/<model-id>`; model ids are DNS-1123 names of <= 63 characters."""
    return f"{MODEL_LABEL_PREFIX}/{label_value(model)}"


def service_name(model: str, cluster: str) -> str:
    """Service per model per cluster: unique across clusters, so that a router (or a multi-cluster
    DNS such as MCS clusterset.local) can address each cluster's replicas of the model apart."""
    return dns_label("vllm", model, cluster)


def standby_service_name(model: str, cluster: str) -> str:
    """Service of a model's warm-standby engines in a cluster (pods labelled <model label>: standby):
    apart from the serving Service, so that planned traffic never wakes a standby by accident."""
    return dns_label("vllm", model, cluster, "standby")


def pool_name(model: str) -> str:
    """InferencePool per model (one per cluster, same name in each cluster's folder)."""
    return dns_label("pool", model)


def endpoint_url(model: str, cluster: str, port: int, *, standby: bool = False) -> str:
    """In-cluster address of a model's Service in a cluster (OpenAI-compatible base URL)."""
    name = standby_service_name(model, cluster) if standby else service_name(model, cluster)
    return f"http://{name}.{NAMESPACE}.svc.cluster.local:{port}"


def external_url(inputs: Inputs, model: str, cluster: str) -> str | None:
    """Address of a model in a cluster from OUTSIDE that cluster: the cluster's Gateway
    (inventory `external_base_url`), which the emitted HTTPRoute serves under /models/<model>/
    (gateway.py). None when the inventory gives no URL for the cluster."""
    c = next((c for c in inputs.inventory.clusters if c.name == cluster), None)
    if c is None or not c.external_base_url:
        return None
    return f"{c.external_base_url.rstrip('/')}/models/{model}"


def model_ports(models: Iterable[str]) -> dict[str, int]:
    """One port per model, the same on every pod of the fleet: 8000 + hash(model) mod 1000, probing
    upwards on a collision (models in sorted order). A fixed port per model lets one Service and
    one InferencePool target every engine of the model, including engines that share a pod, and
    the port does not move when other models join or leave the plan (unless they collide)."""
    taken: set[int] = set()
    out: dict[str, int] = {}
    for m in sorted(set(models)):
        off = int(hashlib.sha256(m.encode()).hexdigest()[:8], 16) % PORT_SPAN
        while BASE_PORT + off in taken:
            off = (off + 1) % PORT_SPAN
        taken.add(BASE_PORT + off)
        out[m] = BASE_PORT + off
    return out


def plan_ports(plan: Plan) -> dict[str, int]:
    """model_ports over every model a pod of the plan serves (replicas, swap slots, standbys)."""
    return model_ports([r.model for r in plan.replicas] + [m for r in plan.replicas for m in r.swap_models] + [s.model for s in plan.standby])


# --------------------------------------------------------------------------------------------
# Grouping replicas into workloads
# --------------------------------------------------------------------------------------------


STANDBY_PORT_OFFSET = 10_000
"""Engines behind the wake proxy listen on their model's port + 10000 (18000..18999) on 127.0.0.1;
the proxy takes the model's port, so the Service and InferencePool need no change."""


@dataclass
class Engine:
    """One vLLM process of a pod: one planned replica (or a template for `count` identical ones), or
    one sleeping standby engine of a swap slot (`standby_model` set)."""

    replica: Replica
    port: int
    cuda_visible_devices: str | None = None  # set when several engines share a pod's GPUs
    standby_model: str | None = None  # a warm-standby engine (sleep mode) of this model on the slot `replica`
    dp_replicas: list[Replica] = field(default_factory=list)  # >= 2: data-parallel ranks of one server (rank order)

    @property
    def dp_size(self) -> int:
        """Data-parallel ranks of this `vllm serve` (1: a plain engine); see `_dp_groups`."""
        return max(1, len(self.dp_replicas))

    @property
    def replicas(self) -> list[Replica]:
        """The planned replicas this engine process realises (its DP ranks, or its one replica)."""
        return self.dp_replicas or [self.replica]

    @property
    def model(self) -> str:
        return self.standby_model or self.replica.model

    @property
    def listen_port(self) -> int:
        """Where `vllm serve` listens: the model port, or behind the wake proxy for a standby engine."""
        return self.port + STANDBY_PORT_OFFSET if self.standby_model else self.port


@dataclass
class Workload:
    """One Deployment: `count` identical pods, each running `engines`. `node` is the planned node;
    `pinned` says whether pods are pinned to it by hostname (a node the inventory names) or land on
    any node of the pool (a `count` pool: one pod per planned node, kept apart by anti-affinity)."""

    name: str
    cluster: str
    node: str
    gpu_type: str
    zone: str
    engines: list[Engine]
    count: int
    gpus_per_pod: int
    colocated: bool
    replica_ids: list[str] = field(default_factory=list)
    worker_nodes: list[str] = field(default_factory=list)  # non-empty: a LeaderWorkerSet over several nodes
    pinned: bool = True
    class_labels: dict[str, str] = field(default_factory=dict)  # split request classes its pods serve (classes.py)

    @property
    def multi_node(self) -> bool:
        return bool(self.worker_nodes)

    @property
    def has_standby(self) -> bool:
        return any(e.standby_model for e in self.engines)

    @cached_property
    def models(self) -> list[str]:
        return sorted({e.model for e in self.engines})


def _config_key(r: Replica) -> tuple:
    return (r.model, r.cluster, r.node, r.gpu_type, r.tp, r.memory_fraction, r.kv_cache_bytes_per_gpu, r.max_model_len, r.max_num_seqs, r.prefix_caching, r.priority, tuple(r.roles))


def _gpu_components(reps: list[Replica]) -> list[list[Replica]]:
    """Connected components of replicas that share GPU indices (union-find), each sorted by id."""
    parent = list(range(len(reps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for i, r in enumerate(reps):
        for g in r.gpu_indices:
            if g in owner:
                parent[find(i)] = find(owner[g])
            else:
                owner[g] = i
    comps: dict[int, list[Replica]] = defaultdict(list)
    for i, r in enumerate(reps):
        comps[find(i)].append(r)
    return [sorted(m, key=lambda r: r.id) for m in comps.values()]


def _dp_groups(members: list[Replica]) -> list[list[Replica]]:
    """Members of one pod that one `vllm serve --data-parallel-size N` realises: plain replicas
    (no swap slot, one node) with the same engine configuration (`_config_key`: model, TP, memory
    flags, KV bytes, max_num_seqs, max_model_len, ...) on pairwise disjoint GPUs, in id order (rank
    order). Each other member is a group of one. A pod's port per model reaches only ONE process,
    so N identical engines behind it must be one server whose API process balances over N ranks.

    vLLM (pinned v0.21.0, data/vllm.yaml) runs each DP rank as its own EngineCore process with TP
    workers and balances requests over the ranks inside the one API server ("internal load
    balancing", docs/serving/data_parallel_deployment.md: "This will work with both dense and MoE
    models"); rank r takes devices [r*TP, (r+1)*TP) of CUDA_VISIBLE_DEVICES
    (vllm/v1/engine/utils.py get_device_indices: `range(local_dp_rank * world_size,
    (local_dp_rank + 1) * world_size)`, applied by CoreEngineProcManager / DPEngineCoreProc before
    the workers start; the per-rank slicing was removed only in v0.24.0, vLLM PR #45026). Two DP
    servers in one pod do not collide: with data_parallel_size > 1, ParallelConfig.__post_init__
    (vllm/config/parallel.py) takes the DP master port from `get_open_ports_list(5)`, not a fixed one."""
    groups: dict[tuple, list[Replica]] = defaultdict(list)
    order: list[tuple] = []
    for m in members:
        key = ("solo", m.id) if m.swap_models else _config_key(m)
        if key not in groups:
            order.append(key)
        g = groups[key]
        if g and any(set(m.gpu_indices) & set(o.gpu_indices) for o in g):  # ranks need GPUs of their own
            key = ("solo", m.id)
            order.append(key)
            g = groups[key]
        g.append(m)
    return [groups[k] for k in order]


def _pod_engines(members: list[Replica], ports: dict[str, int]) -> tuple[list[Engine], int]:
    """Engines of one pod holding `members` (the union of their GPUs): each pinned with
    CUDA_VISIBLE_DEVICES to its GPUs of the pod; identical replicas of a model become one
    data-parallel server (`_dp_groups`); a swap slot becomes one sleeping engine per model. Two
    engines of one model that still differ take the model port + k*PORT_SPAN (slot k = 1, 2, ...), and the Services/pools/routers give each slot its own object."""
    gpus = sorted({g for m in members for g in m.gpu_indices})
    pos = {g: i for i, g in enumerate(gpus)}
    engines: list[Engine] = []
    used_ports: set[int] = set()
    for group in _dp_groups(members):
        m = group[0]
        cvd = ",".join(str(pos[g]) for r in group for g in sorted(r.gpu_indices))
        for model in m.swap_models or [None]:
            port = ports[model or m.model]
            while port in used_ports:  # the same model twice in one pod: next free port
                port += PORT_SPAN
            used_ports.add(port)
            engines.append(Engine(m, port, cvd, standby_model=model, dp_replicas=list(group) if len(group) > 1 else []))
    return engines, len(gpus)


def group_replicas(plan: Plan, count_nodes: Iterable[str] = ()) -> list[Workload]:
    """Group the plan's replicas into pods.

    On a node the inventory names (pinned by hostname): exclusive replicas with the same engine
    configuration become one Deployment with `replicas: N` (each pod gets TP whole GPUs from the
    device plugin); replicas that share a GPU (the connected components of shared gpu_indices)
    become one pod running all of them as separate vLLM processes, each pinned with
    CUDA_VISIBLE_DEVICES and limited by --kv-cache-memory-bytes / --gpu-memory-utilization.
    On a node of a `count` pool (`count_nodes`: its real name is unknown): ONE pod holds all of the
    node's planned replicas, so the planned packing survives whichever pool node it lands on.
    A swap slot (replica with swap_models) runs one sleep-mode engine per model it swaps."""
    ports = plan_ports(plan)
    count_nodes = set(count_nodes)
    by_node: dict[tuple[str, str], list[Replica]] = defaultdict(list)
    workloads: list[Workload] = []
    for r in sorted(plan.replicas, key=lambda r: r.id):
        if r.worker_nodes:  # spans nodes: one LeaderWorkerSet group of its own
            workloads.append(
                Workload(name="", cluster=r.cluster, node=r.node, gpu_type=r.gpu_type, zone=r.zone, engines=[Engine(r, ports[r.model])],
                         count=1, gpus_per_pod=r.tp, colocated=False, replica_ids=[r.id], worker_nodes=list(r.worker_nodes),
                         pinned=r.node not in count_nodes)
            )
        else:
            by_node[(r.cluster, r.node)].append(r)
    for (cluster, node), reps in sorted(by_node.items()):
        reps = sorted(reps, key=lambda r: r.id)
        pinned = node not in count_nodes
        comps = _gpu_components(reps) if pinned else [reps]
        exclusive: dict[tuple, list[Replica]] = defaultdict(list)
        shared: list[list[Replica]] = []
        for members in comps:
            if len(members) == 1 and not members[0].swap_models:
                exclusive[_config_key(members[0])].append(members[0])
            else:
                shared.append(members)
        for key in sorted(exclusive, key=lambda k: repr(k)):
            members = exclusive[key]
            r0 = members[0]
            workloads.append(
                Workload(name="", cluster=cluster, node=node, gpu_type=r0.gpu_type, zone=r0.zone,
                         engines=[Engine(r0, ports[r0.model])], count=len(members), gpus_per_pod=r0.tp,
                         colocated=False, replica_ids=[m.id for m in members], pinned=pinned)
            )
        for members in sorted(shared, key=lambda ms: ms[0].id):
            engines, n_gpus = _pod_engines(members, ports)
            workloads.append(
                Workload(name="", cluster=cluster, node=node, gpu_type=members[0].gpu_type, zone=members[0].zone,
                         engines=engines, count=1, gpus_per_pod=n_gpus, colocated=len(engines) > 1,
                         replica_ids=[m.id for m in members], pinned=pinned)
            )
    # names: vllm-<model>-<node> or vllm-shared-<node>, numbered when a node holds several
    taken: dict[str, int] = defaultdict(int)
    for w in workloads:
        base = dns_label("vllm", "shared" if w.colocated else w.engines[0].model, w.node, limit=50)
        taken[base] += 1
        w.name = base if taken[base] == 1 else f"{base}-{taken[base]}"
    return workloads


def slot_label_key(model: str, k: int) -> str:
    """Pod label `slot<k>.model.maestro-plan.dev/<model-id>: serving` of a pod whose model engine in
    slot k >= 1 listens on the model port + k*PORT_SPAN (`_pod_engines`); the slot's Service and
    InferencePool select on it, so they only reach pods that listen on that port."""
    return f"slot{k}.{MODEL_LABEL_PREFIX}/{label_value(model)}"


def slot_name(base: str, k: int) -> str:
    """Name of slot k's object next to the model's `base` object (Service, InferencePool): base-s<k>."""
    return base if k == 0 else dns_label(base, f"s{k}")


def engine_slot(e: Engine, ports: dict[str, int]) -> int:
    """Slot of a serving engine: 0 on its model's port, k on port + k*PORT_SPAN."""
    return (e.port - ports[e.model]) // PORT_SPAN


def plan_workloads(plan: Plan, inputs: Inputs) -> list[Workload]:
    """group_replicas with the inventory's `count` pool nodes (what every emitter deploys)."""
    from maestro_plan.emit.placement import count_pool_nodes

    return group_replicas(plan, count_pool_nodes(inputs))


def engine_slots(plan: Plan, inputs: Inputs) -> dict[tuple[str, str], dict[int, list[Replica]]]:
    """(cluster, model) -> slot k -> the planned replicas behind the serving engines of that slot
    (slot 0: the model's port, every other replica of the model in the cluster). Only models with
    a slot k >= 1 somewhere are listed: their Services, pools and router entries split per slot."""
    ports = plan_ports(plan)
    extra: dict[tuple[str, str], dict[int, list[Replica]]] = defaultdict(lambda: defaultdict(list))
    for w in plan_workloads(plan, inputs):
        for e in w.engines:
            if not e.standby_model and engine_slot(e, ports) > 0:
                extra[(w.cluster, e.model)][engine_slot(e, ports)] += e.replicas
    out: dict[tuple[str, str], dict[int, list[Replica]]] = {}
    for (c, m), slots in sorted(extra.items()):
        taken = {r.id for reps in slots.values() for r in reps}
        base = [r for r in plan.replicas if r.cluster == c and r.model == m and not r.swap_models and r.id not in taken]
        out[(c, m)] = {k: sorted(v, key=lambda r: r.id) for k, v in sorted({0: base, **slots}.items())}
    return out


# --------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------


_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter where PyYAML was built with it (the wheels are): 10x faster than the pure-Python
one (bundled fleet: 237 manifests took 2.4 s of emit's 7.7 s) and the same text (a diff of the
bundled fleet's emitted folder; tests/test_emit_golden.py checks the bytes)."""


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Block-style YAML, keys in insertion order, long strings never folded."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - never emit &anchors
        return True


def _str_representer(dumper: Any, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any, header: str | None = None) -> str:
    text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + text
    return text


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write(out_dir: Path, rel: str, text: str | bytes) -> Path:
    p = out_dir / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        with open(p, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return p


def rnd(x: float, nd: int = 6) -> float:
    """Round for output (stable text across platforms); -0.0 becomes 0.0."""
    if not math.isfinite(x):
        raise ValueError(f"non-finite number {x!r} in a plan output")
    v = round(float(x), nd)
    return 0.0 if v == 0 else v


def header_lines(plan: Plan) -> str:
    return f"Generated by maestro-plan from plan {plan.plan_id} (schema {plan.schema_version}). Do not edit: re-emit from plan.json."


def kustomization(files: dict) -> dict:
    """The kustomization.yaml of a cluster folder: every file of the folder, in the serving namespace."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": NAMESPACE, "resources": sorted(files)}
