"""Import a fleet from `nvidia-smi --query-gpu=... --format=csv` output.

    parse_nvidia_smi_csv(text, file) -> list[SmiHost]        hosts and their GPUs, in file order
    inventory_from_nvidia_smi(path, cluster=, region=, zone=, host_dram_gib=, extra_gpu_types=) -> Inventory

Format (checked against real output, see tests/data/nvidia-smi): a header line such as
`index, name, memory.total [MiB]` (field names as given to --query-gpu, units in brackets), then one
line per GPU, `0, NVIDIA H100 80GB HBM3, 81559 MiB`. With `--format=csv,noheader[,nounits]` there is
no header; the name and the memory are then recognised by their form. Several hosts may be
concatenated: a repeated header, an index that restarts at 0, a `host: ` prefix as written by
pdsh/clush, or an extra hostname column each start a new host.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from maestro_plan.errors import InputError
from maestro_plan.load import safe
from maestro_plan.load.importers.common import PoolNode, build_inventory, check_memory, check_name, gpu_table, match_gpu_type
from maestro_plan.load.schema import GpuType, Inventory

MIB = 2**20


VENDOR_WORDS = ("NVIDIA", "Tesla", "AMD", "Quadro", "GeForce")
HOST_COLUMNS = ("hostname", "host", "node", "nodename", "node_name")


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


def _row_with_header(
    cells: list[str], columns: dict[str, int], mem_unit: str | None, host_name: str | None, lineno: int, file: str | Path
) -> tuple[str, float | None, int | None, str | None]:
    """Name, memory (MiB), index and host of one GPU line read by the header's columns."""
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
    return name, mem, index, host_name


def _row_without_header(cells: list[str]) -> tuple[str, float | None, int | None]:
    """Name, memory (MiB) and index of one GPU line without a header: recognised by their form."""
    names = [c for c in cells if re.search(r"[A-Za-z]", c) and not _MEM_RE.match(c) and not c.upper().startswith(("GPU-", "MIG-"))]
    name = next((c for c in names if c.split()[0] in VENDOR_WORDS), names[0] if names else "")
    # with units the memory is the 'NNN MiB' cell; without, the only plausible number >= 1 GiB
    mems = [_parse_memory(c, None) for c in cells if re.search(r"MiB$", c)]
    if not mems:
        mems = [v for c in cells if (v := _parse_memory(c, None)) is not None and v >= 1024 and c.isdigit()]
    mem = mems[0] if len(mems) == 1 else None
    index = int(cells[0]) if cells and cells[0].isdigit() and len(cells) > 1 else None
    return name, mem, index


# Over 60 lines: one state machine over the lines (header, host prefix, index restart); its rows are read by _row_with(out)_header.
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
            name, mem, index, host_name = _row_with_header(cells, columns, mem_unit, host_name, lineno, file)
        else:  # noheader: recognise the name and the memory by their form
            name, mem, index = _row_without_header(cells)
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


# Over 60 lines with its signature (9 lines): the flag checks nvidia-smi cannot answer, then one node per host and the pool build.
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
    check_name(cluster, "cluster name", p, "--cluster", "--cluster")
    missing = [flag for flag, v in (("--region", region), ("--zone", zone), ("--host-dram-gib", host_dram_gib)) if v is None]
    if missing:
        raise InputError(
            f"nvidia-smi output does not say {', '.join(missing)}; pass {' and '.join(missing)}.",
            file=p,
            field=", ".join(missing),
            hint="e.g. --region us-east-1 --zone us-east-1a --host-dram-gib 2048 (host memory: `free -g`, 'total').",
        )
    assert region is not None and zone is not None and host_dram_gib is not None
    check_name(region, "region", p, "--region", "--region")
    check_name(zone, "zone", p, "--zone", "--zone")
    if not (0 < host_dram_gib < 1e6) or not math.isfinite(host_dram_gib):
        raise InputError(f"host DRAM {host_dram_gib:g} GiB is not a realistic size.", file=p, field="--host-dram-gib", hint="give the host memory in GiB, e.g. 2048.")
    table = gpu_table(extra_gpu_types)
    nodes: list[PoolNode] = []
    for hi, h in enumerate(hosts, start=1):
        types = set()
        g = None
        for gpu in h.gpus:
            g = match_gpu_type(gpu.name, table, p, f"line {gpu.line}, column name", gpu.memory_mib)
            check_memory(g, gpu.memory_mib, p, f"line {gpu.line}, column memory.total", gpu.name)
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
        check_name(host_name, "host name", p, f"line {h.gpus[0].line}")
        nodes.append(PoolNode(host_name, g, len(h.gpus), zone, float(host_dram_gib), None))
    names = [n.name for n in nodes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"host names repeat: {dup}.", file=p, hint="give each host's output its own host name.")
    n_gpus = sum(n.gpus for n in nodes)
    return build_inventory(
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
