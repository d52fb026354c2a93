"""The bundled model catalogue (models/*.yaml) and maestro_plan/data/checkpoint_sizes.csv.

Numbers are checked three ways: against the real config.json files kept in tests/data/hf_configs/,
against known architectural facts of each family, and by recounting every model's parameters from
its architecture numbers and comparing with the real checkpoint size (a wrong layer count, width or
vocabulary would move the count by far more than the 16 KB header of the one single-file checkpoint).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from maestro_plan.errors import Collector
from maestro_plan.load.loader import DATA_DIR, check_models, load_models, tp_allowed
from maestro_plan.load.schema import Architecture, ModelSpec

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
CONFIGS = Path(__file__).resolve().parent / "data" / "hf_configs"
SIZES = DATA_DIR / "checkpoint_sizes.csv"

IDS = {
    "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "qwen2.5-14b",
    "qwen2.5-32b", "qwen2.5-72b", "mistral-7b", "mixtral-8x7b", "qwen3-30b-a3b", "gemma-2-9b",
    "phi-3-mini", "deepseek-v3",
}  # fmt: skip

# bundled id -> real config.json kept in tests/data/hf_configs
SAMPLES = {
    "llama-3.1-8b": "llama-3.1-8b.json",
    "qwen2.5-7b": "qwen2.5-7b.json",
    "mixtral-8x7b": "mixtral-8x7b.json",
    "gemma-2-9b": "gemma-2-9b.json",
    "deepseek-v3": "deepseek-v3.json",
    "qwen3-30b-a3b": "qwen3-30b-a3b.json",
    "phi-3-mini": "phi-3-mini.json",
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, ModelSpec]:
    models, _ = load_models(MODELS)
    return models


@pytest.fixture(scope="module")
def sizes() -> dict[str, dict[str, str]]:
    with SIZES.open(newline="", encoding="utf-8") as f:
        return {row["model_id"]: row for row in csv.DictReader(f)}


def test_exactly_the_agreed_ids_one_file_each(catalogue: dict[str, ModelSpec]) -> None:
    assert set(catalogue) == IDS
    assert {p.stem for p in MODELS.glob("*.yaml")} == IDS  # file name == id


def test_catalogue_passes_the_loader_cross_checks(catalogue: dict[str, ModelSpec]) -> None:
    col = Collector()
    check_models(catalogue, {}, None, col)
    assert col.problems == []


@pytest.mark.parametrize("mid", sorted(IDS))
def test_entry_is_complete_and_consistent(catalogue: dict[str, ModelSpec], mid: str) -> None:
    m = catalogue[mid]
    a = m.architecture
    assert m.source == f"https://huggingface.co/{m.hf_repo}/blob/main/config.json"
    assert m.params_total and m.checkpoint_bytes and m.description and m.max_model_len
    assert m.kv_cache_dtype == "auto"
    kv = 1 if a.is_mla else a.kv_heads
    assert m.tp_degrees and all(tp_allowed(a.num_attention_heads, kv, tp) for tp in m.tp_degrees)
    if m.max_model_len < a.max_position_embeddings:
        assert "a choice" in m.description  # a served context below the model's is stated as such
    if a.sliding_window is not None:
        assert a.sliding_window_layers is not None


@pytest.mark.parametrize("mid", sorted(SAMPLES))
def test_numbers_equal_the_real_config(catalogue: dict[str, ModelSpec], mid: str) -> None:
    cfg = json.loads((CONFIGS / SAMPLES[mid]).read_text())
    a = catalogue[mid].architecture
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size",
                "vocab_size", "max_position_embeddings", "num_experts_per_tok", "moe_intermediate_size",
                "first_k_dense_replace", "n_shared_experts", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                "qk_rope_head_dim", "v_head_dim", "num_nextn_predict_layers"):  # fmt: skip
        if key in cfg:
            assert getattr(a, key) == cfg[key], key
    experts = cfg.get("num_experts", cfg.get("num_local_experts", cfg.get("n_routed_experts")))
    assert a.num_experts == experts
    if "head_dim" in cfg:
        assert a.head_dim == cfg["head_dim"]
    assert a.model_type == cfg["model_type"]


def test_family_facts(catalogue: dict[str, ModelSpec]) -> None:
    c = catalogue
    # Llama 3.2 small models tie embeddings and 1B uses 64-wide heads; 3.1 does not tie
    assert c["llama-3.2-1b"].architecture.tie_word_embeddings and c["llama-3.2-1b"].architecture.head_size == 64
    assert c["llama-3.2-3b"].architecture.tie_word_embeddings
    assert not c["llama-3.1-8b"].architecture.tie_word_embeddings
    # Qwen2.5 7B+: q/k/v bias, untied, 28 heads -> no TP 8 for 7B
    for mid in ("qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b"):
        a = c[mid].architecture
        assert a.attention_bias and not a.tie_word_embeddings and a.max_position_embeddings == 32768
    assert c["qwen2.5-7b"].tp_degrees == [1, 2, 4]
    # Gemma-2: head_dim 256 (not 3584/16 = 224), window 4096 on 21 of 42 layers, tied
    g = c["gemma-2-9b"].architecture
    assert (g.head_size, g.sliding_window, g.sliding_window_layers, g.tie_word_embeddings) == (256, 4096, 21, True)
    # Phi-3 mini 4k: window 2047 on every layer, no GQA
    p = c["phi-3-mini"].architecture
    assert (p.sliding_window, p.sliding_window_layers, p.kv_heads) == (2047, 32, 32)
    # MoE
    assert (c["mixtral-8x7b"].architecture.num_experts, c["mixtral-8x7b"].architecture.num_experts_per_tok) == (8, 2)
    q3 = c["qwen3-30b-a3b"].architecture
    assert (q3.num_experts, q3.num_experts_per_tok, q3.moe_intermediate_size, q3.head_size) == (128, 8, 768, 128)
    # DeepSeek-V3: MLA, 256 routed + 1 shared, fp8 blocks, TP 8 only
    d = c["deepseek-v3"]
    a = d.architecture
    assert a.is_mla and (a.q_lora_rank, a.kv_lora_rank, a.qk_rope_head_dim, a.qk_nope_head_dim, a.v_head_dim) == (1536, 512, 64, 128, 128)
    assert (a.num_experts, a.n_shared_experts, a.first_k_dense_replace, a.moe_intermediate_size) == (256, 1, 3, 2048)
    assert a.num_nextn_predict_layers == 1
    assert (d.weight_dtype, d.quantization.method, d.tp_degrees) == ("fp8", "fp8", [8])
    # Mistral 7B v0.3: no sliding window, 32768 vocabulary
    assert c["mistral-7b"].architecture.sliding_window is None and c["mistral-7b"].architecture.vocab_size == 32768


# --------------------------------------------------------------------------------------------
# Parameter recount (test-only arithmetic; the estimator has its own)
# --------------------------------------------------------------------------------------------


def _mla_attention(a: Architecture) -> int:
    h, n = a.hidden_size, a.num_attention_heads
    assert a.q_lora_rank and a.kv_lora_rank and a.qk_rope_head_dim and a.qk_nope_head_dim and a.v_head_dim
    qk = a.qk_nope_head_dim + a.qk_rope_head_dim
    return (
        h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * n * qk  # q_a, q_a_layernorm, q_b
        + h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank  # kv_a_proj_with_mqa, kv_a_layernorm
        + a.kv_lora_rank * n * (a.qk_nope_head_dim + a.v_head_dim)  # kv_b
        + n * a.v_head_dim * h  # o_proj
    )


def count_params(a: Architecture) -> int:
    """Parameters stored in a Hugging Face checkpoint of this architecture (all layers, incl. MTP)."""
    h, d = a.hidden_size, a.head_size
    if a.is_mla:
        attn = _mla_attention(a)
    else:
        attn = h * d * (a.num_attention_heads + 2 * a.kv_heads) + a.num_attention_heads * d * h
        if a.attention_bias:
            attn += d * (a.num_attention_heads + 2 * a.kv_heads)
        if a.model_type.startswith("qwen3"):
            attn += 2 * d  # q_norm, k_norm
    norms = (4 if a.model_type == "gemma2" else 2) * h
    dense_mlp = 3 * h * a.intermediate_size
    moe_mlp = 0
    if a.is_moe:
        assert a.num_experts
        width = a.moe_intermediate_size or a.intermediate_size  # Mixtral experts use intermediate_size
        moe_mlp = (a.num_experts + (a.n_shared_experts or 0)) * 3 * h * width + a.num_experts * h
        if a.model_type == "deepseek_v3":
            moe_mlp += a.num_experts  # e_score_correction_bias
    dense_layers = (a.first_k_dense_replace or 0) if a.is_moe else a.num_hidden_layers
    moe_layers = a.num_hidden_layers - dense_layers if a.is_moe else 0
    embed = a.vocab_size * h * (1 if a.tie_word_embeddings else 2)
    total = embed + h + a.num_hidden_layers * (attn + norms) + dense_layers * dense_mlp + moe_layers * moe_mlp
    for _ in range(a.num_nextn_predict_layers or 0):
        # DeepSeek MTP module: one more MoE layer, enorm, hnorm, eh_proj, shared_head norm, and its own
        # copies of embed_tokens and shared_head.head in the checkpoint (README_WEIGHTS.md)
        total += attn + norms + moe_mlp + 3 * h + 2 * h * h + 2 * a.vocab_size * h
    return total


@pytest.mark.parametrize("mid", sorted(IDS))
def test_params_recount_matches_checkpoint(catalogue: dict[str, ModelSpec], mid: str) -> None:
    m = catalogue[mid]
    assert count_params(m.architecture) == m.params_total


# --------------------------------------------------------------------------------------------
# checkpoint_sizes.csv
# --------------------------------------------------------------------------------------------


def test_sizes_csv_covers_the_catalogue(catalogue: dict[str, ModelSpec], sizes: dict[str, dict[str, str]]) -> None:
    assert set(sizes) == IDS
    for mid, row in sizes.items():
        m = catalogue[mid]
        assert row["hf_repo"] == m.hf_repo
        assert row["dtype"] == m.weight_dtype
        assert int(row["safetensors_total_bytes"]) == m.checkpoint_bytes
        assert int(row["params"]) == m.params_total
        assert row["source"].startswith(f"https://huggingface.co/{m.hf_repo}/")


def test_sizes_csv_bytes_per_param(sizes: dict[str, dict[str, str]]) -> None:
    for mid, row in sizes.items():
        nbytes, params = int(row["safetensors_total_bytes"]), int(row["params"])
        if row["dtype"] == "bf16":
            header = nbytes - 2 * params
            if mid == "llama-3.2-1b":  # single file: its size includes the safetensors JSON header
                assert 0 < header < 64 * 1024
            else:  # index total_size counts tensor bytes only
                assert header == 0, mid
        else:  # fp8 weights + bf16 embeddings/norms + fp32 block scales: just over one byte each
            assert row["dtype"] == "fp8" and 1.0 < nbytes / params < 1.01
        assert row["note"], mid  # every figure says where it comes from
