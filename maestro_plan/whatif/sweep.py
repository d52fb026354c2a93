"""Run many scenarios against one base: grids, parallel executors, result tables and a plot.

- Grids: demand x a..b in steps (all, one workflow or one source), each single failure (cluster,
  zone or node pool), a GPU price factor range, or the scenarios of a scenario file.
- Every scenario is validated and applied before anything is solved (bad input -> InputError,
  exit 2); a scenario the fleet cannot serve becomes a result row (feasible = False, with the
  solver's explanation), never a crash; an internal error in one scenario is also a row.
- Each scenario is solved exactly as `maestro-plan solve` would solve its edited inputs (the base
  plan's recorded settings, see settings_like), so a scenario that changes nothing reproduces the
  base plan. With a change weight > 0 the base plan is also the plan in force (`current_plan`):
  replicas added or removed against it are penalised.
- Executors: "local" (concurrent.futures.ProcessPoolExecutor, `jobs` processes, default) or "ray"
  (ray.init(address=...) - a running Ray cluster, or a local one when address is None). Results
  are ordered by scenario index whatever the completion order, and hold no wall-clock figures, so
  both executors give identical tables.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_plan import atomic
from maestro_plan.errors import InfeasibleError, InputError
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan
from maestro_plan.slo.verdict import plan_summary
from maestro_plan.whatif.apply import apply_scenario, fleet_gpus
from maestro_plan.whatif.diff import diff_plans
from maestro_plan.whatif.scenario import BASE, Remove, ScaleDemand, Scenario, SetPrice

Progress = Callable[[int, dict[str, Any]], None]

# --------------------------------------------------------------------------------------------
# The solver, through its public entry point
# --------------------------------------------------------------------------------------------


SOLVE_DEFAULTS: dict[str, Any] = {"solver": "cpsat", "time_limit_s": 30.0, "seed": 0, "workers": 2}
"""The `solve` command's defaults (cli/solve_cmds.py): a what-if base solved here is the plan
`maestro-plan solve` writes for the same inputs."""

PLAN_SETTINGS = ("objective", "solver", "seed", "time_limit_s", "headroom", "kv_reservation", "length_percentile", "min_zones_interactive")
"""The settings a plan records (plan.schema.Settings) that steer its solve."""


def solve_settings(**kw: Any) -> Any:
    """The solver's settings object (maestro_plan.solve SolveSettings) from keyword arguments.

    Keyword arguments left out take the `solve` command's defaults, so that the same inputs give
    the same plan whichever command solves them (the LP bound and the worker count included:
    CP-SAT's interleaved search differs between 1 and 2 workers)."""
    from maestro_plan.solve.problem import SolveSettings

    return SolveSettings(**{**SOLVE_DEFAULTS, **kw})


def settings_like(plan: Plan | None, **given: Any) -> Any:
    """Settings that reproduce `plan` (its recorded solver, seed, time limit, headroom, ...), with
    the keyword arguments that are not None on top; without a plan, the `solve` defaults."""
    kw: dict[str, Any] = {}
    if plan is not None:
        kw = {k: getattr(plan.settings, k) for k in PLAN_SETTINGS}
    kw.update({k: v for k, v in given.items() if v is not None})
    return solve_settings(**kw)


def solve_inputs(inputs: Inputs, settings: Any, current: Plan | None = None, *, slo_check: str = "sim") -> Plan:
    """Solve one input set as `maestro-plan solve` does, percentile-SLO loop included (`slo_check`:
    none, model or sim, the solve command's default sim). Raises InfeasibleError when no plan
    exists, or when no plan meets every workflow's percentile SLO (the reason names the workflow).

    The plan in force (`current`) reaches the solver only with a change penalty: it widens the
    candidate set and steers placement, so without one it would make a scenario's solve differ
    from `maestro-plan solve` on the same inputs (the x1 demand point of a sweep would not be the
    base plan). Replicas are paired by stable address in diffs instead (whatif/diff.py)."""
    from maestro_plan.slo import solve_checked

    if current is not None and not settings.change_weight > 0:
        current = None
    plan, _stats = solve_checked(inputs, settings, mode=slo_check, current_plan=current)
    return plan


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------


MAX_GRID = 10_000  # values in one sweep range (10,000 solves is days of solver time already)


def parse_range(text: str, what: str = "--demand") -> list[float]:
    """'0.5:3:0.25' -> [0.5, 0.75, ..., 3.0] (both ends included); '0.5,1,2' -> a list."""
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if not all(math.isfinite(x) for x in parts):
                raise InputError(f"range '{text}' must use finite numbers.", field=what, hint="write START:STOP:STEP, e.g. 0.5:3:0.25.")
            if step <= 0 or stop < start:
                raise InputError(f"range '{text}' must have start <= stop and step > 0.", field=what, hint="write START:STOP:STEP, e.g. 0.5:3:0.25.")
            n = int(math.floor((stop - start) / step + 1e-9))
            if n + 1 > MAX_GRID:  # checked before the grid is built
                raise InputError(f"range '{text}' has {n + 1:,} values; at most {MAX_GRID:,}.", field=what, hint="use a larger step.")
            values = [round(start + i * step, 10) for i in range(n + 1)]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"cannot read '{text}' as a range.", field=what, hint="write START:STOP:STEP (0.5:3:0.25) or a list (0.5,1,2).") from None
    if not values:
        raise InputError(f"range '{text}' is empty.", field=what)
    if len(values) > MAX_GRID:
        raise InputError(f"range '{text}' has {len(values):,} values; at most {MAX_GRID:,}.", field=what, hint="use a larger step.")
    for v in values:
        if not math.isfinite(v) or v <= 0:
            raise InputError(f"scale factor {v:g} in '{text}' must be > 0.", field=what, hint="start the range above 0, e.g. 0.25:3:0.25.")
    return values


