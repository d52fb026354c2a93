"""Synthetic fleets for benchmarks and property tests: `maestro-plan synth`.

    generate(spec) -> dict[relative path, file text]     (pure, deterministic for a seed)
    write_synth(spec, out_dir) -> list[Path]             (atomic; refuses a foreign non-empty folder)

The output is an input folder (inventories/fleet.yaml, models/*.yaml, workloads/*.yaml) that
`maestro-plan validate` accepts. It is synthetic, but built from real parts:

- GPU types are the built-in table's (maestro_plan/data/gpus.yaml); node shapes are real cloud
  instance shapes (GPUs per node, host DRAM) listed in NODE_SHAPES with the instance they copy.
- Models are the catalogue's architectures (the bundled models/ folder by default, else the five
  architectures embedded in EMBEDDED_MODELS, copied from their Hugging Face config.json). When
  more models are asked for than the catalogue holds, the extra ones are fine-tuned variants:
  the same architecture under a distinct id (as fleets serving many LoRA-merged fine-tunes have).
- Role token lengths are measured distributions: ChatDev per-role calls (chatdev-warehouse-calls,
  123 runs) and the Azure LLM inference traces 2023 (code and conversation); see TOKEN_DISTS.
- Network latency between places follows distance: one-way ms = great-circle km x 2.1 / 204 km/ms
  (the rule of thumb of Bozkurt et al., "Dissecting Latency in the Internet's Fiber
  Infrastructure", 2018: line-of-sight distance x 2.1 over the speed of light in fibre, c / 1.468),
  with 100 km as the least distance (AWS: availability zones of a region are within 100 km).
- Rates are scaled to the largest demand that, provisioned with the default 20 % headroom, fits in
  a fluid relaxation using at most `load` of the GPUs of every (cluster, GPU type), each demand on
  GPUs within reach of its latency budget (a linear program over the estimator's own capacity
  figures). So the fleet keeps spare GPUs of every kind and an integer plan (whole replicas, zone
  spread) exists with room to optimise. SLOs are set from the estimator's
  unloaded latency with a slack factor, then loosened until every role has a reachable budget.

Determinism: one random.Random(seed) drives every choice, and only its random() output is used
(Python guarantees that sequence across versions and platforms); files are YAML with a fixed key
order and rounded numbers, so the same spec gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from maestro_plan import __version__, atomic
from maestro_plan.errors import InputError
from maestro_plan.load.loader import load_gpu_types, load_models, tp_allowed
from maestro_plan.load.schema import (
    Arrival,
    Cluster,
    GpuType,
    Inputs,
    Inventory,
    Link,
    ModelSpec,
    NodePool,
    Role,
    Slo,
    Source,
    TokenDist,
    Workflow,
)

MARKER = ".maestro-synth.json"

# --------------------------------------------------------------------------------------------
# Real parts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    gpus: int
    host_dram_gib: float
    interconnect: str
    instance: str  # the cloud instance this shape copies (also the node's instance-type label)
    source: str


# GPUs per node and host DRAM of real instances (provider documentation of each instance type).
NODE_SHAPES: dict[str, tuple[Shape, ...]] = {
    "h100-sxm": (
        Shape(8, 2048, "nvlink", "p5.48xlarge", "AWS EC2 P5: 8x H100 80GB, 2 TiB memory"),
        Shape(1, 256, "pcie", "p5.4xlarge", "AWS EC2 P5 single-GPU size: 1x H100, 256 GiB"),
    ),
    "h100-pcie": (
        Shape(2, 640, "pcie", "Standard_NC80adis_H100_v5", "Azure NC H100 v5: 2x H100 NVL, 640 GiB"),
        Shape(1, 320, "pcie", "Standard_NC40ads_H100_v5", "Azure NC H100 v5: 1x H100 NVL, 320 GiB"),
    ),
    "h200": (Shape(8, 2048, "nvlink", "p5en.48xlarge", "AWS EC2 P5en: 8x H200, 2 TiB memory"),),
    "b200": (Shape(8, 2048, "nvlink", "p6-b200.48xlarge", "AWS EC2 P6-B200: 8x B200, 2 TiB memory"),),
    "a100-80gb": (
        Shape(8, 1152, "nvlink", "p4de.24xlarge", "AWS EC2 P4de: 8x A100 80GB, 1152 GiB"),
        Shape(4, 880, "pcie", "Standard_NC96ads_A100_v4", "Azure NC A100 v4: 4x A100 80GB PCIe, 880 GiB"),
        Shape(1, 220, "pcie", "Standard_NC24ads_A100_v4", "Azure NC A100 v4: 1x A100 80GB PCIe, 220 GiB"),
    ),
    "a100-40gb": (Shape(8, 1152, "nvlink", "p4d.24xlarge", "AWS EC2 P4d: 8x A100 40GB, 1152 GiB"),),
    "l40s": (
        Shape(8, 1536, "pcie", "g6e.48xlarge", "AWS EC2 G6e: 8x L40S, 1536 GiB"),
        Shape(4, 384, "pcie", "g6e.12xlarge", "AWS EC2 G6e: 4x L40S, 384 GiB"),
        Shape(1, 128, "pcie", "g6e.4xlarge", "AWS EC2 G6e: 1x L40S, 128 GiB"),
    ),
    "l4": (
        Shape(8, 768, "pcie", "g6.48xlarge", "AWS EC2 G6: 8x L4, 768 GiB"),
        Shape(4, 192, "pcie", "g6.12xlarge", "AWS EC2 G6: 4x L4, 192 GiB"),
        Shape(1, 128, "pcie", "g6.8xlarge", "AWS EC2 G6: 1x L4, 128 GiB"),
    ),
    "a10g": (
        Shape(8, 768, "pcie", "g5.48xlarge", "AWS EC2 G5: 8x A10G, 768 GiB"),
        Shape(4, 192, "pcie", "g5.12xlarge", "AWS EC2 G5: 4x A10G, 192 GiB"),
        Shape(1, 128, "pcie", "g5.8xlarge", "AWS EC2 G5: 1x A10G, 128 GiB"),
    ),
    "mi300x": (Shape(8, 1850, "xgmi", "Standard_ND96isr_MI300X_v5", "Azure ND MI300X v5: 8x MI300X, 1850 GiB"),),
}

# How often each GPU type appears in a synthetic fleet. A generator parameter (not a measured
# market share): inference fleets dominated by H100/A100 with a tail of cheaper and newer parts.
TYPE_WEIGHTS: dict[str, float] = {
    "h100-sxm": 30, "a100-80gb": 15, "l40s": 12, "h200": 10, "l4": 10,
    "a10g": 8, "b200": 5, "mi300x": 5, "a100-40gb": 3, "h100-pcie": 2,
}  # fmt: skip

# Cloud regions (AWS names) and the coordinates of the metro area each is in (public location of
# the region: N. Virginia, Oregon, Dublin, Frankfurt, Tokyo, Singapore, Ohio, Mumbai, Sao Paulo,
# Montreal, London, Sydney).
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("us-east-1", 38.95, -77.45),
    ("us-west-2", 45.84, -119.70),
    ("eu-west-1", 53.35, -6.26),
    ("eu-central-1", 50.11, 8.68),
    ("ap-northeast-1", 35.68, 139.69),
    ("ap-southeast-1", 1.35, 103.82),
    ("us-east-2", 39.96, -83.00),
    ("ap-south-1", 19.08, 72.88),
    ("sa-east-1", -23.55, -46.63),
    ("ca-central-1", 45.50, -73.57),
    ("eu-west-2", 51.51, -0.13),
    ("ap-southeast-2", -33.87, 151.21),
)
FIBRE_KM_PER_MS = 204.0  # c / 1.468 (refractive index of silica fibre), km per ms
ROUTE_FACTOR = 2.1  # Bozkurt et al. 2018 rule of thumb (see module docstring)
MIN_DISTANCE_KM = 100.0  # AWS: the availability zones of a region are within 100 km of each other


def one_way_ms(a: tuple[float, float], b: tuple[float, float]) -> float:
    """One-way latency between two places from their great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    km = 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))
    return round(max(km, MIN_DISTANCE_KM) * ROUTE_FACTOR / FIBRE_KM_PER_MS, 1)


