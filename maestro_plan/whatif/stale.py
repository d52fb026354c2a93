"""Is a plan still the plan of these inputs? One answer for whatif, sweep, emit, diff and rollout.

A base plan solved before the inputs changed (a model or a workflow added, a cluster resized) would
silently mix that change into every what-if delta. The verifier already records what a plan was
made from (inventory name, catalogue, workflows and a SHA-256 of each parsed input, see
verify.input_digests) and flags a plan that does not belong to the inputs as an input mismatch;
this module only turns those mismatches into one InputError (exit 2), so there is one definition
of "stale" in the code base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_plan.errors import InputError, Problem
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan

REBASE_HINT = "re-solve it ('maestro-plan solve --out DIR' and pass DIR/plan.json), or pass --rebase to re-solve the base from the current inputs"


def stale_reasons(plan: Plan, inputs: Inputs, capacity_table: Any = None, *, check_table: bool = True) -> list[str]:
    """Why `plan` is not the plan of `inputs` (empty when it is): the verifier's input mismatches.

    `check_table=False` leaves the measured capacity table out of the question (commands that do
    not take one, such as emit and diff, must not refuse a plan made with one). A digest of zeros is
    a hand-built plan's "not recorded" (tests/data/emit/make_plan.py): nothing to compare."""
    from maestro_plan.verify import verify_plan

    if not check_table and plan.settings.capacity_table_sha256 is not None:
        plan = plan.model_copy(update={"settings": plan.settings.model_copy(update={"capacity_table_sha256": None})})
    report = verify_plan(plan, inputs, capacity_table=capacity_table)
    unrecorded = {k for k in ("inventory_sha256", "models_sha256", "workloads_sha256") if set(getattr(plan.inputs, k)) <= {"0"}}
    return [f"{v.subject}: {v.detail}" for v in report.violations if v.input_mismatch and v.subject.removeprefix("inputs.") not in unrecorded]


def require_current(plan: Plan, inputs: Inputs, plan_file: str | Path | None, *, hint: str = REBASE_HINT, capacity_table: Any = None,
                    check_table: bool = True) -> None:
    """Raise InputError (exit 2) when `plan` was made from other inputs than `inputs`."""
    reasons = stale_reasons(plan, inputs, capacity_table, check_table=check_table)
    if reasons:
        f = str(plan_file) if plan_file is not None else "plan.json"
        raise InputError(problems=[Problem(f"the plan is stale: the inputs changed since it was solved ({r}).", file=f, hint=hint) for r in reasons[:10]])


__all__ = ["REBASE_HINT", "require_current", "stale_reasons"]
