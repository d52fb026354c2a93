"""Honest SLO verdicts on every surface (issue 14): summary, report.md/html, whatif/sweep rows and
compare rows say "meets" only when the latency model's pXX and the simulated attainment both meet
the target; otherwise "misses" with the figures, or "unverified" when nothing simulated the tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_plan.cli.whatif_cmds import _result_table
from maestro_plan.emit.report import emit_report, summary_data
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.schema import SloResult
from maestro_plan.simulate.compare import Row, slo_verdict, table_rows
from maestro_plan.simulate.scenarios import EngineSpec, inputs_for, plan_for, workflow
from maestro_plan.slo.loop import confident
from maestro_plan.slo.verdict import plan_summary, verdict
from maestro_plan.whatif.scenario import scenario_from_dict
from maestro_plan.whatif.sweep import CSV_FIELDS, result_row

MODEL = "llama-3.2-1b"
P95 = 95.0
TARGET = 2000.0


@pytest.fixture(scope="module")
def case():
    wf = workflow("chat", "interactive", TARGET, 2.0, [{"name": "r", "model": MODEL, "calls_per_query": 1, "input_tokens": {"mean": 300}, "output_tokens": {"mean": 40}}], percentile=P95)
    inputs = inputs_for({MODEL: load_inputs(None, None, None).models[MODEL]}, [wf])
    return inputs, plan_for(inputs, [EngineSpec(MODEL, kv_tokens=65536, max_num_seqs=64)])


def rec(model_ms: float | None, att: float | None, queries: int, verdict_: str = "meets") -> SloResult:
    return SloResult(workflow="chat", percentile=P95, target_ms=TARGET, model_ms=model_ms, model_attainment=0.97, sim_ms=None,
                     sim_attainment=att, sim_queries=queries, verdict=verdict_)  # fmt: skip


# the three cases every surface must tell apart
MEETS = dict(model_ms=1500.0, att=0.97, queries=2000)
SIM_MISSES = dict(model_ms=1500.0, att=0.91, queries=2000)  # the model meets, the simulation does not
MODEL_MISSES = dict(model_ms=2400.0, att=0.99, queries=2000)  # the simulation meets, the model does not
UNSIMULATED = dict(model_ms=1500.0, att=None, queries=0)


@pytest.mark.parametrize(("fig", "status"), [(MEETS, "meets"), (SIM_MISSES, "misses"), (MODEL_MISSES, "misses"), (UNSIMULATED, "unverified")])
def test_verdict_needs_both_model_and_simulation(fig, status) -> None:
    v = verdict("chat", P95, TARGET, fig["model_ms"], fig["att"], fig["queries"])
    assert v.status == status
    assert "p95 2 s" in v.text and ("not simulated" in v.text if fig["att"] is None else f"{100 * fig['att']:.1f}% of 2000" in v.text)
    # too few queries beyond the percentile: the simulated attainment is not judged either way
    assert verdict("chat", P95, TARGET, 1500.0, 0.5, 100).status == "unverified"


@pytest.mark.parametrize(("fig", "status"), [(MEETS, "meets"), (SIM_MISSES, "misses"), (MODEL_MISSES, "misses"), (UNSIMULATED, "unverified")])
def test_summary_and_report_say_the_verdict(case, tmp_path: Path, fig, status) -> None:
    inputs, plan = case
    plan = plan.model_copy(update={"slo": [rec(fig["model_ms"], fig["att"], fig["queries"])]})
    w = summary_data(plan, inputs)["workflows"][0]
    assert w["status"] == status
    emit_report(plan, inputs, tmp_path)
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| chat |"))
    assert row.rstrip(" |").endswith(status)
    assert status in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(("fig", "status"), [(MEETS, "meets"), (SIM_MISSES, "misses"), (MODEL_MISSES, "misses"), (UNSIMULATED, "unverified")])
def test_whatif_and_sweep_rows_carry_the_percentile_verdict(case, fig, status) -> None:
    inputs, plan = case
    plan = plan.model_copy(update={"slo": [rec(fig["model_ms"], fig["att"], fig["queries"])]})
    sc = scenario_from_dict({"name": "s", "edits": []}, "test")
    row = result_row(0, sc, plan, plan)
    assert row["slo"] == status and row["slo_detail"].startswith(status)
    if status == "misses":
        assert "chat: p95 2 s" in row["slo_detail"]  # the figures, not a margin
    assert {"slo", "slo_detail"} <= set(CSV_FIELDS)
    table = _result_table([row], "t")
    assert [c.header for c in table.columns].count("SLO") == 1 and "SLO margin" not in [c.header for c in table.columns]
    cell = list(table.columns[[c.header for c in table.columns].index("SLO")].cells)[0]
    assert (status in cell) and (("chat: p95 2 s" in cell) == (status == "misses"))
    assert plan_summary(plan)[0] == status


def test_compare_rows_carry_the_percentile_verdict(case) -> None:
    inputs, plan = case
    row = Row("maestro-plan", "the plan", plan, "maestro")
    row.results["low"] = {"workflows": {"chat": {"slo_attainment": 0.91, "arrived": 2000}}}
    status, text = slo_verdict(row, inputs, planned=True)
    assert status == "misses" and "91.0% of 2000 simulated within" in text
    row.results["low"] = {"workflows": {"chat": {"slo_attainment": 0.99, "arrived": 2000}}}
    assert slo_verdict(row, inputs, planned=True)[0] == "meets"  # the idle 1B replica meets 2 s in the model too
    assert slo_verdict(row, inputs, planned=False)[0] == "unverified"  # no model figure off the planned load
    res = {"rows": [{"name": "x", "feasible": True, "kv_hbm_bytes": 0, "gpus": 1, "cost_per_hour": 1.0, "slo": "meets",
                     "results": {lv: {"slo_attainment": {}} for lv in ("low", "high")}}]}  # fmt: skip
    assert table_rows(res)[0][-1] == "meets"


def test_the_loop_tightens_what_meets_by_less_than_its_sampling_error() -> None:
    # p95 over 2,000 queries: one standard error is 0.49 points
    assert confident(rec(1500.0, 0.97, 2000)) and not confident(rec(1500.0, 0.952, 2000))
    assert not confident(rec(1500.0, 0.97, 2000, "misses")) and confident(rec(1500.0, None, 0))