def demand_grid(values: Sequence[float], workflow: str | None = None, source: str | None = None) -> list[Scenario]:
    sel = "-".join(x for x in (workflow, source) if x)
    out = []
    for v in values:
        name = f"demand{'-' + sel if sel else ''}-x{v:g}".replace("_", "-")[:63]
        out.append(Scenario(name=name, edits=[ScaleDemand(factor=v, workflow=workflow, source=source)], value=v))
    return out


def failure_grid(inputs: Inputs, level: str) -> list[Scenario]:
    """One scenario per single failure: each cluster, each zone, or each node pool."""
    inv = inputs.inventory
    if level == "cluster":
        names = sorted(c.name for c in inv.clusters)
    elif level == "zone":
        names = sorted({p.zone for c in inv.clusters for p in c.node_pools})
    elif level in ("node-pool", "node_pool", "pool"):
        level = "node_pool"
        names = sorted(p.name for c in inv.clusters for p in c.node_pools)
    else:
        raise InputError(f"unknown failure level '{level}'.", field="--fail", hint="use cluster, zone or node-pool.")
    return [Scenario(name=f"fail-{n}"[:63].rstrip("-."), edits=[Remove(**{level: n})], value=n) for n in names]


def price_grid(gpu_type: str, factors: Sequence[float], cluster: str | None = None) -> list[Scenario]:
    return [Scenario(name=f"price-{gpu_type}-x{f:g}"[:63], edits=[SetPrice(gpu_type=gpu_type, factor=f, cluster=cluster)], value=f) for f in factors]


def product_grid(axes: Sequence[Sequence[Scenario]]) -> list[Scenario]:
    """Every combination of one scenario per axis: edits in axis order, names joined by '--'. The
    first axis is the swept value; the others name the row's group (e.g. demand x fail-us-west)."""
    import itertools

    axes = [list(a) for a in axes if a]
    if len(axes) == 1:
        return axes[0]
    out = []
    for combo in itertools.product(*axes):
        name = "--".join(s.name for s in combo)[:63].rstrip("-.")
        edits = [e for s in combo for e in s.edits]
        out.append(Scenario(name=name, edits=edits, value=combo[0].value, group="--".join(s.name for s in combo[1:])))
    return out


