"""Run every benchmark harness in benchmarks/ and collect the results (make bench).

Each harness is a module benchmarks/<name>.py runnable as `python -m benchmarks.<name>` that
writes its results into benchmarks/results/ (<name>.json and .md by convention). This runner starts each one in its own
process (a crash or a time-out in one harness does not stop the others), then writes
benchmarks/results/index.json and index.md: per harness, exit code, wall seconds, and the files
it wrote (those in results/ it changed); rows of harnesses not run this time are kept.

    python -m benchmarks.run_all [--only NAME[,NAME]] [--timeout S] [--quick]

--quick sets MAESTRO_BENCH_QUICK=1 in each harness's environment (harnesses that support it run
their small cases only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SKIP = {"__init__", "run_all"}


def harnesses() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated harness names")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per harness")
    ap.add_argument("--quick", action="store_true", help="ask harnesses for their small cases only")
    args = ap.parse_args(argv)
    names = harnesses()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown harness(es): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.quick:
        env["MAESTRO_BENCH_QUICK"] = "1"
    rows = []
    for name in names:
        before = {p: p.stat().st_mtime_ns for p in RESULTS.iterdir() if p.is_file()}
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            rc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent, env=env, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        secs = time.perf_counter() - t0
        produced = sorted(p.name for p in RESULTS.iterdir() if p.is_file() and not p.name.startswith("index.") and before.get(p) != p.stat().st_mtime_ns)
        rows.append({"harness": name, "exit_code": rc, "seconds": round(secs, 1), "files": produced})
        print(f"   exit {rc} in {secs:.1f} s; wrote {', '.join(produced) or 'nothing'}", flush=True)
    # keep the rows of harnesses not run this time (run_all --only ...)
    old: list[dict] = []
    if (RESULTS / "index.json").is_file():
        try:
            old = json.loads((RESULTS / "index.json").read_text(encoding="utf-8")).get("harnesses", [])
        except (json.JSONDecodeError, AttributeError):
            old = []
    ran = {r["harness"] for r in rows}
    rows = sorted([r for r in old if isinstance(r, dict) and r.get("harness") not in ran and r.get("harness") in harnesses()] + rows, key=lambda r: r["harness"])
    index = {"harnesses": rows, "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    from maestro_plan import atomic

    atomic.write_text(RESULTS / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")
    lines = ["# Benchmark results", "", "| harness | exit | seconds | files |", "|---|---|---|---|"]
    lines += [f"| {r['harness']} | {r['exit_code']} | {r['seconds']} | {', '.join(r['files'])} |" for r in rows]
    atomic.write_text(RESULTS / "index.md", "\n".join(lines) + "\n")
    return 0 if all(r["exit_code"] == 0 for r in rows if r["harness"] in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
