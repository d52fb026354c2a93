"""Reports: known figures of the fixture plan, latency vs SLO, no network assets, terminal summary."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from emit_testlib import fixture_inputs, fixture_plan
from rich.console import Console

from maestro_plan.emit.report import emit_report, print_summary, summary_data, workflow_latency


def test_summary_figures() -> None:
    plan, inputs = fixture_plan(), fixture_inputs()
    s = summary_data(plan, inputs)
    assert s["cost_per_hour"] == pytest.approx(364.75, abs=0.01)
    assert sum(c["cost_per_hour"] for c in s["cost_by_cluster"]) == pytest.approx(plan.cost_per_hour, abs=0.02)
    g = {(x["cluster"], x["gpu_type"]): x for x in s["gpus"]}
    assert (g[("us-east", "h100-sxm")]["used"], g[("us-east", "h100-sxm")]["available"]) == (11, 16)
    assert g[("eu-west", "h100-sxm")]["utilization"] == pytest.approx(18 / 24, abs=1e-4)
    m = {x["model"]: x for x in s["models"]}
    assert m["llama-3.1-8b"]["capacity_rps"] == pytest.approx(11.3) and m["llama-3.1-8b"]["demand_rps"] == pytest.approx(9.5)
    assert m["llama-3.2-1b"]["standby"] == 1
    assert s["kv"]["saved_fraction"] == pytest.approx(plan.kv.saved_fraction)


def test_workflow_latency_follows_the_role_graph() -> None:
    lat = {w["workflow"]: w for w in workflow_latency(fixture_plan(), fixture_inputs())}
    # nightly-summaries, users-us-east, one 8B call: 0.4*(2100+4) + 0.4*(2100+4) + 0.2*(2400+4) = 2164
    assert lat["nightly-summaries"]["mean_path_ms"] == pytest.approx(2164.0)
    # coding-agent from users-eu-west (worst): planner 0.7*(6100+6)+0.3*(5200+80)=5858.2, coder 3*(2100+6)=6318,
    # critic: only the us-east replica has a prediction: 2*(450+80)=1060 -> 13431.8 ms
    assert lat["coding-agent"]["mean_path_ms"] == pytest.approx(13431.8)
    assert lat["coding-agent"]["worst_source"] == "users-eu-west"


def test_verdict_is_the_percentile_not_the_mean() -> None:
    """The fixture's coding-agent has a mean path of 13.2 s against a p95 of 30 s: the mean "met" it.
    Its p95 under the latency model misses, so the report says so; the plan was never simulated,
    so nothing says "meets" (the nightly batch job's model p99 is within target: unverified)."""
    lat = {w["workflow"]: w for w in workflow_latency(fixture_plan(), fixture_inputs())}
    assert lat["coding-agent"]["predicted_ms"] > 30000 and lat["coding-agent"]["status"] == "misses"
    assert lat["nightly-summaries"]["predicted_ms"] < 600000 and lat["nightly-summaries"]["status"] == "unverified"
    assert all(w["sim_attainment"] is None for w in lat.values())


def test_report_files_are_self_contained(tmp_path: Path) -> None:
    files = emit_report(fixture_plan(), fixture_inputs(), tmp_path)
    names = sorted(str(p.relative_to(tmp_path)) for p in files)
    assert names == ["plots/capacity-vs-demand.png", "plots/cost-by-cluster.png", "plots/memory-map.png", "report.html", "report.md"]
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    for src in re.findall(r'src="([^"]+)"', html) + re.findall(r"\]\(([^)]+)\)", md):
        assert not re.match(r"^[a-z]+://", src) and (tmp_path / src).is_file(), src
    assert "<script" not in html and "<link" not in html
    for text in (md, html):
        assert "llama-3.1-8b.us-east.h100-a-000.g2" in text and "Binding constraints" in text and "13.4 s" in text  # mean path 13431.8 ms, in human units


def test_terminal_summary_prints_the_key_figures() -> None:
    buf = io.StringIO()
    print_summary(fixture_plan(), fixture_inputs(), Console(file=buf, width=160, color_system=None))
    out = buf.getvalue()
    assert "$364.75/h" in out and "GPUs by cluster and type" in out and "72% saved" in out
    assert "Percentile SLO per workflow" in out and "misses" in out and "unverified" in out


def test_slo_cells_use_human_duration_units() -> None:
    """The SLO table (terminal summary, report.md/html) reads "p95 30 s", "p99 10 min", not raw ms."""
    from maestro_plan.emit.report import slo_cells

    row = {"slo_percentile": 95.0, "slo_ms": 30_000.0, "predicted_ms": 64_289.8, "sim_ms": 850.0, "sim_attainment": 0.99,
           "sim_queries": 2000, "mean_path_ms": 13_431.8, "status": "misses"}
    assert slo_cells(row) == ["p95 30 s", "1.07 min", "850 ms (99.0% of 2000)", "13.4 s", "misses"]
    late = {**row, "slo_percentile": 99.0, "slo_ms": 600_000.0, "predicted_ms": None, "sim_attainment": None, "mean_path_ms": None}
    assert slo_cells(late)[:4] == ["p99 10 min", "unbounded", "not simulated", "?"]
