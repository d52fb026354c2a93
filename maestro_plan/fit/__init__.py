"""Fit workload profiles (workloads/*.yaml) from logs of LLM calls.

Public API:
    ReadOptions, FitOptions                     what to read and how to fit
    read_calls(paths, ReadOptions) -> Calls     CSV / JSONL / JSON / Parquet / OTLP -> one clean call table
    check_models(calls, catalogue)              every model name (after --model-map) must be a catalogue id
    fit_workflows(calls, FitOptions, catalogue) -> list[WorkflowFit]
    render_yaml(fits, calls) -> str             the workloads file (validated against the schema)
    BucketQuantile, evaluate                    the role-aware output-length predictor and its scoring
"""

from __future__ import annotations

import yaml

from maestro_plan.errors import InputError
from maestro_plan.fit.predictor import BucketQuantile, Evaluation, evaluate, pinball
from maestro_plan.fit.profile import FitOptions, RoleFit, WorkflowFit, fit_workflows
from maestro_plan.fit.table import Calls, ReadOptions, check_models, read_calls
from maestro_plan.load.loader import parse_as
from maestro_plan.load.schema import Workflow, WorkloadFile

__all__ = [
    "BucketQuantile",
    "Calls",
    "Evaluation",
    "FitOptions",
    "ReadOptions",
    "RoleFit",
    "WorkflowFit",
    "check_models",
    "evaluate",
    "fit_workflows",
    "pinball",
    "read_calls",
    "render_yaml",
]


class _Dumper(yaml.SafeDumper):
    pass


def _no_aliases(self: yaml.SafeDumper, data: object) -> bool:
    return True


_Dumper.ignore_aliases = _no_aliases  # type: ignore[method-assign]


def render_yaml(fits: list[WorkflowFit], calls: Calls, command: str | None = None) -> str:
    """The workloads document: one workflow, or several under `workflows:`. Validated against
    the Workflow schema before it is returned (a fit never writes a file the loader rejects)."""
    if not fits:
        raise InputError("nothing to write: no workflow was fitted.")
    docs = [f.doc for f in fits]
    doc: dict = docs[0] if len(docs) == 1 else {"workflows": docs}
    if len(docs) == 1:
        parse_as(Workflow, doc, "<fitted profile>")
    else:
        parse_as(WorkloadFile, doc, "<fitted profile>")
    head = [
        "# Workload profile fitted from call logs by `maestro-plan fit`.",
        f"# Logs: {', '.join(calls.files)} ({len(calls.frame)} usable calls of {calls.records} records).",
    ]
    if command:
        head.append(f"# Command: {command}")
    head.append("# Edit freely (models, SLO, rates); re-run the fit to refresh the lengths.")
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
    return "\n".join(head) + "\n" + body
