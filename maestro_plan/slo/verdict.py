"""One wording of a percentile-SLO verdict for every surface (summary, report.md/html, whatif,
sweep, compare): "meets" only when the latency model's pXX is within the target AND a simulation
with enough queries beyond the percentile (MIN_TAIL_QUERIES) had at least that percentile of its
queries within the target; "misses" with the figures otherwise; "unverified" when the model meets
but nothing simulated the plan (or too few queries reached the tail)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from maestro_plan.units import duration_text

MIN_TAIL_QUERIES = 10
"""Simulated queries expected beyond the percentile before the simulated attainment is judged."""


@dataclass(frozen=True)
class Verdict:
    workflow: str
    status: str  # meets | misses | unverified
    text: str  # the figures, in words


def judged(percentile: float, sim_queries: int, sim_attainment: float | None) -> bool:
    """Enough simulated queries beyond the percentile to judge the simulated attainment."""
    return sim_attainment is not None and sim_queries * (1.0 - percentile / 100.0) >= MIN_TAIL_QUERIES


def verdict(
    workflow: str, percentile: float, target_ms: float, model_ms: float | None, sim_attainment: float | None, sim_queries: int, *, priced: bool = True
) -> Verdict:
    """The verdict of one workflow from the model's pXX (None: unbounded) and the simulated
    attainment (None: not simulated); `priced` False: the model was not run (at most 'unverified')."""
    model_ok = not priced or (model_ms is not None and math.isfinite(model_ms) and model_ms <= target_ms)
    seen = judged(percentile, sim_queries, sim_attainment)
    sim_ok = seen and sim_attainment is not None and sim_attainment * 100.0 >= percentile - 1e-9
    p = f"p{percentile:g} {duration_text(target_ms)}"
    model = "not priced" if not priced else "unbounded" if model_ms is None or not math.isfinite(model_ms) else duration_text(model_ms)
    if sim_attainment is None:
        sim = "not simulated"
    else:
        sim = f"{100.0 * sim_attainment:.1f}% of {sim_queries} simulated within" + ("" if seen else " (too few to judge)")
    text = f"{workflow}: {p}, model {model}, {sim}"
    if not model_ok or (seen and not sim_ok):
        return Verdict(workflow, "misses", text)
    return Verdict(workflow, "meets" if sim_ok and priced else "unverified", text)


def of_record(rec: Any) -> Verdict:
    """The verdict of one plan.slo record (SloResult)."""
    v = verdict(rec.workflow, rec.percentile, rec.target_ms, rec.model_ms, rec.sim_attainment, rec.sim_queries)
    if rec.verdict == "misses" and v.status != "misses":  # the loop judged it so (e.g. an unplaced demand)
        return Verdict(v.workflow, "misses", v.text)
    return v


def summary(verdicts: list[Verdict]) -> tuple[str, str]:
    """(status, text) over workflows: misses if any misses (their figures), unverified if any is, else meets."""
    if not verdicts:
        return "unverified", "no SLO records (solved with --slo-check none)"
    bad = [v for v in verdicts if v.status == "misses"]
    if bad:
        return "misses", "misses: " + "; ".join(v.text for v in bad)
    unv = [v for v in verdicts if v.status == "unverified"]
    if unv:
        return "unverified", "unverified: " + "; ".join(v.text for v in unv)
    return "meets", f"meets ({len(verdicts)} workflow{'s' if len(verdicts) != 1 else ''}, model and simulation)"


def plan_summary(plan: Any) -> tuple[str, str]:
    """(status, text) of a plan from its SLO records."""
    return summary([of_record(r) for r in plan.slo])
