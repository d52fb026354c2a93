"""The plan: the single artifact the solver writes and every emitter reads (plan.json).

Versioned: SCHEMA_VERSION is written into every plan; a reader refuses a plan of a newer major
version. `maestro-plan schema plan` (or `plan_json_schema()`) gives the JSON Schema, also shipped
as maestro_plan/data/plan.schema.json.

Determinism: a plan holds no timestamps and no wall-clock times, so that the same inputs and seed
give byte-identical files. Wall-clock solve time goes to solve-stats.json beside it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"

Frac = Annotated[float, Field(ge=0, le=1)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputDigest(_M):
    inventory_name: str
    inventory_sha256: str
    models_sha256: str
    workloads_sha256: str
    models: list[str] = Field(description="Model ids in the catalogue the plan was made from")
    workflows: list[str]


class Settings(_M):
    objective: Literal["cost", "goodput"] = "cost"
    solver: Literal["cpsat", "highs", "cbc", "greedy"] = "cpsat"
    seed: int = 0
    time_limit_s: float = 60.0
    headroom: float = Field(0.2, description="Capacity kept spare above demand (0.2 = provision 1.2x)")
    kv_reservation: Literal["predicted", "naive"] = "predicted"
    length_percentile: float = Field(99.0, description="Percentile of role lengths the KV reservation covers")
    min_zones_interactive: int = 2
    change_weight: float = Field(0.0, description="Penalty weight on change against --current (0 = none)")
    vllm_version: str = ""
    gpu_memory_utilization: float = Field(0.92, description="Engine default memory fraction assumed for single-engine GPUs")
    capacity_table_sha256: str | None = Field(
        None,
        description="Measured capacity table the solver used (--capacity-table), as the SHA-256 of its rows' canonical JSON "
        "(a list of row objects, keys sorted, separators ',' and ':'); null: capacities are the estimator's",
    )
    slo_check: Literal["none", "model", "sim"] = Field(
        "none", description="How the plan's percentile SLOs were checked after the solve: none, the latency model, or model and simulation"
    )
    allow_slo_miss: bool = Field(False, description="--allow-slo-miss: the plan was written although some workflow misses its SLO")


class SolveInfo(_M):
    status: Literal["optimal", "feasible", "infeasible", "heuristic"]
    objective: float | None = None
    bound: float | None = None
    gap: float | None = Field(None, description="(objective - bound) / |objective|, 0 when proven optimal")
    deterministic_time: float | None = Field(None, description="Solver work units (CP-SAT deterministic time); reproducible, unlike seconds")
    heuristic_objective: float | None = Field(None, description="Objective of the greedy warm start, for comparison")
    lp_bound: float | None = None
    gap_covers: list[str] = Field(
        default_factory=list,
        description="What `bound` is a lower bound of: the problem within these candidate restrictions (the gap says nothing "
        "about plans outside them); empty in plans written before the field existed",
    )


class Replica(_M):
    """One engine (vLLM server) on `tp` GPUs of one node; possibly sharing those GPUs with others."""

    id: str = Field(description="Stable, unique id, e.g. 'llama-3.1-8b.us-east-1.h100-a-003.g0'")
    model: str
    cluster: str
    zone: str
    node_pool: str
    node: str
    gpu_type: str
    gpu_indices: list[int] = Field(min_length=1)
    tp: int = Field(ge=1)
    worker_nodes: list[str] = Field(
        default_factory=list,
        description="Further nodes of a replica that spans several nodes (pipeline parallel, one stage of tp GPUs per node, "
        "`node` first); emitted as a LeaderWorkerSet. Empty for a single-node replica.",
    )
    memory_fraction: Frac = Field(description="--gpu-memory-utilization of this engine (fraction of each GPU's HBM)")
    compute_share: Frac = Field(1.0, description="Fraction of the GPUs' compute this engine may use (co-location)")
    weights_bytes_per_gpu: int = Field(ge=0)
    kv_cache_bytes_per_gpu: int = Field(ge=0, description="KV pool reserved on each GPU (--kv-cache-memory-bytes)")
    overhead_bytes_per_gpu: int = Field(ge=0, description="Activation peak + non-torch memory (CUDA graphs, NCCL)")
    max_model_len: int = Field(ge=1)
    max_num_seqs: int = Field(ge=1)
    kv_tokens: int = Field(ge=0, description="Tokens of KV the reservation holds (whole replica)")
    capacity_rps: float = Field(ge=0, description="Sustainable requests/s of this replica at the SLO, for its request mix")
    load_rps: float = Field(0.0, ge=0, description="Requests/s the routing sends here")
    latency_budget_ms: float | None = None
    predicted_latency_ms: float | None = Field(None, description="Mean per-call latency at the planned load")
    priority: Literal["interactive", "batch"] = "interactive"
    roles: list[str] = Field(default_factory=list, description="workflow/role pairs served")
    prefix_caching: bool = False
    price_per_hour: float = Field(0.0, ge=0, description="USD per hour of this replica's GPU share")
    swap_models: list[str] = Field(
        default_factory=list,
        description="Warm-standby swap slot: models whose sleeping engines (weights in host DRAM) take turns on these "
        "GPUs; this replica is the slot's largest model. Empty for an ordinary replica.",
    )


class Standby(_M):
    """A model kept warm in host DRAM of a node, loaded onto GPUs on demand (hierarchical weight caching)."""

    model: str
    cluster: str
    node: str
    host_dram_bytes: int = Field(ge=0)
    cold_start_ms: float = Field(ge=0, description="weight bytes / host-to-GPU bandwidth (+ engine start)")
    serves_rate_rps: float = Field(0.0, ge=0)
    reason: str = ""
    slot_replica: str | None = Field(None, description="Id of the replica whose GPU slice is the swap slot it wakes up on")
    gpu_indices: list[int] = Field(default_factory=list, description="GPUs of the swap slot on `node`")
    capacity_rps: float = Field(0.0, ge=0, description="Requests/s the slot sustains for this model, every request charged a full swap")


class Route(_M):
    """Fraction of one source's traffic for one model that goes to one replica (or standby)."""

    source: str
    model: str
    replica: str = Field(description="Replica id (or 'standby:<model>@<node>')")
    fraction: Frac
    rate_rps: float = Field(ge=0)
    network_latency_ms: float = Field(ge=0)
    priority: Literal["interactive", "batch"] = "interactive"
    request_class: str = Field(
        "",
        description="The request class these calls belong to ('workflow/role': each role's calls of a model from a source are a class, "
        "with its own lengths and budget); '' = all of the pair's calls. `fraction` stays the share of the whole (source, model) demand, "
        "so a pair's fractions add up to 1 over its classes; `rate_rps` is the class's routed rate.",
    )


