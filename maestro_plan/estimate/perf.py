"""Speed of one replica: decode step time and prefill time from a calibrated roofline.

Decode step for B sequences each holding C tokens of context, per GPU of a TP group:

    t = max(W / (e_w * BW), F_lin / (e_c * P))        weights streamed once per step, or GEMM-bound
      + KV / (e_kv * BW)                              attention reads every sequence's KV
      + L * o_layer                                   per-layer kernel overhead (graph replay)
      + 2 L * allreduce(B * hidden * 2 bytes)         TP > 1: two all-reduces per layer

W: weight bytes a step reads (all but the embedding table; MoE: only the experts the batch touches,
E * (1 - (1 - k/E)^B) of E per layer, the expected number of distinct experts when B tokens each
pick k uniformly). F_lin = 2 x active matmul parameters x B. KV: sliding-window layers read at most
the window. BW, P: the GPU's spec-sheet HBM bandwidth and dense tensor FLOP/s (FP8 for fp8 models).

Prefill of S prompt tokens (batch 1):

    t = F_lin(S) / (e_p * P) + F_attn(S) / (e_pa * P) + W / (e_w * BW) + L * o_layer + 2 L * allreduce(S * hidden * 2)

with causal attention F_attn = 2 x S^2 x heads x head_dim per layer (QK^T and PV, half the matrix),
and the LM head applied to the last token only (vLLM computes logits for sampled positions).

The efficiency factors e_* and o_layer are fitted by `python -m maestro_plan.estimate.calibrate` on
../shared/data/measured/h100_calibration.csv and stored in maestro_plan/data/perf_calibration.yaml;
prediction uses only those constants and spec-sheet figures, never the measured rows. All-reduce
constants are cited (see the YAML). `compute_share` < 1 (several engines time-sharing one GPU)
divides the achieved bandwidth and FLOP/s by that share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from maestro_plan.estimate.memory import _bytes, _tensors, kv_bytes_per_sequence, sliding_layers
from maestro_plan.load.schema import GpuType, ModelSpec

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "data" / "perf_calibration.yaml"


@dataclass(frozen=True)
class Calibration:
    """Achieved fractions of spec-sheet figures and fixed overheads (see perf_calibration.yaml)."""

    eff_bw_weights: float = 0.80  # achieved / spec HBM bandwidth when streaming weights in decode
    eff_bw_kv: float = 0.90  # achieved / spec HBM bandwidth when attention reads the KV cache
    eff_flops_decode: float = 0.60  # achieved / spec dense tensor FLOP/s of decode GEMMs
    eff_flops_prefill: float = 0.60  # achieved / spec dense tensor FLOP/s of prefill GEMMs
    eff_flops_attn_prefill: float = 0.40  # achieved / spec FLOP/s of causal prefill attention
    overhead_ms_per_layer: float = 0.03  # per-layer kernel overhead of one step
    overhead_ms_per_step: float = 0.0  # fixed per step
    # cited, not fitted: all-reduce inside a node (see the YAML's sources)
    allreduce_latency_us: float = 9.5
    allreduce_eff_small: float = 0.12
    allreduce_eff_large: float = 0.82
    allreduce_small_bytes: int = 1 << 20
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def load_calibration(path: str | Path = CALIBRATION_FILE) -> Calibration:
    p = Path(path)
    if not p.exists():
        return Calibration()
    import yaml

    doc: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    consts = dict(doc.get("fitted", {}))
    consts.update(doc.get("cited", {}))
    names = {f.name for f in fields(Calibration)} - {"sources"}
    kwargs = {k: (int(v) if k == "allreduce_small_bytes" else float(v)) for k, v in consts.items() if k in names}
    return Calibration(**kwargs, sources={str(k): str(v) for k, v in (doc.get("sources") or {}).items()})


CALIBRATION: Calibration = load_calibration()


@dataclass(frozen=True)
class PerfProfile:
    """What the roofline needs of one (model, TP): per-GPU bytes and FLOPs."""

    layers: int
    hidden: int
    tp: int
    dense_read_bytes: float  # weights read every step, per GPU (routed experts excluded)
    expert_bytes: float  # one routed expert of one layer, per GPU
    moe_layers: int
    num_experts: int
    experts_per_tok: int
    lin_flops_per_token: float  # 2 x active matmul params per GPU (LM head included)
    lm_head_flops_per_token: float
    attn_flops_decode_per_ctx: float  # per query token per context token, all layers
    attn_flops_prefill_per_pair: float  # per (query, key) pair, all layers
    sliding_layers: int
    window: int
    weight_dtype: str


def _profile_uncached(model: ModelSpec, tp: int) -> PerfProfile:
    a = model.architecture
    ts = _tensors(model, tp, per_gpu=True)
    experts = [t for t in ts if t.name.startswith("experts.")]
    head = [t for t in ts if t.name == "lm_head"]
    embed = [t for t in ts if t.name == "embed_tokens"]
    others = [t for t in ts if not t.name.startswith("experts.") and t.name != "embed_tokens"]
    dense_bytes = float(_bytes(model, others, as_stored=False))
    if a.tie_word_embeddings:
        dense_bytes += float(_bytes(model, embed, as_stored=False))  # the tied head reads the table
        head_params = embed[0].params
    else:
        head_params = head[0].params if head else 0
    moe_layers = 0
    expert_bytes = 0.0
    if a.is_moe and a.num_experts:
        moe_layers = a.num_hidden_layers - (a.first_k_dense_replace or 0)
        expert_bytes = float(_bytes(model, experts, as_stored=False)) / max(1, moe_layers * a.num_experts)
    # linear layers (shapes known) plus the LM head (tied or not), which is a matmul too
    matmul_params = sum(t.params for t in others if t.out_features) + head_params
    if a.is_moe and a.num_experts and a.num_experts_per_tok:
        matmul_params += sum(t.params for t in experts) * a.num_experts_per_tok / a.num_experts
    heads = -(-a.num_attention_heads // tp)
    L = a.num_hidden_layers
    if a.is_mla:
        assert a.kv_lora_rank and a.qk_rope_head_dim and a.qk_nope_head_dim and a.v_head_dim
        dec = 2 * heads * (a.kv_lora_rank + a.qk_rope_head_dim) + 2 * heads * a.kv_lora_rank
        pre = 2 * heads * (a.qk_nope_head_dim + a.qk_rope_head_dim) + 2 * heads * a.v_head_dim
    else:
        dec = pre = 4 * heads * a.head_size
    return PerfProfile(
        layers=L,
        hidden=a.hidden_size,
        tp=tp,
        dense_read_bytes=dense_bytes,
        expert_bytes=expert_bytes,
        moe_layers=moe_layers,
        num_experts=a.num_experts or 0,
        experts_per_tok=a.num_experts_per_tok or 0,
        lin_flops_per_token=2.0 * matmul_params,
        lm_head_flops_per_token=2.0 * head_params,
        attn_flops_decode_per_ctx=float(dec * L),
        attn_flops_prefill_per_pair=float(pre * L) / 2.0,  # causal: half of the S x S pairs
        sliding_layers=sliding_layers(model),
        window=a.sliding_window or 0,
        weight_dtype=model.weight_dtype,
    )


_PROFILES: dict[tuple[int, int], tuple[ModelSpec, PerfProfile]] = {}


def profile(model: ModelSpec, tp: int) -> PerfProfile:
    """Cached per (model object, TP)."""
    key = (id(model), tp)
    hit = _PROFILES.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    prof = _profile_uncached(model, tp)
    _PROFILES[key] = (model, prof)
    return prof


def peak_flops(gpu: GpuType, weight_dtype: str) -> float:
    """Dense tensor FLOP/s the model's GEMMs run at: FP8 for fp8 checkpoints where supported."""
    if weight_dtype == "fp8" and gpu.fp8_tflops > 0:
        return gpu.fp8_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def expected_experts_touched(num_experts: int, k: int, tokens: float) -> float:
    """Expected distinct experts of one layer that `tokens` tokens touch, each picking k of E uniformly."""
    if num_experts <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - k / num_experts) ** max(tokens, 0.0))


