"""Packing and assignment core against proven optima: every instance of ../shared/data/gap-orlib
(generalized assignment, 84 instances) and ../shared/data/vbp-vectorpack (vector bin packing, 750
instances), solved by the same LinearModel + backends the planner uses (benchmarks/packing.py).

    python -m benchmarks.packing_bench [--time-limit S] [--vbp-time-limit S] [--gap-solvers cpsat,highs] [--vbp-solvers cpsat]
                                       [--sets gap,vbp] [--limit N] [--merge]

Writes benchmarks/results/packing.json (one row per instance and solver) and packing.md (summary per
family). MAESTRO_BENCH_QUICK=1 runs 10 instances per set. Times are wall-clock seconds on this
machine; CP-SAT runs with 2 workers and a deterministic work limit equal to --time-limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = HERE.parent.parent / "shared" / "data"


def _gap_rows(limit: int | None) -> list[tuple[str, int | None, int | None]]:
    with (SHARED / "gap-orlib" / "optima.csv").open() as f:
        rows = [(r["Path"], int(r["Optimum"]) if r["Optimum"] else None, int(r["Best known bound"]) if r["Best known bound"] else None) for r in csv.DictReader(f)]
    rows.sort()
    return rows[:limit] if limit else rows


def _vbp_rows(limit: int | None) -> list[tuple[Path, int, int]]:
    out = []
    for name in ("Triplet_summary_known.tsv", "Panigrahy_summary_known.tsv"):
        with (SHARED / "vbp-vectorpack" / name).open() as f:
            for r in csv.DictReader(f, delimiter="\t"):
                out.append((r["instance_name"], int(r["OPT"]), int(r["best_overall"])))
    files = {p.stem: p for p in (SHARED / "vbp-vectorpack").rglob("*.vbp")}
    rows = sorted((files[n], opt, best) for n, opt, best in out if n in files)
    if limit:
        step = max(1, len(rows) // limit)
        rows = rows[::step][:limit]
    return rows


def run_gap(solvers: list[str], time_limit: float, limit: int | None) -> list[dict]:
    from benchmarks.packing import read_gap, solve_gap

    out = []
    for path, opt, lb in _gap_rows(limit):
        inst = read_gap(SHARED / "gap-orlib" / path)
        for s in solvers:
            t = time.perf_counter()
            res, _ = solve_gap(inst, solver=s, time_limit=time_limit)
            wall = time.perf_counter() - t
            ref = opt if opt is not None else None
            out.append(
                {
                    "set": "gap",
                    "family": path.split("/")[0] + ("/" + path.split("/")[1][0] if path.startswith("chu") else ""),
                    "instance": path,
                    "solver": s,
                    "status": res.status,
                    "objective": res.objective,
                    "bound": res.bound,
                    "optimum": opt,
                    "best_known_bound": lb,
                    "gap_to_optimum": (res.objective - ref) / ref if (ref and res.objective is not None) else None,
                    "matched": res.objective is not None and ref is not None and abs(res.objective - ref) < 0.5,
                    "wall_s": round(wall, 3),
                }
            )
            print(f"gap {path:28s} {s:6s} {res.status:9s} {res.objective} opt {opt} {wall:.1f}s", file=sys.stderr)
    return out


def run_vbp(solvers: list[str], time_limit: float, limit: int | None) -> list[dict]:
    from benchmarks.packing import read_vbp, solve_vbp, vbp_lower_bound

    out = []
    for path, opt, best_heur in _vbp_rows(limit):
        inst = read_vbp(path)
        fam = str(path.relative_to(SHARED / "vbp-vectorpack").parent)
        for s in solvers:
            t = time.perf_counter()
            res, bins, ffd = solve_vbp(inst, solver=s, time_limit=time_limit)
            wall = time.perf_counter() - t
            out.append(
                {
                    "set": "vbp",
                    "family": fam,
                    "instance": inst.name,
                    "solver": s,
                    "status": res.status,
                    "objective": bins,
                    "bound": max(res.bound or 0, vbp_lower_bound(inst)),
                    "optimum": opt,
                    "ffd": ffd,
                    "best_paper_heuristic": best_heur,
                    "gap_to_optimum": (bins - opt) / opt,
                    "matched": bins == opt,
                    "wall_s": round(wall, 3),
                }
            )
            print(f"vbp {inst.name:28s} {s:6s} {res.status:9s} {bins} opt {opt} ffd {ffd} {wall:.1f}s", file=sys.stderr)
    return out


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["set"], r["family"], r["solver"])].append(r)
    out = []
    for (st, fam, s), rs in sorted(groups.items()):
        gaps = [r["gap_to_optimum"] for r in rs if r["gap_to_optimum"] is not None]
        out.append(
            {
                "set": st,
                "family": fam,
                "solver": s,
                "instances": len(rs),
                "proven_optimal": sum(r["status"] == "optimal" for r in rs),
                "matched_optimum": sum(bool(r["matched"]) for r in rs),
                "mean_gap_to_optimum": statistics.fmean(gaps) if gaps else None,
                "max_gap_to_optimum": max(gaps) if gaps else None,
                "mean_wall_s": statistics.fmean(r["wall_s"] for r in rs),
                "max_wall_s": max(r["wall_s"] for r in rs),
                "ffd_mean_gap": statistics.fmean((r["ffd"] - r["optimum"]) / r["optimum"] for r in rs) if st == "vbp" else None,
                "paper_heuristic_mean_gap": statistics.fmean((r["best_paper_heuristic"] - r["optimum"]) / r["optimum"] for r in rs) if st == "vbp" else None,
            }
        )
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def markdown(summary: list[dict], meta: dict) -> str:
    lines = [
        "# Packing and assignment core vs proven optima",
        "",
        f"Every instance of `gap-orlib` (OR-Library generalized assignment, min-cost) and `vbp-vectorpack` "
        f"(vector bin packing, Mommessin et al. 2025), solved by `benchmarks/packing.py` with a "
        f"{meta['time_limit_s']:g} s limit per GAP instance and solver and {meta.get('vbp_time_limit_s', meta['time_limit_s']):g} s per VBP "
        f"instance ({meta['machine']}; wall {meta['wall_s']:g} s in all). "
        "proven: the solver proved optimality; matched: its best solution equals the published optimum; "
        "gap: (found - optimum) / optimum. For VBP, FFD is first-fit decreasing (the warm start) and "
        "'paper best' the best heuristic of the source paper.",
        "",
        "| set | family | solver | instances | proven | matched | mean gap | max gap | mean s | max s | FFD gap | paper best gap |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        lines.append(
            f"| {r['set']} | {r['family']} | {r['solver']} | {r['instances']} | {r['proven_optimal']} | {r['matched_optimum']} | "
            f"{_pct(r['mean_gap_to_optimum'])} | {_pct(r['max_gap_to_optimum'])} | {r['mean_wall_s']:.2f} | {r['max_wall_s']:.2f} | "
            f"{_pct(r['ffd_mean_gap'])} | {_pct(r['paper_heuristic_mean_gap'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per GAP instance and solver")
    ap.add_argument("--vbp-time-limit", type=float, default=1.0, help="seconds per VBP instance (750 of them)")
    ap.add_argument("--gap-solvers", default="cpsat,highs")
    ap.add_argument("--vbp-solvers", default="cpsat")
    ap.add_argument("--sets", default="gap,vbp")
    ap.add_argument("--limit", type=int, default=0, help="instances per set (0: all)")
    ap.add_argument("--merge", action="store_true", help="keep earlier results of the sets not run this time")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    limit = args.limit or (10 if os.environ.get("MAESTRO_BENCH_QUICK") else None)
    sets = set(args.sets.split(","))
    rows: list[dict] = []
    t0 = time.perf_counter()
    if "gap" in sets:
        rows += run_gap([s for s in args.gap_solvers.split(",") if s], args.time_limit, limit)
    if "vbp" in sets:
        rows += run_vbp([s for s in args.vbp_solvers.split(",") if s], args.vbp_time_limit, limit)
    meta = {
        "time_limit_s": args.time_limit,
        "vbp_time_limit_s": args.vbp_time_limit,
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        "wall_s": round(time.perf_counter() - t0, 1),
        "limit": limit,
    }
    old = RESULTS / "packing.json"
    if args.merge and old.is_file():  # keep the rows of sets not run this time
        prev = json.loads(old.read_text())
        rows = [r for r in prev.get("rows", []) if r["set"] not in sets] + rows
    summary = summarize(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "packing.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2, sort_keys=True) + "\n")
    (RESULTS / "packing.md").write_text(markdown(summary, meta))
    print(markdown(summary, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
