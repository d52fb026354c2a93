"""`maestro-plan simulate`: output, determinism, plot, and bad input (exit 2, no traceback).

Uses the emitter tests' small hand-built plan and its inputs (tests/data/emit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app

EMIT = Path(__file__).resolve().parent / "data" / "emit"
INPUTS = ["-i", str(EMIT / "inventory.yaml"), "-m", str(EMIT / "models"), "-w", str(EMIT / "workloads")]


def run(*args: str):
    return CliRunner().invoke(app, ["simulate", str(EMIT / "plan.json"), *args])


def test_json_report_is_deterministic_and_complete():
    a = run("--duration", "30", "--seed", "5", "--json", *INPUTS)
    b = run("--duration", "30", "--seed", "5", "--json", *INPUTS)
    assert a.exit_code == 0, a.output
    assert a.output == b.output
    rep = json.loads(a.output)
    assert set(rep["workflows"]) == {"coding-agent", "nightly-summaries"}
    assert rep["calls"]["conserved"] and rep["calls"]["issued"] > 0
    assert set(rep["replicas"]) >= {"llama-3.1-70b.us-east.h100-a-001.g0-7", "standby:llama-3.2-1b@h100-e-002"}
    w = rep["workflows"]["coding-agent"]
    assert w["e2e_ms"]["p50"] <= w["e2e_ms"]["p95"] <= w["e2e_ms"]["p99"] <= w["e2e_ms"]["max"]


def test_table_and_plot(tmp_path):
    out = tmp_path / "sim.png"
    r = run("--duration", "20", "--discipline", "edf", "--plot", str(out), *INPUTS)
    assert r.exit_code == 0, r.output
    assert "coding-agent" in r.output and "SLO attainment by class" in r.output and "accounting balances" in r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("duration", ["0", "-1"])
def test_duration_must_be_positive(duration):
    r = run("--duration", duration, *INPUTS)
    assert r.exit_code == 2
    assert "duration must be a positive" in r.output and "Traceback" not in r.output


def test_plan_against_other_inputs_is_exit_2(repo):
    # the bundled fleet has none of the fixture's nodes or workflows
    r = CliRunner().invoke(app, ["simulate", str(EMIT / "plan.json"), "-i", str(repo / "inventories"), "-m", str(repo / "models"), "-w", str(EMIT / "workloads")])
    assert r.exit_code == 2
    assert "is not in the inventory" in r.output and "Traceback" not in r.output


def test_bad_trace_rows_stop_or_skip(tmp_path):
    tr = tmp_path / "trace.csv"
    tr.write_text("timestamp,workflow,source\n0,coding-agent,users-us-east\nlater,coding-agent,users-us-east\n2,coding-agent,users-us-east\n")
    r = run("--trace", str(tr), *INPUTS)
    assert r.exit_code == 2
    assert "line 3" in r.output and "'later'" in r.output and "--on-bad-row skip" in r.output
    r = run("--trace", str(tr), "--on-bad-row", "skip", "--json", *INPUTS)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["queries"]["started"] == 2
    assert rep["skipped_trace_rows"] == ["line 3: timestamp 'later' is neither seconds nor an ISO-8601 date-time."]


def test_missing_trace_is_exit_2(tmp_path):
    r = run("--trace", str(tmp_path / "nope.csv"), *INPUTS)
    assert r.exit_code == 2 and "does not exist" in r.output
