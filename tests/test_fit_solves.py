"""Issue 6's end-to-end claim: a profile fitted from real call logs plans, verifies and emits."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import read_plan
from maestro_plan.verify import verify_plan

runner = CliRunner()


def test_fitted_chatdev_profile_solves_end_to_end(shared_data: Path, bundled_paths: dict[str, Path], tmp_path: Path) -> None:
    workloads = tmp_path / "workloads"
    fitted = workloads / "chatdev-fitted.yaml"
    r = runner.invoke(
        app,
        [
            "fit", str(shared_data / "chatdev-warehouse-calls" / "calls.csv"), "--out", str(fitted),
            "--models", str(bundled_paths["models"]),
            # every ChatDev call went to one hosted model: serve it with one open model of ours
            "--model-col", "task_models",
            "--model-map", "GPT_3_5_TURBO=qwen2.5-32b", "--model-map", "GPT_3_5_TURBO_NEW=qwen2.5-32b",
            "--model-map", "GPT_3_5_TURBO|GPT_4=qwen2.5-32b", "--model-map", "GPT_4=qwen2.5-32b",
            "--model-map", "GTP_4O_MINI=qwen2.5-32b", "--model-map", "GPT_3_5_TURBO|GPT_3_5_TURBO_NEW=qwen2.5-32b",
            "--model-map", "LLAMA_31_8B=qwen2.5-32b", "--model-map", "LLAMA_3=qwen2.5-32b",
            "--rate-per-s", "0.5", "--slo-ms", "1200000", "--source", "users-us-east",
        ],
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "plan"
    inv = bundled_paths["inventory"]
    r = runner.invoke(app, ["solve", "-i", str(inv), "-m", str(bundled_paths["models"]), "-w", str(workloads), "--out", str(out), "--solver", "greedy"])
    assert r.exit_code == 0, r.output
    plan = read_plan(out / "plan.json")
    inputs = load_inputs(inv, bundled_paths["models"], workloads)
    report = verify_plan(plan, inputs)
    assert report.ok, [v for v in report.violations]
    # the fitted demand is what the plan serves: 0.5 queries/s x ~23.6 calls per ChatDev run
    served = sum(d.served_rps for d in plan.demand)
    assert 0.5 * 20 < served < 0.5 * 30
    assert {r.model for r in plan.replicas} == {"qwen2.5-32b"}
    routing = json.loads((out / "routing.json").read_text())
    assert routing  # emitted alongside the plan
    assert (out / "manifests").is_dir()
