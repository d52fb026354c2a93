"""Synth's real parts: cloud node shapes, regions and fibre latency, measured token-length
distributions, workflow templates and the embedded model architectures (each says its source)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from maestro_plan.load.schema import TokenDist


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
