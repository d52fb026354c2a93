"""Import a fleet from `kubectl get nodes -o json` (or -o yaml).

    parse_kubectl_nodes(doc, file) -> (list[K8sNode], skipped) GPU nodes of a v1 List of Node objects
    parse_quantity(value) -> float                            a Kubernetes quantity ('2113602436Ki') as a number
    inventory_from_kubectl(path, cluster=, region=, zone=, extra_gpu_types=) -> Inventory

Format (checked against real output, see tests/data/kubectl): {"apiVersion": "v1", "kind": "List",
"items": [Node...]}. GPU Feature Discovery labels nvidia.com/gpu.product, nvidia.com/gpu.count and
  nvidia.com/gpu.memory (MiB) (github.com/NVIDIA/k8s-device-plugin docs/gpu-feature-discovery), the
  ROCm labeller's amd.com/gpu.product-name, status.capacity["nvidia.com/gpu" | "amd.com/gpu"],
  status.capacity.memory (host DRAM, a Kubernetes quantity) and topology.kubernetes.io/zone|region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro_plan.errors import Collector, InputError
from maestro_plan.load.importers.common import (
    NAME_RE,
    PoolNode,
    build_inventory,
    check_memory,
    check_name,
    gpu_table,
    match_gpu_type,
)
from maestro_plan.load.loader import read_document
from maestro_plan.load.schema import GpuType, Inventory
from maestro_plan.units import GIB

ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
INSTANCE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
PRODUCT_LABELS = ("nvidia.com/gpu.product", "amd.com/gpu.product-name", "beta.amd.com/gpu.product-name")
CAPACITY_KEYS = ("nvidia.com/gpu", "amd.com/gpu")
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GKE_ACCELERATORS = {
    "nvidia-b200": "NVIDIA B200",
    "nvidia-h200-141gb": "NVIDIA H200",
    "nvidia-h100-mega-80gb": "NVIDIA H100 80GB HBM3",
    "nvidia-h100-80gb": "NVIDIA H100 80GB HBM3",
    "nvidia-a100-80gb": "NVIDIA A100-SXM4-80GB",
    "nvidia-tesla-a100": "NVIDIA A100-SXM4-40GB",
    "nvidia-l4": "NVIDIA L4",
}
"""GKE's accelerator label value (set by GKE on GPU node pools, with or without GPU Feature Discovery;
the accelerator type names of Compute Engine's GPU machine types: cloud.google.com/compute/docs/gpus)
-> the NVML product name the GPU reports (A3 High/Mega: H100 SXM 80GB; A3 Ultra: H200; A4: B200;
A2 Ultra: A100 80GB, A2 Standard: A100 40GB SXM4; G2: L4)."""


_QUANTITY_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def parse_quantity(value: Any) -> float:
    """A Kubernetes resource quantity ('2113652552Ki', '768Gi', '1e9', 8) as a plain number."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _QUANTITY_RE.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


@dataclass
class K8sNode:
    name: str
    product: str
    gpus: int
    memory_mib: float | None
    host_dram_gib: float | None
    zone: str | None
    region: str | None
    instance_type: str | None
    index: int