def brackets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the fleet runs out, per group of a numeric sweep: the largest feasible value below the
    smallest infeasible one (`last_feasible` None when even the smallest value tried is infeasible)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool):
            groups.setdefault(r.get("group", ""), []).append(r)
    out = []
    for g, rs in groups.items():
        bad = [r["value"] for r in rs if not r["feasible"]]
        if not bad:
            continue
        hi = min(bad)
        ok = [r["value"] for r in rs if r["feasible"] and r["value"] < hi]
        out.append({"group": g, "last_feasible": max(ok) if ok else None, "first_infeasible": hi})
    return out


def bracket_text(b: dict[str, Any], parameter: str) -> str:
    where = f", with {b['group']}" if b["group"] else ""
    if b["last_feasible"] is None:
        return f"the fleet runs out at or below {b['first_infeasible']:g} ({parameter}{where}): the smallest value tried is infeasible"
    return f"the fleet runs out between {b['last_feasible']:g} (feasible) and {b['first_infeasible']:g} (infeasible) ({parameter}{where})"


def with_factor(scenario: Scenario, factor: float) -> Scenario:
    """`scenario` with its (first) demand scale set to `factor` (a bisection point), other edits kept."""
    first = next(i for i, e in enumerate(scenario.edits) if isinstance(e, ScaleDemand))  # the demand axis comes first
    e0 = scenario.edits[first]
    edits = list(scenario.edits)
    edits[first] = ScaleDemand(factor=factor, workflow=e0.workflow, source=e0.source)
    head = scenario.name.split("--")[0]
    stem = head[: head.rfind("-x")] if "-x" in head else head
    name = "--".join([f"{stem}-x{factor:g}"] + ([scenario.group] if scenario.group else []))[:63].rstrip("-.")
    return Scenario(name=name, edits=edits, value=factor, group=scenario.group)


def bisect(inputs: Inputs, scenarios: Sequence[Scenario], rows: list[dict[str, Any]], base: Plan | None, settings: Any, steps: int,
           progress: Progress | None = None) -> list[dict[str, Any]]:
    """Halve each group's bracket `steps` times (one solve per step); the new rows, in order."""
    by_name = {s.name: s for s in scenarios}
    new: list[dict[str, Any]] = []
    for b in brackets(rows):
        if b["last_feasible"] is None:
            continue
        proto = by_name[next(r["scenario"] for r in rows if r.get("group", "") == b["group"] and r["value"] == b["first_infeasible"])]
        lo, hi = float(b["last_feasible"]), float(b["first_infeasible"])
        for _ in range(steps):
            mid = round((lo + hi) / 2, 6)
            if mid in (lo, hi):
                break
            row = run_scenario(len(rows) + len(new), inputs, with_factor(proto, mid), base, settings)
            row.pop("_wall_s", None)
            new.append(row)
            if progress:
                progress(row["index"], row)
            lo, hi = (mid, hi) if row["feasible"] else (lo, mid)
    return new


# --------------------------------------------------------------------------------------------
# One scenario
# --------------------------------------------------------------------------------------------


def slo_margin(plan: Plan) -> float | None:
    """Smallest (budget - predicted) / budget over replicas that report both (1 = idle, 0 = at the SLO)."""
    margins = [
        (r.latency_budget_ms - r.predicted_latency_ms) / r.latency_budget_ms
        for r in plan.replicas
        if r.latency_budget_ms and r.predicted_latency_ms is not None and r.latency_budget_ms > 0
    ]
    return round(min(margins), 6) if margins else None


