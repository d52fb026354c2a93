"""The estimator's error against every measured row we have (used by benchmarks/estimator_accuracy.py
and tests/test_perf.py).

- H100 calibration rows (../shared/data/measured/h100_calibration.csv): the rows the constants were
  fitted on; errors here show how well the model's form fits.
- Splitwise (../shared/data/splitwise-perf/perf_model.csv): Llama-2-70B and BLOOM-176B measured on
  DGX-A100 and DGX-H100 at TP 2, 4, 8 (Patel et al., ISCA 2024) with their 2023 serving stack:
  held out, never fitted. Besides absolute errors, the ratios the model predicts from spec sheets
  (A100 over H100 at the same TP, TP 2 over TP 8 on the same GPU) are compared with the measured
  ratios, which checks the GPU and TP scaling independently of that stack's fixed overheads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from maestro_plan.estimate.calibrate import CALIBRATION_MODELS, calibration_gpu, predict_row, read_measurements
from maestro_plan.estimate.perf import CALIBRATION, Calibration, decode_step_ms_f, prefill_ms_f
from maestro_plan.load.schema import GpuType, ModelSpec

SPLITWISE_MODELS: dict[str, ModelSpec] = {
    # meta-llama/Llama-2-70b-hf config.json: 80 layers, hidden 8192, 64 heads, 8 KV heads,
    # intermediate 28672, vocab 32000, untied, 4096 positions
    "llama2-70b": ModelSpec(
        id="llama2-70b",
        hf_repo="meta-llama/Llama-2-70b-hf",
        architecture={
            "model_type": "llama",
            "num_hidden_layers": 80,
            "hidden_size": 8192,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "intermediate_size": 28672,
            "vocab_size": 32000,
            "tie_word_embeddings": False,
            "max_position_embeddings": 4096,
        },
        source="https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json",
    ),
    # bigscience/bloom config.json: n_layer 70, hidden 14336, n_head 112 (MHA), vocab 250880,
    # 4 x hidden MLP (GELU, not gated), LayerNorm with biases, biases on every linear, tied head
    "bloom-176b": ModelSpec(
        id="bloom-176b",
        hf_repo="bigscience/bloom",
        architecture={
            "model_type": "bloom",
            "num_hidden_layers": 70,
            "hidden_size": 14336,
            "num_attention_heads": 112,
            "intermediate_size": 4 * 14336,
            "vocab_size": 250880,
            "tie_word_embeddings": True,
            "max_position_embeddings": 8192,  # ALiBi: no fixed limit; the Splitwise grid goes to 8192 + 8192
            "attention_bias": True,
            "mlp_bias": True,
        },
        source="https://huggingface.co/bigscience/bloom/blob/main/config.json",
    ),
}

SPLITWISE_HARDWARE = {"a100-80gb": "a100-80gb", "h100-80gb": "h100-sxm", "h100-80gb-pcap": "h100-sxm"}
"""Splitwise hardware name -> GPU type id (h100-80gb-pcap is a power-capped H100, reported apart)."""


@dataclass(frozen=True)
class ErrorStats:
    rows: int
    median_abs_pct: float
    worst_abs_pct: float
    median_signed_pct: float

    @staticmethod
    def of(pred: np.ndarray, meas: np.ndarray) -> ErrorStats:
        e = (np.asarray(pred) / np.asarray(meas) - 1.0) * 100.0
        if e.size == 0:
            return ErrorStats(0, 0.0, 0.0, 0.0)
        return ErrorStats(int(e.size), round(float(np.median(np.abs(e))), 2), round(float(np.max(np.abs(e))), 2), round(float(np.median(e)), 2))


def calibration_rows(csv: str | Path, cal: Calibration = CALIBRATION) -> pd.DataFrame:
    """Every H100 calibration row with the model's prediction (vLLM-style logits for prefill too)."""
    gpu = calibration_gpu()
    df = read_measurements(csv)
    df["predicted_ms"] = [predict_row(r, gpu, cal) for _, r in df.iterrows()]
    df["predicted_vllm_ms"] = [predict_row(r, gpu, cal, harness=False) for _, r in df.iterrows()]
    df["error_pct"] = (df["predicted_ms"] / df["ms"] - 1.0) * 100.0
    return df


def calibration_errors(csv: str | Path, cal: Calibration = CALIBRATION) -> dict[str, ErrorStats]:
    df = calibration_rows(csv, cal)
    return {k: ErrorStats.of(df[df.kind == k]["predicted_ms"].to_numpy(), df[df.kind == k]["ms"].to_numpy()) for k in ("decode", "prefill")}


