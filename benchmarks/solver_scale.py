"""Solver scale benchmark: synthetic fleets of 100, 1,000 and 10,000 GPUs.

For each case: generate the inputs with `maestro_plan.synth` (fixed seed), solve them with the
solver's public entry point, and record wall-clock solve time, status, objective (cost $/h), the
solver's best bound and gap, the cost against the greedy heuristic baseline and against the LP
bound, and whether the independent verifier accepts the plan. Writes
benchmarks/results/solver_scale.json and solver_scale.md.

Targets (issue 4): 1,000 GPUs / 40 models / 3 clusters / 8 workflows to <= 1 % gap in <= 10 s on 2
cores; 10,000 GPUs in <= 60 s with the gap reported. The process pins itself to 2 CPU cores
(--cores) so the numbers mean the same on larger machines.

    python -m benchmarks.solver_scale [--cases 100,1000,10000] [--cores 2] [--seeds 0,1,2,3]
                                      [--time-limit S] [--catalogue models/ | --embedded]

Each case runs with every seed of its own list (Case.seeds) unless --seeds is given: one synthetic
fleet per seed (the seed drives both `synth` and the solver), since one instance says little
about a solver whose hard part is how tight a fleet happens to be.

MAESTRO_BENCH_QUICK=1 (run_all --quick) runs the 100-GPU case only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import pin_cores

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / "out" / "solver_scale"  # git-ignored


@dataclass(frozen=True)
class Case:
    name: str
    gpus: int
    models: int
    clusters: int
    workflows: int
    time_limit_s: float
    target_gap: float | None = None  # relative gap the case must reach
    target_s: float | None = None  # wall-clock seconds the case must finish in
    seeds: tuple[int, ...] = (0,)


CASES = (
    Case("100", 100, 10, 2, 4, time_limit_s=10.0, seeds=(0, 1)),
    Case("1000", 1000, 40, 3, 8, time_limit_s=10.0, target_gap=0.01, target_s=10.0, seeds=tuple(range(12))),
    Case("10000", 10000, 100, 5, 20, time_limit_s=60.0, target_s=60.0, seeds=(0,)),
)


# --------------------------------------------------------------------------------------------
# The solver's public entry point (maestro_plan.solve); the harness adapts to its signature.
# --------------------------------------------------------------------------------------------


def solver_entry() -> Any:
    """The solver's `solve(inputs, settings) -> Plan` (or a result holding a plan)."""
    import maestro_plan.solve as solve_pkg

    fn = getattr(solve_pkg, "solve", None)
    if fn is None:
        try:
            from maestro_plan.solve.planner import solve as fn
        except ImportError as e:
            raise RuntimeError("maestro_plan.solve exposes no solve(inputs, settings) yet") from e
    return fn


def solve_settings(**kw: Any) -> Any:
    """The solver's settings object (SolveSettings), falling back to the plan's Settings."""
    try:
        from maestro_plan.solve.problem import SolveSettings
    except ImportError:
        from maestro_plan.plan.schema import Settings as SolveSettings
    fields = set(getattr(SolveSettings, "__dataclass_fields__", {})) or set(getattr(SolveSettings, "model_fields", {}))
    return SolveSettings(**{k: v for k, v in kw.items() if k in fields})


def _as_plan(result: Any) -> Any:
    from maestro_plan.plan.schema import Plan

    if isinstance(result, Plan):
        return result
    if isinstance(result, tuple):
        for x in result:
            if isinstance(x, Plan):
                return x
    plan = getattr(result, "plan", None)
    if isinstance(plan, Plan):
        return plan
    raise TypeError(f"the solver returned {type(result).__name__}, not a Plan")


LAST_STATS: dict[str, Any] = {}
"""The last solve's statistics (planner.solve returns (plan, stats)): work counters per phase."""


def run_solver(inputs: Any, settings: Any) -> tuple[Any, float]:
    fn = solver_entry()
    t0 = time.perf_counter()
    result = fn(inputs, settings)
    secs = time.perf_counter() - t0
    LAST_STATS.clear()
    if isinstance(result, tuple):
        LAST_STATS.update(next((x for x in result if isinstance(x, dict)), {}))
    return _as_plan(result), secs