@dataclass(frozen=True)
class Dist:
    """A measured token-length distribution: mean, p50, p90, p99, max."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: float
    source: str

    def token_dist(self) -> TokenDist:
        return TokenDist(mean=self.mean, percentiles={50: self.p50, 90: self.p90, 99: self.p99}, max=self.max)


_CHATDEV = "ChatDev WareHouse calls (../shared/data/chatdev-warehouse-calls/calls.csv, 123 runs), role"
_AZURE = "Azure LLM inference trace 2023 (Splitwise, ISCA'24; ../shared/data/azure-llm-2023)"
# Computed with pandas from the files named (mean, then quantiles 0.5/0.9/0.99, then max).
TOKEN_DISTS: dict[str, tuple[Dist, Dist]] = {  # key -> (input tokens, output tokens)
    "conv": (Dist(1154.7, 1020, 2734, 4142, 14050, f"{_AZURE} conv, ContextTokens"), Dist(211.1, 129, 424, 601, 1000, f"{_AZURE} conv, GeneratedTokens")),
    "code": (Dist(2047.8, 1469, 5188, 7436, 7437, f"{_AZURE} code, ContextTokens"), Dist(27.9, 13, 55, 251, 1899, f"{_AZURE} code, GeneratedTokens")),
    "ceo": (Dist(1399.4, 1361, 2510, 3213, 4959, f"{_CHATDEV} Chief Executive Officer"), Dist(78.3, 68, 169, 227, 354, f"{_CHATDEV} Chief Executive Officer")),
    "cpo": (Dist(1089.5, 730, 2109, 4186, 4920, f"{_CHATDEV} Chief Product Officer"), Dist(285.2, 77, 701, 1124, 1474, f"{_CHATDEV} Chief Product Officer")),
    "cto": (Dist(545.1, 478, 698, 1377, 1692, f"{_CHATDEV} Chief Technology Officer"), Dist(8.2, 4, 8, 111, 132, f"{_CHATDEV} Chief Technology Officer")),
    "programmer": (Dist(1758.2, 1626, 3141, 4481, 5858, f"{_CHATDEV} Programmer"), Dist(572.7, 458, 1173, 1771, 5819, f"{_CHATDEV} Programmer")),
    "reviewer": (Dist(1686.5, 1615, 2577, 3659, 5920, f"{_CHATDEV} Code Reviewer"), Dist(476.6, 340, 1240, 1515, 1590, f"{_CHATDEV} Code Reviewer")),
    "tester": (Dist(1783.8, 1729, 3052, 3518, 3518, f"{_CHATDEV} Software Test Engineer"), Dist(789.9, 582, 1519, 1746, 1746, f"{_CHATDEV} Software Test Engineer")),
    "prompt": (Dist(171.4, 176, 186, 192, 192, f"{_CHATDEV} Prompt Engineer"), Dist(148.1, 158, 167, 198, 198, f"{_CHATDEV} Prompt Engineer")),
}

# ChatDev calls per run by role (same extraction: calls of the role / 123 runs).
_CHATDEV_CALLS = {"prompt": 0.228, "ceo": 1.447, "cpo": 2.073, "cto": 1.073, "programmer": 10.951, "reviewer": 6.951, "tester": 0.78}


@dataclass(frozen=True)
class RoleT:
    name: str
    dist: str
    calls: float
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowT:
    kind: str
    priority: str
    roles: tuple[RoleT, ...]
    slack: float  # SLO = slack x the unloaded critical-path latency (a generator parameter)
    note: str


WORKFLOW_TEMPLATES: tuple[WorkflowT, ...] = (
    WorkflowT("chat", "interactive", (RoleT("assistant", "conv", 1.0),), 4.0, f"one conversational call per query; lengths from {_AZURE} conv"),
    WorkflowT("code-assist", "interactive", (RoleT("completer", "code", 1.0),), 4.0, f"one code-completion call per query; lengths from {_AZURE} code"),
    WorkflowT(
        "agentic-coder", "interactive",
        (RoleT("planner", "conv", 1.0), RoleT("coder", "code", 2.0, ("planner",)), RoleT("reviewer", "conv", 1.0, ("coder",))),
        4.0, f"plan, code (two calls), review; conv and code lengths from {_AZURE}",
    ),
    WorkflowT(
        "software-team", "batch",
        tuple(
            RoleT(n, n, _CHATDEV_CALLS[n], a)
            for n, a in (("prompt", ()), ("ceo", ("prompt",)), ("cpo", ("ceo",)), ("cto", ("cpo",)), ("programmer", ("cto",)), ("reviewer", ("programmer",)), ("tester", ("reviewer",)))
        ),
        20.0, "a ChatDev software-building run: roles, calls per run and lengths from 123 ChatDev WareHouse runs",
    ),
    WorkflowT(
        "research-report", "batch",
        (RoleT("researcher", "conv", 3.0), RoleT("writer", "conv", 1.0, ("researcher",))),
        20.0, f"three research calls then a writing call; lengths from {_AZURE} conv",
    ),
)  # fmt: skip

# Architectures used when no catalogue folder is given or found: numbers from each model's
# Hugging Face config.json (the `source` field names it).
EMBEDDED_MODELS: tuple[dict[str, Any], ...] = (
    {
        "id": "llama-3.2-1b", "hf_repo": "meta-llama/Llama-3.2-1B-Instruct", "max_model_len": 32768,
        "source": "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/config.json",
        "architecture": {"model_type": "llama", "num_hidden_layers": 16, "hidden_size": 2048, "num_attention_heads": 32,
                         "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
                         "tie_word_embeddings": True, "max_position_embeddings": 131072},
    },
    {
        "id": "llama-3.2-3b", "hf_repo": "meta-llama/Llama-3.2-3B-Instruct", "max_model_len": 32768,
        "source": "https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/config.json",
        "architecture": {"model_type": "llama", "num_hidden_layers": 28, "hidden_size": 3072, "num_attention_heads": 24,
                         "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 8192, "vocab_size": 128256,
                         "tie_word_embeddings": True, "max_position_embeddings": 131072},
    },
    {
        "id": "llama-3.1-8b", "hf_repo": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 32768,
        "source": "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json",
        "architecture": {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                         "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                         "max_position_embeddings": 131072},
    },
    {
        "id": "qwen2.5-7b", "hf_repo": "Qwen/Qwen2.5-7B-Instruct", "tp_degrees": [1, 2, 4],
        "source": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json",
        "architecture": {"model_type": "qwen2", "num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28,
                         "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
                         "max_position_embeddings": 32768, "attention_bias": True},
    },
    {
        "id": "llama-3.1-70b", "hf_repo": "meta-llama/Llama-3.1-70B-Instruct", "max_model_len": 32768,
        "source": "https://huggingface.co/meta-llama/Llama-3.1-70B-Instruct/blob/main/config.json",
        "architecture": {"model_type": "llama", "num_hidden_layers": 80, "hidden_size": 8192, "num_attention_heads": 64,
                         "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256,
                         "max_position_embeddings": 131072},
    },
)  # fmt: skip

# Capacity kept spare above demand when sizing rates (the default of Settings.headroom).
HEADROOM = 0.2

# Roles whose KV reservation unit is p99 input + p99 output must fit the context.
MIN_CONTEXT = 16384


# --------------------------------------------------------------------------------------------
# The spec and a deterministic random source
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthSpec:
    gpus: int
    models: int
    clusters: int
    workflows: int
    seed: int = 0
    load: float = 0.5  # fraction of the fleet's GPUs the demand should need
    catalogue: Path | None = None  # model catalogue to derive from; None = embedded architectures

    def check(self) -> None:
        problems = []
        if not 1 <= self.clusters <= 64:
            problems.append(("--clusters", f"must be between 1 and 64, got {self.clusters}"))
        if self.gpus < self.clusters or self.gpus > 1_000_000:
            problems.append(("--gpus", f"must be at least the number of clusters ({self.clusters}) and at most 1,000,000, got {self.gpus}"))
        if not 1 <= self.models <= 5000:
            problems.append(("--models", f"must be between 1 and 5000, got {self.models}"))
        if not 1 <= self.workflows <= 1000:
            problems.append(("--workflows", f"must be between 1 and 1000, got {self.workflows}"))
        if not 0 < self.load <= 1:
            problems.append(("--load", f"must be in (0, 1], got {self.load}"))
        if problems:
            flag, msg = problems[0]
            raise InputError(f"{flag} {msg}.", field=flag, hint="; ".join(f"{f} {m}" for f, m in problems[1:]) or None)


class _Rng:
    """Only random.Random.random() is used: its sequence is stable across Python versions."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(int(seed))

    def u(self) -> float:
        return self._r.random()

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self._r.random()

    def below(self, n: int) -> int:
        return min(n - 1, int(self._r.random() * n))

    def weighted(self, items: Sequence[Any], weights: Sequence[float]) -> Any:
        total = math.fsum(weights)
        x = self._r.random() * total
        acc = 0.0
        for it, w in zip(items, weights):
            acc += w
            if x < acc:
                return it
        return items[-1]

    def shuffled(self, items: Sequence[Any]) -> list[Any]:
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of an integer total in proportion to weights (ties by index)."""
    s = math.fsum(weights)
    raw = [total * w / s for w in weights]
    out = [int(math.floor(x)) for x in raw]
    rest = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def _sig(x: float, digits: int = 4) -> float:
    """Round to significant digits (file-friendly, deterministic)."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def _round_up_nice(ms: float) -> float:
    """Round a latency up to 2 significant digits (an SLO a person would write)."""
    if ms <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(ms))
    step = mag / 10 if ms / mag < 10 else mag
    return float(math.ceil(ms / step) * step)