def _first(labels: dict, keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = labels.get(k)
        if v not in (None, ""):
            return str(v)
    return None


def _unusable(item: dict[str, Any], status: dict[str, Any]) -> str | None:
    """Why a node takes no new pods: cordoned (spec.unschedulable) or not Ready (status.conditions)."""
    spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
    if spec.get("unschedulable") is True:
        return "cordoned"
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") != "True":
            return "NotReady"
    return None


def _node_items(doc: Any, file: str | Path) -> list[Any]:
    """The Node objects of a v1 List (or a single Node)."""
    if isinstance(doc, dict) and doc.get("kind") == "Node":
        return [doc]
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        return doc["items"]
    raise InputError(
        "is not a list of Kubernetes Node objects (expected {\"kind\": \"List\", \"items\": [...]}).",
        file=file,
        field="items",
        hint="save the output of `kubectl get nodes -o json`.",
    )


def _node_parts(item: Any, where: str, file: str | Path, col: Collector) -> tuple[str, dict, dict, dict] | None:
    """Name, labels, status and capacity of a well-formed Node object; None (with a problem in col) otherwise."""
    if not isinstance(item, dict):
        col.add("is not a Node object.", file=file, field=where)
        return None
    if item.get("kind", "Node") != "Node":
        col.add(f"is a {item.get('kind')!r}, not a Node.", file=file, field=f"{where}.kind", hint="export nodes only: kubectl get nodes -o json")
        return None
    meta = item.get("metadata") or {}
    if not isinstance(meta, dict) or not isinstance(item.get("status") or {}, dict):
        col.add("metadata and status must be mappings.", file=file, field=where, hint="export the full node objects: kubectl get nodes -o json")
        return None
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        col.add("has no metadata.name.", file=file, field=f"{where}.metadata.name")
        return None
    labels = meta.get("labels") or {}
    status = item.get("status") or {}
    capacity = status.get("capacity") or {}
    if not isinstance(labels, dict) or not isinstance(capacity, dict):
        col.add("labels and status.capacity must be mappings.", file=file, field=where)
        return None
    return name, labels, status, capacity


def _memory(labels: dict, capacity: dict, where: str, file: str | Path, col: Collector) -> tuple[float | None, float | None] | None:
    """GPU memory (MiB, GFD label) and host DRAM (GiB, capacity.memory), each None when absent; None
    (with a problem in col) when one is not a number."""
    mem_label = labels.get("nvidia.com/gpu.memory")
    mem = None
    if mem_label not in (None, ""):
        try:
            mem = float(mem_label)
        except ValueError:
            col.add(f"nvidia.com/gpu.memory label {mem_label!r} is not a number of MiB.", file=file, field=f"{where}.metadata.labels")
            return None
    dram = None
    if capacity.get("memory") is not None:
        try:
            dram = parse_quantity(capacity["memory"]) / GIB
        except ValueError as e:
            col.add(str(e) + ".", file=file, field=f"{where}.status.capacity.memory")
            return None
    return mem, dram


# Over 60 lines: one node's checks in kubectl's field order, each ending the node with a problem; splitting more only passes the same five arguments on.
def _gpu_node(item: Any, i: int, file: str | Path, col: Collector, skipped: list[str]) -> K8sNode | None:
    """The GPU node of items[i]; None when it is skipped (noted in skipped) or has a problem (added to col)."""
    where = f"items[{i}]"
    parts = _node_parts(item, where, file, col)
    if parts is None:
        return None
    name, labels, status, capacity = parts
    unusable = _unusable(item, status)
    if unusable:
        skipped.append(f"{name} ({unusable})")
        return None
    product = _first(labels, PRODUCT_LABELS) or GKE_ACCELERATORS.get(str(labels.get(GKE_ACCELERATOR_LABEL, "")))
    if product is None and labels.get(GKE_ACCELERATOR_LABEL):
        col.add(f"node '{name}' has GKE accelerator {labels[GKE_ACCELERATOR_LABEL]!r}, which maestro-plan does not map to a GPU product.",
                file=file, field=f"{where}.metadata.labels[{GKE_ACCELERATOR_LABEL}]",
                hint="deploy GPU Feature Discovery (it sets nvidia.com/gpu.product), or label the node: kubectl label node NAME nvidia.com/gpu.product=...")
        return None
    allocatable = status.get("allocatable") if isinstance(status.get("allocatable"), dict) else {}
    # what the scheduler can hand out: allocatable (capacity minus unhealthy GPUs and the kubelet's reservations)
    capacity = {**capacity, **{k: v for k, v in allocatable.items() if k in (*CAPACITY_KEYS, "memory")}}
    cap_key = next((k for k in CAPACITY_KEYS if k in capacity), None)
    try:
        cap = int(parse_quantity(capacity[cap_key])) if cap_key else None
    except (ValueError, OverflowError) as e:
        col.add(str(e) + ".", file=file, field=f"{where}.status.capacity.{cap_key}")
        return None
    if cap is None and labels.get("nvidia.com/gpu.count") not in (None, ""):
        try:
            cap = int(labels["nvidia.com/gpu.count"])
        except ValueError:
            col.add(f"nvidia.com/gpu.count label {labels['nvidia.com/gpu.count']!r} is not a whole number.", file=file, field=f"{where}.metadata.labels")
            return None
    if product is None:
        if cap:
            col.add(
                f"node '{name}' has {cap} GPUs in status.capacity but no nvidia.com/gpu.product label.",
                file=file,
                field=f"{where}.metadata.labels",
                hint="deploy GPU Feature Discovery (it sets the label) or label the node by hand: kubectl label node NAME nvidia.com/gpu.product=...",
            )
        else:
            skipped.append(name)
        return None
    if not cap:
        skipped.append(name)  # GPU node whose device plugin reports no GPUs (not ready)
        return None
    memory = _memory(labels, capacity, where, file, col)
    if memory is None:
        return None
    mem, dram = memory
    return K8sNode(
        name=name,
        product=product,
        gpus=cap,
        memory_mib=mem,
        host_dram_gib=dram,
        zone=_first(labels, ZONE_LABELS),
        region=_first(labels, REGION_LABELS),
        instance_type=_first(labels, INSTANCE_LABELS),
        index=i,
    )


def parse_kubectl_nodes(doc: Any, file: str | Path) -> tuple[list[K8sNode], list[str]]:
    """GPU nodes of `kubectl get nodes -o json`, and the names of nodes skipped (no GPUs)."""
    items = _node_items(doc, file)
    col = Collector()
    nodes: list[K8sNode] = []
    skipped: list[str] = []
    for i, item in enumerate(items):
        node = _gpu_node(item, i, file, col, skipped)
        if node is not None:
            nodes.append(node)
    col.raise_if_any()
    if not nodes:
        raise InputError(
            f"holds no GPU nodes ({len(skipped)} nodes without nvidia.com/gpu capacity and product label).",
            file=file,
            hint="check that the NVIDIA device plugin and GPU Feature Discovery run on the GPU nodes.",
        )
    return nodes, skipped


def _single_region(regions: set[str], p: Path) -> str:
    """The one region the nodes' topology labels name (a cluster lies in one region)."""
    if len(regions) > 1:
        raise InputError(
            f"nodes span regions {sorted(regions)}; one cluster lies in one region.",
            file=p,
            field="topology.kubernetes.io/region",
            hint="import one region at a time (kubectl get nodes -l topology.kubernetes.io/region=R -o json) or pass --region.",
        )
    if not regions:
        raise InputError(
            "no node has a topology.kubernetes.io/region label.",
            file=p,
            field="topology.kubernetes.io/region",
            hint="pass --region.",
        )
    return next(iter(regions))


# Over 60 lines with its signature (8 lines): per-node checks that collect every problem, then the pool build.
def inventory_from_kubectl(
    path: str | Path,
    *,
    cluster: str = "imported",
    region: str | None = None,
    zone: str | None = None,
    extra_gpu_types: list[GpuType] | None = None,
) -> Inventory:
    """An Inventory from `kubectl get nodes -o json`. Zone, region and host DRAM come from the nodes'
    labels and capacity; --zone/--region fill in for nodes without topology labels."""
    p = Path(path)
    doc = read_document(p)
    k8s_nodes, skipped = parse_kubectl_nodes(doc, p)
    check_name(cluster, "cluster name", p, "--cluster", "--cluster")
    table = gpu_table(extra_gpu_types)
    col = Collector()
    nodes: list[PoolNode] = []
    regions: set[str] = set()
    for kn in k8s_nodes:
        where = f"items[{kn.index}]"
        try:
            g = match_gpu_type(kn.product, table, p, f"{where}.metadata.labels[nvidia.com/gpu.product]", kn.memory_mib)
            check_memory(g, kn.memory_mib, p, f"{where}.metadata.labels[nvidia.com/gpu.memory]", kn.product)
        except InputError as e:
            col.problems.extend(e.problems)
            continue
        node_zone = kn.zone or zone
        if node_zone is None:
            col.add(f"node '{kn.name}' has no topology.kubernetes.io/zone label.", file=p, field=f"{where}.metadata.labels", hint="pass --zone for nodes without a zone label.")
            continue
        if kn.host_dram_gib is None:
            col.add(f"node '{kn.name}' has no status.capacity.memory.", file=p, field=f"{where}.status.capacity", hint="export the full node objects: kubectl get nodes -o json")
            continue
        if kn.region:
            regions.add(kn.region)
        if not NAME_RE.match(kn.name) or len(kn.name) > 63:
            col.add(f"node name '{kn.name}' is longer than 63 characters or not lower-case DNS style.", file=p, field=f"{where}.metadata.name", hint="rename the node in the output, or leave it out.")
            continue
        if not NAME_RE.match(node_zone):
            col.add(f"zone '{node_zone}' is not a valid name.", file=p, field=f"{where}.metadata.labels[topology.kubernetes.io/zone]")
            continue
        nodes.append(PoolNode(kn.name, g, kn.gpus, node_zone, kn.host_dram_gib, kn.instance_type))
    col.raise_if_any()
    if region is None:
        region = _single_region(regions, p)
    check_name(region, "region", p, "--region", "--region")
    n_gpus = sum(n.gpus for n in nodes)
    skipped_txt = f"; {len(skipped)} node(s) skipped (no GPUs, cordoned or NotReady): {', '.join(skipped)}" if skipped else ""
    return build_inventory(
        nodes,
        cluster,
        region,
        description=f"Imported from {p.name}: {len(nodes)} GPU nodes, {n_gpus} GPUs{skipped_txt}.",
        note=(
            f"Nodes, GPU products (GPU Feature Discovery labels, or GKE's cloud.google.com/gke-accelerator), GPU counts "
            f"(status.allocatable, else status.capacity), host DRAM (status.allocatable.memory, else capacity; least of each pool) and zones from `kubectl get nodes -o json` in {p.name}. "
            "GPU figures and prices: maestro_plan/data/gpus.yaml. Add sources (request origins) and links (latencies) before planning."
        ),
        extra=list(extra_gpu_types or []),
        file=p,
    )
