"""`maestro-plan fit`: workload profiles (workloads/*.yaml) from logs of LLM calls."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from maestro_plan import atomic
from maestro_plan.cli.common import JsonOpt, ModelsOpt, console, emit_json, err_console, guarded
from maestro_plan.errors import InputError, unknown_name_hint
from maestro_plan.load.loader import SUFFIXES, default_paths, load_models


class PriorityOpt(str, Enum):
    interactive = "interactive"
    batch = "batch"


class TimeUnit(str, Enum):
    auto = "auto"
    s = "s"
    ms = "ms"
    us = "us"
    ns = "ns"


def _col(flag: str, what: str) -> object:
    return typer.Option(flag, help=f"Column holding the {what} (default: recognised by name)", rich_help_panel="Columns")


def _parse_map(items: list[str] | None, ids: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        old, sep, new = item.rpartition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise InputError(f"'{item}' is not OLD=NEW.", field="--model-map", hint="write --model-map 'name-in-logs=catalogue-id', once per model name.")
        if new not in ids:
            raise InputError(f"'{item}' maps to '{new}', which is not a catalogue id.", field="--model-map", hint=unknown_name_hint(new, ids, "catalogue ids"))
        if old in out and out[old] != new:
            raise InputError(f"'{old}' is mapped twice ({out[old]} and {new}).", field="--model-map", hint="keep one mapping per name.")
        out[old] = new
    return out


def register(app: typer.Typer) -> None:
    @app.command("fit")
    @guarded
    def fit(
        logs: Annotated[list[Path], typer.Argument(help="Call logs: CSV, JSONL (OpenAI usage, OTLP spans), JSON or Parquet", show_default=False)],
        out: Annotated[Path, typer.Option("--out", "-o", help="Workloads file to write (.yaml, .yml or .json)", show_default=False)],
        name: Annotated[str | None, typer.Option("--name", help="Workflow name when the logs have no workflow column (default: the --out file name)")] = None,
        workflow_col: Annotated[str | None, _col("--workflow-col", "workflow (application) name")] = None,
        role_col: Annotated[str | None, _col("--role-col", "role (agent name)")] = None,
        model_col: Annotated[str | None, _col("--model-col", "model name")] = None,
        input_col: Annotated[str | None, _col("--input-col", "input (prompt) token count")] = None,
        output_col: Annotated[str | None, _col("--output-col", "output (completion) token count")] = None,
        timestamp_col: Annotated[str | None, _col("--timestamp-col", "call start time")] = None,
        trace_col: Annotated[str | None, _col("--trace-col", "trace / session id of one query")] = None,
        source_col: Annotated[str | None, _col("--source-col", "request source")] = None,
        latency_col: Annotated[str | None, _col("--latency-col", "call latency (unit from the name: _ms, _s)")] = None,
        order_col: Annotated[str | None, _col("--order-col", "call order inside a trace")] = None,
        timestamp_unit: Annotated[TimeUnit, typer.Option("--timestamp-unit", help="Unit of numeric timestamps (auto: from the column name or epoch magnitude)", rich_help_panel="Columns")] = TimeUnit.auto,
        model_map: Annotated[list[str] | None, typer.Option("--model-map", help="Map a model name in the logs to a catalogue id: OLD=NEW (repeat)", rich_help_panel="Models")] = None,
        model: Annotated[str | None, typer.Option("--model", help="Catalogue id for every call when the logs have no model column", rich_help_panel="Models")] = None,
        models: ModelsOpt = None,
        priority: Annotated[PriorityOpt, typer.Option("--priority", help="Priority class of the fitted workflows")] = PriorityOpt.interactive,
        slo_ms: Annotated[float | None, typer.Option("--slo-ms", min=1.0, max=1e9, help="End-to-end SLO in ms (default: the observed latency at --slo-percentile)")] = None,
        slo_percentile: Annotated[float, typer.Option("--slo-percentile", min=1.0, max=100.0, help="Percentile of the SLO")] = 95.0,
        percentile: Annotated[float, typer.Option("--percentile", min=50.0, max=99.99, help="Output-length percentile the KV reservation uses")] = 99.0,
        rate_per_s: Annotated[float | None, typer.Option("--rate-per-s", min=1e-9, max=1e9, help="Total queries/s (default: measured from timestamps)")] = None,
        rate_scale: Annotated[float, typer.Option("--rate-scale", min=1e-9, max=1e9, help="Multiply the rate (logs of a fraction of the traffic)")] = 1.0,
        source: Annotated[str, typer.Option("--source", help="Source for calls without a source column (an inventory source)")] = "users-us-east",
        window_s: Annotated[float, typer.Option("--window-s", min=1e-3, max=1e7, help="Window for peak-to-mean burstiness, seconds")] = 60.0,
        report: Annotated[bool, typer.Option("--report", help="Print fit quality per role and the KV saved")] = False,
        json_out: JsonOpt = False,
        strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 2) on any bad row instead of skipping it")] = False,
    ) -> None:
        """Fit workload profiles (workloads/*.yaml) from logs of LLM calls.

        Reconstructs per workflow the calls per query of each role, the role DAG, the arrival rate
        and its burstiness, token-length distributions, and a role-aware output-length predictor
        whose high percentile sets the KV reservation."""
        from maestro_plan.fit import FitOptions, ReadOptions, check_models, fit_workflows, read_calls, render_yaml
        from maestro_plan.fit.report import print_report, report_dict
        from maestro_plan.fit.table import clean_name, summarize_issues

        if out.suffix.lower() not in SUFFIXES:
            raise InputError(f"output file must end in .yaml, .yml or .json (got '{out.suffix or out.name}').", field="--out", hint="e.g. --out workloads/my-agents.yaml.")
        if out.is_dir():
            raise InputError("is a directory; name the file to write.", file=out, field="--out", hint=f"e.g. --out {out / 'fitted.yaml'}.")
        catalogue, _ = load_models(models if models is not None else default_paths()["models"])
        ids = set(catalogue)
        if model is not None and model not in ids:
            raise InputError(f"'{model}' is not a catalogue id.", field="--model", hint=unknown_name_hint(model, ids, "catalogue ids"))
        mapping = _parse_map(model_map, ids)
        cols = {
            "workflow": workflow_col,
            "role": role_col,
            "model": model_col,
            "input": input_col,
            "output": output_col,
            "timestamp": timestamp_col,
            "trace": trace_col,
            "source": source_col,
            "latency": latency_col,
            "order": order_col,
        }
        calls = read_calls(list(logs), ReadOptions(columns=cols, timestamp_unit=timestamp_unit.value, default_model=model, model_map=mapping))
        if calls.issues:
            for line in summarize_issues(calls):
                err_console.print("skipped " + line, markup=False)
        bad = sum(n for k, n in calls.skipped.items() if not k.startswith("no token counts"))
        quiet = sum(n for k, n in calls.skipped.items() if k.startswith("no token counts"))
        if bad or quiet:
            parts = [f"skipped {bad} with problems"] if bad else []
            parts += [f"ignored {quiet} without token counts (not LLM calls)"] if quiet else []
            err_console.print(f"read {calls.records} records, used {len(calls.frame)} calls, {', '.join(parts)}.", markup=False)
        if strict and calls.issues:
            raise InputError(f"{len(calls.issues)} row(s) have problems (listed above) and --strict is set.", field="--strict", hint="fix those rows, or drop --strict to skip them.")
        check_models(calls, catalogue)
        opts = FitOptions(
            name=name or clean_name(out.stem, "fitted"),
            priority=priority.value,
            slo_ms=slo_ms,
            slo_percentile=slo_percentile,
            percentile=percentile,
            rate_per_s=rate_per_s,
            rate_scale=rate_scale,
            default_source=clean_name(source, "users-us-east"),
            window_s=window_s,
        )
        fits = fit_workflows(calls, opts, catalogue)
        if out.suffix.lower() == ".json":
            docs = [f.doc for f in fits]
            text = json.dumps(docs[0] if len(docs) == 1 else {"workflows": docs}, indent=2) + "\n"
            render_yaml(fits, calls)  # validates
        else:
            text = render_yaml(fits, calls)
        atomic.write_text(out, text)
        if json_out:
            emit_json({"out": str(out), **report_dict(fits, percentile)})
            return
        if report:
            print_report(fits, percentile, console)
        roles = sum(len(f.roles) for f in fits)
        console.print(
            f"wrote {out}: {len(fits)} workflow(s), {roles} role(s), from {len(calls.frame)} calls in {sum(f.queries for f in fits)} queries.",
            markup=False,
        )
