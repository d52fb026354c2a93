"""Command: simulate (discrete-event simulation of a plan serving the workloads)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, WorkloadsOpt, console, emit_json, err_console, guarded


class DisciplineChoice(str, Enum):
    fifo = "fifo"
    edf = "edf"
    maestro = "maestro"


class BadRow(str, Enum):
    skip = "skip"
    stop = "stop"


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def simulate(
        plan: Annotated[Path, typer.Argument(help="plan.json (or the folder holding it)")],
        duration: Annotated[float | None, typer.Option("--duration", help="Seconds of traffic to simulate; arrivals stop then and the run drains (default: 600, or the whole --trace)")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result)")] = 0,
        trace: Annotated[Path | None, typer.Option("--trace", help="Replay query arrivals from a CSV/JSONL trace (timestamp, workflow[, source])")] = None,
        on_bad_row: Annotated[BadRow, typer.Option("--on-bad-row", help="Malformed trace rows: stop (exit 2) or skip them")] = BadRow.stop,
        discipline: Annotated[DisciplineChoice, typer.Option("--discipline", help="Queue discipline of the engines")] = DisciplineChoice.maestro,
        rate_scale: Annotated[float, typer.Option("--rate-scale", help="Multiply every arrival rate (Poisson traffic)")] = 1.0,
        warmup: Annotated[float, typer.Option("--warmup", help="Seconds at the start left out of the statistics")] = 0.0,
        drain: Annotated[float | None, typer.Option("--drain", help="Seconds to keep serving after arrivals stop (default: 2x the largest SLO)")] = None,
        plot_file: Annotated[Path | None, typer.Option("--plot", help="Write a latency/utilization plot (.png, .svg or .pdf)")] = None,
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Simulate the planned fleet serving the workloads: each query walks its workflow DAG, each
        call is routed by the plan, crosses the network, queues and is served by continuous batching
        with the estimator's step times. Reports latency percentiles and SLO attainment per workflow,
        utilization, batch and KV occupancy per replica. Deterministic for a seed.

        Exit codes: 0 done, 2 bad input (plan and inputs that do not match, a malformed trace,
        a duration <= 0).
        """
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan
        from maestro_plan.simulate import SimConfig, build_report, plot, render, run_simulation

        config = SimConfig(
            duration_s=duration if duration is not None or trace is not None else 600.0,
            seed=seed,
            discipline=discipline.value,  # type: ignore[arg-type]
            rate_scale=rate_scale,
            warmup_s=warmup,
            drain_s=drain,
            trace=str(trace) if trace is not None else None,
            on_bad_row=on_bad_row.value,  # type: ignore[arg-type]
        )
        config.check()
        p = read_plan(plan)
        inputs = load_inputs(inventory, models, workloads)
        sim = run_simulation(p, inputs, config, plan_file=plan)
        report = build_report(sim)
        if plot_file is not None:
            plot(sim, report, plot_file)
        if json_out:
            emit_json(report)
        else:
            render(report, console)
            console.print(f"{sim.events:,} events in {sim.wall_s:.1f} s of wall time")
            if plot_file is not None:
                console.print(f"wrote {plot_file}")
        if report["skipped_trace_rows"]:
            err_console.print(f"warning: skipped {len(report['skipped_trace_rows'])} malformed trace row(s); first: {report['skipped_trace_rows'][0]}")

    @app.command()
    @guarded
    def compare(
        plan: Annotated[Path | None, typer.Option("--plan", help="maestro-plan's plan to use (default: solve the inputs)")] = None,
        duration: Annotated[float, typer.Option("--duration", help="Seconds of traffic per simulation")] = 600.0,
        seed: Annotated[int, typer.Option("--seed", help="Random seed (every row sees the same traffic)")] = 0,
        low: Annotated[float, typer.Option("--low", help="Arrival-rate multiplier of the low-contention runs")] = 1.0,
        high: Annotated[float, typer.Option("--high", help="Arrival-rate multiplier of the high-contention runs")] = 2.0,
        time_limit: Annotated[float, typer.Option("--time-limit", help="Solver seconds per baseline plan")] = 20.0,
        out: Annotated[Path | None, typer.Option("--out", help="Write compare.json and compare.md into this folder")] = None,
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Compare maestro-plan's plan with baselines on the same fleet and traffic: naive
        (max_model_len x max_num_seqs KV, no standby, round-robin ignoring latency, FIFO), EDF and
        FIFO queues, and the plan with each idea switched off. One table: KV-reservation HBM, GPUs,
        cost, SLO attainment per class at low and high contention.
        """
        from rich.table import Table

        from maestro_plan.errors import InputError
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan
        from maestro_plan.simulate.compare import HEADERS, headline_lines, run_compare, table_rows, write_results
        from maestro_plan.simulate.engine import SimConfig
        from maestro_plan.solve.problem import SolveSettings

        for name, v in (("--low", low), ("--high", high)):
            if not v > 0:
                raise InputError(f"rate multiplier must be positive, got {v}.", field=name)
        if not time_limit > 0:
            raise InputError(f"time limit must be positive, got {time_limit}.", field="--time-limit")
        SimConfig(duration_s=duration, seed=seed).check()
        inputs = load_inputs(inventory, models, workloads)
        p = read_plan(plan) if plan is not None else None
        log = (lambda s: None) if json_out else (lambda s: err_console.print(f"[dim]{s}[/]"))
        result = run_compare(inputs, plan=p, settings=SolveSettings(time_limit_s=time_limit, seed=seed), duration_s=duration, seed=seed, low=low, high=high, log=log)
        if out is not None:
            cmd = f"maestro-plan compare --duration {duration:g} --seed {seed} --low {low:g} --high {high:g} --time-limit {time_limit:g}"
            write_results(result, out, cmd)
        if json_out:
            emit_json(result)
            return
        from rich.console import Console

        wide = Console(file=console.file, width=max(console.width, 150), highlight=False, no_color=console.no_color, force_terminal=console.is_terminal)
        t = Table(title=f"maestro-plan against baselines ({duration:g} s of traffic, low = rates x{low:g}, high = x{high:g})", title_justify="left")
        for h in HEADERS:
            t.add_column(h, justify="left" if h == "row" else "right")
        for r in table_rows(result):
            t.add_row(*r)
        wide.print(t)
        for line in headline_lines(result) + [f"note: {n}" for n in result["notes"]]:
            console.print(line, soft_wrap=True, markup=False)
        if out is not None:
            console.print(f"wrote {out / 'compare.json'} and {out / 'compare.md'}")
