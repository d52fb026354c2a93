"""Commands: verify (independent re-check of a plan) and synth (synthetic input folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, WorkloadsOpt, console, emit_json, guarded
from maestro_plan.errors import InputError, Problem

MAX_ROWS = 50


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def verify(
        plan: Annotated[Path, typer.Argument(help="plan.json (or the folder holding it)")],
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        capacity_table: Annotated[Path | None, typer.Option("--capacity-table", help="The measured capacity table (CSV/YAML) the plan was solved with")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Re-check a plan against the inputs with code independent of the solver.

        Exit codes: 0 every constraint holds, 1 violations found, 2 bad input (missing plan, newer
        schema, or a plan that names models, nodes or inputs these inputs do not have).
        """
        from maestro_plan.estimate import load_capacity_table
        from maestro_plan.load.loader import load_inputs
        from maestro_plan.plan.io import read_plan
        from maestro_plan.verify import FAMILIES, verify_plan

        p = read_plan(plan)
        inputs = load_inputs(inventory, models, workloads)
        table = load_capacity_table(capacity_table) if capacity_table is not None else None
        report = verify_plan(p, inputs, capacity_table=table)
        if report.input_mismatch:
            mismatches = [v for v in report.violations if v.input_mismatch]
            raise InputError(
                problems=[
                    Problem(
                        f"plan does not match the inputs: {v.subject}: {v.detail}.",
                        file=str(plan),
                        hint="verify against the inputs the plan was made from (--inventory, --models, --workloads, --capacity-table), or re-solve.",
                    )
                    for v in mismatches[:20]
                ]
            )
        if json_out:
            emit_json(report.to_dict())
        else:
            counts = report.by_constraint()
            t = Table(title=escape(f"verify {plan}"))
            for col in ("constraint", "checks", "violations", ""):
                t.add_column(col, justify="right" if col in ("checks", "violations") else "left")
            for fam in FAMILIES:
                n = counts.get(fam, 0)
                t.add_row(fam, str(report.checked.get(fam, 0)), str(n), "[red]FAIL[/]" if n else "[green]ok[/]")
            console.print(t)
            if report.violations:
                vt = Table(title=f"{len(report.violations)} violation(s)" + (f", first {MAX_ROWS}" if len(report.violations) > MAX_ROWS else ""))
                for col in ("constraint", "subject", "detail", "amount"):
                    vt.add_column(col, overflow="fold")
                for v in report.violations[:MAX_ROWS]:
                    vt.add_row(v.constraint, escape(v.subject), escape(v.detail), escape(f"{v.amount:.4g} {v.unit}".strip()) if v.amount else "")
                console.print(vt)
                console.print("[red]plan violates constraints[/]")
            else:
                console.print(f"[green]plan verified: {sum(report.checked.values())} checks, no violations[/]")
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    @guarded
    def synth(
        gpus: Annotated[int, typer.Option("--gpus", help="Total GPUs of the fleet")],
        n_models: Annotated[int, typer.Option("--models", help="Number of models in the catalogue")],
        clusters: Annotated[int, typer.Option("--clusters", help="Number of clusters (regions)")] = 3,
        workflows: Annotated[int, typer.Option("--workflows", help="Number of workflows")] = 4,
        seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed: byte-identical files)")] = 0,
        out: Annotated[Path, typer.Option("--out", help="Output folder (new, empty, or an earlier synth output)")] = Path("synth"),
        load: Annotated[float, typer.Option("--load", help="Demand size: the fluid relaxation may use at most this fraction of each GPU type of each cluster (with 20% headroom)")] = 0.5,
        catalogue: Annotated[Path | None, typer.Option("--catalogue", help="Model folder to derive models from (default: the bundled models/ folder if present, else five embedded architectures)")] = None,
        embedded: Annotated[bool, typer.Option("--embedded", help="Use the five embedded architectures even where models/ exists")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Write a synthetic, valid input folder (inventories/, models/, workloads/) for benchmarks."""
        from maestro_plan.load.loader import default_paths
        from maestro_plan.synth import SynthSpec, load_catalogue, write_synth

        cat_path = catalogue
        if cat_path is None and not embedded:
            bundled = default_paths()["models"]
            if bundled.is_dir() and any(f.suffix in (".yaml", ".yml", ".json") for f in bundled.iterdir()):
                cat_path = bundled
        spec = SynthSpec(gpus=gpus, models=n_models, clusters=clusters, workflows=workflows, seed=seed, load=load, catalogue=cat_path)
        written = write_synth(spec, out, load_catalogue(cat_path))
        summary = {
            "out": str(out),
            "files": len(written),
            "catalogue": str(cat_path) if cat_path else "embedded",
            "gpus": gpus,
            "models": n_models,
            "clusters": clusters,
            "workflows": workflows,
            "seed": seed,
        }
        if json_out:
            emit_json(summary)
        else:
            console.print(f"[green]wrote {len(written)} files to {out}[/] ({gpus} GPUs, {n_models} models, {clusters} clusters, {workflows} workflows, seed {seed}, catalogue {summary['catalogue']})")
            console.print(f"next: maestro-plan validate -i {out}/inventories -m {out}/models -w {out}/workloads")
