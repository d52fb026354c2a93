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

from maestro_plan.errors import Collector, unknown_name_hint
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
"""/dev/shm for NCCL and the multiprocessing executor: the vLLM Kubernetes guide mounts an emptyDir
with medium Memory and sizeLimit 2Gi (docs.vllm.ai/en/latest/deployment/k8s.html)."""

HOST_STAGING_DIR = "/dev/shm/maestro-weights"
"""Host tmpfs path where warm-standby weights are staged (host DRAM, survives pod restarts)."""

HOST_HF_CACHE = "/var/lib/maestro-plan/hf-cache"
"""Host path of the Hugging Face cache shared by engines on a node (weights download once per node)."""

HOST_MEMORY_SHARE = 0.9
"""Fraction of a node's host DRAM that engines request in proportion to the GPUs they use; the rest
is left to the kubelet's system reservation, the OS page cache and standby staging (DESIGN.md 6)."""

OBJECTIVE_PRIORITY = {"interactive": 10, "batch": -10}
"""InferenceObjective priorities per workflow class. The CRD: higher is served first, unset means 0,
negative values allowed; so interactive work goes ahead of unlabelled traffic and batch after it."""

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
# Plan <-> inputs cross-check
# --------------------------------------------------------------------------------------------


def check_plan_matches(plan: Plan, inputs: Inputs, plan_file: str | Path | None = None) -> None:
    """Every name the plan references must exist in the inputs; otherwise InputError (exit 2).

    Catches a model or node renamed (or removed) since the plan was solved, a GPU type or pool
    that changed, GPU indices beyond a node's GPUs, and routes to replicas that do not exist.
    """
    col = Collector()
    f = str(plan_file) if plan_file is not None else "plan.json"
    inv = inputs.inventory
    clusters = {c.name: c for c in inv.clusters}
    sources = {s.name for s in inv.sources}
    nodes = node_index(inputs)
    hint_inputs = "re-solve with the current inputs ('maestro-plan solve'), or pass the inputs the plan was made from."
    for i, r in enumerate(plan.replicas):
        where = f"replicas[{i}]"
        if r.model not in inputs.models:
            col.add(f"replica '{r.id}' runs model '{r.model}', which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(r.model, inputs.models, "models") + " " + hint_inputs)
        if r.cluster not in clusters:
            col.add(f"replica '{r.id}' is in cluster '{r.cluster}', which is not in inventory '{inv.name}'.", file=f, field=f"{where}.cluster",
                    hint=unknown_name_hint(r.cluster, clusters, "clusters") + " " + hint_inputs)
            continue
        info = nodes.get(r.node)
        if info is None or info.cluster.name != r.cluster:
            in_cluster = [n for n, v in nodes.items() if v.cluster.name == r.cluster]
            col.add(f"replica '{r.id}' is on node '{r.node}', which is not a node of cluster '{r.cluster}'.", file=f, field=f"{where}.node",
                    hint=unknown_name_hint(r.node, in_cluster, "nodes") + " " + hint_inputs)
            continue
        if info.pool.name != r.node_pool:
            col.add(f"replica '{r.id}' says node pool '{r.node_pool}', but node '{r.node}' is in pool '{info.pool.name}'.", file=f, field=f"{where}.node_pool", hint=hint_inputs)
        if info.pool.gpu_type != r.gpu_type:
            col.add(f"replica '{r.id}' says GPU type '{r.gpu_type}', but node '{r.node}' has '{info.pool.gpu_type}'.", file=f, field=f"{where}.gpu_type", hint=hint_inputs)
        if info.pool.zone != r.zone:
            col.add(f"replica '{r.id}' says zone '{r.zone}', but node '{r.node}' is in zone '{info.pool.zone}'.", file=f, field=f"{where}.zone", hint=hint_inputs)
        bad = [g for g in r.gpu_indices if g < 0 or g >= info.pool.gpus_per_node]
        if bad:
            col.add(f"replica '{r.id}' uses GPU indices {bad}, but node '{r.node}' has {info.pool.gpus_per_node} GPUs (0..{info.pool.gpus_per_node - 1}).", file=f, field=f"{where}.gpu_indices", hint=hint_inputs)
        if len(set(r.gpu_indices)) != r.tp:
            col.add(f"replica '{r.id}' has tp {r.tp} but {len(set(r.gpu_indices))} distinct GPU indices.", file=f, field=f"{where}.gpu_indices", hint="a replica uses exactly tp GPUs.")
        if r.model in inputs.models and r.tp not in inputs.models[r.model].tp_degrees:
            col.add(f"replica '{r.id}' runs '{r.model}' at TP {r.tp}, which the catalogue no longer allows ({inputs.models[r.model].tp_degrees}).", file=f, field=f"{where}.tp", hint=hint_inputs)
    for i, r in enumerate(plan.replicas):
        for k, wn in enumerate(r.worker_nodes):
            info = nodes.get(wn)
            if info is None or info.cluster.name != r.cluster or info.pool.gpu_type != r.gpu_type:
                col.add(f"replica '{r.id}' spans node '{wn}', which is not a '{r.gpu_type}' node of cluster '{r.cluster}'.", file=f,
                        field=f"replicas[{i}].worker_nodes[{k}]", hint=hint_inputs)
        if r.node in r.worker_nodes or len(set(r.worker_nodes)) != len(r.worker_nodes):
            col.add(f"replica '{r.id}' lists a node twice in node/worker_nodes.", file=f, field=f"replicas[{i}].worker_nodes", hint="each stage runs on its own node.")
    ids = [r.id for r in plan.replicas]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        col.add(f"replica ids repeat: {dup}.", file=f, field="replicas[].id", hint="replica ids must be unique.")
    for i, s in enumerate(plan.standby):
        where = f"standby[{i}]"
        if s.model not in inputs.models:
            col.add(f"standby keeps model '{s.model}' warm, which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(s.model, inputs.models, "models") + " " + hint_inputs)
        info = nodes.get(s.node)
        if info is None or info.cluster.name != s.cluster:
            col.add(f"standby of '{s.model}' is on node '{s.node}', which is not a node of cluster '{s.cluster}'.", file=f, field=f"{where}.node",
                    hint=unknown_name_hint(s.node, nodes, "nodes") + " " + hint_inputs)
    known = set(ids) | {standby_ref(s) for s in plan.standby}
    for i, rt in enumerate(plan.routes):
        where = f"routes[{i}]"
        if rt.source not in sources:
            col.add(f"route from source '{rt.source}', which is not in inventory '{inv.name}'.", file=f, field=f"{where}.source",
                    hint=unknown_name_hint(rt.source, sources, "sources") + " " + hint_inputs)
        if rt.model not in inputs.models:
            col.add(f"route for model '{rt.model}', which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(rt.model, inputs.models, "models") + " " + hint_inputs)
        if rt.replica not in known:
            col.add(f"route points at replica '{rt.replica}', which the plan does not have.", file=f, field=f"{where}.replica", hint="the plan is inconsistent; re-solve.")
    for i, d in enumerate(plan.demand):
        if d.model not in inputs.models:
            col.add(f"demand for model '{d.model}', which is not in the model catalogue.", file=f, field=f"demand[{i}].model",
                    hint=unknown_name_hint(d.model, inputs.models, "models") + " " + hint_inputs)
        if d.source not in sources:
            col.add(f"demand from source '{d.source}', which is not in inventory '{inv.name}'.", file=f, field=f"demand[{i}].source",
                    hint=unknown_name_hint(d.source, sources, "sources") + " " + hint_inputs)
    col.raise_if_any()


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
    """The GPU Feature Discovery value of nvidia.com/gpu.product (first product label), if any."""
    return gpu.product_labels[0] if gpu.product_labels else None


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


def pool_name(model: str) -> str:
    """InferencePool per model (one per cluster, same name in each cluster's folder)."""
    return dns_label("pool", model)


def endpoint_url(model: str, cluster: str, port: int) -> str:
    """In-cluster address of a model's Service in a cluster (OpenAI-compatible base URL)."""
    return f"http://{service_name(model, cluster)}.{NAMESPACE}.svc.cluster.local:{port}"


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


# --------------------------------------------------------------------------------------------
# Grouping replicas into workloads
# --------------------------------------------------------------------------------------------


@dataclass
class Engine:
    """One vLLM process of a pod: one planned replica (or a template for `count` identical ones)."""

    replica: Replica
    port: int
    cuda_visible_devices: str | None = None  # set when several engines share a pod's GPUs


@dataclass
class Workload:
    """One Deployment: `count` identical pods on one node, each running `engines`."""

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

    @property
    def multi_node(self) -> bool:
        return bool(self.worker_nodes)

    @cached_property
    def models(self) -> list[str]:
        return sorted({e.replica.model for e in self.engines})


def _config_key(r: Replica) -> tuple:
    return (r.model, r.cluster, r.node, r.gpu_type, r.tp, r.memory_fraction, r.kv_cache_bytes_per_gpu, r.max_model_len, r.max_num_seqs, r.prefix_caching, r.priority, tuple(r.roles))


def group_replicas(plan: Plan) -> list[Workload]:
    """Exclusive replicas with the same engine configuration on the same node become one Deployment
    with `replicas: N` (each pod gets TP whole GPUs from the device plugin). Replicas that share a
    GPU (overlapping gpu_indices on one node, the connected components) become one pod that runs
    all of them as separate vLLM processes, each pinned with CUDA_VISIBLE_DEVICES to its GPUs and
    limited by --kv-cache-memory-bytes / --gpu-memory-utilization."""
    ports = model_ports(r.model for r in plan.replicas)
    by_node: dict[tuple[str, str], list[Replica]] = defaultdict(list)
    workloads: list[Workload] = []
    for r in sorted(plan.replicas, key=lambda r: r.id):
        if r.worker_nodes:  # spans nodes: one LeaderWorkerSet group of its own
            workloads.append(
                Workload(name="", cluster=r.cluster, node=r.node, gpu_type=r.gpu_type, zone=r.zone, engines=[Engine(r, ports[r.model])],
                         count=1, gpus_per_pod=r.tp, colocated=False, replica_ids=[r.id], worker_nodes=list(r.worker_nodes))
            )
        else:
            by_node[(r.cluster, r.node)].append(r)
    for (cluster, node), reps in sorted(by_node.items()):
        reps = sorted(reps, key=lambda r: r.id)
        # union-find over shared GPU indices
        parent = list(range(len(reps)))

        def find(i: int, parent: list[int] = parent) -> int:
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
        exclusive: dict[tuple, list[Replica]] = defaultdict(list)
        shared: list[list[Replica]] = []
        for members in comps.values():
            if len(members) == 1:
                exclusive[_config_key(members[0])].append(members[0])
            else:
                shared.append(sorted(members, key=lambda r: r.id))
        for key in sorted(exclusive, key=lambda k: repr(k)):
            members = exclusive[key]
            r0 = members[0]
            workloads.append(
                Workload(name="", cluster=cluster, node=node, gpu_type=r0.gpu_type, zone=r0.zone,
                         engines=[Engine(r0, ports[r0.model])], count=len(members), gpus_per_pod=r0.tp,
                         colocated=False, replica_ids=[m.id for m in members])
            )
        for members in sorted(shared, key=lambda ms: ms[0].id):
            gpus = sorted({g for m in members for g in m.gpu_indices})
            pos = {g: i for i, g in enumerate(gpus)}
            engines = []
            used_ports: set[int] = set()
            for m in members:
                port = ports[m.model]
                while port in used_ports:  # the same model twice in one pod: next free port
                    port += PORT_SPAN
                used_ports.add(port)
                engines.append(Engine(m, port, ",".join(str(pos[g]) for g in sorted(m.gpu_indices))))
            workloads.append(
                Workload(name="", cluster=cluster, node=node, gpu_type=members[0].gpu_type, zone=members[0].zone,
                         engines=engines, count=1, gpus_per_pod=len(gpus), colocated=True, replica_ids=[m.id for m in members])
            )
    # names: vllm-<model>-<node> or vllm-shared-<node>, numbered when a node holds several
    taken: dict[str, int] = defaultdict(int)
    for w in workloads:
        base = dns_label("vllm", "shared" if w.colocated else w.engines[0].replica.model, w.node, limit=50)
        taken[base] += 1
        w.name = base if taken[base] == 1 else f"{base}-{taken[base]}"
    return workloads


# --------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block-style YAML, keys in insertion order, long strings never folded."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - never emit &anchors
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
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
