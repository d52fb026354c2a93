"""What the inventory importers share: matching a GPU product name to a GPU type (or a clear error),
checking names and memory, grouping identical nodes into node pools, and the inventory's YAML.

    match_gpu_type(product, table, file, field) -> GpuType    product label/name -> GPU type (or a clear error)
    load_extra_gpu_types(path) -> list[GpuType]               --gpu-types FILE
    inventory_yaml(inv) -> str                                 deterministic YAML of an Inventory
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.errors import Collector, InputError
from maestro_plan.load.loader import check_inventory, load_gpu_types, parse_as, read_document
from maestro_plan.load.schema import GpuType, Interconnect, Inventory

# A node's GPU memory label may differ from the table by a driver/firmware rounding (the GFD README
# example shows 81920 MiB for an H100 whose NVML reports 81559 MiB, 0.4% apart); a wrong product
# mapping differs by 40% or more (40 vs 80 GB parts). 5% separates the two.
MEMORY_TOLERANCE = 0.05


NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$")


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


def check_memory(g: GpuType, mem_mib: float | None, file: str | Path, field_path: str, product: str) -> None:
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


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9.\-]+", "-", text.lower()).strip("-.")
    return s[:63].strip("-.") or "pool"


def check_name(value: str, what: str, file: str | Path, field_path: str, flag: str | None = None) -> str:
    if not NAME_RE.match(value) or len(value) > 63:
        raise InputError(
            f"{what} '{value}' is not a valid name (lower-case letters, digits, '-' and '.', at most 63 characters).",
            file=file,
            field=field_path,
            hint=f"pass {flag} with a valid name." if flag else "rename it, or edit the output by hand.",
        )
    return value


@dataclass
class PoolNode:
    name: str
    gpu_type: GpuType
    gpus: int
    zone: str
    host_dram_gib: float
    instance_type: str | None


def build_inventory(nodes: list[PoolNode], cluster: str, region: str, description: str, note: str, extra: list[GpuType], file: str | Path) -> Inventory:
    groups: dict[tuple, list[PoolNode]] = defaultdict(list)
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


def gpu_table(extra: list[GpuType] | None) -> dict[str, GpuType]:
    return load_gpu_types(list(extra or []))


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