def splitwise_rows(csv: str | Path, gpus: dict[str, GpuType], cal: Calibration = CALIBRATION) -> pd.DataFrame:
    """Median of the repeats of every Splitwise configuration, with the model's predictions."""
    raw = pd.read_csv(csv)
    keys = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    g = raw.groupby(keys, as_index=False)[["prompt_time", "token_time"]].median()
    dec, pre = [], []
    for r in g.itertuples(index=False):
        m = SPLITWISE_MODELS[r.model]
        gpu = gpus[SPLITWISE_HARDWARE[r.hardware]]
        tp = int(r.tensor_parallel)
        ctx = r.prompt_size + r.token_size / 2.0  # mean context held over the generated tokens
        dec.append(decode_step_ms_f(m, gpu, tp, float(r.batch_size), ctx, cal=cal))
        pre.append(prefill_ms_f(m, gpu, tp, float(r.prompt_size), cal=cal, batch=int(r.batch_size)))
    g["predicted_token_ms"] = dec
    g["predicted_prompt_ms"] = pre
    return g


def splitwise_errors(csv: str | Path, gpus: dict[str, GpuType], cal: Calibration = CALIBRATION) -> dict[str, dict[str, ErrorStats]]:
    """Absolute errors per (model, hardware) group and overall (power-capped rows apart)."""
    g = splitwise_rows(csv, gpus, cal)
    out: dict[str, dict[str, ErrorStats]] = {}
    groups = [("all (uncapped)", g[g.hardware != "h100-80gb-pcap"])]
    for (model, hw), sub in g.groupby(["model", "hardware"]):
        groups.append((f"{model} {hw}", sub))
    for name, sub in groups:
        # decode: every configuration; prefill: one per (prompt, batch) - token_size does not change it
        p = sub.drop_duplicates(["model", "hardware", "tensor_parallel", "prompt_size", "batch_size"])
        out[name] = {
            "decode": ErrorStats.of(sub["predicted_token_ms"].to_numpy(), sub["token_time"].to_numpy()),
            "prefill": ErrorStats.of(p["predicted_prompt_ms"].to_numpy(), p["prompt_time"].to_numpy()),
        }
    return out


def splitwise_ratio_errors(csv: str | Path, gpus: dict[str, GpuType], cal: Calibration = CALIBRATION) -> dict[str, dict[str, ErrorStats]]:
    """Errors of predicted ratios: A100 / H100 at the same TP and point, and TP 2 / TP 8 on the same GPU."""
    g = splitwise_rows(csv, gpus, cal)
    g = g[g.hardware != "h100-80gb-pcap"]
    keys = ["model", "prompt_size", "batch_size", "token_size"]
    out: dict[str, dict[str, ErrorStats]] = {}
    a = g[g.hardware == "a100-80gb"].merge(g[g.hardware == "h100-80gb"], on=keys + ["tensor_parallel"], suffixes=("_a", "_h"))
    out["a100_over_h100"] = {
        "decode": ErrorStats.of((a.predicted_token_ms_a / a.predicted_token_ms_h).to_numpy(), (a.token_time_a / a.token_time_h).to_numpy()),
        "prefill": ErrorStats.of((a.predicted_prompt_ms_a / a.predicted_prompt_ms_h).to_numpy(), (a.prompt_time_a / a.prompt_time_h).to_numpy()),
    }
    t = g[g.tensor_parallel == 2].merge(g[g.tensor_parallel == 8], on=keys + ["hardware"], suffixes=("_2", "_8"))
    out["tp2_over_tp8"] = {
        "decode": ErrorStats.of((t.predicted_token_ms_2 / t.predicted_token_ms_8).to_numpy(), (t.token_time_2 / t.token_time_8).to_numpy()),
        "prefill": ErrorStats.of((t.predicted_prompt_ms_2 / t.predicted_prompt_ms_8).to_numpy(), (t.prompt_time_2 / t.prompt_time_8).to_numpy()),
    }
    return out


__all__ = [
    "CALIBRATION_MODELS",
    "SPLITWISE_HARDWARE",
    "SPLITWISE_MODELS",
    "ErrorStats",
    "calibration_errors",
    "calibration_rows",
    "splitwise_errors",
    "splitwise_ratio_errors",
    "splitwise_rows",
]
