"""What-if capacity studies: scenario edits of the inputs, plan diffs, ordered rollouts, sweeps.

Downstream of solve and plan: scenario/apply edit Inputs; sweep solves each edited input (through
the solver's public entry point) warm-started from a base plan; diff/rollout compare two plans.
"""

from maestro_plan.whatif.apply import apply_scenario, fleet_gpus
from maestro_plan.whatif.diff import Change, PlanDiff, diff_plans, replica_key
from maestro_plan.whatif.rollout import Rollout, Step, plan_rollout
from maestro_plan.whatif.scenario import (
    BASE,
    AddGpus,
    AddModel,
    AddWorkflow,
    Remove,
    RemoveGpus,
    ScaleDemand,
    Scenario,
    SetPrice,
    SetSlo,
    load_scenarios,
    validate_scenario,
)

__all__ = [
    "BASE",
    "AddGpus",
    "AddModel",
    "AddWorkflow",
    "Change",
    "PlanDiff",
    "Remove",
    "RemoveGpus",
    "Rollout",
    "ScaleDemand",
    "Scenario",
    "SetPrice",
    "SetSlo",
    "Step",
    "apply_scenario",
    "diff_plans",
    "fleet_gpus",
    "load_scenarios",
    "plan_rollout",
    "replica_key",
    "validate_scenario",
]