def allreduce_ms(nbytes: float, tp: int, link_gbps: float, cal: Calibration = CALIBRATION) -> float:
    """One all-reduce of `nbytes` over `tp` GPUs (ring volume 2(t-1)/t x bytes), piecewise linear:
    custom all-reduce efficiency up to allreduce_small_bytes, NCCL ring efficiency beyond."""
    if tp <= 1 or nbytes <= 0:
        return 0.0
    ring = 2.0 * (tp - 1) / tp
    link = link_gbps * 1e9
    small = min(nbytes, cal.allreduce_small_bytes)
    big = max(0.0, nbytes - cal.allreduce_small_bytes)
    s = cal.allreduce_latency_us * 1e-6 + ring * small / (link * cal.allreduce_eff_small) + ring * big / (link * cal.allreduce_eff_large)
    return s * 1e3


def _check(tp: int, batch: float, share: float) -> None:
    if tp < 1:
        raise ValueError(f"TP must be >= 1, got {tp}")
    if batch <= 0:
        raise ValueError(f"batch must be > 0, got {batch}")
    if not 0 < share <= 1:
        raise ValueError(f"compute_share must be in (0, 1], got {share}")


def decode_step_ms_f(model: ModelSpec, gpu: GpuType, tp: int, batch: float, context: float, *, compute_share: float = 1.0, cal: Calibration | None = None) -> float:
    """decode_step_ms for a real-valued batch (used by the capacity model's fixed points)."""
    cal = cal or CALIBRATION
    _check(tp, batch, compute_share)
    p = profile(model, tp)
    bw = gpu.hbm_tbps * 1e12 * compute_share
    flops = peak_flops(gpu, p.weight_dtype) * compute_share
    w = p.dense_read_bytes + p.moe_layers * expected_experts_touched(p.num_experts, p.experts_per_tok, batch) * p.expert_bytes
    kv = batch * kv_bytes_per_sequence(model, tp, max(context, 0.0))
    t_w = w / (bw * cal.eff_bw_weights)
    t_c = batch * p.lin_flops_per_token / (flops * cal.eff_flops_decode)
    t_kv = kv / (bw * cal.eff_bw_kv)
    t = max(t_w, t_c) + t_kv
    ms = t * 1e3 + p.layers * cal.overhead_ms_per_layer + cal.overhead_ms_per_step
    ms += 2 * p.layers * allreduce_ms(batch * p.hidden * 2, tp, gpu.interconnect_gbps, cal)
    return ms


