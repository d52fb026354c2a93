"""Discrete-event simulation of a plan: the planned fleet serving the workloads, call by call.

    from maestro_plan.simulate import SimConfig, simulate
    report = simulate(plan, inputs, SimConfig(duration_s=600, seed=0, discipline="maestro"))

Modules: traffic (arrivals, token lengths, workflow DAGs), fleet (engines and routes from the
plan, checked against the inputs), replica (continuous batching with the estimator's step
times), disciplines (the registry RULES: fifo, edf, maestro behind the QueueRule protocol),
events (the one Event enum and the Host interface engines see), calls (Query and Call), engine
(the event loop; it imports replica, replica never imports it), report (metrics, table, plot),
scenarios (small hand-built plans for tests), compare (baselines for `maestro-plan compare`; it
uses the solver's public entry point, the simulator itself does not).
"""

from __future__ import annotations

from typing import Any

from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan
from maestro_plan.simulate.disciplines import DISCIPLINES
from maestro_plan.simulate.engine import SimConfig, Simulator, run_simulation
from maestro_plan.simulate.fleet import Fleet, build_fleet
from maestro_plan.simulate.report import build_report, plot, render
from maestro_plan.simulate.traffic import LengthModel, poisson_arrivals, trace_arrivals


def simulate(plan: Plan, inputs: Inputs, config: SimConfig = SimConfig(), *, plan_file: str | None = None) -> dict[str, Any]:
    """Run one simulation and return its report (a JSON-ready dict; see report.py)."""
    return build_report(run_simulation(plan, inputs, config, plan_file=plan_file))


__all__ = [
    "DISCIPLINES",
    "Fleet",
    "LengthModel",
    "SimConfig",
    "Simulator",
    "build_fleet",
    "build_report",
    "plot",
    "poisson_arrivals",
    "render",
    "run_simulation",
    "simulate",
    "trace_arrivals",
]
