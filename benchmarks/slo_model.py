"""The percentile latency model against the simulator, over generated workflows (issue 14: "model
pXX within 10 % of simulated pXX at the planned load").

Each seed draws one workflow from the same generator as tests/test_slo_props.py (1-3 role chains
of llama-3.2-1b/3b, llama-3.1-8b, qwen2.5-7b; lognormal lengths, p95 1.8-2.5x the mean; p90/p95;
2-15 queries/s; SLO 1.5-4x the summed mean output time) on two 8-GPU H100 nodes, solves it (cpsat,
2 s, one worker), prices the plan with the model (slo.model.plan_tails) and simulates it
(slo.loop.simulate_plan: warm-up, then enough seconds for 100 queries beyond the percentile).

    .venv/bin/python -m benchmarks.slo_model            # seeds 1-40 -> benchmarks/results/slo_model.md
    .venv/bin/python -m benchmarks.slo_model 7 8        # those seeds only (printed, not written)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

from maestro_plan.load.loader import load_inputs
from maestro_plan.simulate.scenarios import inputs_for, workflow
from maestro_plan.slo.loop import simulate_plan
from maestro_plan.slo.model import plan_tails
from maestro_plan.solve.planner import solve
from maestro_plan.solve.problem import SolveSettings

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b")
SEEDS = tuple(range(1, 41))
TAIL_QUERIES = 100
SIM_SEED = 3


def generate(rng: random.Random):
    """One workflow, drawn as tests/test_slo_props.py's strategy draws it."""
    roles = []
    for i in range(rng.randint(1, 3)):
        mi, mo = rng.choice((200.0, 600.0, 1500.0)), rng.choice((20.0, 80.0, 250.0))
        roles.append({
            "name": f"r{i}", "model": rng.choice(MODELS), "calls_per_query": rng.choice((1.0, 1.5, 2.0)), "depends_on": [f"r{i - 1}"] if i else [],
            "input_tokens": {"mean": mi, "percentiles": {95: mi * rng.choice((1.8, 2.5))}},
            "output_tokens": {"mean": mo, "percentiles": {95: mo * rng.choice((1.8, 2.5))}},
        })  # fmt: skip
    pct, rate, slack = rng.choice((90.0, 95.0)), rng.choice((2.0, 6.0, 15.0)), rng.choice((1.5, 2.5, 4.0))
    slo = slack * sum(r["calls_per_query"] * (r["output_tokens"]["mean"] * 10.0 + 100.0) for r in roles)
    return workflow("gen", "interactive", slo, rate, roles, percentile=pct)


def run(seed: int, catalogue) -> dict:
    wf = generate(random.Random(seed))
    inputs = inputs_for({m: catalogue[m] for m in MODELS}, [wf], nodes=2)
    plan, _ = solve(inputs, SolveSettings(time_limit_s=2.0, min_zones_interactive=1, lp_bound=False, workers=1))
    model = plan_tails(plan, inputs)[0]
    seconds = TAIL_QUERIES / (1 - wf.slo.percentile / 100) / wf.total_rate_per_s
    sim = simulate_plan(plan, inputs, seconds, seed=SIM_SEED)["gen"]
    used = [r for r in plan.replicas if r.load_rps > 0]
    return {
        "seed": seed, "percentile": wf.slo.percentile, "rate": wf.total_rate_per_s,
        "roles": " > ".join(f"{r.model} x{r.calls_per_query:g} {r.input_tokens.mean_tokens():.0f}/{r.output_tokens.mean_tokens():.0f}" for r in wf.roles),
        "min_slots": min(r.max_num_seqs for r in used), "max_util": round(max(r.load_rps / r.capacity_rps for r in used if r.capacity_rps > 0), 3),
        "model_ms": round(model.predicted_ms, 1), "sim_ms": round(sim.pxx_ms, 1), "ratio": round(model.predicted_ms / sim.pxx_ms, 4),
    }  # fmt: skip


def render(rows: list[dict]) -> str:
    err = np.array([abs(r["ratio"] - 1) for r in rows])
    lines = [
        "# Percentile latency model vs simulator (generated workflows)", "",
        f"`python -m benchmarks.slo_model`: seeds {rows[0]['seed']}-{rows[-1]['seed']} of the tests/test_slo_props.py generator; "
        f"simulated after a warm-up for {TAIL_QUERIES} queries beyond the percentile, seed {SIM_SEED}.", "",
        f"**Within 10 %: {int((err <= 0.10).sum())} of {len(rows)}**; |model / simulated - 1|: median {100 * float(np.median(err)):.1f} %, "
        f"90th percentile {100 * float(np.percentile(err, 90)):.1f} %, max {100 * float(err.max()):.1f} %; "
        f"model / simulated from {min(r['ratio'] for r in rows):.3f} to {max(r['ratio'] for r in rows):.3f}.", "",
        "| seed | roles (model x calls in/out tokens) | pXX | q/s | fewest slots | highest load/capacity | model pXX ms | sim pXX ms | model/sim |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['seed']} | {r['roles']} | p{r['percentile']:g} | {r['rate']:g} | {r['min_slots']} | {r['max_util']:.2f} | {r['model_ms']:,.0f} | {r['sim_ms']:,.0f} | {r['ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    catalogue = load_inputs(None, None, None).models
    seeds = [int(a) for a in argv] or list(SEEDS)
    rows = []
    for s in seeds:
        rows.append(run(s, catalogue))
        print(json.dumps(rows[-1]), flush=True)
    if not argv:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "slo_model.md").write_text(render(rows), encoding="utf-8")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
