"""Speed model: calibration reproducibility, accuracy on measured rows, scaling properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.estimate import decode_step_ms, prefill_ms
from maestro_plan.estimate.calibrate import DECODE_PARAMS, PREFILL_PARAMS, fit, read_measurements, shipped_fitted
from maestro_plan.estimate.perf import CALIBRATION, allreduce_ms, expected_experts_touched
from maestro_plan.load.loader import builtin_gpu_types
from maestro_plan.load.schema import ModelSpec

GPUS = builtin_gpu_types()
H100, H200, A100 = GPUS["h100-sxm"], GPUS["h200"], GPUS["a100-80gb"]


def spec(id_: str, **arch) -> ModelSpec:
    arch.setdefault("model_type", "llama")
    arch.setdefault("max_position_embeddings", 131072)
    return ModelSpec(id=id_, hf_repo="org/" + id_, architecture=arch)


# config.json numbers of Llama-3.1-8B, Llama-3.1-70B, Qwen2.5-32B and Mixtral-8x7B
L8 = spec("l8", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=128256)
L70 = spec("l70", num_hidden_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8, intermediate_size=28672, vocab_size=128256)
Q32 = spec("q32", model_type="qwen2", num_hidden_layers=64, hidden_size=5120, num_attention_heads=40, num_key_value_heads=8, intermediate_size=27648, vocab_size=152064, attention_bias=True)
MX = spec("mx", model_type="mixtral", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=32000, num_experts=8, num_experts_per_tok=2)


# ---------------------------------------------------------------- calibration on the shared data


def test_calibration_recomputed_from_the_data_equals_the_shipped_constants(shared_data):
    df = read_measurements(shared_data / "measured" / "h100_calibration.csv")
    cal, _ = fit(df)
    shipped = shipped_fitted()
    for name in DECODE_PARAMS + PREFILL_PARAMS:
        assert getattr(cal, name) == pytest.approx(shipped[name], rel=1e-3), name
        assert getattr(CALIBRATION, name) == pytest.approx(shipped[name], rel=1e-9), name  # what prediction uses


def test_error_targets_on_the_h100_rows(shared_data):
    from maestro_plan.estimate.accuracy import calibration_errors

    err = calibration_errors(shared_data / "measured" / "h100_calibration.csv")
    assert err["decode"].rows == 36 and err["prefill"].rows == 6
    assert err["decode"].median_abs_pct <= 10.0
    assert err["decode"].worst_abs_pct <= 25.0
    assert err["prefill"].median_abs_pct <= 15.0


def test_splitwise_gpu_scaling_from_spec_sheets(shared_data):
    """A100 over H100 step-time ratios (same model, TP, point) predicted from spec sheets alone."""
    from maestro_plan.estimate.accuracy import splitwise_ratio_errors

    r = splitwise_ratio_errors(shared_data / "splitwise-perf" / "perf_model.csv", GPUS)
    assert r["a100_over_h100"]["decode"].rows >= 70
    assert r["a100_over_h100"]["decode"].median_abs_pct <= 10.0
    assert r["a100_over_h100"]["prefill"].median_abs_pct <= 20.0


def test_calibrated_efficiencies_are_physical():
    for name in ("eff_bw_weights", "eff_bw_kv", "eff_flops_decode", "eff_flops_prefill", "eff_flops_attn_prefill"):
        assert 0.05 < getattr(CALIBRATION, name) <= 1.0, name
    assert 0 <= CALIBRATION.overhead_ms_per_layer < 0.5


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from([L8, L70, Q32, MX]),
    gpu=st.sampled_from([H100, H200, A100]),
    tp=st.sampled_from([1, 2, 4, 8]),
    batch=st.integers(1, 511),
    context=st.integers(1, 32000),
)
def test_decode_grows_with_batch_and_context(model, gpu, tp, batch, context):
    t = decode_step_ms(model, gpu, tp, batch, context)
    assert t > 0
    assert decode_step_ms(model, gpu, tp, batch + 1, context) > t
    assert decode_step_ms(model, gpu, tp, batch, context + 512) > t


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from([L8, L70, Q32, MX]),
    gpu=st.sampled_from([H100, H200, A100]),
    tp=st.sampled_from([1, 2, 4]),
    batch=st.integers(1, 256),
    context=st.integers(1, 32000),
    prompt=st.integers(16, 32000),
)
def test_step_times_fall_with_tp(model, gpu, tp, batch, context, prompt):
    assert decode_step_ms(model, gpu, 2 * tp, batch, context) < decode_step_ms(model, gpu, tp, batch, context)
    assert prefill_ms(model, gpu, 2 * tp, prompt) < prefill_ms(model, gpu, tp, prompt)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from([L8, L70, MX]), tp=st.sampled_from([1, 2, 8]), prompt=st.integers(1, 30000))
def test_prefill_grows_with_prompt(model, tp, prompt):
    assert prefill_ms(model, H100, tp, prompt + 64) > prefill_ms(model, H100, tp, prompt)


def test_h200_over_h100_follows_the_bandwidth_ratio_at_small_batch():
    bw_ratio = H200.hbm_tbps / H100.hbm_tbps
    assert bw_ratio == pytest.approx(1.43, abs=0.01)
    for model in (Q32, L70):
        speedup = decode_step_ms(model, H100, 1, 1, 1024) / decode_step_ms(model, H200, 1, 1, 1024)
        # the per-layer overhead does not scale with bandwidth: slightly below the ratio, never above
        assert speedup <= bw_ratio
        assert speedup == pytest.approx(bw_ratio, rel=0.06)
    # at large batch the GEMMs bind and both GPUs have the same tensor cores: the ratio shrinks
    big = decode_step_ms(L8, H100, 1, 512, 128) / decode_step_ms(L8, H200, 1, 512, 128)
    assert big < decode_step_ms(L8, H100, 1, 1, 128) / decode_step_ms(L8, H200, 1, 1, 128)


def test_compute_share_slows_a_replica_down():
    full = decode_step_ms(L8, H100, 1, 8, 2048)
    half = decode_step_ms(L8, H100, 1, 8, 2048, compute_share=0.5)
    assert full < half < 2 * full  # bandwidth and FLOPs halve; the fixed per-layer overhead does not
    assert prefill_ms(L8, H100, 1, 2048, compute_share=0.5) > prefill_ms(L8, H100, 1, 2048)


def test_moe_reads_more_experts_as_batch_grows():
    assert expected_experts_touched(8, 2, 1) == pytest.approx(2.0)
    assert expected_experts_touched(8, 2, 64) == pytest.approx(8.0, rel=1e-3)
    assert expected_experts_touched(128, 8, 4) == pytest.approx(128 * (1 - (120 / 128) ** 4))
    # Mixtral at batch 1 reads about 2/8 of its experts: far less than a dense model of the same size
    dense_like = spec("mxd", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=8 * 14336, vocab_size=32000)
    assert decode_step_ms(MX, H100, 2, 1, 512) < 0.5 * decode_step_ms(dense_like, H100, 2, 1, 512)


def test_allreduce_cost():
    assert allreduce_ms(1 << 14, 1, 450) == 0.0
    small = allreduce_ms(512, 8, 450)
    assert small == pytest.approx(CALIBRATION.allreduce_latency_us / 1000, rel=0.05)
    assert allreduce_ms(1 << 24, 8, 450) > allreduce_ms(1 << 20, 8, 450) > small


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        decode_step_ms(L8, H100, 1, 0, 100)
    with pytest.raises(ValueError):
        decode_step_ms(L8, H100, 1, 1, 100, compute_share=0.0)
