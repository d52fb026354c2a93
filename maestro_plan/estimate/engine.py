"""Pinned serving-engine defaults (vLLM), read from maestro_plan/data/vllm.yaml.

The numbers in that file cite the vLLM source lines they come from (gpu_memory_utilization default,
KV block size, max_num_seqs defaults, the --kv-cache-memory-bytes flag) and the llm-d planner
calibration of activation and non-torch memory (DESIGN.md section 2). Manifests and the memory
model use the same object, so the plan and the engine it starts agree on the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_plan.errors import InputError

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "vllm.yaml"


@dataclass(frozen=True)
class EngineDefaults:
    """Defaults of one pinned engine version. Byte figures are per GPU."""

    name: str
    version: str
    image: str
    gpu_memory_utilization: float
    block_size: int
    max_num_seqs: int
    kv_cache_memory_flag: str | None
    activation_bytes_dense: int
    activation_bytes_moe: int
    non_torch_bytes_tp1: int
    non_torch_bytes_tp_multi: int
    # extras (optional for other engines)
    cuda_graph_bytes: int = 0
    max_num_seqs_large_gpu: int | None = None
    large_gpu_min_hbm_gib: float = 70.0
    max_num_batched_tokens: int = 2048
    max_num_batched_tokens_large_gpu: int | None = None
    vocab_padding: int = 64
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def activation_bytes(self, is_moe: bool) -> int:
        return self.activation_bytes_moe if is_moe else self.activation_bytes_dense

    def non_torch_bytes(self, tp: int) -> int:
        """Non-torch memory per GPU (CUDA context, NCCL / custom all-reduce buffers at TP >= 2)."""
        return self.non_torch_bytes_tp1 if tp <= 1 else self.non_torch_bytes_tp_multi

    def max_num_seqs_for(self, hbm_gib: float, gpu_name: str = "") -> int:
        """vLLM's default --max-num-seqs for the OpenAI server on this GPU (arg_utils.get_batch_defaults)."""
        if self.max_num_seqs_large_gpu and hbm_gib >= self.large_gpu_min_hbm_gib and "a100" not in gpu_name.lower():
            return self.max_num_seqs_large_gpu
        return self.max_num_seqs

    def max_num_batched_tokens_for(self, hbm_gib: float, gpu_name: str = "") -> int:
        if self.max_num_batched_tokens_large_gpu and hbm_gib >= self.large_gpu_min_hbm_gib and "a100" not in gpu_name.lower():
            return self.max_num_batched_tokens_large_gpu
        return self.max_num_batched_tokens


_REQUIRED = (
    "name",
    "version",
    "image",
    "gpu_memory_utilization",
    "block_size",
    "max_num_seqs",
    "activation_bytes_dense",
    "activation_bytes_moe",
    "non_torch_bytes_tp1",
    "non_torch_bytes_tp_multi",
)


def load_engine_defaults(path: str | Path = DATA_FILE) -> EngineDefaults:
    """Read an engine-defaults file (the format of maestro_plan/data/vllm.yaml)."""
    from maestro_plan.load.loader import read_document

    doc: Any = read_document(path)
    if not isinstance(doc, dict):
        raise InputError("engine defaults must be a mapping.", file=path)
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise InputError(f"engine defaults lack {', '.join(missing)}.", file=path, hint="add them with their source.")
    util = float(doc["gpu_memory_utilization"])
    if not 0 < util <= 1:
        raise InputError(f"gpu_memory_utilization {util} is outside (0, 1].", file=path, field="gpu_memory_utilization")
    return EngineDefaults(
        name=str(doc["name"]),
        version=str(doc["version"]),
        image=str(doc["image"]),
        gpu_memory_utilization=util,
        block_size=int(doc["block_size"]),
        max_num_seqs=int(doc["max_num_seqs"]),
        kv_cache_memory_flag=doc.get("kv_cache_memory_flag"),
        activation_bytes_dense=int(doc["activation_bytes_dense"]),
        activation_bytes_moe=int(doc["activation_bytes_moe"]),
        non_torch_bytes_tp1=int(doc["non_torch_bytes_tp1"]),
        non_torch_bytes_tp_multi=int(doc["non_torch_bytes_tp_multi"]),
        cuda_graph_bytes=int(doc.get("cuda_graph_bytes", 0)) if doc.get("cuda_graph_memory_counted", True) else 0,
        max_num_seqs_large_gpu=int(doc["max_num_seqs_large_gpu"]) if doc.get("max_num_seqs_large_gpu") else None,
        large_gpu_min_hbm_gib=float(doc.get("large_gpu_min_hbm_gib", 70)),
        max_num_batched_tokens=int(doc.get("max_num_batched_tokens", 2048)),
        max_num_batched_tokens_large_gpu=int(doc["max_num_batched_tokens_large_gpu"]) if doc.get("max_num_batched_tokens_large_gpu") else None,
        vocab_padding=int(doc.get("vocab_padding", 64)),
        sources={str(k): str(v) for k, v in (doc.get("sources") or {}).items()},
    )


VLLM: EngineDefaults = load_engine_defaults()
