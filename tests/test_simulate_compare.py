"""`maestro-plan compare`: baseline construction and the comparison table (small emitter fleet)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import read_plan
from maestro_plan.simulate.compare import kv_hbm_bytes, solver_switches, spread_routes, to_markdown

EMIT = Path(__file__).resolve().parent / "data" / "emit"


@pytest.fixture(scope="module")
def emit():
    return read_plan(EMIT / "plan.json"), load_inputs(EMIT / "inventory.yaml", EMIT / "models", EMIT / "workloads")


@pytest.mark.parametrize("equal", [True, False])
def test_latency_blind_routing_spreads_over_every_replica(emit, equal):
    plan, inputs = emit
    out = spread_routes(plan, inputs, equal=equal)
    total: dict[tuple[str, str], float] = defaultdict(float)
    for rt in out.routes:
        total[(rt.source, rt.model)] += rt.fraction
    assert set(total) == {(r.source, r.model) for r in plan.routes}
    assert all(v == pytest.approx(1.0) for v in total.values())
    eu_8b = {rt.replica: rt for rt in out.routes if rt.source == "users-eu-west" and rt.model == "llama-3.1-8b"}
    assert set(eu_8b) == {r.id for r in plan.replicas if r.model == "llama-3.1-8b"}  # every 8B replica, both regions
    assert eu_8b["llama-3.1-8b.us-east.h100-a-000.g0"].network_latency_ms == 40.0  # the inventory link, not the plan's choice
    assert eu_8b["llama-3.1-8b.eu-west.h100-e-002.g0"].network_latency_ms == 3.0
    fr = [rt.fraction for rt in eu_8b.values()]
    if equal:
        assert max(fr) == pytest.approx(min(fr))
    else:  # proportional to capacity: the 0.7-share replica (1.5 rps) gets less than a full one (2.8 rps)
        assert eu_8b["llama-3.1-8b.us-east.h100-a-000.g2"].fraction < eu_8b["llama-3.1-8b.us-east.h100-a-000.g0"].fraction
    standby = [rt for rt in out.routes if rt.replica.startswith("standby:")]
    assert standby == [rt for rt in plan.routes if rt.replica.startswith("standby:")]
    assert kv_hbm_bytes(out) == kv_hbm_bytes(plan) > 0


def test_solver_switches_name_real_settings():
    from maestro_plan.solve.problem import SolveSettings

    sw = solver_switches(SolveSettings())
    assert sw["predicted-length KV reservation"] == ("kv_reservation", "naive")
    assert sw["warm standby"] == ("standby", False)
    for field, _ in sw.values():
        assert hasattr(SolveSettings(), field)


def test_compare_command_writes_one_table(tmp_path):
    r = CliRunner().invoke(
        app,
        ["compare", "-i", str(EMIT / "inventory.yaml"), "-m", str(EMIT / "models"), "-w", str(EMIT / "workloads"),
         "--duration", "10", "--time-limit", "2", "--out", str(tmp_path), "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    rows = {x["name"]: x for x in res["rows"]}
    assert {"naive", "maestro-plan", "edf", "fifo", "no predicted-length KV reservation", "no warm standby", "no latency-aware routing", "no priority classes"} <= set(rows)
    ours, naive = rows["maestro-plan"], rows["naive"]
    assert ours["feasible"] and ours["results"]["low"]["slo_attainment"]["interactive"] is not None
    if naive["feasible"]:
        assert naive["kv_hbm_bytes"] > ours["kv_hbm_bytes"]
        assert res["headline"]["kv_hbm_cut_vs_naive_plan"] == pytest.approx(1 - ours["kv_hbm_bytes"] / naive["kv_hbm_bytes"], abs=1e-4)
    # same plan, different queues: same hardware
    assert rows["edf"]["kv_hbm_bytes"] == ours["kv_hbm_bytes"] and rows["edf"]["gpus"] == ours["gpus"]
    assert json.loads((tmp_path / "compare.json").read_text()) == res
    md = (tmp_path / "compare.md").read_text()
    assert md == to_markdown(res, md.split("`")[1])
    assert "| maestro-plan |" in md and "paper: +23.6 points" in md


def test_compare_rejects_bad_multipliers():
    r = CliRunner().invoke(app, ["compare", "--high", "0"])
    assert r.exit_code == 2 and "rate multiplier must be positive" in r.output
    r = CliRunner().invoke(app, ["compare", "--duration", "-3"])
    assert r.exit_code == 2
