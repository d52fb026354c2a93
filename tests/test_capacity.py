"""Capacity of one replica under a latency budget; measured capacity tables."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.errors import InputError
from maestro_plan.estimate import (
    VLLM,
    CapacityTable,
    RequestMix,
    decode_step_ms,
    kv_bytes_per_sequence,
    latency_at_load,
    load_capacity_table,
    prefill_ms,
    replica_capacity,
    replica_memory,
)
from maestro_plan.estimate.capacity import CapacityRow, max_batch_by_memory
from maestro_plan.load.loader import builtin_gpu_types
from maestro_plan.load.schema import ModelSpec

GPUS = builtin_gpu_types()
H100 = GPUS["h100-sxm"]
# meta-llama/Llama-3.1-8B config.json
L8 = ModelSpec(
    id="llama-3.1-8b",
    hf_repo="meta-llama/Llama-3.1-8B",
    architecture=dict(model_type="llama", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072),
)
MIX = RequestMix(mean_input=1000, mean_output=200, kv_tokens_per_request=3000)


def test_capacity_meets_budget_and_littles_law():
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=5000)
    assert cap is not None and cap.source == "estimate"
    assert cap.latency_ms <= 5000
    assert cap.rps == pytest.approx(cap.batch / cap.latency_ms * 1000)
    assert cap.latency_ms == pytest.approx(cap.ttft_ms + MIX.mean_output * cap.tpot_ms, rel=1e-6)
    # one more sequence would break the budget (or the memory)
    more = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=cap.latency_ms - 1e-6)
    assert more is None or more.batch < cap.batch
    assert cap.kv_tokens_needed == cap.batch * 3008  # 3000 tokens rounded up to 16-token blocks
    assert cap.kv_bytes_per_gpu_needed == cap.batch * kv_bytes_per_sequence(L8, 1, 3008)


def test_unreachable_budget_gives_none():
    one = prefill_ms(L8, H100, 1, 1000) + 200 * decode_step_ms(L8, H100, 1, 1, 1100)
    assert replica_capacity(L8, H100, 1, MIX, latency_budget_ms=0.5 * one) is None
    assert replica_capacity(L8, H100, 1, MIX, latency_budget_ms=1.2 * one) is not None


def test_kv_pool_bounds_the_batch():
    per = kv_bytes_per_sequence(L8, 1, 3008)
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=1e9, kv_pool_bytes_per_gpu=int(10.5 * per))
    assert cap is not None and cap.batch == 10
    assert replica_capacity(L8, H100, 1, MIX, latency_budget_ms=1e9, kv_pool_bytes_per_gpu=int(0.5 * per)) is None
    # the default pool is vLLM's
    full = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=1e9)
    assert full is not None
    assert full.kv_bytes_per_gpu_needed <= replica_memory(L8, H100, 1).kv_pool_bytes_per_gpu


@settings(max_examples=30, deadline=None)
@given(b1=st.floats(500, 60000), b2=st.floats(500, 60000), share=st.sampled_from([1.0, 0.5]))
def test_capacity_monotone_in_budget(b1, b2, share):
    lo, hi = sorted((b1, b2))
    c_lo = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=lo, compute_share=share)
    c_hi = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=hi, compute_share=share)
    if c_lo is not None:
        assert c_hi is not None
        assert c_hi.rps >= c_lo.rps - 1e-9
        assert c_hi.batch >= c_lo.batch


def test_compute_share_lowers_capacity():
    full = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=8000)
    half = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=8000, compute_share=0.5)
    assert full is not None and half is not None and half.rps < full.rps


def test_latency_at_load_below_capacity():
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=6000)
    assert cap is not None
    idle = latency_at_load(L8, H100, 1, MIX, 0.0)
    mid = latency_at_load(L8, H100, 1, MIX, cap.rps / 2)
    at = latency_at_load(L8, H100, 1, MIX, cap.rps)
    assert idle < mid < at
    assert at == pytest.approx(cap.latency_ms, rel=0.03)  # the same fixed point, continuous batch
    assert math.isinf(latency_at_load(L8, H100, 1, MIX, 1e6))


# ---------------------------------------------------------------- chunked prefill (vLLM V1)


def _fixed_point(T: float, M: float, s: float, O: float, B: int) -> float:
    """x = T + O s / (1 - (B / x) M), by bisection (independent of the module's quadratic)."""
    lo, hi = T + O * s, 1e7
    for _ in range(200):
        x = (lo + hi) / 2
        if B * M / x < 1 and T + O * s / (1 - B * M / x) <= x:
            hi = x
        else:
            lo = x
    return hi


def test_prompt_heavy_capacity_counts_only_the_marginal_prefill():
    """vLLM V1 computes prompts in chunks inside decode steps that read the weights anyway: each
    prompt stalls decoding by prefill(I) - prefill(1), not by a whole pass; its own TTFT still
    holds the whole prefill. Hand computation at B = 64 (KV pool sized for exactly 64)."""
    B, I, O = 64, 1000, 200
    per = kv_bytes_per_sequence(L8, 1, 3008)
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=1e9, kv_pool_bytes_per_gpu=B * per)
    assert cap is not None and cap.batch == B
    s = decode_step_ms(L8, H100, 1, B, I + O // 2)
    P = prefill_ms(L8, H100, 1, I)
    M = P - prefill_ms(L8, H100, 1, 1)
    assert 0 < M < P
    x = _fixed_point(P + s, M, s, O, B)  # one chunk: 1000 prompt tokens + 64 decode tokens < 8192
    assert cap.ttft_ms == pytest.approx(P + s, rel=1e-9)
    assert cap.latency_ms == pytest.approx(x, rel=1e-6)
    assert cap.rps == pytest.approx(B / x * 1000, rel=1e-6)
    assert cap.tpot_ms == pytest.approx(s / (1 - B / x * M), rel=1e-6)
    # 19.96 req/s (the simulator serves 19.9 at this engine); charging every prompt a whole pass
    # (the stall term lambda x P) gave 17.6, about 12 % less
    whole = B / _fixed_point(P + s, P, s, O, B) * 1000
    assert cap.rps == pytest.approx(19.96, abs=0.05)
    assert cap.rps > 1.10 * whole


def test_token_budget_caps_prompt_heavy_concurrency():
    """Each step holds at most --max-num-batched-tokens (2048 on A100: vllm.yaml), one per decoding
    sequence; the prompts' tokens must fit in the rest or they queue. Long prompts, short answers:
    the budget, not the KV pool, bounds the batch."""
    A100 = GPUS["a100-80gb"]
    mix = RequestMix(mean_input=3000, mean_output=30, kv_tokens_per_request=3030)
    cap = replica_capacity(L8, A100, 1, mix, latency_budget_ms=1e9)
    assert cap is not None
    assert cap.batch < max_batch_by_memory(L8, A100, 1, mix) // 2
    # prompt tokens per step at that rate fit beside the decoding sequences
    assert cap.rps / 1000 * 3000 * cap.tpot_ms <= 2048 - cap.batch
    # beyond capacity the prompts overflow the budget: no finite latency
    assert math.isfinite(latency_at_load(L8, A100, 1, mix, 0.98 * cap.rps))
    assert math.isinf(latency_at_load(L8, A100, 1, mix, 1.05 * cap.rps))
    # a larger budget lifts the cap
    big = replace(VLLM, max_num_batched_tokens=1 << 20)
    assert replica_capacity(L8, A100, 1, mix, latency_budget_ms=1e9, engine=big).rps > 1.05 * cap.rps
    # a 5000-token prompt takes ceil(5000 / (2048 - 1)) = 3 chunked steps before its first token
    one = replica_capacity(L8, A100, 1, RequestMix(5000, 30, 5030), latency_budget_ms=1e9, kv_pool_bytes_per_gpu=kv_bytes_per_sequence(L8, 1, 5040))
    assert one is not None and one.batch == 1
    assert one.ttft_ms == pytest.approx(prefill_ms(L8, A100, 1, 5000) + 3 * decode_step_ms(L8, A100, 1, 1, 5015), rel=1e-9)


# ---------------------------------------------------------------- measured tables


def test_measured_table_overrides_matching_cells(tmp_path):
    p = tmp_path / "cap.csv"
    p.write_text(
        "model,gpu,tp,input_tokens,output_tokens,max_rps,latency_ms,source\n"
        "llama-3.1-8b,h100-sxm,1,2048,512,7.5,4000,vllm bench serve\n"
        "llama-3.1-8b,h100-sxm,1,2048,512,9.0,8000,vllm bench serve\n"
        "llama-3.1-8b,h100-sxm,1,512,128,20,2000,vllm bench serve\n"
    )
    t = load_capacity_table(p)
    assert len(t.rows) == 3
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=5000, table=t)
    assert cap is not None and cap.source == "measured" and cap.rps == 7.5
    assert cap.batch == 30  # Little's law: 7.5/s x 4 s
    cap = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=9000, table=t)
    assert cap is not None and cap.rps == 9.0
    # other TP: not covered, the estimate stands
    assert replica_capacity(L8, H100, 2, MIX, latency_budget_ms=5000, table=t).source == "estimate"
    # a budget tighter than every measured row: the estimate, but never above the measured rate
    tight = replica_capacity(L8, H100, 1, MIX, latency_budget_ms=3000, table=t)
    assert tight is None or tight.rps <= 7.5


