"""`maestro-plan emit PLAN.json --format ... --out DIR` and `maestro-plan summary PLAN.json`.

Bad input (a missing plan, a plan of a newer schema, a plan that names models or nodes the inputs no
longer have) exits 2 before anything is written; outputs are staged in a temporary folder and moved
into DIR only when every file is complete (maestro_plan.atomic.staged_dir).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, WorkloadsOpt, console, emit_json, guarded

FORMATS = ("k8s", "routing", "litellm", "gateway", "report", "all")


def register(app: typer.Typer) -> None:
    @app.command("emit")
    @guarded
    def emit_cmd(
        plan_file: Annotated[Path, typer.Argument(help="plan.json written by 'maestro-plan solve' (or its folder)", show_default=False)],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (files in it are replaced atomically)")],
        fmt: Annotated[str, typer.Option("--format", "-f", help="k8s | routing | litellm | gateway | report | all")] = "all",
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the plan summary")] = False,
    ) -> None:
        """Re-emit manifests, routing tables or reports from a plan."""
        from maestro_plan.atomic import staged_dir
        from maestro_plan.emit import emit, print_summary
        from maestro_plan.emit.common import check_plan_matches
        from maestro_plan.errors import InputError
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan

        if fmt not in FORMATS:
            raise InputError(f"unknown format '{fmt}'.", field="--format", hint=f"use one of: {', '.join(FORMATS)}.")
        plan = read_plan(plan_file)
        inputs = load_inputs(inventory, models, workloads)
        check_plan_matches(plan, inputs, plan_file)  # before anything is created
        from maestro_plan.whatif.stale import require_current

        require_current(plan, inputs, plan_file, hint="re-solve it from the current inputs ('maestro-plan solve'), or pass the inputs it was made from.",
                     check_table=False)
        if out.exists() and not out.is_dir():
            raise InputError("exists and is not a folder.", file=out, field="--out", hint="name a folder (it is created when missing).")
        with staged_dir(out) as stage:
            written = emit(fmt, plan, inputs, stage)
        if fmt in ("report", "all") and not quiet:
            print_summary(plan, inputs, console)
        console.print(f"wrote {len(written)} files to {out}")

    @app.command("summary")
    @guarded
    def summary_cmd(
        plan_file: Annotated[Path, typer.Argument(help="plan.json (or its folder)", show_default=False)],
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Print a plan's cost, GPUs, utilization, latency vs SLO, KV savings and binding constraints."""
        from maestro_plan.emit import print_summary, summary_data
        from maestro_plan.emit.common import check_plan_matches
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan

        plan = read_plan(plan_file)
        inputs = load_inputs(inventory, models, workloads)
        check_plan_matches(plan, inputs, plan_file)
        if json_out:
            emit_json(summary_data(plan, inputs))
        else:
            print_summary(plan, inputs, console)
