"""Configuration sweep of one model for one request shape, AIConfigurator style: GPU type x TP x
weight format x max_num_seqs, each point's speed from the estimator (estimate.perf, estimate.memory),
and the Pareto front of throughput per GPU (and per dollar) against speed per user.

For a point (GPU g, TP t, format q, B = max_num_seqs sequences of `prompt + output` tokens):
- it exists when the weights fit and B such sequences fit the KV pool (replica_memory, vLLM's
  accounting) and B does not exceed vLLM's default max_num_seqs cap for the GPU;
- TPOT = decode_step_ms(B, context = prompt + output / 2) (the mean context over a decode),
  TTFT = prefill_ms(prompt) (batch 1, no prefix-cache hit: the estimator's definition);
- tokens/s/user = 1000 / TPOT; tokens/s/GPU = B x 1000 / TPOT / t; tokens per dollar =
  tokens/s/GPU x 3600 / the GPU's list price per hour (gpu_types price_per_gpu_hour).
Formats: the checkpoint's own, plus FP8 (per-channel scales, vLLM `--quantization fp8`) for a
16-bit checkpoint on a GPU with FP8 tensor cores (spec-sheet FP8 TFLOP/s > 0): a what-if of the same
architecture served in FP8, marked as such.

The configuration "the planner would pick" is the Pareto point with the most tokens per dollar
among those within the TTFT and TPOT limits given (the planner minimises $ for the demand it must
serve at an SLO; estimate.capacity replica_capacity is its per-replica figure).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from maestro_plan.load.schema import GpuType, ModelSpec, Quantization

SEQS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
"""max_num_seqs values tried: powers of two up to vLLM's largest default cap (1024 on >=70 GiB
GPUs, engine.py), cut at 512 to keep the sweep to a few hundred points."""


@dataclass(frozen=True)
class Point:
    gpu: str
    tp: int
    weights: str  # weight format: the checkpoint's dtype, or "fp8 (what-if)"
    max_num_seqs: int
    ttft_ms: float
    tpot_ms: float
    tokens_per_s_user: float
    tokens_per_s_gpu: float
    tokens_per_dollar: float
    price_per_gpu_hour: float

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def formats(model: ModelSpec, gpu: GpuType) -> list[tuple[str, ModelSpec]]:
    """The weight formats tried on `gpu`: the checkpoint's, and FP8 where the GPU has it."""
    out = [(model.weight_dtype, model)]
    if model.weight_dtype in ("bf16", "fp16", "fp32") and (gpu.fp8_tflops or 0) > 0:
        out.append(("fp8 (what-if)", model.model_copy(update={"weight_dtype": "fp8", "quantization": Quantization(method="fp8")})))
    return out


def sweep(model: ModelSpec, gpus: dict[str, GpuType], *, prompt: int, output: int) -> list[Point]:
    """Every feasible (GPU, TP, format, max_num_seqs) point, in a fixed order."""
    from maestro_plan.estimate import decode_step_ms, prefill_ms, replica_memory
    from maestro_plan.estimate.engine import VLLM
    from maestro_plan.estimate.memory import kv_bytes_per_sequence

    tokens = min(prompt + output, model.context_len)
    out: list[Point] = []
    for gid in sorted(gpus):
        gpu = gpus[gid]
        cap = VLLM.max_num_seqs_for(gpu.hbm_gib, gpu.name)
        for label, m in formats(model, gpu):
            for tp in sorted(model.tp_degrees):
                mem = replica_memory(m, gpu, tp, max_model_len=m.context_len)
                if mem.kv_pool_bytes_per_gpu <= 0:
                    continue
                per_seq = kv_bytes_per_sequence(m, tp, math.ceil(tokens / VLLM.block_size) * VLLM.block_size)
                fit = int(mem.kv_pool_bytes_per_gpu // per_seq) if per_seq > 0 else cap
                ttft = prefill_ms(m, gpu, tp, prompt)
                for b in SEQS:
                    if b > min(fit, cap):
                        break
                    tpot = decode_step_ms(m, gpu, tp, b, prompt + output // 2)
                    per_gpu = b * 1000.0 / tpot / tp
                    price = gpu.price_per_gpu_hour
                    out.append(Point(gid, tp, label, b, ttft, tpot, 1000.0 / tpot, per_gpu, per_gpu * 3600.0 / price if price > 0 else math.inf, price))
    return out


def pareto(points: list[Point], y: str = "tokens_per_s_gpu") -> list[Point]:
    """Points no other point beats on both tokens/s/user and `y` (sorted by tokens/s/user)."""
    front: list[Point] = []
    best_y = -math.inf
    for p in sorted(points, key=lambda p: (-p.tokens_per_s_user, -getattr(p, y), p.gpu, p.tp, p.weights, p.max_num_seqs)):
        if getattr(p, y) > best_y:
            front.append(p)
            best_y = getattr(p, y)
    return sorted(front, key=lambda p: p.tokens_per_s_user)


def pick(points: list[Point], *, ttft_ms: float | None, tpot_ms: float | None) -> Point | None:
    """The most tokens per dollar within the limits (None: nothing meets them)."""
    ok = [p for p in points if (ttft_ms is None or p.ttft_ms <= ttft_ms) and (tpot_ms is None or p.tpot_ms <= tpot_ms)]
    return max(ok, key=lambda p: (p.tokens_per_dollar, p.tokens_per_s_user, -p.tp), default=None)


def plot_png(points: list[Point], chosen: Point | None, title: str) -> bytes:
    """Tokens/s/GPU and tokens per dollar against tokens/s/user, every point and the two fronts."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), dpi=100)
    FigureCanvasAgg(fig)
    gpus = sorted({p.gpu for p in points})
    cmap = matplotlib.colormaps["tab10" if len(gpus) <= 10 else "tab20"]
    for k, (y, label) in enumerate((("tokens_per_s_gpu", "output tokens/s per GPU"), ("tokens_per_dollar", "output tokens per dollar"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, g in enumerate(gpus):
            sel = [p for p in points if p.gpu == g]
            ax.scatter([p.tokens_per_s_user for p in sel], [getattr(p, y) for p in sel], s=12, color=cmap(i), alpha=0.6, label=g)
        front = pareto(points, y)
        ax.plot([p.tokens_per_s_user for p in front], [getattr(p, y) for p in front], color="black", linewidth=1.2, label="Pareto front")
        if chosen is not None:
            ax.scatter([chosen.tokens_per_s_user], [getattr(chosen, y)], marker="*", s=200, color="gold", edgecolor="black", zorder=5, label="planner's pick")
        ax.set_xlabel("output tokens/s per user (1000 / TPOT)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if k == 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


__all__ = ["Point", "SEQS", "formats", "pareto", "pick", "plot_png", "sweep"]