def work_counters(stats: dict[str, Any]) -> dict[str, Any]:
    """What each phase spent in counted work (the budgets are these counts, not seconds: budget.py),
    next to its wall seconds: column generation's rounds and HiGHS work units, the neighbourhood
    search's sub-MIPs, CP-SAT's deterministic time, and the stages' wall seconds."""
    model = stats.get("model", {})
    return {
        "integer_variables": model.get("integer_variables"),
        "cg_rounds": model.get("column_generation"),
        "cg_work_units": model.get("column_generation_work"),
        "lns_sub_mips": model.get("neighbourhood_search_sub_mips"),
        "cpsat_deterministic_time": stats.get("deterministic_time"),
        "timings": stats.get("timings", {}),
    }


# --------------------------------------------------------------------------------------------


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return (a - b) / abs(b)


def run_case(case: Case, *, seed: int, catalogue: Path | None, time_limit: float | None) -> dict[str, Any]:
    from maestro_plan.load.loader import load_inputs
    from maestro_plan.synth import SynthSpec, load_catalogue, write_synth
    from maestro_plan.verify import verify_plan

    row: dict[str, Any] = {"case": asdict(case), "seed": seed}
    folder = WORK / f"{case.name}-s{seed}"
    t0 = time.perf_counter()
    write_synth(SynthSpec(case.gpus, case.models, case.clusters, case.workflows, seed=seed, catalogue=catalogue), folder, load_catalogue(catalogue))
    inputs = load_inputs(folder / "inventories", folder / "models", folder / "workloads")
    row["synth_s"] = round(time.perf_counter() - t0, 2)
    limit = time_limit if time_limit is not None else case.time_limit_s
    settings = solve_settings(objective="cost", solver="cpsat", seed=seed, time_limit_s=limit, workers=2)
    row["load_avg_1m_before"] = round(os.getloadavg()[0], 2)
    try:
        plan, secs = run_solver(inputs, settings)
    except Exception as e:  # record and go on with the next case
        row.update(status="error", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=5))
        return row
    row["work"] = work_counters(LAST_STATS)
    s = plan.solve
    row.update(
        status=s.status,
        solve_s=round(secs, 2),
        cost_per_hour=plan.cost_per_hour,
        objective=s.objective,
        bound=s.bound,
        gap=s.gap,
        heuristic_cost=s.heuristic_objective,
        lp_bound=s.lp_bound,
        replicas=len(plan.replicas),
        gpus_used=sum(sum(v.values()) for v in plan.gpus_used.values()),
        deterministic_time=s.deterministic_time,
    )
    if row["heuristic_cost"] is None:  # the greedy baseline run on its own
        try:
            hplan, hsecs = run_solver(inputs, solve_settings(objective="cost", solver="greedy", seed=seed, time_limit_s=limit, workers=2))
            row["heuristic_cost"], row["heuristic_s"] = hplan.cost_per_hour, round(hsecs, 2)
        except Exception as e:
            row["heuristic_error"] = f"{type(e).__name__}: {e}"
    row["saving_vs_heuristic"] = _rel(row["heuristic_cost"], plan.cost_per_hour) if row["heuristic_cost"] else None
    row["over_lp_bound"] = _rel(plan.cost_per_hour, row["lp_bound"])
    t1 = time.perf_counter()
    report = verify_plan(plan, inputs)
    row["verify_s"] = round(time.perf_counter() - t1, 2)
    row["verified"] = report.ok
    row["violations"] = report.by_constraint() if not report.ok else {}
    met = []
    if case.target_s is not None:
        met.append(secs <= case.target_s)
    if case.target_gap is not None:
        met.append(s.gap is not None and s.gap <= case.target_gap)
    row["target_met"] = all(met) if met else None
    return row