def test_measured_table_yaml_and_bad_rows(tmp_path):
    good = tmp_path / "cap.yaml"
    good.write_text("rows:\n  - {model: m, gpu: h100-sxm, tp: 1, input_tokens: 1024, output_tokens: 256, max_rps: 3, latency_ms: 2000}\n")
    assert isinstance(load_capacity_table(good), CapacityTable)
    bad = tmp_path / "bad.csv"
    bad.write_text("model,gpu,tp,input_tokens,output_tokens,max_rps,latency_ms\nm,h100-sxm,1,1024,256,-3,2000\nm,h100-sxm,zero,1024,256,3,2000\n")
    with pytest.raises(InputError) as e:
        load_capacity_table(bad)
    text = e.value.render()
    assert "row[2].max_rps" in text and "row[3].tp" in text and str(bad) in text
    with pytest.raises(InputError):
        load_capacity_table(tmp_path / "missing.csv")
    typo = tmp_path / "typo.yaml"
    typo.write_text("- {model: m, gpu: g, tp: 1, input_tokens: 1, output_tokens: 1, max_rsp: 3, latency_ms: 1}\n")
    with pytest.raises(InputError, match="max_rps"):
        load_capacity_table(typo)


def test_table_lookup_picks_smallest_covering_class():
    rows = (
        CapacityRow(model="m", gpu="g", tp=1, input_tokens=512, output_tokens=128, max_rps=20, latency_ms=1000),
        CapacityRow(model="m", gpu="g", tp=1, input_tokens=4096, output_tokens=1024, max_rps=2, latency_ms=1000),
    )
    t = CapacityTable(rows)
    assert t.lookup("m", "g", 1, RequestMix(400, 100, 600), 1500).max_rps == 20
    assert t.lookup("m", "g", 1, RequestMix(1000, 100, 1200), 1500).max_rps == 2
    assert t.lookup("m", "g", 1, RequestMix(9000, 100, 9200), 1500) is None
