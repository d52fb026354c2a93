"""Command: solve (inputs -> plan.json, its JSON Schema, solve statistics, and every emitted output).

Everything is written into a staging folder and moved into --out only when the plan has been
re-checked by the independent verifier and every emitter has succeeded (all or nothing).
Exit codes: 0 written, 1 the verifier found violations (nothing written), 2 bad input,
3 infeasible (the shortfalls are listed), or a workflow misses its percentile SLO at any cost
(maestro_plan.slo names it, unless --allow-slo-miss).
"""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from maestro_plan.cli.common import (
    InventoryOpt,
    JsonOpt,
    ModelsOpt,
    WorkloadsOpt,
    apply_commands,
    console,
    emit_json,
    err_console,
    guarded,
    print_table,
)
from maestro_plan.solve.backends import SolverName as Solver


class Objective(str, Enum):
    cost = "cost"
    goodput = "goodput"


class SloCheck(str, Enum):
    none = "none"
    model = "model"
    sim = "sim"


class KvMode(str, Enum):
    predicted = "predicted"
    naive = "naive"


def _write_outputs(stage: Path, plan, inputs, stats: dict[str, Any], emit: bool, table=None) -> tuple[list[str], list[str]]:
    """plan.json, plan.schema.json, solve-stats.json; verifier; emitters. Returns (files, notes)."""
    from maestro_plan.plan.io import dumps
    from maestro_plan.plan.schema import plan_json_schema

    notes: list[str] = []
    (stage / "plan.json").write_text(dumps(plan), encoding="utf-8")
    (stage / "plan.schema.json").write_text(json.dumps(plan_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    try:
        from maestro_plan.verify import verify_plan
    except ImportError:  # pragma: no cover - the verifier ships with the package
        verify_plan = None  # type: ignore[assignment]
        notes.append("verifier not available: plan not re-checked")
    if verify_plan is not None:
        t = time.perf_counter()
        report = verify_plan(plan, inputs, capacity_table=table)
        stats.setdefault("timings", {})["verify_s"] = round(time.perf_counter() - t, 4)
        violations = list(report.violations)
        stats["verify"] = {"ok": not violations, "violations": len(violations)}
        if violations:
            lines = [v.render() for v in violations[:40]]
            more = len(violations) - len(lines)
            raise _VerifyFailed(lines + ([f"... and {more} more"] if more > 0 else []))
    if emit:
        try:
            from maestro_plan.emit import emit_all
        except ImportError:  # pragma: no cover
            emit_all = None  # type: ignore[assignment]
            notes.append("emitters not available: only plan.json written")
        if emit_all is not None:
            t = time.perf_counter()
            emit_all(plan, inputs, stage)
            stats.setdefault("timings", {})["emit_s"] = round(time.perf_counter() - t, 4)
    (stage / "solve-stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    return files, notes


write_plan_folder = _write_outputs
"""Public name of the solve folder writer: whatif/sweep --out write the same folder per scenario."""


class _VerifyFailed(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _summary(plan, stats: dict[str, Any], out: Path, files: list[str]) -> None:
    s = plan.solve
    gap = f"{100 * s.gap:.2f}%" if s.gap is not None else "n/a"
    bound = f"${s.bound:,.2f}/h" if (s.bound is not None and plan.settings.objective == "cost") else (f"{s.bound:.4g}" if s.bound is not None else "n/a")
    head = f"[bold]{plan.settings.objective}[/] plan, solver {plan.settings.solver}: status [bold]{s.status}[/], ${plan.cost_per_hour:,.2f}/h"
    console.print(head + f", gap {gap} (bound {bound})")
    if s.lp_bound is not None or s.heuristic_objective is not None:
        parts = []
        if stats.get("heuristic_cost_per_hour") is not None:
            parts.append(f"greedy ${stats['heuristic_cost_per_hour']:,.2f}/h")
        if s.lp_bound is not None:
            parts.append(f"LP bound ${s.lp_bound:,.1f}/h" if plan.settings.objective == "cost" else f"LP bound {s.lp_bound:,.4g}")
        console.print("  " + ", ".join(parts))
    t = Table(title="GPUs used")
    for col in ("cluster", "GPU type", "GPUs", "replicas", "$/h"):
        t.add_column(col, justify="right" if col in ("GPUs", "replicas", "$/h") else "left")
    reps: dict[tuple[str, str], int] = {}
    cost: dict[tuple[str, str], float] = {}
    for r in plan.replicas:
        k = (r.cluster, r.gpu_type)
        reps[k] = reps.get(k, 0) + 1
        cost[k] = cost.get(k, 0.0) + r.price_per_hour
    for cl, types in plan.gpus_used.items():
        for g, n in types.items():
            t.add_row(cl, g, str(n), str(reps.get((cl, g), 0)), f"{cost.get((cl, g), 0.0):,.2f}")
    _total_rows(t, plan, sum(cost.values()))
    print_table(t)
    shed = [d for d in plan.demand if d.shed_rps > 1e-9]
    models = sorted({r.model for r in plan.replicas})
    console.print(f"{len(plan.replicas)} replicas of {len(models)} models, {len(plan.standby)} warm standby, {len(plan.routes)} routes" + (f", {len(shed)} demand pair(s) partly shed" if shed else ""))
    if plan.kv is not None and plan.kv.naive_bytes:
        console.print(f"KV reserved {plan.kv.predicted_bytes / 2**30:,.1f} GiB vs naive {plan.kv.naive_bytes / 2**30:,.1f} GiB ({100 * plan.kv.saved_fraction:.0f}% saved)")
    for n in plan.notes:
        console.print(f"[yellow]note:[/] {escape(n)}")
    tm = stats.get("timings", {})
    console.print(f"wrote {len(files)} files to {escape(str(out))} (last solve {tm.get('solve_s', 0):.1f} s, whole command {tm.get('command_s', tm.get('total_s', 0)):.1f} s)")
    for line in [f"next: maestro-plan verify {out}", *(f"      {c}" for c in apply_commands(out))]:
        console.print(escape(line), soft_wrap=True)


def _total_rows(t: Table, plan, replicas_cost: float) -> None:
    """A total row whose $/h is the headline, with what is not in a replica (warm standby) apart."""
    other = plan.cost_per_hour - replicas_cost
    if abs(other) >= 0.005:
        t.add_row("warm standby, other", "", "", "", f"{other:,.2f}")
    gpus = sum(n for types in plan.gpus_used.values() for n in types.values())
    t.add_row("[bold]total[/]", "", f"[bold]{gpus}[/]", f"[bold]{len(plan.replicas)}[/]", f"[bold]{plan.cost_per_hour:,.2f}[/]")


DEFAULT_TIME_LIMIT_S = 30.0
"""`solve` without --time-limit: the work budgets of a 30 s solve and no deadline, so that the same
inputs give the same plan on any machine load (the README's first command, CI jobs). Given on the
command line, --time-limit is also a deadline for the whole command (maestro_plan/deadline.py): on
the bundled demo under a load average of 3 on 2 cores, a 30 s deadline cut the SLO loop's second
solve and the plan cost $626.55/h against $557.45/h without it."""


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def solve(
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (replaced file by file, all or nothing)")] = Path("out"),
        objective: Annotated[Objective, typer.Option("--objective", help="cost: cheapest plan serving all demand; goodput: fixed fleet, serve the most (interactive first)")] = Objective.cost,
        solver: Annotated[Solver, typer.Option("--solver", help="cpsat (default), highs, cbc, or greedy (the heuristic alone)")] = Solver.cpsat,
        time_limit: Annotated[float | None, typer.Option("--time-limit", min=0.1, help=f"Seconds for the whole command (load, solve, SLO check, verify, emit) [default: {DEFAULT_TIME_LIMIT_S:g}, without a deadline]. The solver's stages get deterministic work budgets sized so that an idle 2-core machine finishes within it (same inputs, same plan); given on the command line it is also a deadline: where a loaded machine would overrun, the solve is cut short and the plan's notes say so")] = None,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed of the solver")] = 0,
        headroom: Annotated[float, typer.Option("--headroom", min=0.0, max=10.0, help="Spare capacity above demand (0.2 = provision 1.2x)")] = 0.2,
        kv_reservation: Annotated[KvMode, typer.Option("--kv-reservation", help="KV per replica from predicted lengths, or naive max_model_len x max_num_seqs")] = KvMode.predicted,
        percentile: Annotated[float, typer.Option("--percentile", min=1.0, max=100.0, help="Length percentile the KV reservation covers")] = 99.0,
        min_zones: Annotated[int, typer.Option("--min-zones", min=0, max=16, help="Failure domains each interactive model is spread over")] = 2,
        current: Annotated[Path | None, typer.Option("--current", help="The plan in force (plan.json): placement stays put where it can")] = None,
        change_weight: Annotated[float, typer.Option("--change-weight", min=0.0, help="Penalty in $/h per replica added or removed against --current")] = 0.0,
        capacity_table: Annotated[Path | None, typer.Option("--capacity-table", help="Measured capacities (CSV/YAML) that override the estimate")] = None,
        standby: Annotated[bool, typer.Option("--standby/--no-standby", help="Allow warm standby of rarely used models in host DRAM")] = True,
        colocation: Annotated[bool, typer.Option("--colocation/--no-colocation", help="Allow TP-1 engines, sized to their need in bytes, to share a GPU (at most 8 per GPU)")] = True,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes for the per-model blocks and the neighbourhood search (their work budget scales with up to 2); CP-SAT itself runs one worker, deterministically")] = 2,
        emit: Annotated[bool, typer.Option("--emit/--no-emit", help="Also write manifests, routing tables and reports")] = True,
        deadline: Annotated[bool | None, typer.Option("--deadline/--no-deadline", help="Hold the whole command to --time-limit, cutting the solve short (and saying so in the plan) where the machine is too slow for the work budgets; --no-deadline: the work budgets only, the same plan on any load however long it takes [default: a deadline only when --time-limit is given]")] = None,
        dump_model: Annotated[Path | None, typer.Option("--dump-model", help="Also write the model of the final solve: FILE.mps (MPS, for HiGHS/CBC or any MIP solver) or FILE.pb.txt (CP-SAT's model proto as text), to reproduce the solve outside maestro-plan")] = None,
        slo_check: Annotated[SloCheck, typer.Option("--slo-check", help="After the solve, check each workflow's percentile SLO with the latency model (model), and also a short seeded simulation (sim); re-solve with tighter budgets where one misses")] = SloCheck.sim,
        allow_slo_miss: Annotated[bool, typer.Option("--allow-slo-miss", help="Write the best plan even when a workflow misses its SLO (flagged in the plan) instead of exiting 3")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Plan the fleet: replicas, GPUs, KV reservations, routing; write DIR/plan.json and outputs.

        Exit codes: 0 written, 1 the verifier found violations (nothing written), 2 bad input,
        3 infeasible (what falls short is listed).
        """
        from maestro_plan.atomic import staged_dir
        from maestro_plan.estimate import load_capacity_table
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan
        from maestro_plan.slo import solve_checked
        from maestro_plan.solve.problem import SolveSettings

        if dump_model is not None:
            from maestro_plan.solve.dump import check_path

            check_path(dump_model)  # a name without a known format fails before the solve
        from maestro_plan.deadline import Deadline, active, command_start

        started = command_start()
        hold = deadline if deadline is not None else time_limit is not None  # a deadline is what the user asks for
        time_limit = DEFAULT_TIME_LIMIT_S if time_limit is None else time_limit
        inputs = load_inputs(inventory, models, workloads)
        cur = read_plan(current) if current is not None else None
        table = load_capacity_table(capacity_table) if capacity_table is not None else None
        settings = SolveSettings(
            objective=objective.value,
            solver=solver.value,
            time_limit_s=float(time_limit),
            seed=int(seed),
            headroom=float(headroom),
            kv_reservation=kv_reservation.value,
            length_percentile=float(percentile),
            min_zones_interactive=int(min_zones),
            change_weight=float(change_weight),
            workers=int(workers),
            standby=standby,
            colocation=colocation,
            capacity_table=table,
            capacity_table_path=str(capacity_table) if capacity_table else "",
        )
        show = not json_out
        from maestro_plan.cli.progress import SolveProgress
        from maestro_plan.solve.budget import BUDGET

        # the whole command's deadline, counted from the process's start (maestro_plan/deadline.py)
        with active(Deadline(float(time_limit), reserve_share=BUDGET.deadline_reserve_share) if hold else None), SolveProgress(err_console, enabled=show) as bar:
            stage = bar.stage
            plan, stats = solve_checked(inputs, settings, mode=slo_check.value, allow_miss=allow_slo_miss, current_plan=cur, progress=bar.progress, stage=stage, dump_model=dump_model)
            stage("verifying and writing outputs")
            try:
                with staged_dir(out) as st:
                    files, notes = _write_outputs(st, plan, inputs, stats, emit, table)
            except _VerifyFailed as e:
                if json_out:
                    emit_json({"ok": False, "verified": False, "violations": e.lines})
                else:
                    err_console.print("[bold red]error:[/] the verifier rejected the plan; nothing was written:")
                    for line in e.lines:
                        err_console.print(f"  - {escape(line)}")
                raise typer.Exit(1) from None
        if json_out:
            emit_json(
                {
                    "ok": True,
                    "out": str(out),
                    "plan_id": plan.plan_id,
                    "status": plan.solve.status,
                    "objective": plan.solve.objective,
                    "bound": plan.solve.bound,
                    "gap": plan.solve.gap,
                    "cost_per_hour": plan.cost_per_hour,
                    "gpus_used": plan.gpus_used,
                    "replicas": len(plan.replicas),
                    "standby": len(plan.standby),
                    "shed_rps": sum(d.shed_rps for d in plan.demand),
                    "files": files,
                    "notes": plan.notes + notes,
                    "timings": stats.get("timings", {}),
                }
            )
        else:
            stats.setdefault("timings", {})["command_s"] = round(time.monotonic() - started, 2)  # display only (solve-stats.json is written)
            _summary(plan, stats, out, files)
            for n in notes:
                console.print(f"[yellow]note:[/] {escape(n)}")
