"""Import a fleet from files users already have: `nvidia-smi --query-gpu=... --format=csv` output or
`kubectl get nodes -o json`, into an Inventory (identical nodes grouped into node pools).

Public API:
    parse_nvidia_smi_csv(text, file) -> list[SmiHost]        hosts and their GPUs, in file order
    parse_kubectl_nodes(doc, file) -> (list[K8sNode], skipped) GPU nodes of a v1 List of Node objects
    parse_quantity(value) -> float                            a Kubernetes quantity ('2113602436Ki') as a number
    match_gpu_type(product, table, file, field) -> GpuType    product label/name -> GPU type (or a clear error)
    inventory_from_nvidia_smi(path, cluster=, region=, zone=, host_dram_gib=, extra_gpu_types=) -> Inventory
    inventory_from_kubectl(path, cluster=, region=, zone=, extra_gpu_types=) -> Inventory
    inventory_yaml(inv) -> str                                 deterministic YAML of an Inventory

Formats (checked against real output, see tests/data):
- nvidia-smi CSV: a header line such as `index, name, memory.total [MiB]` (field names as given to
  --query-gpu, units in brackets), then one line per GPU, `0, NVIDIA H100 80GB HBM3, 81559 MiB`. With
  `--format=csv,noheader[,nounits]` there is no header; the name and the memory are then recognised
  by their form. Several hosts may be concatenated: a repeated header, an index that restarts at 0,
  a `host: ` prefix as written by pdsh/clush, or an extra hostname column each start a new host.
- kubectl: `kubectl get nodes -o json` (or -o yaml): {"apiVersion": "v1", "kind": "List", "items":
  [Node...]}. GPU Feature Discovery labels nvidia.com/gpu.product, nvidia.com/gpu.count and
  nvidia.com/gpu.memory (MiB) (github.com/NVIDIA/k8s-device-plugin docs/gpu-feature-discovery), the
  ROCm labeller's amd.com/gpu.product-name, status.capacity["nvidia.com/gpu" | "amd.com/gpu"],
  status.capacity.memory (host DRAM, a Kubernetes quantity) and topology.kubernetes.io/zone|region.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.errors import Collector, InputError
from maestro_plan.load import safe
from maestro_plan.load.loader import check_inventory, load_gpu_types, parse_as, read_document
from maestro_plan.load.schema import GpuType, Interconnect, Inventory
from maestro_plan.units import GIB

MIB = 2**20
# A node's GPU memory label may differ from the table by a driver/firmware rounding (the GFD README
# example shows 81920 MiB for an H100 whose NVML reports 81559 MiB, 0.4% apart); a wrong product
# mapping differs by 40% or more (40 vs 80 GB parts). 5% separates the two.
MEMORY_TOLERANCE = 0.05

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
VENDOR_WORDS = ("NVIDIA", "Tesla", "AMD", "Quadro", "GeForce")
HOST_COLUMNS = ("hostname", "host", "node", "nodename", "node_name")
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$")


# --------------------------------------------------------------------------------------------
# GPU type matching
# --------------------------------------------------------------------------------------------


def _norm(label: str) -> str:
    """GFD writes the NVML name with spaces as '-' ('NVIDIA H100 80GB HBM3' -> 'NVIDIA-H100-80GB-HBM3');
    the ROCm labeller uses '_'. Compare names in that one form, case-insensitively."""
    return re.sub(r"[\s_\-]+", "-", label.strip()).lower()


def match_gpu_type(product: str, table: dict[str, GpuType], file: str | Path, field_path: str, memory_mib: float | None = None) -> GpuType:
    """The GPU type whose product_labels (or id) match `product`; otherwise an InputError that names
    the product, the closest known label and how to add a type."""
    key = _norm(product)
    if "-mig-" in key:
        raise InputError(
            f"GPU product '{product}' is a MIG partition; whole GPUs are planned, not MIG slices.",
            file=file,
            field=field_path,
            hint="disable MIG on these nodes (GFD mig-strategy none) or leave them out of the import.",
        )
    labels: dict[str, str] = {}
    for g in sorted(table.values(), key=lambda g: g.id):
        labels.setdefault(_norm(g.id), g.id)
        for lab in g.product_labels:
            labels.setdefault(_norm(lab), g.id)
    if key in labels:
        return table[labels[key]]
    close = _closest_type(key, labels, table, memory_mib)
    suggestion = f"the closest known product is GPU type '{close}'; if that is this GPU, add '{product}' to its product_labels." if close else ""
    raise InputError(
        f"GPU product '{product}' is not in the GPU table (known types: {', '.join(sorted(table))}).",
        file=file,
        field=field_path,
        hint=(suggestion + " " if suggestion else "")
        + f"To add a new type, pass --gpu-types FILE with a 'gpu_types:' entry whose product_labels include '{product}' "
        "(fields as in maestro_plan/data/gpus.yaml, each with its source).",
    )


_NOT_MODEL_TOKENS = {"nvidia", "amd", "instinct", "geforce", "tesla", "quadro", "hbm2", "hbm2e", "hbm3", "hbm3e", "sxm4", "sxm5", "sxm6", "pcie", "oam", "nvl"}


def _closest_type(key: str, labels: dict[str, str], table: dict[str, GpuType], memory_mib: float | None) -> str | None:
    """The GPU type to suggest for an unknown product: string similarity to the known labels, a bonus
    for sharing the model token ('a100' in 'nvidia-a100-80gb-pcie') and for matching memory. None
    when nothing is close (better no suggestion than a wrong one)."""
    tokens = [t for t in key.split("-") if t not in _NOT_MODEL_TOKENS]
    model = next((t for t in tokens if re.search(r"[a-z]", t) and re.search(r"\d", t) and not t.endswith("gb")), None)
    best, best_score = None, 0.0
    for lab, gid in sorted(labels.items()):
        score = difflib.SequenceMatcher(None, key, lab).ratio()
        if model and model in lab.split("-"):
            score += 0.5
        if memory_mib is not None and abs(memory_mib / 1024.0 - table[gid].hbm_gib) <= MEMORY_TOLERANCE * table[gid].hbm_gib:
            score += 0.25
        if score > best_score:
            best, best_score = gid, score
    return best if best_score >= 0.6 else None


def _default_interconnect(g: GpuType) -> Interconnect:
    """NVLink/xGMI parts have a GPU-to-GPU link faster than their PCIe host link; PCIe cards do not."""
    if g.interconnect_gbps > g.host_to_gpu_gbps:
        return Interconnect.xgmi if g.vendor == "amd" else Interconnect.nvlink
    return Interconnect.pcie


def _check_memory(g: GpuType, mem_mib: float | None, file: str | Path, field_path: str, product: str) -> None:
    if mem_mib is None:
        return
    have = mem_mib / 1024.0
    if abs(have - g.hbm_gib) > MEMORY_TOLERANCE * g.hbm_gib:
        raise InputError(
            f"GPU '{product}' reports {mem_mib:g} MiB ({have:.1f} GiB), but GPU type '{g.id}' has {g.hbm_gib:g} GiB.",
            file=file,
            field=field_path,
            hint="the product maps to the wrong type: give this GPU its own gpu_types entry (--gpu-types FILE) with its real memory.",
        )


# --------------------------------------------------------------------------------------------
# nvidia-smi CSV
# --------------------------------------------------------------------------------------------


@dataclass
class SmiGpu:
    name: str
    memory_mib: float | None
    line: int


@dataclass
class SmiHost:
    name: str | None
    gpus: list[SmiGpu] = field(default_factory=list)


_PREFIX_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*):\s+(\S.*)$")
_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(MiB|GiB|MB|GB)?$", re.IGNORECASE)


def _header_key(cell: str) -> str:
    return re.sub(r"\s*\[.*\]\s*$", "", cell.strip()).strip().lower()


def _is_header(cells: list[str]) -> bool:
    keys = {_header_key(c) for c in cells}
    return "name" in keys or "memory.total" in keys or "gpu_name" in keys


def _parse_memory(cell: str, unit_hint: str | None) -> float | None:
    m = _MEM_RE.match(cell.strip())
    if not m:
        return None
    value = float(m.group(1))
    unit = (m.group(2) or unit_hint or "MiB").lower()
    return value * {"mib": 1.0, "gib": 1024.0, "mb": 1e6 / MIB, "gb": 1e9 / MIB}[unit]


def _read_text(path: Path) -> str:
    return safe.read_text(path, hint="name the file that holds the nvidia-smi output.")


def parse_nvidia_smi_csv(text: str, file: str | Path) -> list[SmiHost]:
    """Hosts and their GPUs from nvidia-smi CSV output (see the module docstring for the forms)."""
    hosts: list[SmiHost] = []
    columns: dict[str, int] | None = None
    mem_unit: str | None = None
    current: SmiHost | None = None
    last_index: int | None = None

    def start(name: str | None) -> SmiHost:
        h = SmiHost(name)
        hosts.append(h)
        return h

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        prefix = None
        m = _PREFIX_RE.match(line)
        if m:
            prefix, line = m.group(1), m.group(2)
        try:
            cells = next(csv.reader(io.StringIO(line), skipinitialspace=True))
        except csv.Error as e:
            raise safe.csv_error(e, file, lineno) from None
        cells = [c.strip() for c in cells]
        if _is_header(cells):
            columns = {_header_key(c): i for i, c in enumerate(cells)}
            mem_cells = [c for c in cells if _header_key(c) == "memory.total"]
            unit = re.search(r"\[(\w+)\]", mem_cells[0]) if mem_cells else None
            mem_unit = unit.group(1) if unit else None
            if prefix is None:  # a repeated header without host prefix: a new host's output follows
                current = None
            last_index = None
            continue
        host_name = prefix
        if columns is not None:
            if len(cells) != len(columns):
                raise InputError(
                    f"line {lineno} has {len(cells)} fields, the header has {len(columns)}.",
                    file=file,
                    field=f"line {lineno}",
                    hint="keep the CSV exactly as nvidia-smi wrote it (one GPU per line, fields separated by ', ').",
                )
            if "name" not in columns:
                raise InputError(
                    "the header has no 'name' column, so the GPU model is unknown.",
                    file=file,
                    field="header",
                    hint="query it: nvidia-smi --query-gpu=index,name,memory.total --format=csv",
                )
            name = cells[columns["name"]]
            mem = None
            if "memory.total" in columns:
                mem_cell = cells[columns["memory.total"]]
                mem = _parse_memory(mem_cell, mem_unit)
                if mem is None or mem <= 0:
                    raise InputError(
                        f"memory.total '{mem_cell}' on line {lineno} is not a positive amount of MiB.",
                        file=file,
                        field=f"line {lineno}, column memory.total",
                        hint="expected a value like '81559 MiB' (or '81559' with --format=csv,nounits).",
                    )
            for hc in HOST_COLUMNS:
                if hc in columns:
                    host_name = cells[columns[hc]]
            index = None
            if "index" in columns:
                try:
                    index = int(cells[columns["index"]])
                except ValueError:
                    raise InputError(
                        f"index '{cells[columns['index']]}' on line {lineno} is not a whole number.",
                        file=file,
                        field=f"line {lineno}, column index",
                    ) from None
        else:  # noheader: recognise the name and the memory by their form
            names = [c for c in cells if re.search(r"[A-Za-z]", c) and not _MEM_RE.match(c) and not c.upper().startswith(("GPU-", "MIG-"))]
            name = next((c for c in names if c.split()[0] in VENDOR_WORDS), names[0] if names else "")
            # with units the memory is the 'NNN MiB' cell; without, the only plausible number >= 1 GiB
            mems = [_parse_memory(c, None) for c in cells if re.search(r"MiB$", c)]
            if not mems:
                mems = [v for c in cells if (v := _parse_memory(c, None)) is not None and v >= 1024 and c.isdigit()]
            mem = mems[0] if len(mems) == 1 else None
            index = int(cells[0]) if cells and cells[0].isdigit() and len(cells) > 1 else None
        if not name:
            raise InputError(
                f"line {lineno} has no GPU name.",
                file=file,
                field=f"line {lineno}",
                hint="query the name field: nvidia-smi --query-gpu=index,name,memory.total --format=csv",
            )
        if host_name is not None:
            if current is None or current.name != host_name:
                current = next((h for h in hosts if h.name == host_name), None) or start(host_name)
        elif current is None or (index == 0 and last_index is not None):
            current = start(None)
        last_index = index
        current.gpus.append(SmiGpu(name, mem, lineno))
    if not any(h.gpus for h in hosts):
        raise InputError(
            "holds no GPU lines.",
            file=file,
            hint="save the output of `nvidia-smi --query-gpu=index,name,memory.total --format=csv` into it.",
        )
    return [h for h in hosts if h.gpus]


# --------------------------------------------------------------------------------------------
# kubectl get nodes -o json
# --------------------------------------------------------------------------------------------


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


def parse_kubectl_nodes(doc: Any, file: str | Path) -> tuple[list[K8sNode], list[str]]:
    """GPU nodes of `kubectl get nodes -o json`, and the names of nodes skipped (no GPUs)."""
    if isinstance(doc, dict) and doc.get("kind") == "Node":
        items = [doc]
    elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
    else:
        raise InputError(
            "is not a list of Kubernetes Node objects (expected {\"kind\": \"List\", \"items\": [...]}).",
            file=file,
            field="items",
            hint="save the output of `kubectl get nodes -o json`.",
        )
    col = Collector()
    nodes: list[K8sNode] = []
    skipped: list[str] = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            col.add("is not a Node object.", file=file, field=where)
            continue
        if item.get("kind", "Node") != "Node":
            col.add(f"is a {item.get('kind')!r}, not a Node.", file=file, field=f"{where}.kind", hint="export nodes only: kubectl get nodes -o json")
            continue
        meta = item.get("metadata") or {}
        if not isinstance(meta, dict) or not isinstance(item.get("status") or {}, dict):
            col.add("metadata and status must be mappings.", file=file, field=where, hint="export the full node objects: kubectl get nodes -o json")
            continue
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            col.add("has no metadata.name.", file=file, field=f"{where}.metadata.name")
            continue
        labels = meta.get("labels") or {}
        status = item.get("status") or {}
        capacity = status.get("capacity") or {}
        if not isinstance(labels, dict) or not isinstance(capacity, dict):
            col.add("labels and status.capacity must be mappings.", file=file, field=where)
            continue
        unusable = _unusable(item, status)
        if unusable:
            skipped.append(f"{name} ({unusable})")
            continue
        product = _first(labels, PRODUCT_LABELS) or GKE_ACCELERATORS.get(str(labels.get(GKE_ACCELERATOR_LABEL, "")))
        if product is None and labels.get(GKE_ACCELERATOR_LABEL):
            col.add(f"node '{name}' has GKE accelerator {labels[GKE_ACCELERATOR_LABEL]!r}, which maestro-plan does not map to a GPU product.",
                    file=file, field=f"{where}.metadata.labels[{GKE_ACCELERATOR_LABEL}]",
                    hint="deploy GPU Feature Discovery (it sets nvidia.com/gpu.product), or label the node: kubectl label node NAME nvidia.com/gpu.product=...")
            continue
        allocatable = status.get("allocatable") if isinstance(status.get("allocatable"), dict) else {}
        # what the scheduler can hand out: allocatable (capacity minus unhealthy GPUs and the kubelet's reservations)
        capacity = {**capacity, **{k: v for k, v in allocatable.items() if k in (*CAPACITY_KEYS, "memory")}}
        cap_key = next((k for k in CAPACITY_KEYS if k in capacity), None)
        try:
            cap = int(parse_quantity(capacity[cap_key])) if cap_key else None
        except (ValueError, OverflowError) as e:
            col.add(str(e) + ".", file=file, field=f"{where}.status.capacity.{cap_key}")
            continue
        if cap is None and labels.get("nvidia.com/gpu.count") not in (None, ""):
            try:
                cap = int(labels["nvidia.com/gpu.count"])
            except ValueError:
                col.add(f"nvidia.com/gpu.count label {labels['nvidia.com/gpu.count']!r} is not a whole number.", file=file, field=f"{where}.metadata.labels")
                continue
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
            continue
        if not cap:
            skipped.append(name)  # GPU node whose device plugin reports no GPUs (not ready)
            continue
        mem_label = labels.get("nvidia.com/gpu.memory")
        mem = None
        if mem_label not in (None, ""):
            try:
                mem = float(mem_label)
            except ValueError:
                col.add(f"nvidia.com/gpu.memory label {mem_label!r} is not a number of MiB.", file=file, field=f"{where}.metadata.labels")
                continue
        dram = None
        if capacity.get("memory") is not None:
            try:
                dram = parse_quantity(capacity["memory"]) / GIB
            except ValueError as e:
                col.add(str(e) + ".", file=file, field=f"{where}.status.capacity.memory")
                continue
        nodes.append(
            K8sNode(
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
        )
    col.raise_if_any()
    if not nodes:
        raise InputError(
            f"holds no GPU nodes ({len(skipped)} nodes without nvidia.com/gpu capacity and product label).",
            file=file,
            hint="check that the NVIDIA device plugin and GPU Feature Discovery run on the GPU nodes.",
        )
    return nodes, skipped


# --------------------------------------------------------------------------------------------
# Building the inventory
# --------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9.\-]+", "-", text.lower()).strip("-.")
    return s[:63].strip("-.") or "pool"


def _check_name(value: str, what: str, file: str | Path, field_path: str, flag: str | None = None) -> str:
    if not NAME_RE.match(value) or len(value) > 63:
        raise InputError(
            f"{what} '{value}' is not a valid name (lower-case letters, digits, '-' and '.', at most 63 characters).",
            file=file,
            field=field_path,
            hint=f"pass {flag} with a valid name." if flag else "rename it, or edit the output by hand.",
        )
    return value


@dataclass
class _Node:
    name: str
    gpu_type: GpuType
    gpus: int
    zone: str
    host_dram_gib: float
    instance_type: str | None


def _build(nodes: list[_Node], cluster: str, region: str, description: str, note: str, extra: list[GpuType], file: str | Path) -> Inventory:
    groups: dict[tuple, list[_Node]] = defaultdict(list)
    for n in nodes:
        key = (n.zone, n.gpu_type.id, n.gpus, n.instance_type or "", math.floor(n.host_dram_gib))
        groups[key].append(n)
    pools = []
    used: set[str] = set()
    for key in sorted(groups):
        zone, gid, gpus, itype, _ = key
        members = sorted(groups[key], key=lambda n: n.name)
        base = _slug(f"{itype or gid + '-x' + str(gpus)}-{zone}")
        name, k = base, 2
        while name in used:
            name = _slug(f"{base[:58]}-{k}")
            k += 1
        used.add(name)
        g = members[0].gpu_type
        pool: dict[str, Any] = {
            "name": name,
            "zone": zone,
            "gpu_type": gid,
            "gpus_per_node": gpus,
            "nodes": [n.name for n in members],
            # nodes of one shape report slightly different capacity (kernel reservations); take the least
            "host_dram_gib": math.floor(min(n.host_dram_gib for n in members) * 10) / 10,
            "interconnect": _default_interconnect(g).value,
        }
        if itype:
            pool["labels"] = {"node.kubernetes.io/instance-type": itype}
        pools.append(pool)
    doc: dict[str, Any] = {"name": cluster, "description": description}
    if extra:
        doc["gpu_types"] = [g.model_dump(mode="json") for g in extra]
    doc["clusters"] = [{"name": cluster, "region": region, "node_pools": pools}]
    doc["sources"] = []
    doc["links"] = []
    doc["sources_note"] = note
    inv = parse_as(Inventory, doc, file)
    col = Collector()
    check_inventory(inv, load_gpu_types(extra), Path(file), col)
    col.raise_if_any()
    return inv


def _gpu_table(extra: list[GpuType] | None) -> dict[str, GpuType]:
    return load_gpu_types(list(extra or []))


def inventory_from_nvidia_smi(
    path: str | Path,
    *,
    cluster: str = "imported",
    region: str | None = None,
    zone: str | None = None,
    host_dram_gib: float | None = None,
    extra_gpu_types: list[GpuType] | None = None,
) -> Inventory:
    """An Inventory from nvidia-smi CSV output. nvidia-smi knows nothing of regions, zones or host
    memory, so those come from the arguments (an error says which one is missing)."""
    p = Path(path)
    hosts = parse_nvidia_smi_csv(_read_text(p), p)
    _check_name(cluster, "cluster name", p, "--cluster", "--cluster")
    missing = [flag for flag, v in (("--region", region), ("--zone", zone), ("--host-dram-gib", host_dram_gib)) if v is None]
    if missing:
        raise InputError(
            f"nvidia-smi output does not say {', '.join(missing)}; pass {' and '.join(missing)}.",
            file=p,
            field=", ".join(missing),
            hint="e.g. --region us-east-1 --zone us-east-1a --host-dram-gib 2048 (host memory: `free -g`, 'total').",
        )
    assert region is not None and zone is not None and host_dram_gib is not None
    _check_name(region, "region", p, "--region", "--region")
    _check_name(zone, "zone", p, "--zone", "--zone")
    if not (0 < host_dram_gib < 1e6) or not math.isfinite(host_dram_gib):
        raise InputError(f"host DRAM {host_dram_gib:g} GiB is not a realistic size.", file=p, field="--host-dram-gib", hint="give the host memory in GiB, e.g. 2048.")
    table = _gpu_table(extra_gpu_types)
    nodes: list[_Node] = []
    for hi, h in enumerate(hosts, start=1):
        types = set()
        g = None
        for gpu in h.gpus:
            g = match_gpu_type(gpu.name, table, p, f"line {gpu.line}, column name", gpu.memory_mib)
            _check_memory(g, gpu.memory_mib, p, f"line {gpu.line}, column memory.total", gpu.name)
            types.add(g.id)
        assert g is not None
        host_name = (h.name or f"{cluster}-host-{hi:03d}").lower()
        if len(types) > 1:
            raise InputError(
                f"host '{host_name}' mixes GPU types {sorted(types)}; a node pool holds one GPU type.",
                file=p,
                field=f"line {h.gpus[0].line}",
                hint="split the output per host, or import hosts with different GPUs separately.",
            )
        _check_name(host_name, "host name", p, f"line {h.gpus[0].line}")
        nodes.append(_Node(host_name, g, len(h.gpus), zone, float(host_dram_gib), None))
    names = [n.name for n in nodes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"host names repeat: {dup}.", file=p, hint="give each host's output its own host name.")
    n_gpus = sum(n.gpus for n in nodes)
    return _build(
        nodes,
        cluster,
        region,
        description=f"Imported from {p.name}: {len(nodes)} hosts, {n_gpus} GPUs.",
        note=(
            f"GPU models and counts from nvidia-smi output in {p.name}; region {region}, zone {zone} and host DRAM "
            f"{host_dram_gib:g} GiB given on the command line. GPU figures and prices: maestro_plan/data/gpus.yaml. "
            "Add sources (request origins) and links (latencies) before planning."
        ),
        extra=list(extra_gpu_types or []),
        file=p,
    )


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
    _check_name(cluster, "cluster name", p, "--cluster", "--cluster")
    table = _gpu_table(extra_gpu_types)
    col = Collector()
    nodes: list[_Node] = []
    regions: set[str] = set()
    for kn in k8s_nodes:
        where = f"items[{kn.index}]"
        try:
            g = match_gpu_type(kn.product, table, p, f"{where}.metadata.labels[nvidia.com/gpu.product]", kn.memory_mib)
            _check_memory(g, kn.memory_mib, p, f"{where}.metadata.labels[nvidia.com/gpu.memory]", kn.product)
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
        nodes.append(_Node(kn.name, g, kn.gpus, node_zone, kn.host_dram_gib, kn.instance_type))
    col.raise_if_any()
    if region is None:
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
        region = next(iter(regions))
    _check_name(region, "region", p, "--region", "--region")
    n_gpus = sum(n.gpus for n in nodes)
    skipped_txt = f"; {len(skipped)} node(s) skipped (no GPUs, cordoned or NotReady): {', '.join(skipped)}" if skipped else ""
    return _build(
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


def load_extra_gpu_types(path: str | Path) -> list[GpuType]:
    """gpu_types from a YAML/JSON file that has a top-level 'gpu_types' list (an inventory or gpus.yaml)."""
    p = Path(path)
    doc = read_document(p)
    items = doc.get("gpu_types") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("has no 'gpu_types' list.", file=p, field="gpu_types", hint="write the GPU types under a top-level 'gpu_types:' key.")
    return [parse_as(GpuType, item, p, f"gpu_types[{i}]") for i, item in enumerate(items)]


def inventory_yaml(inv: Inventory) -> str:
    """YAML of an imported inventory: schema field order, no nulls, no timestamps (deterministic)."""
    doc = inv.model_dump(mode="json", exclude_none=True)
    for c in doc["clusters"]:
        for pool in c["node_pools"]:
            if not pool.get("labels"):
                pool.pop("labels", None)
    if not doc.get("gpu_types"):
        doc.pop("gpu_types", None)
    header = "# Generated by `maestro-plan import inventory`; edit freely (add sources and links before planning).\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