def gpus_by_type(plan: Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for types in plan.gpus_used.values():
        for t, n in types.items():
            out[t] = out.get(t, 0) + int(n)
    return dict(sorted(out.items()))


def result_row(index: int, scenario: Scenario, plan: Plan | None, base: Plan | None, *, error: str = "", status: str = "") -> dict[str, Any]:
    """The deterministic result record of one scenario (no wall-clock figures)."""
    row: dict[str, Any] = {
        "index": index,
        "scenario": scenario.name,
        "value": scenario.value,
        "group": scenario.group,
        "edits": scenario.describe(),
        "feasible": plan is not None,
        "status": plan.solve.status if plan is not None else (status or "infeasible"),
        "cost_per_hour": round(plan.cost_per_hour, 6) if plan is not None else None,
        "cost_delta_per_hour": round(plan.cost_per_hour - base.cost_per_hour, 6) if plan is not None and base is not None else None,
        "gpus": sum(gpus_by_type(plan).values()) if plan is not None else None,
        "gpus_by_type": gpus_by_type(plan) if plan is not None else {},
        "replicas": len(plan.replicas) if plan is not None else None,
        "slo_margin": slo_margin(plan) if plan is not None else None,
        "slo": plan_summary(plan)[0] if plan is not None else None,
        "slo_detail": plan_summary(plan)[1] if plan is not None else None,
        "gap": plan.solve.gap if plan is not None else None,
        "shed_rps": round(sum(d.shed_rps for d in plan.demand), 6) if plan is not None else None,
        "reason": error,
    }
    if plan is not None and base is not None:
        d = diff_plans(base, plan)
        row["changes"] = {k: d.count(k) for k in ("added", "removed", "moved", "resized")} | {"unchanged": len(d.unchanged)}
    else:
        row["changes"] = {}
    return row


def run_scenario(index: int, inputs: Inputs, scenario: Scenario, base: Plan | None, settings: Any, *, keep_plan: bool = False) -> dict[str, Any]:
    """Apply, solve (against `base` when the settings carry a change weight), summarise. Infeasible and internal errors -> a row.

    The row carries `_wall_s` (seconds this scenario took); run_sweep moves it out of the row so
    that rows stay deterministic.
    """
    t0 = time.perf_counter()
    row = _run_scenario(index, inputs, scenario, base, settings, keep_plan=keep_plan)
    row["_wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def _run_scenario(index: int, inputs: Inputs, scenario: Scenario, base: Plan | None, settings: Any, *, keep_plan: bool) -> dict[str, Any]:
    try:
        edited = apply_scenario(inputs, scenario, validate=False)
    except InputError as e:  # validated before the sweep starts; kept as a row for safety
        return result_row(index, scenario, None, base, error=e.render(), status="bad-input")
    try:
        plan = solve_inputs(edited, settings, base, slo_check=base.settings.slo_check if base is not None else "sim")
    except InfeasibleError as e:
        return result_row(index, scenario, None, base, error=_one_line(e.render()))
    except InputError as e:
        return result_row(index, scenario, None, base, error=_one_line(e.render()), status="bad-input")
    except Exception as e:  # noqa: BLE001 - one broken scenario must not end a sweep
        if os.environ.get("MAESTRO_PLAN_DEBUG"):
            raise
        return result_row(index, scenario, None, base, error=f"internal error: {type(e).__name__}: {e}", status="error")
    row = result_row(index, scenario, plan, base)
    # the independent verifier re-checks every scenario plan against its edited inputs
    from maestro_plan.verify import verify_plan

    rep = verify_plan(plan, edited)
    row["verified"] = rep.ok
    if not rep.ok:
        row["reason"] = _one_line("; ".join(v.render() for v in rep.violations[:5]))
    if keep_plan:
        row["_plan"] = plan
    return row


def _one_line(text: str, limit: int = 600) -> str:
    t = " | ".join(x.strip() for x in text.splitlines() if x.strip())
    return t if len(t) <= limit else t[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(inputs: Inputs, base: Plan | None, settings: Any, keep_plans: bool = False) -> None:
    from maestro_plan.lifetime import die_with_parent

    die_with_parent()  # a killed sweep takes its workers with it
    _WORKER.update(inputs=inputs, base=base, settings=settings, keep_plans=keep_plans)


def _run_in_worker(index: int, scenario: Scenario) -> dict[str, Any]:
    return run_scenario(index, _WORKER["inputs"], scenario, _WORKER["base"], _WORKER["settings"], keep_plan=_WORKER.get("keep_plans", False))


def _ray_task(inputs: Inputs, base: Plan | None, settings: Any, index: int, scenario: Scenario, keep_plans: bool = False) -> dict[str, Any]:
    from maestro_plan.lifetime import die_with_parent

    # a Ray worker's parent is its node's raylet; a local Ray's raylet dies with the sweep, but
    # a worker busy in a solve (native code holding the GIL) ignored that for its whole solve
    # (a minute, measured): the kernel's SIGKILL on the raylet's death does not wait for it
    die_with_parent()
    return run_scenario(index, inputs, scenario, base, settings, keep_plan=keep_plans)


@dataclass
class SweepRun:
    rows: list[dict[str, Any]]
    executor: str
    jobs: int
    wall_s: list[float] = field(default_factory=list)  # per scenario, not part of the (deterministic) rows
    total_wall_s: float = 0.0


def validate_all(inputs: Inputs, scenarios: Sequence[Scenario], origin: str = "scenario") -> None:
    """Validate and apply every scenario in this process: all bad input surfaces before any solve."""
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"scenario names repeat: {', '.join(dup)}.", file=origin, hint="give each scenario a unique name.")
    problems = []
    for i, s in enumerate(scenarios):
        try:
            apply_scenario(inputs, s, origin=origin, prefix=f"scenarios[{i}]." if len(scenarios) > 1 else "")
        except InputError as e:
            problems.extend(e.problems)
    if problems:
        raise InputError(problems=problems)


def run_sweep(
    inputs: Inputs,
    scenarios: Sequence[Scenario],
    base: Plan | None,
    settings: Any,
    *,
    executor: str = "local",
    jobs: int | None = None,
    ray_address: str | None = None,
    progress: Progress | None = None,
    validate: bool = True,
    keep_plans: bool = False,
) -> SweepRun:
    """Solve every scenario; rows in scenario order (index 0..n-1). With `keep_plans`, each
    solved row carries its Plan under "_plan" (for callers that write the plans out)."""
    if validate:
        validate_all(inputs, scenarios)
    t0 = time.perf_counter()
    n = len(scenarios)
    jobs = max(1, jobs or min(os.cpu_count() or 1, 2))
    rows: list[dict[str, Any] | None] = [None] * n
    if executor == "local":
        if jobs == 1 or n <= 1:
            for i, s in enumerate(scenarios):
                rows[i] = run_scenario(i, inputs, s, base, settings, keep_plan=keep_plans)
                if progress:
                    progress(i, rows[i])  # type: ignore[arg-type]
        else:
            import multiprocessing as mp

            # 'spawn' avoids forking a process that may hold solver threads; deterministic either way
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=ctx, initializer=_init_worker, initargs=(inputs, base, settings, keep_plans)) as pool:
                futs = {pool.submit(_run_in_worker, i, s): i for i, s in enumerate(scenarios)}
                for fut in as_completed(futs):
                    i = futs[fut]
                    rows[i] = fut.result()
                    if progress:
                        progress(i, rows[i])  # type: ignore[arg-type]
    elif executor == "ray":
        rows = _run_ray(inputs, scenarios, base, settings, jobs=jobs, address=ray_address, progress=progress, keep_plans=keep_plans)  # type: ignore[assignment]
    else:
        raise InputError(f"unknown executor '{executor}'.", field="--executor", hint="use local or ray.")
    assert all(r is not None for r in rows)
    walls = [float(r.pop("_wall_s", 0.0)) for r in rows]  # type: ignore[union-attr]
    return SweepRun(rows=rows, executor=executor, jobs=jobs, wall_s=walls, total_wall_s=round(time.perf_counter() - t0, 3))  # type: ignore[arg-type]


def _run_ray(inputs: Inputs, scenarios: Sequence[Scenario], base: Plan | None, settings: Any, *, jobs: int, address: str | None, progress: Progress | None, keep_plans: bool = False) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--executor ray needs Ray, which is not installed.", field="--executor", hint="pip install 'maestro-plan[ray]', or use --executor local."
        ) from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=jobs, **kw)
        started = True
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        inputs_ref, base_ref = ray.put(inputs), ray.put(base)
        refs = {task.remote(inputs_ref, base_ref, settings, i, s, keep_plans): i for i, s in enumerate(scenarios)}
        rows: list[dict[str, Any] | None] = [None] * len(scenarios)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                rows[i] = ray.get(ref)
                if progress:
                    progress(i, rows[i])  # type: ignore[arg-type]
        return rows  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------------------------
