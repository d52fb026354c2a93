"""Melange's published example as a fleet: two GPU types, request-size buckets, measured throughputs.

Source: Melange (Griggs et al., "Mélange: Cost Efficient Large Language Model Serving by Exploiting
GPU Heterogeneity", arXiv 2404.14527), repository github.com/tyler-griggs/melange-release at commit
d46ab43, melange/config/example.json: GPU types A10G ($1.01/h) and A100-80GB ($3.67/h); a 2 x 2
grid of request-size buckets (rows: input size, columns: output size) with the measured maximum
throughput of one GPU per bucket (A10G [[2, 1], [5, 2]], A100 [[20, 20], [40, 20]] req/s); a
workload distribution [[0.2, 0.1], [0.5, 0.2]] of a 30 req/s total. The example publishes no bucket
boundaries; its README's illustration ("1-25, 25-100, 100-250, ...") gives the first two, so the
buckets here are inputs and outputs of at most 25 and at most 100 tokens
(benchmarks/data/melange/capacity.csv, one row per bucket and GPU type, in the published order).

Throughput is not monotone in length here: the bucket of longer inputs (<= 100 in, <= 25 out) is
measured faster than the shortest bucket on both GPU types. A planner that takes one capacity at
the rate-weighted mean length of a replica's traffic looks that mean up in the table: the mean of
the four buckets falls in the fast cell, so one A100 seems to carry the whole load ($3.67/h) while
the classes it actually serves need 1.125 A100s (1.35 with 20 % headroom).

Each bucket is a request class: one role of one workflow (calls_per_query = its share). The example
gives no lengths inside a bucket; `lengths` picks each class's mean as the bucket's geometric
midpoint (sqrt(1 x 25) = 5, sqrt(25 x 100) = 50 tokens: the published failure) or arithmetic
midpoint (13 and 62.5). The measured rows carry latency_ms = 1000 (not published: Melange measured
under its own SLO); the workflow's SLO (60 s at p95) leaves every class a per-call budget above it,
so every row applies as published. Llama 2 7B is the model of Melange's evaluation.

The reference is the continuous-routing optimum (each bucket's rate split over GPU types, replicas
loaded additively: sum over buckets of provisioned rate / throughput <= GPUs of that type), solved
here by HiGHS as a 6-variable MIP, independent of the planner. The plan must cost exactly that: at
least as much (no overloaded replica) and no more (continuous routing loses nothing).

    python -m benchmarks.melange            # writes benchmarks/results/melange.md
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "melange"
PRICES = {"a10g": 1.01, "a100-80gb": 3.67}  # example.json gpu_info.*.cost ($/h)
DISTRIBUTION = [[0.2, 0.1], [0.5, 0.2]]  # example.json workload_distribution (rows: input, columns: output bucket)
TOTAL_RPS = 30.0  # example.json total_request_rate
BOUNDS = (25, 100)  # bucket upper bounds, tokens (README: "1-25, 25-100, ...")
MIDPOINTS = {"geometric": (5.0, 50.0), "arithmetic": (13.0, 62.5)}
SLO_MS = 60000.0
MODEL = "llama-2-7b"


def bucket_name(i: int, j: int) -> str:
    return f"in{BOUNDS[i]}-out{BOUNDS[j]}"


def table_rows() -> list[dict[str, Any]]:
    with (DATA / "capacity.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def throughput(gpu: str, i: int, j: int) -> float:
    for r in table_rows():
        if r["gpu"] == gpu and int(r["input_tokens"]) == BOUNDS[i] and int(r["output_tokens"]) == BOUNDS[j]:
            return float(r["max_rps"])
    raise KeyError((gpu, i, j))


def _dist(mean: float, hi: int) -> dict[str, Any]:
    return {"mean": mean, "percentiles": {50: mean, 99: float(hi)}, "max": float(hi)}


def write_inputs(root: Path, lengths: str = "geometric") -> dict[str, Path]:
    """Inventory (one cluster: 16 A10G and 16 A100-80GB nodes of one GPU, Melange's prices), the
    model, and one workflow with a role per bucket."""
    mid = MIDPOINTS[lengths]
    root.mkdir(parents=True, exist_ok=True)
    pools = [
        {"name": f"p-{g}", "zone": "z-a", "gpu_type": g, "gpus_per_node": 1, "count": 16, "host_dram_gib": 256, "price_per_gpu_hour": price}
        for g, price in PRICES.items()
    ]
    inv = {
        "name": "melange-example",
        "clusters": [{"name": "c1", "region": "r1", "node_pools": pools}],
        "sources": [{"name": "users"}],
        "links": [{"a": "users", "b": "c1", "latency_ms": 1.0}],
    }
    roles = [
        {
            "name": bucket_name(i, j),
            "model": MODEL,
            "calls_per_query": DISTRIBUTION[i][j],
            "input_tokens": _dist(mid[i], BOUNDS[i]),
            "output_tokens": _dist(mid[j], BOUNDS[j]),
        }
        for i in range(2)
        for j in range(2)
    ]
    wf = {"name": "melange", "priority": "batch", "slo": {"percentile": 95, "latency_ms": SLO_MS}, "arrivals": [{"source": "users", "rate_per_s": TOTAL_RPS}], "roles": roles}
    for sub in ("inventories", "models", "workloads"):
        (root / sub).mkdir(exist_ok=True)
    (root / "inventories" / "fleet.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    shutil.copy(DATA / f"{MODEL}.yaml", root / "models" / f"{MODEL}.yaml")
    (root / "workloads" / "melange.yaml").write_text(yaml.safe_dump(wf, sort_keys=False))
    return {"inventory": root / "inventories" / "fleet.yaml", "models": root / "models", "workloads": root / "workloads", "capacity_table": DATA / "capacity.csv"}


def continuous_optimum(headroom: float) -> tuple[float, dict[str, int]]:
    """min sum_t price_t n_t  s.t.  sum_t x_bt = 1 per bucket b;  sum_b rate_b (1 + h) x_bt / tput_bt <= n_t;
    n_t integer, x continuous (HiGHS). Returns ($/h, GPUs per type)."""
    import highspy

    gpus = sorted(PRICES)
    buckets = [(i, j) for i in range(2) for j in range(2)]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)  # HiGHS' scheduler is per process: the planner's instances run on 1 thread
    n = {t: h.addIntegral(lb=0, ub=64, obj=PRICES[t]) for t in gpus}
    x = {(b, t): h.addVariable(lb=0, ub=1) for b in buckets for t in gpus}
    for b in buckets:
        h.addConstr(sum(x[(b, t)] for t in gpus) == 1)
    for t in gpus:
        h.addConstr(sum(x[(b, t)] * (DISTRIBUTION[b[0]][b[1]] * TOTAL_RPS * (1 + headroom) / throughput(t, *b)) for b in buckets) - n[t] <= 0)
    h.minimize()
    sol = h.getSolution().col_value
    counts = {t: round(sol[n[t].index]) for t in gpus}
    return math.fsum(PRICES[t] * c for t, c in counts.items()), counts


def solve_plan(root: Path, lengths: str, headroom: float, solver: str = "cpsat"):
    from maestro_plan.estimate import load_capacity_table
    from maestro_plan.load.loader import load_inputs
    from maestro_plan.solve.planner import solve
    from maestro_plan.solve.problem import SolveSettings

    paths = write_inputs(root, lengths)
    inputs = load_inputs(paths["inventory"], paths["models"], paths["workloads"])
    table = load_capacity_table(paths["capacity_table"])
    settings = SolveSettings(solver=solver, headroom=headroom, time_limit_s=10.0, capacity_table=table, capacity_table_path=str(paths["capacity_table"]))
    plan, _ = solve(inputs, settings)
    return plan, inputs, table


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from maestro_plan.verify import verify_plan

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "melange.md"))
    args = ap.parse_args(argv)
    lines = ["# Melange's published example (benchmarks/melange.py)", "", "| lengths | headroom | continuous optimum | plan | GPUs (A10G / A100) | verify |", "|---|---:|---:|---:|---|---|"]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for lengths in MIDPOINTS:
            for headroom in (0.0, 0.2):
                opt, counts = continuous_optimum(headroom)
                plan, inputs, table = solve_plan(Path(tmp) / f"{lengths}-{headroom}", lengths, headroom)
                rep = verify_plan(plan, inputs, capacity_table=table)
                used = plan.gpus_used.get("c1", {})
                same = math.isclose(plan.cost_per_hour, opt, rel_tol=1e-9)
                ok = ok and same and rep.ok
                lines.append(f"| {lengths} | {headroom:g} | ${opt:.2f}/h ({counts['a10g']} / {counts['a100-80gb']}) | ${plan.cost_per_hour:.2f}/h | {used.get('a10g', 0)} / {used.get('a100-80gb', 0)} | {'ok' if rep.ok else 'FAILS'} |")
    lines += ["", "Plan = optimum on every row: " + ("yes" if ok else "NO"), ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
