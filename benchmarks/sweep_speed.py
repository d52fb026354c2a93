"""Sweep speed: 50 what-if scenarios on the bundled fleet, two local processes, warm-started.

The scenarios (fixed list, 50 in all): demand x0.5..x5.5 in steps of 0.2 (26), each single-cluster
failure (3), each single-zone failure (7), the H100 SXM price x0.6..x1.5 in steps of 0.1 (10), and
each bundled workflow's demand doubled alone (4). The base plan is solved first; every scenario is
then solved with the base plan as the plan in force (`current_plan`, change weight 0: a warm start
that pins placements), with the local executor (ProcessPoolExecutor, 2 processes, 1 CP-SAT
worker each) and a deterministic CP-SAT work budget per scenario (--time-limit, default 2 units,
about 2 s of one core; no separate LP bound). Records the total wall time, per-scenario wall time (median, max), how many scenarios
are feasible, where the fleet runs out, and the machine's load when it started (2 cores shared).

    python -m benchmarks.sweep_speed [--jobs 2] [--time-limit 2] [--quick]

Writes benchmarks/results/sweep.json and sweep.md (plus the sweep's own sweep.csv/json/png in
benchmarks/out/sweep_speed/). MAESTRO_BENCH_QUICK=1 or --quick runs the first 10 scenarios only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from maestro_plan.atomic import write_text  # noqa: E402
from maestro_plan.load.loader import load_inputs  # noqa: E402
from maestro_plan.whatif.scenario import ScaleDemand, Scenario  # noqa: E402
from maestro_plan.whatif.sweep import (  # noqa: E402
    demand_grid,
    failure_grid,
    parse_range,
    price_grid,
    run_sweep,
    solve_inputs,
    solve_settings,
    write_outputs,
)

RESULTS = HERE / "results"
WORK = HERE / "out" / "sweep_speed"  # git-ignored


def scenarios(inputs) -> list[Scenario]:
    out = demand_grid(parse_range("0.5:5.5:0.2"))
    out += failure_grid(inputs, "cluster") + failure_grid(inputs, "zone")
    out += price_grid("h100-sxm", parse_range("0.6:1.5:0.1"))
    out += [Scenario(name=f"double-{w.name}"[:63], edits=[ScaleDemand(factor=2.0, workflow=w.name)], value=w.name) for w in inputs.workflows]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=2.0, help="CP-SAT work budget per scenario (deterministic units, ~s)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick or os.environ.get("MAESTRO_BENCH_QUICK") == "1"

    inputs = load_inputs(REPO / "inventories", REPO / "models", REPO / "workloads")
    scs = scenarios(inputs)
    assert len(scs) == 50, len(scs)
    if quick:
        scs = scs[:10]
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    base = solve_inputs(inputs, solve_settings(time_limit_s=args.time_limit, workers=2, seed=0))
    base_s = time.perf_counter() - t0
    settings = solve_settings(time_limit_s=args.time_limit, workers=1 if args.jobs > 1 else 2, seed=0)
    done = []

    def tick(i: int, row: dict) -> None:
        done.append(i)
        print(f"  [{len(done):>2}/{len(scs)}] {row['scenario']:<32} {'ok' if row['feasible'] else 'infeasible'}", flush=True)

    run = run_sweep(inputs, scs, base, settings, executor="local", jobs=args.jobs, progress=tick)
    total = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = ru.ru_utime + ru.ru_stime  # the worker processes' CPU seconds (what an idle machine would need)
    write_outputs(WORK, run.rows, base=base, parameter="scenario (mixed grid)", inputs=inputs, plot=True)

    demand_rows = [r for r in run.rows if r["scenario"].startswith("demand-x")]
    runs_out = next((r["value"] for r in demand_rows if not r["feasible"]), None)
    per = sorted(run.wall_s)
    result = {
        "benchmark": "sweep_speed",
        "scenarios": len(scs),
        "quick": quick,
        "jobs": args.jobs,
        "executor": "local",
        "time_limit_s": args.time_limit,
        "base_solve_s": round(base_s, 2),
        "sweep_s": round(run.total_wall_s, 2),
        "total_s": round(total, 2),
        "per_scenario_s": {"median": round(statistics.median(per), 2), "max": round(per[-1], 2), "min": round(per[0], 2), "sum": round(sum(per), 2)},
        "worker_cpu_s": round(worker_cpu, 1),
        "feasible": sum(1 for r in run.rows if r["feasible"]),
        "infeasible": [r["scenario"] for r in run.rows if not r["feasible"]],
        "demand_factor_where_fleet_runs_out": runs_out,
        "base": {"cost_per_hour": base.cost_per_hour, "gpus": sum(sum(t.values()) for t in base.gpus_used.values()), "status": base.solve.status,
                 "gap": base.solve.gap},
        "machine": {"cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load0] if load0 else None,
                    "python": platform.python_version(), "platform": platform.platform()},
        "rows": [{"scenario": r["scenario"], "feasible": r["feasible"], "cost_per_hour": r["cost_per_hour"], "gpus": r["gpus"],
                  "touched": sum(r["changes"].get(k, 0) for k in ("added", "removed", "moved", "resized")) if r["changes"] else None,
                  "wall_s": w} for r, w in zip(run.rows, run.wall_s)],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text(RESULTS / "sweep.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    md = [
        "# Sweep speed (benchmarks/sweep_speed.py)",
        "",
        f"{len(scs)} what-if scenarios on the bundled fleet (inventories/multi-region-fleet.yaml, {sum(sum(t.values()) for t in base.gpus_used.values())} GPUs "
        f"used by the base plan), local executor, {args.jobs} processes x 1 CP-SAT worker, work budget {args.time_limit:g} per scenario, "
        f"warm-started from the base plan. Machine: {os.cpu_count()} CPUs, load average at start {result['machine']['loadavg_at_start']}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| base solve | {base_s:.1f} s ({base.solve.status}, ${base.cost_per_hour:,.2f}/h) |",
        f"| sweep of {len(scs)} scenarios | {run.total_wall_s:.1f} s |",
        f"| total (base + sweep) | {total:.1f} s |",
        f"| per scenario (median / max) | {result['per_scenario_s']['median']} s / {result['per_scenario_s']['max']} s |",
        f"| CPU time of the worker processes | {worker_cpu:.0f} s (= {worker_cpu / args.jobs:.0f} s of wall time on {args.jobs} idle cores) |",
        f"| feasible | {result['feasible']} of {len(scs)} |",
        f"| demand factor where the fleet runs out | {runs_out if runs_out is not None else 'not within the grid'} |",
        "",
        "Infeasible scenarios: " + (", ".join(result["infeasible"]) or "none") + ".",
        "",
    ]
    write_text(RESULTS / "sweep.md", "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
