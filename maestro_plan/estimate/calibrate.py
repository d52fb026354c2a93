"""Fit the performance model's efficiency factors on measured H100 step times.

    python -m maestro_plan.estimate.calibrate [--csv ../shared/data/measured/h100_calibration.csv]
                                              [--out maestro_plan/data/perf_calibration.yaml] [--check]

Reads the measured decode and prefill rows (Llama-3.2-3B and Llama-3.1-8B layer shapes on one
H100 80GB HBM3, see that folder's README), fits

- decode: eff_bw_weights, eff_bw_kv, eff_flops_decode, overhead_ms_per_layer (36 rows), then
- prefill: eff_flops_prefill, eff_flops_attn_prefill (6 rows; the decode constants held),

by minimising the sum of squared log errors (relative errors, symmetric) with a deterministic
Nelder-Mead search over log-parameters, and writes the constants (4 significant digits) with the
fit's residuals and the data file's SHA-256 into perf_calibration.yaml. Prediction never reads the
measured rows: maestro_plan.estimate.perf loads only the YAML.

The harness computes logits for every prompt token (a plain PyTorch forward), so the prefill fit
applies the LM head to all S tokens; predictions apply it to the last token only, as vLLM does.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from maestro_plan.estimate.perf import CALIBRATION_FILE, Calibration, decode_step_ms_f, prefill_ms_f
from maestro_plan.load.schema import GpuType, ModelSpec

DEFAULT_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "measured" / "h100_calibration.csv"
CALIBRATION_GPU = "h100-sxm"
SIG_DIGITS = 4


def _llama(id_: str, layers: int, hidden: int, heads: int, kv: int, inter: int, source: str) -> ModelSpec:
    return ModelSpec(
        id=id_,
        hf_repo="meta-llama/" + id_,
        architecture={
            "model_type": "llama",
            "num_hidden_layers": layers,
            "hidden_size": hidden,
            "num_attention_heads": heads,
            "num_key_value_heads": kv,
            "head_dim": hidden // heads,
            "intermediate_size": inter,
            "vocab_size": 128256,
            "tie_word_embeddings": False,  # the harness holds an untied input embedding and LM head
            "max_position_embeddings": 131072,
        },
        source=source,
    )


CALIBRATION_MODELS: dict[str, ModelSpec] = {
    # meta-llama/Llama-3.2-3B config.json: 28 layers, hidden 3072, 24 heads, 8 KV heads, head_dim 128,
    # intermediate 8192, vocab 128256 (the real model ties its embeddings; the harness does not:
    # weight_gb 7.213 in the CSV = 3.21e9 params + an untied 0.39e9 LM head, x 2 bytes)
    "llama-3.2-3b": _llama("llama-3.2-3b", 28, 3072, 24, 8, 8192, "https://huggingface.co/meta-llama/Llama-3.2-3B/blob/main/config.json"),
    # meta-llama/Llama-3.1-8B config.json: 32 layers, hidden 4096, 32 heads, 8 KV heads,
    # intermediate 14336, vocab 128256 (weight_gb 16.06 = 8.03e9 params x 2 bytes)
    "llama-3.1-8b": _llama("llama-3.1-8b", 32, 4096, 32, 8, 14336, "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json"),
}

DECODE_PARAMS = ("eff_bw_weights", "eff_bw_kv", "eff_flops_decode", "overhead_ms_per_layer")
PREFILL_PARAMS = ("eff_flops_prefill", "eff_flops_attn_prefill")


def calibration_gpu() -> GpuType:
    from maestro_plan.load.loader import builtin_gpu_types

    return builtin_gpu_types()[CALIBRATION_GPU]


def read_measurements(path: str | Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    need = {"kind", "model", "batch", "context", "ms"}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: needs columns {sorted(need)}")
    df = df[df["kind"].isin(["decode", "prefill"]) & df["model"].isin(list(CALIBRATION_MODELS))].copy()
    return df.sort_values(["kind", "model", "context", "batch"]).reset_index(drop=True)


def predict_row(row: pd.Series, gpu: GpuType, cal: Calibration, *, harness: bool = True) -> float:
    """The model's prediction for one measured row (harness=True: the harness's all-token logits)."""
    m = CALIBRATION_MODELS[str(row["model"])]
    if row["kind"] == "decode":
        return decode_step_ms_f(m, gpu, 1, float(row["batch"]), float(row["context"]), cal=cal)
    return prefill_ms_f(m, gpu, 1, float(row["context"]), cal=cal, logits_all_tokens=harness)


def _nelder_mead(f: Callable[[np.ndarray], float], x0: np.ndarray, *, iters: int = 3000, step: float = 0.3, restarts: int = 3) -> np.ndarray:
    """Plain deterministic Nelder-Mead (no SciPy dependency), restarted around the best point."""
    best = np.asarray(x0, dtype=float)
    for _ in range(restarts):
        n = best.size
        simplex = np.vstack([best] + [best + step * np.eye(n)[i] for i in range(n)])
        vals = np.array([f(s) for s in simplex])
        for _ in range(iters):
            order = np.argsort(vals, kind="stable")
            simplex, vals = simplex[order], vals[order]
            if np.max(np.abs(simplex[1:] - simplex[0])) < 1e-10:
                break
            c = simplex[:-1].mean(axis=0)
            xr = c + (c - simplex[-1])
            fr = f(xr)
            if fr < vals[0]:
                xe = c + 2.0 * (c - simplex[-1])
                fe = f(xe)
                simplex[-1], vals[-1] = (xe, fe) if fe < fr else (xr, fr)
            elif fr < vals[-2]:
                simplex[-1], vals[-1] = xr, fr
            else:
                xc = c + 0.5 * (simplex[-1] - c)
                fc = f(xc)
                if fc < vals[-1]:
                    simplex[-1], vals[-1] = xc, fc
                else:
                    simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                    vals[1:] = [f(s) for s in simplex[1:]]
        best = simplex[int(np.argmin(vals))]
        step /= 3.0
    return best


def _round(x: float) -> float:
    return float(f"{x:.{SIG_DIGITS}g}")


def fit(df: pd.DataFrame, gpu: GpuType | None = None, base: Calibration | None = None) -> tuple[Calibration, dict[str, dict[str, float]]]:
    """Fit the decode then the prefill constants; returns the calibration and its residual report."""
    gpu = gpu or calibration_gpu()
    base = base or Calibration()
    dec = df[df["kind"] == "decode"]
    pre = df[df["kind"] == "prefill"]

    def with_params(cal: Calibration, names: tuple[str, ...], x: np.ndarray) -> Calibration:
        return dataclasses.replace(cal, **{n: float(np.exp(v)) for n, v in zip(names, x)})

    def loss(rows: pd.DataFrame, cal: Calibration) -> float:
        errs = [np.log(predict_row(r, gpu, cal) / float(r["ms"])) for _, r in rows.iterrows()]
        return float(np.sum(np.square(errs)))

    x0 = np.log([getattr(base, n) for n in DECODE_PARAMS])
    xd = _nelder_mead(lambda x: loss(dec, with_params(base, DECODE_PARAMS, x)), x0)
    cal = dataclasses.replace(base, **{n: _round(float(np.exp(v))) for n, v in zip(DECODE_PARAMS, xd)})
    y0 = np.log([getattr(base, n) for n in PREFILL_PARAMS])
    yp = _nelder_mead(lambda y: loss(pre, with_params(cal, PREFILL_PARAMS, y)), y0)
    cal = dataclasses.replace(cal, **{n: _round(float(np.exp(v))) for n, v in zip(PREFILL_PARAMS, yp)})
    return cal, residuals(df, cal, gpu)


def residuals(df: pd.DataFrame, cal: Calibration, gpu: GpuType | None = None) -> dict[str, dict[str, float]]:
    gpu = gpu or calibration_gpu()
    out: dict[str, dict[str, float]] = {}
    for kind in ("decode", "prefill"):
        rows = df[df["kind"] == kind]
        errs = np.array([abs(predict_row(r, gpu, cal) / float(r["ms"]) - 1.0) * 100.0 for _, r in rows.iterrows()])
        out[kind] = {
            "rows": int(len(errs)),
            "median_abs_pct_error": round(float(np.median(errs)), 2) if len(errs) else 0.0,
            "worst_abs_pct_error": round(float(np.max(errs)), 2) if len(errs) else 0.0,
        }
    return out


CITED_SOURCES = {
    "allreduce_latency_us": (
        "vLLM custom all-reduce on H100 (TP 2/4/8, 512 B): 9.5/9.1/10.1 us; sgl-project/sglang PR #2904 "
        "'unit test performance in H100', vllm rows (without CUDA graph)."
    ),
    "allreduce_eff_small": (
        "Same table, 1 MiB: 26.6/40.2/45.0 us at TP 2/4/8; (time - latency) against ring volume "
        "2(t-1)/t x bytes over 450 GB/s NVLink gives 0.14 (TP 2) and 0.12 (TP 8) of link bandwidth."
    ),
    "allreduce_eff_large": (
        "NCCL ring all-reduce on 8x H100 reaches ~370 GB/s of the 450 GB/s NVLink line rate "
        "(NVIDIA/nccl-tests issue #212, sjeaugey): 0.82."
    ),
    "allreduce_small_bytes": "Messages up to 1 MiB use the small-message fit above; larger ones add bytes at the NCCL ring rate.",
}


def to_yaml(cal: Calibration, report: dict[str, dict[str, float]], csv_path: Path, gpu: GpuType) -> str:
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    doc = {
        "generated_by": "python -m maestro_plan.estimate.calibrate (do not edit by hand; tests/test_perf.py checks it against the data)",
        "data": {"file": "../shared/data/measured/h100_calibration.csv", "sha256": digest, "gpu": gpu.id},
        "method": (
            "Nelder-Mead on log-parameters minimising the sum of squared log errors: the 4 decode constants on "
            "the decode rows, then the 2 prefill constants on the prefill rows with the decode ones held. "
            "Efficiencies are fractions of the spec-sheet figures of maestro_plan/data/gpus.yaml "
            f"({gpu.id}: {gpu.hbm_tbps} TB/s, {gpu.bf16_tflops} dense BF16 TFLOP/s)."
        ),
        "fitted": {n: getattr(cal, n) for n in DECODE_PARAMS + PREFILL_PARAMS},
        "fixed": {"overhead_ms_per_step": cal.overhead_ms_per_step},
        "cited": {
            "allreduce_latency_us": cal.allreduce_latency_us,
            "allreduce_eff_small": cal.allreduce_eff_small,
            "allreduce_eff_large": cal.allreduce_eff_large,
            "allreduce_small_bytes": cal.allreduce_small_bytes,
        },
        "sources": CITED_SOURCES,
        "fit_residuals_pct": report,
    }
    return "# Performance-model constants (see maestro_plan/estimate/perf.py and calibrate.py).\n" + yaml.safe_dump(doc, sort_keys=True, width=100)


def shipped_fitted(path: str | Path = CALIBRATION_FILE) -> dict[str, float]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return {k: float(v) for k, v in (doc.get("fitted") or {}).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m maestro_plan.estimate.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="measured rows (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE, help="YAML to write (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="only compare a fresh fit with the shipped YAML; exit 1 if they differ")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"error: {args.csv} does not exist (the shared data folder is needed to calibrate)", file=sys.stderr)
        return 2
    gpu = calibration_gpu()
    cal, report = fit(read_measurements(args.csv), gpu)
    if args.check:
        shipped = shipped_fitted(args.out)
        fresh = {n: getattr(cal, n) for n in DECODE_PARAMS + PREFILL_PARAMS}
        bad = {n: (shipped.get(n), v) for n, v in fresh.items() if shipped.get(n) is None or abs(shipped[n] - v) > 1e-3 * abs(v)}
        if bad:
            print(f"calibration drifted from {args.out}: {bad}", file=sys.stderr)
            return 1
        print("calibration matches the shipped constants")
        return 0
    from maestro_plan.atomic import write_text

    write_text(args.out, to_yaml(cal, report, args.csv, gpu))
    print(f"wrote {args.out}: " + ", ".join(f"{n}={getattr(cal, n):g}" for n in DECODE_PARAMS + PREFILL_PARAMS))
    for kind, r in report.items():
        print(f"  {kind}: {r['rows']} rows, median {r['median_abs_pct_error']}%, worst {r['worst_abs_pct_error']}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
