"""Typed input schemas: GPU types, inventory (fleet), model catalogue, workloads.

Every model here rejects unknown fields (the loader turns that into an error that names the field
and suggests the closest valid name). Units are in field names: *_gib (2**30 bytes), *_gb (1e9
bytes), *_tbps (1e12 bytes/s), *_gbps (1e9 bytes/s, i.e. GB/s; NOT gigabits), *_ms, *_per_s.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$")]
"""Identifiers become Kubernetes object names and labels: lower-case DNS-1123 style, <= 63 chars."""

PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False, lt=1e15)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False, lt=1e15)]
PosInt = Annotated[int, Field(gt=0, lt=10**12)]
# Bounds on sizes that drive work and memory, checked when a file is read (before any work):
# MAX_GPUS is 10x the largest fleet benchmarked (benchmarks/solver_scale.py: 10,000 GPUs);
# MAX_LAYERS is 8x the deepest released decoder (126 layers, Llama 3.1 405B config.json).
MAX_GPUS = 100_000
MAX_LAYERS = 1_000
NonNegInt = Annotated[int, Field(ge=0, lt=10**12)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------------------------
# GPU types
# --------------------------------------------------------------------------------------------


class EngineReserves(Strict):
    """Memory the serving engine keeps for itself on each GPU of a replica, overriding the pinned
    engine defaults (maestro_plan/data/vllm.yaml, which cites where each default comes from).
    Set per GPU type (`reserves:` in the inventory's gpu_types) and per model (`reserves:` in the
    model catalogue); a model's value wins over its GPU type's, which wins over the default. Byte
    figures are per GPU. Use measured values: vLLM's start-up log prints the weights, the
    activation peak ("torch peak memory increase"), non-torch memory and the CUDA-graph estimate."""

    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        None, description="vLLM --gpu-memory-utilization of a whole-GPU engine (default 0.92, vLLM >= 0.21.0)"
    )
    activation_bytes: NonNegInt | None = Field(None, description="Peak activation memory per GPU, bytes (default 2 GiB dense, 2.5 GiB MoE)")
    non_torch_bytes_tp1: NonNegInt | None = Field(None, description="Non-torch memory (CUDA context, buffers) per GPU at TP 1, bytes (default 0.3 GiB)")
    non_torch_bytes_tp_multi: NonNegInt | None = Field(None, description="Non-torch memory per GPU at TP >= 2 (NCCL / all-reduce buffers), bytes (default 2.1 GiB)")
    cuda_graph_bytes: NonNegInt | None = Field(None, description="CUDA-graph memory per GPU, bytes (default 0.49 GiB)")


class GpuType(Strict):
    """Spec-sheet figures of one GPU type. Built-in table: maestro_plan/data/gpus.yaml."""

    id: Name
    name: str = Field(description="Marketing name, e.g. 'NVIDIA H100 SXM5 80GB'")
    vendor: Literal["nvidia", "amd", "intel", "other"] = "nvidia"
    product_labels: list[str] = Field(
        default_factory=list,
        description="Values of the GPU Feature Discovery label nvidia.com/gpu.product (and nvidia-smi "
        "names) that identify this type; the first is used in nodeSelectors.",
    )
    hbm_gib: PosFloat = Field(description="Device memory as the driver reports it (nvidia-smi memory.total / 1024), GiB")
    hbm_tbps: PosFloat = Field(description="Peak HBM bandwidth, TB/s (1e12 B/s)")
    bf16_tflops: PosFloat = Field(description="Dense (no sparsity) BF16 tensor TFLOP/s")
    fp8_tflops: NonNegFloat = Field(0.0, description="Dense FP8 tensor TFLOP/s (0 if unsupported)")
    int8_tops: NonNegFloat = Field(0.0, description="Dense INT8 tensor TOP/s (0 if unsupported)")
    interconnect_gbps: PosFloat = Field(
        description="GPU-to-GPU bandwidth per GPU inside a node, GB/s, one direction (NVLink/xGMI, or PCIe when none)"
    )
    host_to_gpu_gbps: PosFloat = Field(description="Host-to-device copy bandwidth, GB/s, one direction (PCIe gen x16)")
    tdp_w: NonNegFloat = 0.0
    price_per_gpu_hour: NonNegFloat = Field(description="Default on-demand price, USD per GPU-hour")
    reserves: EngineReserves | None = Field(None, description="Engine memory reserves on this GPU type (default: the pinned engine's)")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> where the figure comes from")


# --------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------


class Interconnect(str, Enum):
    nvlink = "nvlink"
    pcie = "pcie"
    xgmi = "xgmi"


class NodePool(Strict):
    """Identical nodes of one cluster: `count` anonymous nodes or an explicit list of node names."""

    name: Name
    zone: Name = Field(description="Failure domain (availability zone) the nodes are in")
    gpu_type: Name
    gpus_per_node: Annotated[int, Field(gt=0, le=64)]
    count: Annotated[int, Field(gt=0, le=MAX_GPUS)] | None = Field(None, description="Number of nodes; names become <pool>-<index>")
    nodes: list[Name] | None = Field(None, description="Explicit node names (Kubernetes node names)")
    host_dram_gib: PosFloat
    interconnect: Interconnect = Interconnect.nvlink
    price_per_gpu_hour: NonNegFloat | None = Field(None, description="Overrides the GPU type's price here")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra Kubernetes node labels")

    @model_validator(mode="after")
    def _count_or_nodes(self) -> NodePool:
        if (self.count is None) == (self.nodes is None):
            raise ValueError("give exactly one of 'count' (number of nodes) or 'nodes' (list of node names)")
        if self.nodes is not None:
            if not self.nodes:
                raise ValueError("'nodes' is empty; list at least one node name or use 'count'")
            if len(set(self.nodes)) != len(self.nodes):
                raise ValueError("'nodes' lists a node name twice")
        return self

    @property
    def node_names(self) -> list[str]:
        if self.nodes is not None:
            return list(self.nodes)
        width = max(3, len(str(self.count)))
        return [f"{self.name}-{i:0{width}d}" for i in range(self.count or 0)]

    @property
    def node_count(self) -> int:
        return len(self.nodes) if self.nodes is not None else int(self.count or 0)


class Cluster(Strict):
    name: Name
    region: Name
    node_pools: list[NodePool] = Field(min_length=1)
    budget_per_hour: NonNegFloat | None = Field(None, description="Optional cap on USD per hour spent in this cluster")
    external_base_url: str | None = Field(
        None,
        max_length=200,
        pattern=r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?$",
        description="Base URL at which routers outside this cluster reach its inference Gateway (the emitted "
        "gateway-api folder serves each model under <url>/models/<model-id>/v1), e.g. https://llm.us-east.example.com",
    )
    gateway_class: Name | None = Field(
        None, description="GatewayClass of the emitted inference Gateway (the Gateway implementation installed: istio, kgateway, "
        "gke-l7-regional-external-managed, ...); default istio"
    )


class Source(Strict):
    """Where requests come from (a region's users, an office, a batch scheduler)."""

    name: Name
    region: Name | None = None


class Link(Strict):
    """Network path between two places (cluster<->cluster, or source->cluster). Symmetric."""

    a: Name
    b: Name
    latency_ms: NonNegFloat = Field(description="One-way latency in ms")
    bandwidth_gbps: PosFloat | None = Field(None, description="GB/s (1e9 bytes/s)")


class Inventory(Strict):
    name: Name
    description: str = ""
    gpu_types: list[GpuType] = Field(default_factory=list, description="Adds or overrides built-in GPU types")
    clusters: list[Cluster] = Field(min_length=1)
    sources: list[Source] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    sources_note: str = Field("", description="Where the figures of this inventory come from")


# --------------------------------------------------------------------------------------------
# Model catalogue
# --------------------------------------------------------------------------------------------

WeightDtype = Literal["bf16", "fp16", "fp32", "fp8", "int8", "int4"]
KvDtype = Literal["auto", "bf16", "fp16", "fp8"]


class Architecture(Strict):
    """Architecture numbers, named as in a Hugging Face config.json.

    Aliases used by some families are normalised by the importer: num_local_experts (Mixtral) and
    n_routed_experts (DeepSeek) -> num_experts.
    """

    model_type: str
    num_hidden_layers: Annotated[int, Field(gt=0, le=MAX_LAYERS)]
    hidden_size: PosInt
    num_attention_heads: PosInt
    num_key_value_heads: PosInt | None = None
    head_dim: PosInt | None = None
    intermediate_size: PosInt
    vocab_size: PosInt
    tie_word_embeddings: bool = False
    max_position_embeddings: PosInt
    attention_bias: bool = False
    mlp_bias: bool = False
    # Mixture of experts
    num_experts: PosInt | None = None
    num_experts_per_tok: PosInt | None = None
    moe_intermediate_size: PosInt | None = None
    n_shared_experts: NonNegInt | None = None
    shared_expert_intermediate_size: PosInt | None = None
    first_k_dense_replace: NonNegInt | None = Field(None, description="DeepSeek: first k layers use a dense MLP")
    # Multi-head latent attention (DeepSeek V2/V3)
    q_lora_rank: PosInt | None = None
    kv_lora_rank: PosInt | None = None
    qk_nope_head_dim: PosInt | None = None
    qk_rope_head_dim: PosInt | None = None
    v_head_dim: PosInt | None = None
    num_nextn_predict_layers: NonNegInt | None = Field(None, description="DeepSeek-V3 MTP layers (not loaded by default)")
    # Sliding-window attention
    sliding_window: PosInt | None = None
    sliding_window_layers: NonNegInt | None = Field(
        None, description="How many layers use the sliding window (Gemma-2: every other one). Default: all, when sliding_window is set"
    )

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @model_validator(mode="after")
    def _consistent(self) -> Architecture:
        if self.num_key_value_heads and self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size is not a multiple of num_attention_heads; set head_dim explicitly")
        if (self.num_experts is None) != (self.num_experts_per_tok is None):
            raise ValueError("MoE models need both num_experts and num_experts_per_tok")
        if self.num_experts and self.num_experts_per_tok and self.num_experts_per_tok > self.num_experts:
            raise ValueError("num_experts_per_tok exceeds num_experts")
        if self.kv_lora_rank is not None and (self.qk_rope_head_dim is None or self.qk_nope_head_dim is None or self.v_head_dim is None):
            raise ValueError("MLA models need kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim and v_head_dim")
        if self.sliding_window_layers is not None and self.sliding_window_layers > self.num_hidden_layers:
            raise ValueError("sliding_window_layers exceeds num_hidden_layers")
        return self


class Quantization(Strict):
    method: Literal["fp8", "awq", "gptq", "bitsandbytes", "compressed-tensors", "mxfp4", "none"] = "none"
    group_size: PosInt | None = Field(None, description="Weights per scale group (int4 AWQ/GPTQ: 128)")


class ModelSpec(Strict):
    """One catalogue entry (models/<id>.yaml)."""

    id: Name
    hf_repo: str = Field(min_length=3, pattern=r"^[\w.\-]+/[\w.\-]+$")
    gated: bool = Field(False, description="The Hugging Face repo is gated (accept the licence, then download with a token); "
                        "emitted pods then require the hf-token Secret")
    description: str = ""
    architecture: Architecture
    weight_dtype: WeightDtype = "bf16"
    quantization: Quantization = Quantization()
    kv_cache_dtype: KvDtype = "auto"
    max_model_len: PosInt | None = Field(None, description="Context the engine is started with (default: max_position_embeddings)")
    tp_degrees: list[Annotated[int, Field(gt=0, le=64)]] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    params_total: PosInt | None = Field(None, description="Parameter count of the checkpoint, for cross-checking")
    checkpoint_bytes: PosInt | None = Field(
        None,
        description="Sum of the checkpoint's safetensors sizes, bytes (the index's total_size). When given, the weights are sized "
        "from it (quantized checkpoints): the architecture count's split over TP scaled to this total, less the parts vLLM does "
        "not load (DeepSeek's MTP layer)",
    )
    weight_bytes: PosInt | None = Field(
        None, description="Measured bytes of weights the engine loads, whole model (wins over checkpoint_bytes and the architecture count)"
    )
    reserves: EngineReserves | None = Field(None, description="Engine memory reserves for this model (win over its GPU type's and the defaults)")
    source: str = Field("", description="Where the architecture numbers come from (config.json URL and revision)")

    @field_validator("tp_degrees")
    @classmethod
    def _tp_powers(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("tp_degrees lists a degree twice")
        return sorted(v)

    @model_validator(mode="after")
    def _len(self) -> ModelSpec:
        if self.max_model_len is not None and self.max_model_len > self.architecture.max_position_embeddings:
            raise ValueError(
                f"max_model_len {self.max_model_len} exceeds the model's max_position_embeddings "
                f"{self.architecture.max_position_embeddings}"
            )
        return self

    @property
    def context_len(self) -> int:
        return self.max_model_len or self.architecture.max_position_embeddings


# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------


class Histogram(Strict):
    """Counts of values per bin: bin i holds values in (edges[i], edges[i+1]]."""

    edges: list[NonNegFloat] = Field(min_length=2)
    counts: list[NonNegFloat] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Histogram:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError("a histogram needs len(edges) == len(counts) + 1")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("histogram edges must increase strictly")
        if sum(self.counts) <= 0:
            raise ValueError("histogram counts are all zero")
        return self


class TokenDist(Strict):
    """A token-length distribution: mean plus percentiles, or a histogram (or both).

    `percentiles` maps a percentile in (0, 100] to tokens, e.g. {50: 1200, 90: 3100, 99: 6000}.
    """

    mean: PosFloat | None = None
    percentiles: dict[Annotated[float, Field(gt=0, le=100)], NonNegFloat] = Field(default_factory=dict)
    histogram: Histogram | None = None
    max: PosFloat | None = None

    @model_validator(mode="after")
    def _enough(self) -> TokenDist:
        if self.histogram is None and self.mean is None:
            raise ValueError("give 'mean' (with optional 'percentiles') or a 'histogram'")
        keys = sorted(self.percentiles)
        vals = [self.percentiles[k] for k in keys]
        if any(b < a for a, b in zip(vals, vals[1:])):
            raise ValueError("percentile values must not decrease as the percentile grows")
        return self

    def _hist_mean(self) -> float:
        h = self.histogram
        assert h is not None
        mids = [(a + b) / 2 for a, b in zip(h.edges, h.edges[1:])]
        return sum(m * c for m, c in zip(mids, h.counts)) / sum(h.counts)

    def mean_tokens(self) -> float:
        if self.mean is not None:
            return float(self.mean)
        return self._hist_mean()

    def quantile(self, pct: float) -> float:
        """Tokens at percentile pct (0-100), interpolated linearly between known points."""
        if self.histogram is not None and not self.percentiles:
            h = self.histogram
            total = sum(h.counts)
            target = total * pct / 100.0
            acc = 0.0
            for lo, hi, c in zip(h.edges, h.edges[1:], h.counts):
                if c > 0 and acc + c >= target:
                    return lo + (hi - lo) * (target - acc) / c
                acc += c
            return float(h.edges[-1])
        points = {float(k): float(v) for k, v in self.percentiles.items()}
        if self.mean is not None and 50.0 not in points:
            # with only a mean, treat it as the median (a symmetric guess); stated in the docs
            points.setdefault(50.0, float(self.mean))
        if self.max is not None:
            points[100.0] = max(float(self.max), max(points.values(), default=0.0))
        keys = sorted(points)
        if pct <= keys[0]:
            return points[keys[0]]
        if pct >= keys[-1]:
            return points[keys[-1]]
        for a, b in zip(keys, keys[1:]):
            if a <= pct <= b:
                t = (pct - a) / (b - a)
                return points[a] + t * (points[b] - points[a])
        return points[keys[-1]]  # pragma: no cover


class Priority(str, Enum):
    interactive = "interactive"
    batch = "batch"


class Slo(Strict):
    percentile: Annotated[float, Field(gt=0, le=100)] = 95.0
    latency_ms: PosFloat = Field(description="End-to-end latency of one query (the whole workflow), ms")


class Arrival(Strict):
    source: Name
    rate_per_s: PosFloat = Field(description="Queries (workflow runs) per second from this source")
    peak_to_mean: Annotated[float, Field(ge=1, le=1000)] = Field(1.0, description="Burstiness: peak over mean rate")


class Role(Strict):
    name: Name
    model: Name
    calls_per_query: PosFloat = Field(description="Mean LLM calls of this role per query (loops unrolled)")
    depends_on: list[Name] = Field(default_factory=list, description="Roles that must finish before this one starts")
    input_tokens: TokenDist
    output_tokens: TokenDist
    reserve_output_tokens: PosFloat | None = Field(
        None,
        description="Output tokens per call to reserve KV for: the mean over calls of a role-aware predicted high "
        "percentile (written by `maestro-plan fit`). Unset: use output_tokens at the planner's percentile.",
    )
    shared_prefix: bool = Field(False, description="Calls share long prompt prefixes (enables prefix caching)")
    description: str = ""


class Workflow(Strict):
    """A multi-agent workflow: a DAG of roles, each an LLM call to one model."""

    name: Name
    description: str = ""
    priority: Priority
    slo: Slo
    arrivals: list[Arrival] = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)
    sources_note: str = Field("", description="Where the rates and lengths come from")

    @model_validator(mode="after")
    def _roles(self) -> Workflow:
        names = [r.name for r in self.roles]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"role names repeat: {sorted(dup)}")
        srcs = [a.source for a in self.arrivals]
        if len(set(srcs)) != len(srcs):
            raise ValueError("arrivals name the same source twice")
        return self

    @property
    def total_rate_per_s(self) -> float:
        return math.fsum(a.rate_per_s for a in self.arrivals)


class WorkloadFile(Strict):
    """A workloads/*.yaml file: one workflow, or several under `workflows:`."""

    workflows: list[Workflow] = Field(min_length=1)


# --------------------------------------------------------------------------------------------
# Everything the pipeline reads
# --------------------------------------------------------------------------------------------


class Inputs(BaseModel):
    """The three inputs, loaded and cross-validated, plus the GPU table in force."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    inventory: Inventory
    gpu_types: dict[str, GpuType]
    models: dict[str, ModelSpec]
    workflows: list[Workflow]
    paths: dict[str, str] = Field(default_factory=dict, description="inventory/models/workloads paths read")
