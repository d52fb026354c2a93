"""Byte-identity harness for the solver: the SHA-256 of each canonical plan.json, recorded and checked.

Cases: the bundled inputs (inventories/, models/, workloads/ of the repository) and synthetic
fleets from `maestro_plan.synth` (catalogue: the bundled models/) at 100 GPUs (10 models, 2
clusters, 4 workflows) and 1,000 GPUs (40 models, 3 clusters, 8 workflows), seeds 0-3, the
shapes of benchmarks/solver_scale.py. Every case is solved with the same fixed settings (cost
objective, CP-SAT, 2 workers, seed = the synth seed, --time-limit 10 s, the solver_scale setting)
and its plan.json is serialised with plan/io's canonical JSON (`maestro_plan.plan.io.dumps`).

    python -m benchmarks.plans_identical            record benchmarks/results/plans_identical.json
    python -m benchmarks.plans_identical --check    compare; exit 1 naming every case that differs
    ... [--cases bundled,100-s0]                    a subset (the test suite checks the small ones)

A refactor of the solver must leave every hash unchanged. A change that is meant to change plans
re-records the file in its own commit, saying why and by how much cost and gap moved per case
(the file keeps cost, gap and status next to each hash for that purpose).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "plans_identical.json"
TIME_LIMIT_S = 10.0  # the solver_scale benchmark's limit for 100 and 1,000 GPUs


@dataclass(frozen=True)
class Case:
    name: str
    gpus: int = 0  # 0: the bundled inputs
    models: int = 0
    clusters: int = 0
    workflows: int = 0
    seed: int = 0


CASES = (
    Case("bundled"),
    *(Case(f"100-s{s}", 100, 10, 2, 4, s) for s in range(4)),
    *(Case(f"1000-s{s}", 1000, 40, 3, 8, s) for s in range(4)),
)


def _inputs(case: Case, work: Path) -> Any:
    from maestro_plan.load.loader import load_inputs

    if not case.gpus:
        return load_inputs(ROOT / "inventories", ROOT / "models", ROOT / "workloads")
    from maestro_plan.synth import SynthSpec, load_catalogue, write_synth

    folder = work / case.name
    catalogue = ROOT / "models"
    write_synth(SynthSpec(case.gpus, case.models, case.clusters, case.workflows, seed=case.seed, catalogue=catalogue), folder, load_catalogue(catalogue))
    return load_inputs(folder / "inventories", folder / "models", folder / "workloads")


def solve_case(case: Case, work: Path) -> dict[str, Any]:
    """Solve one case with the fixed settings; its plan's hash and headline figures."""
    from maestro_plan.plan.io import dumps
    from maestro_plan.solve import SolveSettings, solve

    settings = SolveSettings(objective="cost", solver="cpsat", seed=case.seed, time_limit_s=TIME_LIMIT_S, workers=2)
    plan, _ = solve(_inputs(case, work), settings)
    text = dumps(plan)
    return {
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "cost_per_hour": plan.cost_per_hour,
        "gap": plan.solve.gap,
        "status": plan.solve.status,
        "notes": plan.notes,
    }


def run(names: list[str]) -> dict[str, dict[str, Any]]:
    cases = [c for c in CASES if not names or c.name in names]
    unknown = set(names) - {c.name for c in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; known: {[c.name for c in CASES]}")
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="plans_identical-") as tmp:
        for c in cases:
            out[c.name] = solve_case(c, Path(tmp))
            print(f"{c.name}: {out[c.name]['sha256'][:16]} ${out[c.name]['cost_per_hour']:.4f}/h gap {out[c.name]['gap']}", flush=True)
    return out


def differences(recorded: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    """One line per case whose plan hash differs from (or is missing in) the recorded file."""
    out = []
    for name, row in got.items():
        ref = recorded.get(name)
        if ref is None:
            out.append(f"{name}: no recorded reference")
        elif ref["sha256"] != row["sha256"]:
            out.append(f"{name}: plan differs (cost ${ref['cost_per_hour']:.4f}/h -> ${row['cost_per_hour']:.4f}/h, gap {ref['gap']} -> {row['gap']})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare against the recorded file instead of writing it")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the recorded file")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    got = run(names)
    if args.check:
        recorded = json.loads(args.results.read_text(encoding="utf-8"))["cases"]
        bad = differences(recorded, got)
        for line in bad:
            print(f"DIFFERS {line}", file=sys.stderr)
        print(f"{len(got) - len(bad)} of {len(got)} case(s) byte-identical")
        return 1 if bad else 0
    from maestro_plan import atomic

    doc = {"time_limit_s": TIME_LIMIT_S, "solver": "cpsat", "workers": 2, "cases": got}
    if names and args.results.exists():  # a subset updates its rows only
        old = json.loads(args.results.read_text(encoding="utf-8"))
        doc["cases"] = {**old["cases"], **got}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.results, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
