"""Emitters: pure functions of a plan (and the inputs it references) that write deployable files.

    emit_all(plan, inputs, out_dir) -> list[Path]     everything below, into out_dir
    emit_k8s       DIR/manifests/<cluster>/           Kustomize folders (Deployments, LWS, Services, wake proxy)
    emit_routing   DIR/routing.json                   native routing table (schema: data/routing.schema.json)
    emit_litellm   DIR/routing/litellm.yaml           LiteLLM router configs (+ litellm-by-source/<source>.yaml)
    emit_gateway   DIR/routing/gateway-api/<cluster>/ Gateway, HTTPRoutes, InferencePools + EPPs, InferenceObjectives
    emit_report    DIR/report.md, report.html, plots/*.png
    print_summary(plan, inputs) / summary_data(plan, inputs)   terminal summary / its JSON

`emit`/`emit_all` first check that the plan matches the inputs (`check_plan_matches`: InputError,
exit 2, when a model or node was renamed since). Callers stage out_dir atomically
(maestro_plan.atomic.staged_dir), so a failure leaves no half-written folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from maestro_plan.emit.checks import check_plan_matches
from maestro_plan.emit.gateway import emit_gateway
from maestro_plan.emit.k8s import emit_k8s
from maestro_plan.emit.litellm import emit_litellm
from maestro_plan.emit.report import emit_report, print_summary, summary_data
from maestro_plan.emit.routing import emit_routing
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan

Emitter = Callable[[Plan, Inputs, Path], list[Path]]

EMITTERS: dict[str, Emitter] = {
    "k8s": emit_k8s,
    "routing": emit_routing,
    "litellm": emit_litellm,
    "gateway": emit_gateway,
    "report": emit_report,
}
"""Format name (as in `maestro-plan emit --format`) -> emitter."""


def emit(fmt: str, plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Run one format ('all' runs every one) after checking the plan against the inputs."""
    check_plan_matches(plan, inputs)
    names = list(EMITTERS) if fmt == "all" else [fmt]
    written: list[Path] = []
    for name in names:
        written += EMITTERS[name](plan, inputs, Path(out_dir))
    return sorted(written)


def emit_all(plan: Plan, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Write every output format into out_dir; returns the files written (sorted)."""
    return emit("all", plan, inputs, out_dir)


__all__ = [
    "EMITTERS",
    "check_plan_matches",
    "emit",
    "emit_all",
    "emit_gateway",
    "emit_k8s",
    "emit_litellm",
    "emit_report",
    "emit_routing",
    "print_summary",
    "summary_data",
]