# --------------------------------------------------------------------------------------------
# Fleet
# --------------------------------------------------------------------------------------------


def _fleet(spec: SynthSpec, rng: _Rng, gpu_types: dict[str, GpuType]) -> Inventory:
    types = [t for t in TYPE_WEIGHTS if t in gpu_types and t in NODE_SHAPES]
    if not types:
        raise InputError("the built-in GPU table has none of the GPU types synth knows node shapes for.", file="maestro_plan/data/gpus.yaml")
    flex = [t for t in types if any(s.gpus == 1 for s in NODE_SHAPES[t])]
    names: list[tuple[str, str, tuple[float, float]]] = []
    for k in range(spec.clusters):
        region, lat, lon = REGIONS[k % len(REGIONS)]
        suffix = "" if k < len(REGIONS) else f"-{chr(ord('a') + k // len(REGIONS))}"
        names.append((region + suffix, region, (lat, lon)))
    sizes = [1 + n for n in _apportion(spec.gpus - spec.clusters, [rng.uniform(0.75, 1.25) for _ in range(spec.clusters)])]
    clusters = []
    for (cname, region, _), n_c in zip(names, sizes):
        primary = rng.weighted(flex, [TYPE_WEIGHTS[t] for t in flex])
        chosen = [primary]
        extra = 0 if n_c < 16 else (1 if n_c < 64 else 2 + (1 if n_c >= 512 else 0))
        for _ in range(extra):
            rest = [t for t in types if t not in chosen]
            if rest:
                chosen.append(rng.weighted(rest, [TYPE_WEIGHTS[t] for t in rest]))
        share = _apportion(n_c, [TYPE_WEIGHTS[t] * rng.uniform(0.5, 1.5) for t in chosen])
        groups: dict[str, list[tuple[Shape, int]]] = defaultdict(list)  # type -> [(shape, nodes)]
        carry = 0
        for t, g in zip(chosen[1:], share[1:]):
            smallest = min(s.gpus for s in NODE_SHAPES[t])
            usable = (g // smallest) * smallest
            carry += g - usable
            for s in sorted(NODE_SHAPES[t], key=lambda s: -s.gpus):
                nodes, usable = divmod(usable, s.gpus)
                if nodes:
                    groups[t].append((s, nodes))
        g = share[0] + carry
        for s in sorted(NODE_SHAPES[primary], key=lambda s: -s.gpus):
            nodes, g = divmod(g, s.gpus)
            if nodes:
                groups[primary].append((s, nodes))
        n_nodes = sum(n for v in groups.values() for _, n in v)
        n_zones = 3 if n_nodes >= 6 else (2 if n_nodes >= 2 else 1)
        zones = [f"{region}{chr(ord('a') + z)}" for z in range(n_zones)]
        pools = []
        offset = rng.below(n_zones)
        for t in chosen:
            for s, nodes in groups.get(t, []):
                for z in range(n_zones):
                    zi = (z + offset) % n_zones
                    count = nodes // n_zones + (1 if z < nodes % n_zones else 0)
                    if count:
                        pools.append(
                            NodePool(
                                name=f"{cname}-{t}-{s.gpus}g-{zones[zi][-1]}",
                                zone=zones[zi],
                                gpu_type=t,
                                gpus_per_node=s.gpus,
                                count=count,
                                host_dram_gib=s.host_dram_gib,
                                interconnect=s.interconnect,
                                labels={"node.kubernetes.io/instance-type": s.instance},
                            )
                        )
                offset = (offset + nodes) % n_zones
        pools.sort(key=lambda p: p.name)
        clusters.append(Cluster(name=cname, region=region, node_pools=pools))
    regions_used = sorted({(r, loc) for _, r, loc in names})
    sources = [Source(name=f"users-{r}", region=r) for r, _ in regions_used]
    batch_region, batch_loc = names[0][1], names[0][2]
    sources.append(Source(name=f"batch-{batch_region}", region=batch_region))
    loc_of_source = {f"users-{r}": loc for r, loc in regions_used} | {f"batch-{batch_region}": batch_loc}
    links = []
    for i, (a, _, la) in enumerate(names):
        for b, _, lb in names[i + 1 :]:
            links.append(Link(a=a, b=b, latency_ms=one_way_ms(la, lb)))
    for s in sources:
        for c, _, lc in names:
            links.append(Link(a=s.name, b=c, latency_ms=one_way_ms(loc_of_source[s.name], lc)))
    shape_notes = "; ".join(f"{t}: " + ", ".join(f"{s.instance} ({s.source})" for s in NODE_SHAPES[t]) for t in types)
    return Inventory(
        name=f"synth-{spec.gpus}g-s{spec.seed}"[:63].rstrip("-."),
        description=f"Synthetic fleet: {spec.gpus} GPUs in {spec.clusters} cluster(s), generated by maestro-plan synth (seed {spec.seed}).",
        clusters=clusters,
        sources=sources,
        links=links,
        sources_note=(
            "Synthetic. Node shapes copy real cloud instances: " + shape_notes + ". Latencies: great-circle distance between the "
            "regions' metro areas x 2.1 / 204 km per ms (Bozkurt et al. 2018 rule of thumb), at least 100 km apart."
        ),
    )


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def embedded_catalogue() -> dict[str, ModelSpec]:
    return {d["id"]: ModelSpec.model_validate(d) for d in EMBEDDED_MODELS}


def _smallest_tp(model: ModelSpec, gpu: GpuType, gpus_per_node: int) -> int | None:
    """The smallest allowed TP (at most the node's GPUs) at which one replica fits in memory."""
    from maestro_plan import estimate as est

    a = model.architecture
    kv = 1 if a.is_mla else a.kv_heads
    for tp in model.tp_degrees:
        if tp > gpus_per_node or not tp_allowed(a.num_attention_heads, kv, tp):
            continue
        mem = est.replica_memory(model, gpu, tp, max_model_len=model.context_len) if _accepts_max_len() else est.replica_memory(model, gpu, tp)
        if mem.fits:
            return tp
    return None


def _configs(model: ModelSpec, inv: Inventory, gpu_types: dict[str, GpuType]) -> list[tuple[str, int]]:
    """(GPU type, TP) pairs of the fleet on which one replica of the model fits in memory."""
    shapes: dict[str, int] = {}
    for c in inv.clusters:
        for p in c.node_pools:
            shapes[p.gpu_type] = max(shapes.get(p.gpu_type, 0), p.gpus_per_node)
    out = []
    for t in sorted(shapes):
        tp = _smallest_tp(model, gpu_types[t], shapes[t])
        if tp is not None:
            out.append((t, tp))
    return out


def _domains(model: ModelSpec, inv: Inventory, gpu_types: dict[str, GpuType]) -> set[tuple[str, str]]:
    """Failure domains (cluster, zone) with a node pool that can hold one replica of the model."""
    return {(c.name, p.zone) for c in inv.clusters for p in c.node_pools if _smallest_tp(model, gpu_types[p.gpu_type], p.gpus_per_node) is not None}


# Interactive models are spread over at least this many failure domains (Settings.min_zones_interactive
# default); synth only picks models the fleet can place in that many (or in all it has).
MIN_DOMAINS = 2


@lru_cache(maxsize=1)
def _accepts_max_len() -> bool:
    import inspect

    from maestro_plan import estimate as est

    return "max_model_len" in inspect.signature(est.replica_memory).parameters


def _models(spec: SynthSpec, rng: _Rng, base: dict[str, ModelSpec], inv: Inventory, gpu_types: dict[str, GpuType]) -> dict[str, ModelSpec]:
    all_domains = {(c.name, p.zone) for c in inv.clusters for p in c.node_pools}
    need = min(MIN_DOMAINS, len(all_domains))
    usable = [m for _, m in sorted(base.items()) if m.context_len >= MIN_CONTEXT and len(_domains(m, inv, gpu_types)) >= need]
    if not usable:
        raise InputError(
            "no catalogue model fits the nodes of the generated fleet in enough failure domains with a "
            f"context of at least {MIN_CONTEXT} tokens.",
            hint="give more GPUs (--gpus) or a catalogue with smaller models (--catalogue).",
        )
    if spec.models <= len(usable):
        return {m.id: m for m in sorted(rng.shuffled(usable)[: spec.models], key=lambda m: m.id)}
    from maestro_plan import estimate as est

    out = {m.id: m for m in usable}
    # fine-tunes are mostly of small and mid-size models: weight 3 under 40 GB of weights, else 1
    weights = [3.0 if est.weight_bytes_total(m) < 40e9 else 1.0 for m in usable]
    counter: dict[str, int] = defaultdict(int)
    while len(out) < spec.models:
        b = rng.weighted(usable, weights)
        counter[b.id] += 1
        vid = f"{b.id}-ft{counter[b.id]:03d}"
        out[vid] = b.model_copy(
            update={
                "id": vid,
                "hf_repo": f"synthetic/{vid}",
                "description": f"Synthetic fine-tune of {b.hf_repo}: same architecture, distinct weights (maestro-plan synth).",
            }
        )
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------
# Workflows, SLOs and rates
# --------------------------------------------------------------------------------------------


def _workflows(spec: SynthSpec, rng: _Rng, models: dict[str, ModelSpec], inv: Inventory) -> list[dict[str, Any]]:
    """Workflow drafts: template, roles (with models), sources and relative rates."""
    order = rng.shuffled(WORKFLOW_TEMPLATES)
    drafts = []
    for w in range(spec.workflows):
        t = order[w % len(order)]
        drafts.append({"t": t, "name": f"{t.kind}-{w:03d}", "roles": [dict(name=r.name, dist=r.dist, calls=r.calls, after=list(r.after)) for r in t.roles]})
    # every model must be called by some role: add fan-out specialist roles where slots are short
    slots = sum(len(d["roles"]) for d in drafts)
    k = 0
    while slots < len(models):
        d = drafts[k % len(drafts)]
        first = d["roles"][0]["name"]
        n = sum(1 for r in d["roles"] if r["name"].startswith("specialist-"))
        d["roles"].append(dict(name=f"specialist-{n + 1:02d}", dist=rng.weighted(["conv", "code"], [2.0, 1.0]), calls=1.0, after=[first]))
        slots += 1
        k += 1
    # assign models: a random permutation covers every model once, the rest are random picks
    perm = rng.shuffled(sorted(models))
    ids = sorted(models)
    i = 0
    for d in drafts:
        for r in d["roles"]:
            r["model"] = perm[i] if i < len(perm) else ids[rng.below(len(ids))]
            i += 1
    users = [s.name for s in inv.sources if s.name.startswith("users-")]
    batch = [s.name for s in inv.sources if s.name.startswith("batch-")]
    for d in drafts:
        pool = users if d["t"].priority == "interactive" or not batch else batch
        n = 1 + rng.below(len(pool))
        srcs = sorted(rng.shuffled(pool)[:n])
        base = rng.uniform(0.5, 2.0)
        weights = [rng.uniform(0.5, 1.5) for _ in srcs]
        d["arrivals"] = {s: base * w / math.fsum(weights) for s, w in zip(srcs, weights)}
    return drafts


def _build_workflows(drafts: list[dict[str, Any]], slo_ms: dict[str, float], scale: float) -> list[Workflow]:
    out = []
    for d in drafts:
        t: WorkflowT = d["t"]
        roles = []
        for r in d["roles"]:
            din, dout = TOKEN_DISTS[r["dist"]]
            roles.append(
                Role(
                    name=r["name"],
                    model=r["model"],
                    calls_per_query=r["calls"],
                    depends_on=r["after"],
                    input_tokens=din.token_dist(),
                    output_tokens=dout.token_dist(),
                    description=f"input lengths: {din.source}; output lengths: {dout.source}",
                )
            )
        arrivals = [Arrival(source=s, rate_per_s=max(1e-4, _sig(rate * scale))) for s, rate in sorted(d["arrivals"].items())]
        out.append(
            Workflow(
                name=d["name"],
                description=f"Synthetic {t.kind} workflow ({t.note}).",
                priority=t.priority,
                slo=Slo(percentile=95.0, latency_ms=slo_ms[d["name"]]),
                arrivals=arrivals,
                roles=roles,
                sources_note=f"Synthetic (maestro-plan synth). Role lengths are measured distributions: {t.note}. Rates scaled to the fleet; SLO = {t.slack:g} x the estimator's unloaded critical-path latency, rounded up.",
            )
        )
    return out


def _critical_path(roles: list[dict[str, Any]], call_ms: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    pending = list(roles)
    while pending:
        for r in list(pending):
            if all(a in finish for a in r["after"]):
                start = max((finish[a] for a in r["after"]), default=0.0)
                finish[r["name"]] = start + r["calls"] * call_ms[r["name"]]
                pending.remove(r)
    return max(finish.values(), default=0.0)


class _Perf:
    """Cached estimator answers for the fleet's (cluster, GPU type, TP) configurations."""

    def __init__(self, inv: Inventory, models: dict[str, ModelSpec], gpu_types: dict[str, GpuType]) -> None:
        from maestro_plan import estimate as est

        self.est = est
        self.gpu_types = gpu_types
        self.models = models
        self.configs = {m: _configs(spec, inv, gpu_types) for m, spec in models.items()}
        gpus: dict[tuple[str, str], int] = defaultdict(int)
        width: dict[tuple[str, str], int] = defaultdict(int)
        for c in inv.clusters:
            for p in c.node_pools:
                gpus[(c.name, p.gpu_type)] += p.node_count * p.gpus_per_node
                width[(c.name, p.gpu_type)] = max(width[(c.name, p.gpu_type)], p.gpus_per_node)
        self.gpus = dict(sorted(gpus.items()))
        self.width = dict(width)
        clusters = {c.name for c in inv.clusters}
        self.net: dict[tuple[str, str], float] = {}
        for lk in inv.links:
            for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
                if b in clusters and a not in clusters:
                    self.net[(a, b)] = lk.latency_ms
        self.min_net: dict[str, float] = {}
        for (src, _), ms in self.net.items():
            self.min_net[src] = min(self.min_net.get(src, math.inf), ms)
        self._tp: dict[tuple[str, str, int], int | None] = {}
        self._cap: dict[Any, float | None] = {}

    def unloaded_ms(self, model: str, din: Dist, dout: Dist) -> float:
        est = self.est
        m = self.models[model]
        mix = est.RequestMix(mean_input=din.mean, mean_output=dout.mean, kv_tokens_per_request=din.p99 + dout.p99, max_model_len=m.context_len)
        return min(est.latency_at_load(m, self.gpu_types[t], tp, mix, 1e-6) for t, tp in self.configs[model])

    def rps_per_gpu(self, d: Any) -> dict[tuple[str, str], float]:
        """Requests/s one GPU serves for this demand, per (cluster, GPU type) able to: replica
        capacity / TP at the demand's mix and its per-call budget less the round trip to that
        cluster (the smallest TP that fits, as the fleet's nodes allow)."""
        out: dict[tuple[str, str], float] = {}
        m = self.models[d.model]
        for (c, t), _ in self.gpus.items():
            budget = d.latency_budget_ms - 2.0 * self.net.get((d.source, c), math.inf)
            if budget <= 0:
                continue
            tk = (d.model, t, self.width[(c, t)])
            if tk not in self._tp:
                self._tp[tk] = _smallest_tp(m, self.gpu_types[t], self.width[(c, t)])
            tp = self._tp[tk]
            if tp is None:
                continue
            key = (d.model, t, tp, d.mix, round(budget, 6))
            if key not in self._cap:
                r = self.est.replica_capacity(m, self.gpu_types[t], tp, d.mix, latency_budget_ms=budget)
                self._cap[key] = r.rps if r is not None and r.rps > 0 else None
            rps = self._cap[key]
            if rps:
                out[(c, t)] = rps / tp
        return out

    def max_scale(self, demands: Sequence[Any], load: float) -> float:
        """Largest factor s such that s x the demand (provisioned with HEADROOM, or at its peak
        rate where higher) fits on at most `load` of the GPUs of every (cluster, GPU type), each
        demand on GPUs within reach of its per-call budget: a fluid linear program (GLOP,
        OR-Tools). Every GPU type keeps 1 - load of its GPUs spare in that relaxation, which
        leaves an integer plan (whole replicas, zone spread) room to exist."""
        from ortools.linear_solver import pywraplp

        lp = pywraplp.Solver.CreateSolver("GLOP")
        scale = lp.NumVar(0.0, lp.infinity(), "s")
        per_pool: dict[tuple[str, str], list[Any]] = defaultdict(list)
        total: list[Any] = []
        for i, d in enumerate(demands):
            rpg = self.rps_per_gpu(d)
            want = max(d.rate_rps * (1.0 + HEADROOM), getattr(d, "peak_rate_rps", 0.0) or 0.0)
            if not rpg or want <= 0:
                continue
            terms = []
            for (c, t), r in sorted(rpg.items()):
                x = lp.NumVar(0.0, lp.infinity(), f"x{i}.{c}.{t}")
                per_pool[(c, t)].append(x)
                total.append(x)
                terms.append(r * x)
            lp.Add(lp.Sum(terms) >= want * scale)
        for key, xs in sorted(per_pool.items()):
            lp.Add(lp.Sum(xs) <= load * self.gpus[key])
        lp.Maximize(scale)
        status = lp.Solve()
        if status != pywraplp.Solver.OPTIMAL or not math.isfinite(scale.solution_value()) or scale.solution_value() <= 0:
            return 1.0
        return float(scale.solution_value())


def generate(spec: SynthSpec, catalogue: dict[str, ModelSpec] | None = None) -> dict[str, str]:
    """All files of a synthetic input folder: relative path -> text. Deterministic for a spec."""
    from maestro_plan import estimate as est

    spec.check()
    rng = _Rng(spec.seed)
    gpu_types = load_gpu_types()
    inv = _fleet(spec, rng, gpu_types)
    base = catalogue if catalogue is not None else embedded_catalogue()
    models = _models(spec, rng, base, inv, gpu_types)
    drafts = _workflows(spec, rng, models, inv)
    perf = _Perf(inv, models, gpu_types)

    # SLOs: slack x unloaded critical path, then loosened until every demand has a reachable budget
    slo: dict[str, float] = {}
    for d in drafts:
        call_ms = {r["name"]: perf.unloaded_ms(r["model"], *TOKEN_DISTS[r["dist"]]) for r in d["roles"]}
        worst_net = max(perf.min_net.get(s, 0.0) for s in d["arrivals"])
        slo[d["name"]] = _round_up_nice(d["t"].slack * _critical_path(d["roles"], call_ms) + 2.0 * worst_net * len(d["roles"]))
    for _ in range(12):
        inputs = Inputs(inventory=inv, gpu_types=gpu_types, models=models, workflows=_build_workflows(drafts, slo, 1.0))
        dm = est.compute_demand(inputs)  # the planner's own (percentile) budgets: every SLO generated is reachable
        bad = {role.split("/")[0] for d in dm.per_model if not perf.rps_per_gpu(d) for role in d.roles}
        if not bad:
            break
        for name in bad:
            slo[name] = _round_up_nice(slo[name] * 1.5)
    # rates: scale so that the demand needs about `load` of the fleet's GPUs
    scale = perf.max_scale(dm.per_model, spec.load)
    workflows = _build_workflows(drafts, slo, scale)

    header = f"# Generated by maestro-plan synth {__version__}: --gpus {spec.gpus} --models {spec.models} --clusters {spec.clusters} --workflows {spec.workflows} --seed {spec.seed} --load {spec.load:g}\n# Synthetic input (see maestro_plan/synth.py for where every number comes from).\n"
    files: dict[str, str] = {"inventories/fleet.yaml": header + _yaml(inv.model_dump(mode="json", exclude_none=True, exclude_defaults=False))}
    for mid, m in models.items():
        files[f"models/{mid}.yaml"] = header + _yaml(m.model_dump(mode="json", exclude_none=True))
    for w in workflows:
        files[f"workloads/{w.name}.yaml"] = header + _yaml(w.model_dump(mode="json", exclude_none=True))
    return dict(sorted(files.items()))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {(_num_key(k)): _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:
            return int(x)
        return float(f"{x:.10g}")
    return x


def _num_key(k: Any) -> Any:
    try:
        f = float(k)
    except (TypeError, ValueError):
        return k
    return int(f) if f.is_integer() else f


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(_plain(doc), sort_keys=False, default_flow_style=False, allow_unicode=True, width=200)


def write_synth(spec: SynthSpec, out: str | Path, catalogue: dict[str, ModelSpec] | None = None) -> list[Path]:
    """Generate and write atomically into `out` (created if missing).

    `out` must be empty or an earlier synth output (it holds MARKER); stale files of an earlier
    run in inventories/, models/ and workloads/ are removed so the folder validates as a whole.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder.", file=out, hint="name a new or empty folder for --out.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError("folder is not empty and was not written by 'maestro-plan synth'.", file=out, hint="name a new or empty folder for --out.")
    files = generate(spec, catalogue)
    marker = json.dumps({"generator": f"maestro-plan {__version__}", "spec": {k: (str(v) if isinstance(v, Path) else v) for k, v in spec.__dict__.items()}}, sort_keys=True, indent=2) + "\n"
    with atomic.staged_dir(out) as stage:
        for rel, text in files.items():
            p = stage / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        (stage / MARKER).write_text(marker, encoding="utf-8")
    for sub in ("inventories", "models", "workloads"):
        folder = out / sub
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file() and f"{sub}/{f.name}" not in files:
                    f.unlink()
                elif f.is_dir():
                    shutil.rmtree(f)
    return [out / rel for rel in files]


def load_catalogue(path: str | Path | None) -> dict[str, ModelSpec] | None:
    """The catalogue to derive models from: a models folder, or None for the embedded five."""
    if path is None:
        return None
    models, _ = load_models(path)
    return models


__all__ = ["EMBEDDED_MODELS", "NODE_SHAPES", "SynthSpec", "TOKEN_DISTS", "embedded_catalogue", "generate", "load_catalogue", "one_way_ms", "write_synth"]
