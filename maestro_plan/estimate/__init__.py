"""Estimate stage: memory and speed of one replica (model x GPU type x TP), its capacity under a
latency budget, and per-model demand from workflows. Public API (the contract in use by solve,
verify and emit): see the names below."""

from maestro_plan.estimate.capacity import (
    CapacityResult,
    CapacityRow,
    CapacityTable,
    RequestMix,
    latency_at_load,
    load_capacity_table,
    replica_capacity,
)
from maestro_plan.estimate.demand import DemandClass, DemandModel, KvReservation, ModelDemand, RoleBudget, compute_demand
from maestro_plan.estimate.engine import VLLM, EngineDefaults, load_engine_defaults
from maestro_plan.estimate.memory import (
    MemoryBreakdown,
    engine_for,
    kv_bytes_per_sequence,
    kv_bytes_per_token_per_gpu,
    loaded_weight_bytes,
    replica_memory,
    weight_bytes_total,
    weights_bytes_per_gpu,
)
from maestro_plan.estimate.perf import decode_step_ms, prefill_ms

__all__ = [
    "VLLM",
    "CapacityResult",
    "CapacityRow",
    "CapacityTable",
    "DemandClass",
    "DemandModel",
    "EngineDefaults",
    "KvReservation",
    "MemoryBreakdown",
    "ModelDemand",
    "RequestMix",
    "RoleBudget",
    "compute_demand",
    "decode_step_ms",
    "engine_for",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token_per_gpu",
    "latency_at_load",
    "load_capacity_table",
    "load_engine_defaults",
    "loaded_weight_bytes",
    "prefill_ms",
    "replica_capacity",
    "replica_memory",
    "weight_bytes_total",
    "weights_bytes_per_gpu",
]