class Demand(_M):
    """What one source needs of one model (summed over the workflows and roles that call it)."""

    source: str
    model: str
    rate_rps: float = Field(ge=0)
    priority: Literal["interactive", "batch"]
    latency_budget_ms: float = Field(gt=0, description="Tightest per-call budget of the roles calling it")
    mean_input_tokens: float = Field(ge=0)
    mean_output_tokens: float = Field(ge=0)
    served_rps: float = Field(ge=0)
    shed_rps: float = Field(0.0, ge=0)


class KvSummary(_M):
    predicted_bytes: int = Field(description="KV reserved by this plan, all replicas, bytes")
    naive_bytes: int = Field(description="max_model_len x max_num_seqs x KV bytes per token, same replicas")
    saved_fraction: float


class Binding(_M):
    constraint: str = Field(description="Constraint family: memory, compute, capacity, demand, inventory, zones, budget, slo")
    subject: str
    slack: float
    unit: str = ""


class SloResult(_M):
    """One workflow's percentile SLO under the plan: the latency model's and the simulator's figures."""

    workflow: str
    percentile: float = Field(description="The SLO's percentile, e.g. 95 for p95")
    target_ms: float = Field(description="The SLO's end-to-end latency target, ms")
    model_ms: float | None = Field(description="The latency model's pXX (maestro_plan.estimate.latency); null: unbounded (a call has no capacity)")
    model_attainment: float = Field(ge=0, le=1, description="Fraction of the model's sampled queries within the target")
    sim_ms: float | None = Field(None, description="Simulated pXX (null: not simulated, or no query finished)")
    sim_attainment: float | None = Field(None, ge=0, le=1, description="Fraction of simulated queries within the target")
    sim_queries: int = Field(0, ge=0, description="Simulated queries the attainment counts")
    sim_seconds: float = Field(0.0, ge=0, description="Seconds of simulated arrivals")
    rounds: int = Field(1, ge=1, description="Solves the SLO loop took (1: the first plan met, or no loop)")
    slowdown_scale: float = Field(1.0, gt=0, description="Factor the loop put on this workflow's per-call budgets (1: untouched)")
    verdict: Literal["meets", "misses", "unchecked"] = Field(
        description="meets: the model's pXX and (where simulated with enough queries) the simulated attainment both meet the target"
    )


class Plan(_M):
    schema_version: str = SCHEMA_VERSION
    plan_id: str = Field(description="SHA-256 of the plan's content (every field but plan_id): equal ids mean equal plans; same inputs and settings give the same id")
    generator: str = Field(description="maestro-plan version that wrote it")
    inputs: InputDigest
    settings: Settings
    solve: SolveInfo
    cost_per_hour: float = Field(ge=0)
    gpus_used: dict[str, dict[str, int]] = Field(description="cluster -> GPU type -> GPUs used (whole GPUs)")
    replicas: list[Replica]
    standby: list[Standby] = Field(default_factory=list)
    routes: list[Route]
    demand: list[Demand]
    kv: KvSummary | None = None
    binding: list[Binding] = Field(default_factory=list)
    slo: list[SloResult] = Field(default_factory=list, description="Per workflow: percentile SLO, model and simulated figures (maestro_plan.slo)")
    notes: list[str] = Field(default_factory=list)


def plan_json_schema() -> dict:
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://maestro-plan.dev/schemas/plan-{SCHEMA_VERSION}.json"
    return schema
