"""Property: the percentile latency model (maestro_plan.estimate.latency, on a plan: slo.model)
predicts the simulated pXX at the planned load within 10 %, over generated workflows (issue 14).

The generator: cpsat plans of 1-3 role chains of small models on a slice-sharing H100 fleet, lengths
lognormal (p95 1.8-2.5x the mean), p90/p95 targets; replicas end up with 1 to a few hundred
sequence slots, some near saturation. The same generator over 40 fixed seeds
(`python -m benchmarks.slo_model`, which draws as `workflows` does): benchmarks/results/slo_model.md.
The simulation measures after a warm-up (slo.loop.warmup_seconds), so the pXX is the steady state's.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.load.loader import load_inputs
from maestro_plan.simulate.scenarios import inputs_for, workflow
from maestro_plan.slo.loop import simulate_plan
from maestro_plan.slo.model import plan_tails
from maestro_plan.solve.planner import solve
from maestro_plan.solve.problem import SolveSettings

MODELS = ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b")
CATALOGUE = load_inputs(None, None, None).models
TAIL_QUERIES = 100  # simulated queries beyond the percentile (the sampled pXX then has a few % of sampling error)


@st.composite
def workflows(draw):
    n = draw(st.integers(1, 3))
    roles = []
    for i in range(n):
        mi = draw(st.sampled_from((200.0, 600.0, 1500.0)))
        mo = draw(st.sampled_from((20.0, 80.0, 250.0)))
        roles.append(
            {
                "name": f"r{i}",
                "model": draw(st.sampled_from(MODELS)),
                "calls_per_query": draw(st.sampled_from((1.0, 1.5, 2.0))),
                "depends_on": [f"r{i - 1}"] if i else [],
                "input_tokens": {"mean": mi, "percentiles": {95: mi * draw(st.sampled_from((1.8, 2.5)))}},
                "output_tokens": {"mean": mo, "percentiles": {95: mo * draw(st.sampled_from((1.8, 2.5)))}},
            }
        )
    pct = draw(st.sampled_from((90.0, 95.0)))
    rate = draw(st.sampled_from((2.0, 6.0, 15.0)))
    slack = draw(st.sampled_from((1.5, 2.5, 4.0)))  # SLO over the summed mean output time at ~10 ms/token
    slo = slack * sum(r["calls_per_query"] * (r["output_tokens"]["mean"] * 10.0 + 100.0) for r in roles)
    return workflow("gen", "interactive", slo, rate, roles, percentile=pct)


TOLERANCE = 0.10


@settings(max_examples=3, derandomize=True, deadline=None)
@given(wf=workflows())
def test_model_pxx_within_10pct_of_simulated_pxx(wf) -> None:
    inputs = inputs_for({m: CATALOGUE[m] for m in MODELS}, [wf], nodes=2)
    plan, _ = solve(inputs, SolveSettings(time_limit_s=2.0, min_zones_interactive=1, lp_bound=False, workers=1))
    model = plan_tails(plan, inputs)[0]
    seconds = TAIL_QUERIES / (1 - wf.slo.percentile / 100) / wf.total_rate_per_s
    sim = simulate_plan(plan, inputs, seconds, seed=3)["gen"]
    assert sim.pxx_ms is not None and math.isfinite(model.predicted_ms)
    assert abs(model.predicted_ms / sim.pxx_ms - 1) <= TOLERANCE, (model, sim)
