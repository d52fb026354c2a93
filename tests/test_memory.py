"""Memory arithmetic of one replica against hand-computed values from real config.json files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.estimate import (
    VLLM,
    kv_bytes_per_sequence,
    kv_bytes_per_token_per_gpu,
    replica_memory,
    weight_bytes_total,
    weights_bytes_per_gpu,
)
from maestro_plan.estimate.memory import active_param_count, param_count
from maestro_plan.load.schema import GpuType, ModelSpec

GIB = 2**30
REPO = Path(__file__).resolve().parent.parent

H100 = GpuType(
    id="h100-sxm", name="NVIDIA H100 SXM5 80GB", hbm_gib=79.65, hbm_tbps=3.35, bf16_tflops=989.5, fp8_tflops=1979,
    interconnect_gbps=450, host_to_gpu_gbps=64, price_per_gpu_hour=1.0,
)


def spec(id_: str, *, weight_dtype: str = "bf16", quantization: dict | None = None, kv: str = "auto", **arch) -> ModelSpec:
    arch.setdefault("model_type", "llama")
    arch.setdefault("max_position_embeddings", 131072)
    return ModelSpec(id=id_, hf_repo="org/" + id_, architecture=arch, weight_dtype=weight_dtype, quantization=quantization or {}, kv_cache_dtype=kv)


# meta-llama/Llama-3.1-8B config.json
LLAMA_8B = dict(num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=128256)
# meta-llama/Llama-3.2-1B config.json (tied embeddings)
LLAMA_1B = dict(num_hidden_layers=16, hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64, intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True)
# mistralai/Mixtral-8x7B-v0.1 config.json
MIXTRAL = dict(model_type="mixtral", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=32000, num_experts=8, num_experts_per_tok=2)
# Qwen/Qwen3-30B-A3B config.json
QWEN3_MOE = dict(model_type="qwen3_moe", num_hidden_layers=48, hidden_size=2048, num_attention_heads=32, num_key_value_heads=4, head_dim=128, intermediate_size=6144, moe_intermediate_size=768, vocab_size=151936, num_experts=128, num_experts_per_tok=8)
# deepseek-ai/DeepSeek-V3 config.json
DEEPSEEK_V3 = dict(
    model_type="deepseek_v3", num_hidden_layers=61, hidden_size=7168, num_attention_heads=128, num_key_value_heads=128, intermediate_size=18432,
    vocab_size=129280, max_position_embeddings=163840, num_experts=256, num_experts_per_tok=8, moe_intermediate_size=2048, n_shared_experts=1,
    first_k_dense_replace=3, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, num_nextn_predict_layers=1,
)
# google/gemma-2-9b config.json (sliding window 4096 on every other layer)
GEMMA2 = dict(model_type="gemma2", num_hidden_layers=42, hidden_size=3584, num_attention_heads=16, num_key_value_heads=8, head_dim=256, intermediate_size=14336, vocab_size=256000, tie_word_embeddings=True, max_position_embeddings=8192, sliding_window=4096, sliding_window_layers=21)


# ---------------------------------------------------------------- dense / GQA


def test_llama_8b_parameters_and_bytes_match_the_published_count():
    m = spec("l8", **LLAMA_8B)
    assert param_count(m) == 8_030_261_248  # the Llama-3.1-8B parameter count
    assert weight_bytes_total(m) == 2 * 8_030_261_248


def test_llama_8b_per_gpu_weights_at_tp2_by_hand():
    m = spec("l8", **LLAMA_8B)
    embed = (128256 // 2) * 4096  # vocabulary (already a multiple of 64) split over 2 GPUs
    layer = (
        2 * 4096  # two RMSNorms (replicated)
        + 16 * 128 * 4096  # q: 16 of 32 heads
        + 2 * 4 * 128 * 4096  # k, v: 4 of 8 KV heads
        + 4096 * 16 * 128  # o (row-parallel)
        + 2 * 7168 * 4096  # gate, up: half of 14336
        + 4096 * 7168  # down
    )
    params = 2 * embed + 4096 + 32 * layer
    assert weights_bytes_per_gpu(m, 2) == 2 * params


def test_gqa_kv_bytes_per_token_split_and_replicated():
    m = spec("l8", **LLAMA_8B)
    assert kv_bytes_per_token_per_gpu(m, 1) == 32 * 2 * 8 * 128 * 2 == 131072
    assert kv_bytes_per_token_per_gpu(m, 2) == 65536
    assert kv_bytes_per_token_per_gpu(m, 8) == 16384
    # TP 16 > 8 KV heads: each GPU keeps one (replicated) KV head, no further saving
    assert kv_bytes_per_token_per_gpu(m, 16) == 16384
    fp8 = spec("l8f", kv="fp8", **LLAMA_8B)
    assert kv_bytes_per_token_per_gpu(fp8, 1) == 65536


def test_kv_replication_keeps_kv_weights_per_gpu():
    m = spec("l8", **LLAMA_8B)
    # going from TP 8 to TP 16 halves q/o/MLP but not k/v (one replicated head each)
    w8, w16 = weights_bytes_per_gpu(m, 8), weights_bytes_per_gpu(m, 16)
    kv_layer = 2 * 1 * 128 * 4096 * 2 * 32  # bytes of k and v, one head, all layers
    assert w16 > w8 / 2
    assert w16 - (w8 - kv_layer) / 2 == pytest.approx(kv_layer, rel=0.05)


def test_tied_embeddings_counted_once():
    m = spec("l1", **LLAMA_1B)
    assert param_count(m) == 1_235_814_400  # Llama-3.2-1B
    untied = spec("l1u", **{**LLAMA_1B, "tie_word_embeddings": False})
    assert param_count(untied) - param_count(m) == 128256 * 2048


# ---------------------------------------------------------------- MoE


def test_mixtral_total_and_active_parameters():
    m = spec("mx", **MIXTRAL)
    assert param_count(m) == 46_702_792_704  # Mixtral-8x7B
    # "12.9B active parameters" (Mistral AI), embedding table included
    assert active_param_count(m) + 32000 * 4096 == pytest.approx(12.9e9, rel=0.01)


def test_mixtral_experts_split_over_tp_router_replicated():
    m = spec("mx", **MIXTRAL)
    embed = (32000 // 2) * 4096
    layer = 2 * 4096 + 16 * 128 * 4096 + 2 * 4 * 128 * 4096 + 4096 * 16 * 128 + 8 * 3 * 4096 * 7168 + 8 * 4096
    assert weights_bytes_per_gpu(m, 2) == 2 * (2 * embed + 4096 + 32 * layer)


def test_qwen3_moe_parameters():
    m = spec("q3", **QWEN3_MOE)
    assert param_count(m) == 30_532_122_624  # Qwen3-30B-A3B
    # "3.3B activated" (Qwen) counts the embedding table, which a token reads one row of
    assert active_param_count(m) + 151936 * 2048 == pytest.approx(3.3e9, rel=0.02)


# ---------------------------------------------------------------- MLA (DeepSeek-V3, fp8)


def test_deepseek_v3_parameters_and_mla_kv():
    m = spec("dsv3", weight_dtype="fp8", quantization={"method": "fp8", "group_size": 128}, **DEEPSEEK_V3)
    assert param_count(m) == pytest.approx(671e9, rel=0.005)  # "671B total parameters"
    assert param_count(m, include_mtp=True) == 684_489_845_504  # tensor inventory incl. the MTP layer
    assert active_param_count(m) == pytest.approx(37e9, rel=0.03)  # "37B activated"
    # MLA: (kv_lora_rank + qk_rope_head_dim) x layers x 2 bytes, the same on every GPU of a TP group
    assert kv_bytes_per_token_per_gpu(m, 1) == 61 * (512 + 64) * 2 == 70272
    assert kv_bytes_per_token_per_gpu(m, 8) == 70272


def test_deepseek_fp8_block_scales_by_hand():
    m = spec("dsv3", weight_dtype="fp8", quantization={"method": "fp8", "group_size": 128}, **DEEPSEEK_V3)
    bf16_params = 2 * 129280 * 7168 + 7168 + 61 * (2 * 7168 + 1536 + 512)  # embed, head, norms
    bf16_params += 58 * 256 * 7168  # routers of the 58 MoE layers
    fp32 = 58 * 256  # e_score_correction_bias
    fp8_params = param_count(m) - bf16_params - fp32
    total = weight_bytes_total(m)
    scales = total - (2 * bf16_params + 4 * fp32 + fp8_params)
    # one fp32 scale per 128 x 128 block: about 4 / 16384 of the fp8 bytes
    assert scales == pytest.approx(fp8_params * 4 / 128**2, rel=0.05)


# ---------------------------------------------------------------- int4 / fp8 per channel


def test_int4_awq_group_scales_by_hand():
    m = spec("l8awq", weight_dtype="int4", quantization={"method": "awq", "group_size": 128}, **LLAMA_8B)
    shapes = [(4096, 4096), (1024, 4096), (1024, 4096), (4096, 4096), (14336, 4096), (14336, 4096), (4096, 14336)]
    per_layer = sum(o * i / 2 + math.ceil(i / 128) * o * (2 + 0.5) for o, i in shapes)  # 4-bit + fp16 scale + 4-bit zero
    bf16 = 2 * 128256 * 4096 + 32 * 2 * 4096 + 4096  # embed, head, norms
    assert weight_bytes_total(m) == math.ceil(32 * per_layer + 2 * bf16)
    assert weight_bytes_total(m) / weight_bytes_total(spec("l8", **LLAMA_8B)) == pytest.approx(0.357, abs=0.01)


def test_fp8_per_channel_scales():
    m = spec("l8fp8", weight_dtype="fp8", quantization={"method": "compressed-tensors"}, **LLAMA_8B)
    linear = 32 * (2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096)
    outs = 32 * (4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096)
    bf16 = 2 * 128256 * 4096 + 32 * 2 * 4096 + 4096
    assert weight_bytes_total(m) == linear + 4 * outs + 2 * bf16


# ---------------------------------------------------------------- sliding window


def test_gemma2_sliding_window_caps_half_the_layers():
    m = spec("g2", **GEMMA2)
    per_layer = 2 * 8 * 256 * 2
    assert kv_bytes_per_token_per_gpu(m, 1) == 42 * per_layer
    assert kv_bytes_per_sequence(m, 1, 2048) == 42 * per_layer * 2048  # below the window: all layers
    assert kv_bytes_per_sequence(m, 1, 8192) == per_layer * (21 * 8192 + 21 * 4096)


# ---------------------------------------------------------------- vLLM accounting


def test_replica_memory_follows_vllm_arithmetic():
    m = spec("l8", **LLAMA_8B)
    mem = replica_memory(m, H100, 1)
    budget = int(int(79.65 * GIB) * VLLM.gpu_memory_utilization)
    pool = budget - 16_060_522_496 - VLLM.activation_bytes_dense - VLLM.non_torch_bytes_tp1 - VLLM.cuda_graph_bytes
    assert VLLM.gpu_memory_utilization == 0.92 and VLLM.block_size == 16
    assert mem.budget_bytes_per_gpu == budget
    assert mem.kv_pool_bytes_per_gpu == pool
    assert mem.max_kv_tokens == pool // (131072 * 16) * 16
    assert mem.max_kv_tokens % VLLM.block_size == 0
    assert mem.fits
    # about 55.5 GiB of KV, 455 k tokens: what vLLM logs for Llama-3.1-8B on one H100 at 0.92
    assert mem.max_kv_tokens == pytest.approx(455_000, rel=0.01)


def test_tp_multi_uses_nccl_non_torch_memory_and_explicit_kv_budget():
    m = spec("l8", **LLAMA_8B)
    mem2 = replica_memory(m, H100, 2)
    assert mem2.non_torch_bytes_per_gpu == VLLM.non_torch_bytes_tp_multi
    fixed = replica_memory(m, H100, 1, kv_cache_bytes_per_gpu=10 * GIB)
    assert fixed.kv_pool_bytes_per_gpu == 10 * GIB
    assert fixed.max_kv_tokens == 10 * GIB // (131072 * 16) * 16
    lower = replica_memory(m, H100, 1, gpu_memory_utilization=0.5)
    assert lower.kv_pool_bytes_per_gpu < replica_memory(m, H100, 1).kv_pool_bytes_per_gpu


def test_model_too_big_does_not_fit_and_reports_shortfall():
    big = spec("l70", num_hidden_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8, intermediate_size=28672, vocab_size=128256)
    mem = replica_memory(big, H100, 1)
    assert not mem.fits
    assert mem.shortfall_bytes_per_gpu == -mem.kv_pool_bytes_per_gpu > 50 * GIB
    assert replica_memory(big, H100, 4).fits
    # max_model_len that does not fit the pool: vLLM refuses to start
    assert not replica_memory(spec("l8", **LLAMA_8B), H100, 1, kv_cache_bytes_per_gpu=GIB, max_model_len=131072).fits


@settings(max_examples=40, deadline=None)
@given(
    which=st.sampled_from([LLAMA_8B, MIXTRAL, QWEN3_MOE, GEMMA2, LLAMA_1B]),
    tp=st.sampled_from([1, 2, 4, 8]),
)
def test_per_gpu_weights_shrink_with_tp_and_cover_the_total(which, tp):
    m = spec("x", **which)
    total = weight_bytes_total(m)
    per = weights_bytes_per_gpu(m, tp)
    assert per * tp >= total * 0.999  # replicated parts make the sum at least the total
    if tp > 1:
        assert per < weights_bytes_per_gpu(m, tp // 2)
    assert kv_bytes_per_token_per_gpu(m, tp) <= kv_bytes_per_token_per_gpu(m, 1)


# ---------------------------------------------------------------- real checkpoints


def _checkpoint_rows() -> list[dict[str, str]]:
    path = REPO / "maestro_plan" / "data" / "checkpoint_sizes.csv"
    if not path.exists():
        pytest.skip("maestro_plan/data/checkpoint_sizes.csv is absent")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_weights_within_2pct_of_real_checkpoints():
    from maestro_plan.load.loader import load_models

    rows = _checkpoint_rows()
    models, _ = load_models(REPO / "models")
    checked = 0
    for r in rows:
        m = models.get(r["model_id"])
        if m is None:
            continue
        ours = weight_bytes_total(m, as_stored=True, include_mtp=True)  # the checkpoint holds the MTP layer
        assert ours == pytest.approx(int(r["safetensors_total_bytes"]), rel=0.02), r["model_id"]
        checked += 1
    assert checked >= 10
