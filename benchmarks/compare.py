"""maestro-plan against baselines on the bundled fleet and workloads (the Maestro paper's claims,
measured on our plans by simulation). Same as `maestro-plan compare --out benchmarks/results`,
plus a contention sweep of Maestro against EDF queues on maestro-plan's plan.

    python -m benchmarks.compare [--duration 600] [--seed 0] [--low 1.0] [--high 2.0] [--time-limit 20]

Writes benchmarks/results/compare.json and compare.md. MAESTRO_BENCH_QUICK=1: 120 s of traffic,
5 s solver limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent
SWEEP = (1.0, 1.25, 1.5, 2.0, 3.0)


def main(argv: list[str] | None = None) -> int:
    quick = os.environ.get("MAESTRO_BENCH_QUICK") == "1"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=120.0 if quick else 600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--low", type=float, default=1.0)
    ap.add_argument("--high", type=float, default=2.0)
    ap.add_argument("--time-limit", type=float, default=5.0 if quick else 20.0)
    args = ap.parse_args(argv)

    from maestro_plan.load.loader import load_inputs
    from maestro_plan.simulate import SimConfig, simulate
    from maestro_plan.simulate.compare import run_compare, summarize, to_markdown
    from maestro_plan.solve.planner import solve
    from maestro_plan.solve.problem import SolveSettings

    t0 = time.perf_counter()

    def log(s: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {s}", flush=True)

    inputs = load_inputs(REPO / "inventories", REPO / "models", REPO / "workloads")
    settings = SolveSettings(time_limit_s=args.time_limit, seed=args.seed)
    log("solving maestro-plan's plan")
    plan, _ = solve(inputs, settings)
    result = run_compare(inputs, plan=plan, settings=settings, duration_s=args.duration, seed=args.seed, low=args.low, high=args.high, log=log)
    sweep = []
    for scale in SWEEP:
        row: dict = {"rate_scale": scale}
        for d in ("edf", "maestro"):
            log(f"sweep: {d} at rates x{scale:g}")
            rep = simulate(plan, inputs, SimConfig(duration_s=args.duration, seed=args.seed, discipline=d, rate_scale=scale))  # type: ignore[arg-type]
            row[d] = summarize(rep)
        sweep.append(row)
    result["sweep_maestro_vs_edf"] = sweep
    cmd = f"python -m benchmarks.compare --duration {args.duration:g} --seed {args.seed} --low {args.low:g} --high {args.high:g} --time-limit {args.time_limit:g}"
    md = to_markdown(result, cmd)
    lines = [
        "",
        "## Contention sweep: Maestro against EDF queues on maestro-plan's plan",
        "",
        "SLO attainment (queries within SLO / queries arrived) as every arrival rate is scaled; points = Maestro - EDF.",
        "",
        "| rates x | interactive EDF | interactive Maestro | points | batch EDF | batch Maestro | points | all EDF | all Maestro | points |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sweep:
        e, m = row["edf"], row["maestro"]

        def cell(x: float | None) -> str:
            return "-" if x is None else f"{x * 100:.1f}%"

        def diff(a: float | None, b: float | None) -> str:
            return "-" if a is None or b is None else f"{(a - b) * 100:+.1f}"

        ei, mi = e["slo_attainment"].get("interactive"), m["slo_attainment"].get("interactive")
        eb, mb = e["slo_attainment"].get("batch"), m["slo_attainment"].get("batch")
        ea, ma = e["slo_attainment_all"], m["slo_attainment_all"]
        lines.append(f"| {row['rate_scale']:g} | {cell(ei)} | {cell(mi)} | {diff(mi, ei)} | {cell(eb)} | {cell(mb)} | {diff(mb, eb)} | {cell(ea)} | {cell(ma)} | {diff(ma, ea)} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (RESULTS / "compare.md").write_text(md + "\n".join(lines) + "\n")
    log("wrote benchmarks/results/compare.json and compare.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