def prefill_ms_f(
    model: ModelSpec,
    gpu: GpuType,
    tp: int,
    prompt_tokens: float,
    *,
    compute_share: float = 1.0,
    cal: Calibration | None = None,
    logits_all_tokens: bool = False,
    batch: int = 1,
) -> float:
    """prefill_ms for a real-valued prompt length; `batch` prompts of that length in one pass.
    logits_all_tokens: apply the LM head to every prompt token (what a plain PyTorch forward does;
    used only to calibrate on such measurements)."""
    cal = cal or CALIBRATION
    _check(tp, max(prompt_tokens, 1e-9), compute_share)
    p = profile(model, tp)
    s = max(prompt_tokens, 1.0)
    bw = gpu.hbm_tbps * 1e12 * compute_share
    flops = peak_flops(gpu, p.weight_dtype) * compute_share
    body = p.lin_flops_per_token - p.lm_head_flops_per_token
    lin = batch * (body * s + p.lm_head_flops_per_token * (s if logits_all_tokens else 1.0))
    w = p.dense_read_bytes + p.moe_layers * expected_experts_touched(p.num_experts, p.experts_per_tok, batch * s) * p.expert_bytes
    if p.sliding_layers and p.window and s > p.window:
        full = p.layers - p.sliding_layers
        pairs_per_layer = s * s / 2.0
        swa_pairs = s * p.window - p.window * p.window / 2.0
        attn = p.attn_flops_prefill_per_pair / p.layers * 2.0 * (full * pairs_per_layer + p.sliding_layers * swa_pairs)
    else:
        attn = p.attn_flops_prefill_per_pair * s * s
    attn *= batch
    t = lin / (flops * cal.eff_flops_prefill) + attn / (flops * cal.eff_flops_attn_prefill) + w / (bw * cal.eff_bw_weights)
    ms = t * 1e3 + p.layers * cal.overhead_ms_per_layer + cal.overhead_ms_per_step
    ms += 2 * p.layers * allreduce_ms(batch * s * p.hidden * 2, tp, gpu.interconnect_gbps, cal)
    return ms


def decode_step_ms(model: ModelSpec, gpu: GpuType, tp: int, batch: int, context: int, *, compute_share: float = 1.0) -> float:
    """Time of one decode step (ms) for `batch` sequences each holding `context` tokens of KV."""
    return decode_step_ms_f(model, gpu, tp, float(batch), float(context), compute_share=compute_share)


def prefill_ms(model: ModelSpec, gpu: GpuType, tp: int, prompt_tokens: int, *, compute_share: float = 1.0) -> float:
    """Time (ms) to prefill one prompt of `prompt_tokens` tokens (batch 1, no prefix-cache hit)."""
    return prefill_ms_f(model, gpu, tp, float(prompt_tokens), compute_share=compute_share)
