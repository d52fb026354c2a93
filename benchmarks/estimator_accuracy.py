"""Estimator accuracy against every measured row we have.

    python benchmarks/estimator_accuracy.py [--shared ../shared/data] [--out benchmarks/results]

Writes benchmarks/results/estimator_accuracy.json (every row, predicted and measured) and
estimator_accuracy.md (the summary the README quotes):

1. H100 calibration rows (decode and prefill, Llama 3B/8B shapes): the rows the constants were fitted
   on (maestro_plan/data/perf_calibration.yaml).
2. Splitwise (Llama-2-70B and BLOOM-176B on DGX-A100 / DGX-H100 at TP 2, 4, 8): held out. Absolute
   errors, then the ratios predicted from spec sheets alone (A100 over H100, TP 2 over TP 8).
   A diagnostic refit of the two fixed-overhead constants on these rows shows how much of the
   absolute error is that 2023 serving stack's per-step overhead (it is reported, never used).
3. Spec-sheet scaling: predicted H200 / H100 decode speed-ups at batch 1 against the bandwidth ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from maestro_plan.atomic import write_text  # noqa: E402
from maestro_plan.estimate.accuracy import (  # noqa: E402
    SPLITWISE_MODELS,
    ErrorStats,
    calibration_rows,
    splitwise_errors,
    splitwise_ratio_errors,
    splitwise_rows,
)
from maestro_plan.estimate.calibrate import _nelder_mead  # noqa: E402
from maestro_plan.estimate.perf import CALIBRATION, decode_step_ms_f  # noqa: E402
from maestro_plan.load.loader import builtin_gpu_types, load_models  # noqa: E402


def _stats(s: ErrorStats) -> dict:
    return dataclasses.asdict(s)


def splitwise_overhead_diagnostic(csv: Path, gpus: dict) -> dict:
    """Refit overhead_ms_per_layer and allreduce_latency_us on the Splitwise decode rows (diagnostic)."""
    g = splitwise_rows(csv, gpus)
    g = g[g.hardware != "h100-80gb-pcap"]
    rows = [(SPLITWISE_MODELS[r.model], gpus["a100-80gb" if r.hardware == "a100-80gb" else "h100-sxm"], int(r.tensor_parallel), float(r.batch_size), r.prompt_size + r.token_size / 2.0, r.token_time) for r in g.itertuples()]

    def cal_of(x: np.ndarray):
        return dataclasses.replace(CALIBRATION, overhead_ms_per_layer=float(np.exp(x[0])), allreduce_latency_us=float(np.exp(x[1])))

    def loss(x: np.ndarray) -> float:
        c = cal_of(x)
        return float(sum(np.log(decode_step_ms_f(m, gpu, tp, b, ctx, cal=c) / meas) ** 2 for m, gpu, tp, b, ctx, meas in rows))

    x = _nelder_mead(loss, np.log([CALIBRATION.overhead_ms_per_layer, CALIBRATION.allreduce_latency_us]), iters=800)
    c = cal_of(x)
    pred = np.array([decode_step_ms_f(m, gpu, tp, b, ctx, cal=c) for m, gpu, tp, b, ctx, _ in rows])
    meas = np.array([r[-1] for r in rows])
    return {
        "overhead_ms_per_layer": round(c.overhead_ms_per_layer, 4),
        "allreduce_latency_us": round(c.allreduce_latency_us, 2),
        "decode": _stats(ErrorStats.of(pred, meas)),
    }


def spec_scaling(gpus: dict) -> list[dict]:
    out = []
    models, _ = load_models(REPO / "models") if (REPO / "models").exists() else ({}, {})
    ratio = gpus["h200"].hbm_tbps / gpus["h100-sxm"].hbm_tbps
    for mid in ("llama-3.1-8b", "qwen2.5-32b", "llama-3.1-70b", "mixtral-8x7b"):
        m = models.get(mid)
        if m is None:
            continue
        for tp in (1, 4):
            if tp not in m.tp_degrees:
                continue
            h100 = decode_step_ms_f(m, gpus["h100-sxm"], tp, 1.0, 1024.0)
            h200 = decode_step_ms_f(m, gpus["h200"], tp, 1.0, 1024.0)
            out.append({"model": mid, "tp": tp, "batch": 1, "context": 1024, "h100_ms": round(h100, 3), "h200_ms": round(h200, 3), "speedup": round(h100 / h200, 3), "bandwidth_ratio": round(ratio, 3)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    cal_csv = args.shared / "measured" / "h100_calibration.csv"
    sw_csv = args.shared / "splitwise-perf" / "perf_model.csv"
    if not cal_csv.exists() or not sw_csv.exists():
        print(f"needs {cal_csv} and {sw_csv}", file=sys.stderr)
        return 2
    gpus = builtin_gpu_types()

    cal = calibration_rows(cal_csv)
    cal_stats = {k: ErrorStats.of(cal[cal.kind == k]["predicted_ms"].to_numpy(), cal[cal.kind == k]["ms"].to_numpy()) for k in ("decode", "prefill")}
    sw = splitwise_errors(sw_csv, gpus)
    ratios = splitwise_ratio_errors(sw_csv, gpus)
    sw_rows = splitwise_rows(sw_csv, gpus)
    # two Splitwise rows are inconsistent: TP 2, batch 64 prefill faster than batch 32 (on both GPUs)
    pre = sw_rows[sw_rows.hardware != "h100-80gb-pcap"].drop_duplicates(["model", "hardware", "tensor_parallel", "prompt_size", "batch_size"])
    clean = pre[~((pre.tensor_parallel == 2) & (pre.batch_size == 64))]
    prefill_clean = ErrorStats.of(clean.predicted_prompt_ms.to_numpy(), clean.prompt_time.to_numpy())
    diag = splitwise_overhead_diagnostic(sw_csv, gpus)
    scaling = spec_scaling(gpus)

    result = {
        "calibration_constants": {k: getattr(CALIBRATION, k) for k in ("eff_bw_weights", "eff_bw_kv", "eff_flops_decode", "eff_flops_prefill", "eff_flops_attn_prefill", "overhead_ms_per_layer")},
        "h100_calibration": {k: _stats(v) for k, v in cal_stats.items()},
        "h100_calibration_rows": [
            {"kind": r.kind, "model": r.model, "batch": int(r.batch), "context": int(r.context), "measured_ms": r.ms, "predicted_ms": round(r.predicted_ms, 4), "error_pct": round(r.error_pct, 2)}
            for r in cal.itertuples()
        ],
        "splitwise": {k: {kk: _stats(vv) for kk, vv in v.items()} for k, v in sw.items()},
        "splitwise_prefill_without_inconsistent_tp2_bs64_rows": _stats(prefill_clean),
        "splitwise_ratios": {k: {kk: _stats(vv) for kk, vv in v.items()} for k, v in ratios.items()},
        "splitwise_overhead_refit_diagnostic": diag,
        "splitwise_rows": json.loads(sw_rows.round(4).to_json(orient="records")),
        "h200_over_h100_decode": scaling,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "estimator_accuracy.json", json.dumps(result, indent=2, sort_keys=True) + "\n")

    def line(name: str, s: dict) -> str:
        return f"| {name} | {s['rows']} | {s['median_abs_pct']:.1f}% | {s['worst_abs_pct']:.1f}% | {s['median_signed_pct']:+.1f}% |"

    md = [
        "# Estimator accuracy",
        "",
        "Generated by `python benchmarks/estimator_accuracy.py`. Errors are (predicted / measured - 1); 'median' and 'worst' are of their absolute values, 'bias' is the signed median (negative: the model predicts faster than measured).",
        "",
        "## H100 calibration rows (fitted on these)",
        "",
        "| rows | n | median | worst | bias |",
        "|---|---|---|---|---|",
        line("decode step", result["h100_calibration"]["decode"]),
        line("prefill", result["h100_calibration"]["prefill"]),
        "",
        "Targets: decode median <= 10%, worst <= 25%; prefill median <= 15%.",
        "",
        "## Splitwise (held out: Llama-2-70B, BLOOM-176B on DGX-A100 / DGX-H100, TP 2-8)",
        "",
        "| group | n | median | worst | bias |",
        "|---|---|---|---|---|",
    ]
    for name, v in result["splitwise"].items():
        md.append(line(f"{name}, decode", v["decode"]))
        md.append(line(f"{name}, prefill", v["prefill"]))
    md.append(line("all (uncapped), prefill without the 2 inconsistent TP-2 batch-64 rows", result["splitwise_prefill_without_inconsistent_tp2_bs64_rows"]))
    md += [
        "",
        "Ratios predicted from spec sheets alone (same model, batch, lengths):",
        "",
        "| ratio | n | median | worst | bias |",
        "|---|---|---|---|---|",
    ]
    for name, v in result["splitwise_ratios"].items():
        md.append(line(f"{name}, decode", v["decode"]))
        md.append(line(f"{name}, prefill", v["prefill"]))
    d = result["splitwise_overhead_refit_diagnostic"]
    md += [
        "",
        "The Splitwise stack (2023) runs a decode step of Llama-2-70B at TP 8 on H100 in about 30 ms at batch 1, where the "
        "weight bytes per GPU need about 5 ms at the calibrated bandwidth: most of its step is fixed overhead (eager kernels, "
        "NCCL all-reduces) that a CUDA-graph engine does not have, so the absolute errors above are dominated by it and the "
        "A100/H100 ratios are the meaningful check of the spec-sheet scaling. TP 2 / TP 8 ratios are distorted by the same "
        "overhead, which grows with TP in that stack.",
        "",
        f"Diagnostic only (not used for prediction): refitting the per-layer overhead ({d['overhead_ms_per_layer']} ms) and the "
        f"all-reduce latency ({d['allreduce_latency_us']} us) on the Splitwise decode rows leaves a median error of "
        f"{d['decode']['median_abs_pct']:.1f}% (worst {d['decode']['worst_abs_pct']:.1f}%) over {d['decode']['rows']} rows.",
        "",
        "## H200 over H100 decode speed-up at batch 1 (bandwidth ratio 1.43)",
        "",
        "| model | TP | H100 ms | H200 ms | speed-up |",
        "|---|---|---|---|---|",
    ]
    for s in scaling:
        md.append(f"| {s['model']} | {s['tp']} | {s['h100_ms']:.2f} | {s['h200_ms']:.2f} | {s['speedup']:.2f}x |")
    md.append("")
    write_text(args.out / "estimator_accuracy.md", "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