# Outputs: sweep.json, sweep.csv, sweep.png
# --------------------------------------------------------------------------------------------

CSV_FIELDS = [
    "index", "scenario", "value", "group", "feasible", "status", "cost_per_hour", "cost_delta_per_hour", "gpus", "replicas",
    "slo", "slo_detail", "slo_margin", "gap", "shed_rps", "added", "removed", "moved", "resized", "verified", "edits", "reason",
]


def sweep_document(rows: list[dict[str, Any]], *, base: Plan | None, parameter: str, inputs: Inputs) -> dict[str, Any]:
    first_infeasible = next((r for r in rows if not r["feasible"]), None)
    return {
        "parameter": parameter,
        "base": {"cost_per_hour": base.cost_per_hour, "gpus": sum(gpus_by_type(base).values()), "plan_id": base.plan_id} if base else None,
        "fleet_gpus": fleet_gpus(inputs),
        "scenarios": len(rows),
        "feasible": sum(1 for r in rows if r["feasible"]),
        "first_infeasible": {"scenario": first_infeasible["scenario"], "value": first_infeasible["value"]} if first_infeasible else None,
        "runs_out": brackets(rows),
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
    }


def rows_csv(rows: list[dict[str, Any]]) -> str:
    types = sorted({t for r in rows for t in r.get("gpus_by_type", {})})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS + [f"gpus_{t}" for t in types])
    for r in rows:
        ch = r.get("changes") or {}
        vals = {**r, **{k: ch.get(k) for k in ("added", "removed", "moved", "resized")}}
        w.writerow([_csv(vals.get(k)) for k in CSV_FIELDS] + [_csv(r.get("gpus_by_type", {}).get(t, 0) if r["feasible"] else None) for t in types])
    return buf.getvalue()