def _fmt(x: Any, pct: bool = False, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if pct:
        return f"{100 * x:.2f} %"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Solver scale benchmark",
        "",
        f"Synthetic fleets from `maestro-plan synth` (one per seed, catalogue: {doc['catalogue']}), "
        f"solved with the cost objective on {len(m['cores_used']) or '?'} pinned core(s) of a {m['cpu_count']}-CPU machine "
        f"({m['platform']}, Python {m['python']}). Targets: 1,000 GPUs to <= 1 % gap in <= 10 s; 10,000 GPUs in <= 60 s.",
        "",
        "| GPUs | models | clusters | workflows | seed | status | solve s | cost $/h | gap | vs greedy | over LP bound | GPUs used | verified | target |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in doc["cases"]:
        c = r["case"]
        if r.get("status") == "error":
            lines.append(f"| {c['gpus']:,} | {c['models']} | {c['clusters']} | {c['workflows']} | {r['seed']} | error: {r['error'].splitlines()[0][:100]} | | | | | | | | |")
            continue
        lines.append(
            f"| {c['gpus']:,} | {c['models']} | {c['clusters']} | {c['workflows']} | {r['seed']} | {r['status']} | {_fmt(r['solve_s'])} | "
            f"{_fmt(r['cost_per_hour'])} | {_fmt(r['gap'], pct=True)} | {_fmt(r['saving_vs_heuristic'], pct=True)} cheaper | "
            f"{_fmt(r['over_lp_bound'], pct=True)} | {_fmt(r['gpus_used'])} | {_fmt(r['verified'])} | {_fmt(r['target_met'])} |"
        )
    lines += _work_table(doc)
    lines += [
        "",
        "gap: the solver's (objective - best bound) / objective. vs greedy: how much cheaper than the greedy "
        "first-fit-decreasing baseline. over LP bound: cost above the LP relaxation's optimum (an upper bound on the true gap). "
        "verified: the independent verifier (maestro_plan.verify) accepts the plan.",
    ]
    return "\n".join(lines) + "\n"


def _work_table(doc: dict[str, Any]) -> list[str]:
    """Per run: load average before it, and each phase's counted work beside its wall seconds."""
    out = ["", "Work counters (what the deterministic budgets count) beside wall seconds per phase:", "",
           "| GPUs | seed | load before | integer vars | CG rounds | CG work units | CG s | LNS sub-MIPs | LNS s | formulate s | total s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["cases"]:
        w = r.get("work")
        if not w:
            continue
        t = w.get("timings", {})
        out.append(
            f"| {r['case']['gpus']:,} | {r['seed']} | {_fmt(r.get('load_avg_1m_before'))} | {_fmt(w.get('integer_variables'))} | {_fmt(w.get('cg_rounds'))} | "
            f"{_fmt(w.get('cg_work_units'))} | {_fmt(t.get('decompose_s'))} | {_fmt(w.get('lns_sub_mips'))} | {_fmt(t.get('neighbourhood_search_s'))} | "
            f"{_fmt(t.get('formulate_s'))} | {_fmt(t.get('total_s'))} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (100, 1000, 10000)")
    ap.add_argument("--cores", type=int, default=2, help="pin the process to this many cores (0: do not pin)")
    ap.add_argument("--seeds", default="", help="comma-separated seeds for every case (default: each case's own list)")
    ap.add_argument("--time-limit", type=float, default=None, help="override each case's solver time limit (s)")
    ap.add_argument("--catalogue", type=Path, default=None, help="model folder to derive models from (default: ./models if present)")
    ap.add_argument("--embedded", action="store_true", help="use synth's five embedded architectures")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--name", default="solver_scale", help="results file stem (e.g. solver_scale_fresh for seeds the solver was not tuned on)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()] or (["100"] if os.environ.get("MAESTRO_BENCH_QUICK") else [c.name for c in CASES])
    cases = [c for c in CASES if c.name in names]
    if len(cases) != len(names):
        print(f"unknown case in {names}; known: {[c.name for c in CASES]}", file=sys.stderr)
        return 2
    catalogue = args.catalogue
    if catalogue is None and not args.embedded:
        bundled = HERE.parent / "models"
        catalogue = bundled if any(bundled.glob("*.yaml")) else None
    cores = pin_cores(args.cores)
    doc: dict[str, Any] = {
        "seeds": args.seeds or "per case",
        "catalogue": str(catalogue.relative_to(HERE.parent) if catalogue and catalogue.is_relative_to(HERE.parent) else catalogue or "embedded"),
        "machine": {"cpu_count": os.cpu_count(), "cores_used": cores, "platform": platform.platform(terse=True), "python": platform.python_version()},
        "cases": [],
    }
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else None
    runs = [(c, seed) for c in cases for seed in (seeds or c.seeds)]
    for c, seed in runs:
        print(f"solver_scale: {c.gpus} GPUs, {c.models} models, {c.clusters} clusters, {c.workflows} workflows, seed {seed} ...", flush=True)
        row = run_case(c, seed=seed, catalogue=catalogue, time_limit=args.time_limit)
        doc["cases"].append(row)
        print("  " + json.dumps({k: row.get(k) for k in ("status", "solve_s", "cost_per_hour", "gap", "saving_vs_heuristic", "over_lp_bound", "verified", "target_met", "error")}, default=str), flush=True)
    from maestro_plan import atomic

    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out / f"{args.name}.json", json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    atomic.write_text(args.out / f"{args.name}.md", markdown(doc))
    print(f"wrote {args.out / (args.name + '.json')} and {args.out / (args.name + '.md')}")
    return 0 if all(r.get("status") not in ("error", "infeasible") for r in doc["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