def _csv(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


def plot_png(rows: list[dict[str, Any]], parameter: str, title: str = "", fleet_gpus: int | None = None) -> bytes:
    """Cost and GPUs against the swept value; infeasible scenarios marked, with the point where the
    fleet runs out. Deterministic bytes (Agg backend, fixed size and dpi, no software metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = all(isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool) for r in rows)
    if numeric:  # bisection rows come last: draw in value order, one line per group
        rows = sorted(rows, key=lambda r: (r.get("group", ""), r["value"]))
    xs = [r["value"] for r in rows] if numeric else list(range(len(rows)))
    ok = [r["feasible"] for r in rows]
    groups = sorted({r.get("group", "") for r in rows})
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    try:
        types = sorted({t for r in rows for t in r.get("gpus_by_type", {})})
        cost = [r["cost_per_hour"] if r["feasible"] else math.nan for r in rows]
        gpus = [r["gpus"] if r["feasible"] else math.nan for r in rows]
        if numeric and len(groups) > 1:
            for g in groups:
                sel = [i for i, r in enumerate(rows) if r.get("group", "") == g]
                ax1.plot([xs[i] for i in sel], [cost[i] for i in sel], marker="o", label=g or "no other edit")
                ax2.plot([xs[i] for i in sel], [gpus[i] for i in sel], marker="o", label=g or "no other edit")
        elif numeric:
            ax1.plot(xs, cost, marker="o", color="tab:blue", label="cost")
            ax2.plot(xs, gpus, marker="o", color="black", label="all GPUs")
            for t in types:
                ax2.plot(xs, [r["gpus_by_type"].get(t, 0) if r["feasible"] else math.nan for r in rows], marker=".", linewidth=1, label=t)
        else:
            ax1.bar(xs, [c if c == c else 0 for c in cost], color=["tab:blue" if k else "white" for k in ok], edgecolor="tab:blue", label="cost")
            bottom = [0.0] * len(rows)
            for t in types:
                vals = [r["gpus_by_type"].get(t, 0) if r["feasible"] else 0 for r in rows]
                ax2.bar(xs, vals, bottom=bottom, label=t)
                bottom = [b + v for b, v in zip(bottom, vals)]
        if fleet_gpus:
            ax2.axhline(fleet_gpus, color="grey", linestyle=":", linewidth=1, label=f"fleet ({fleet_gpus} GPUs)")
        bad = [x for x, k in zip(xs, ok) if not k]
        if bad:
            for ax in (ax1, ax2):
                lo, hi = ax.get_ylim()
                ax.scatter(bad, [lo + 0.02 * (hi - lo)] * len(bad), marker="x", color="tab:red", s=60, zorder=5, label="infeasible")
            for b in brackets(rows) if numeric and len(groups) == 1 else []:
                lo = b["last_feasible"] if b["last_feasible"] is not None else b["first_infeasible"]
                for ax in (ax1, ax2):
                    ax.axvspan(lo, b["first_infeasible"], color="tab:red", alpha=0.12, linewidth=0)
                where = f"between {lo:g} and {b['first_infeasible']:g}" if b["last_feasible"] is not None else f"at or below {lo:g}"
                ax1.annotate(f"fleet runs out {where}", xy=(b["first_infeasible"], 0.95), xycoords=("data", "axes fraction"), ha="right", va="top",
                             color="tab:red", fontsize=9)
        ax1.set_ylabel("cost, USD per hour")
        ax2.set_ylabel("GPUs used")
        ax2.set_xlabel(parameter)
        if not numeric:
            ax2.set_xticks(xs)
            ax2.set_xticklabels([r["scenario"] for r in rows], rotation=45, ha="right", fontsize=8)
        ax1.grid(True, alpha=0.3)
        ax2.grid(True, alpha=0.3)
        ax1.legend(loc="upper left", fontsize=8)
        ax2.legend(loc="upper left", fontsize=8, ncol=2)
        if title:
            ax1.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def write_outputs(out_dir: str | Path, rows: list[dict[str, Any]], *, base: Plan | None, parameter: str, inputs: Inputs, plot: bool = True,
                  extra: Callable[[Path], None] | None = None) -> list[Path]:
    """sweep.json, sweep.csv and (plot=True) sweep.png, written atomically into out_dir, with
    whatever `extra` writes into the same staging folder (the CLI: a plan folder per scenario)."""
    out = Path(out_dir)
    doc = sweep_document(rows, base=base, parameter=parameter, inputs=inputs)
    written = []
    with atomic.staged_dir(out) as stage:
        (stage / "sweep.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (stage / "sweep.csv").write_text(rows_csv(rows), encoding="utf-8")
        written += [out / "sweep.json", out / "sweep.csv"]
        if plot:
            png = plot_png(rows, parameter, title=f"{len(rows)} scenarios: {parameter}", fleet_gpus=sum(doc["fleet_gpus"].values()))
            (stage / "sweep.png").write_bytes(png)
            written.append(out / "sweep.png")
        if extra is not None:
            extra(stage)
    return written


__all__ = [
    "BASE",
    "SweepRun",
    "bisect",
    "bracket_text",
    "brackets",
    "product_grid",
    "settings_like",
    "demand_grid",
    "failure_grid",
    "parse_range",
    "plot_png",
    "price_grid",
    "result_row",
    "rows_csv",
    "run_scenario",
    "run_sweep",
    "slo_margin",
    "solve_inputs",
    "solve_settings",
    "sweep_document",
    "validate_all",
    "write_outputs",
]
