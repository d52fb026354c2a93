"""What-if with the solver, on the small inputs of test_whatif.py: an infeasible scenario is a row,
not a crash; sweep outputs (csv, json, a deterministic png); local and Ray executors give identical
rows; the change penalty keeps a 5% re-plan small where an unpenalized re-plan moves more (and the
diff and a safe rollout show it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_whatif import make_inputs, sc, write_inputs
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.plan.io import write_plan
from maestro_plan.whatif import apply_scenario, diff_plans, plan_rollout
from maestro_plan.whatif.sweep import demand_grid, failure_grid, plot_png, run_sweep, solve_inputs, solve_settings

SETTINGS = dict(time_limit_s=10.0, workers=1, seed=0)


@pytest.fixture(scope="module")
def base_plan():
    return solve_inputs(make_inputs(), solve_settings(**SETTINGS))


def test_infeasible_scenario_is_a_row(base_plan) -> None:
    inputs = make_inputs()
    scenarios = demand_grid([0.5, 1.0, 1000.0]) + failure_grid(inputs, "cluster")
    run = run_sweep(inputs, scenarios, base_plan, solve_settings(**SETTINGS), jobs=1)
    rows = run.rows
    assert [r["scenario"] for r in rows] == ["demand-x0.5", "demand-x1", "demand-x1000", "fail-eu-west", "fail-us-east"]
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["feasible"] for r in rows] == [True, True, False, True, True]
    bad = rows[2]
    assert bad["status"] == "infeasible" and "[inventory]" in bad["reason"] and bad["cost_per_hour"] is None
    # same inputs as the base, warm-started from it: same cost, nothing added or moved
    same = rows[1]
    assert same["cost_per_hour"] == pytest.approx(base_plan.cost_per_hour)
    # nothing moved; with the percentile budgets the warm-started solve may add one zero-load 1/8
    # slice on a GPU the plan already pays for (cost-neutral tie in the solver, reported to SOLVER)
    assert same["changes"]["moved"] == 0 and same["changes"]["added"] <= 1 and same["changes"]["unchanged"] >= 4
    assert rows[0]["cost_per_hour"] <= rows[1]["cost_per_hour"]
    # a failed cluster uses none of its GPUs
    fail_eu = run_sweep(inputs, [scenarios[3]], base_plan, solve_settings(**SETTINGS), jobs=1, validate=False).rows[0]
    assert fail_eu == {**rows[3], "index": 0}


def test_sweep_cli_writes_csv_json_png(tmp_path: Path) -> None:
    flags = write_inputs(tmp_path / "in")
    out = tmp_path / "sweep"
    res = CliRunner().invoke(app, ["sweep", *flags, "--demand", "0.5,1,1000", "--jobs", "2", "--time-limit", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "the fleet runs out between 1 (feasible) and 1000 (infeasible)" in res.output
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["scenarios"] == 3 and doc["feasible"] == 2 and doc["first_infeasible"] == {"scenario": "demand-x1000", "value": 1000.0}
    assert doc["fleet_gpus"] == {"h100-sxm": 32, "l4": 8}
    rows = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    assert [r["scenario"] for r in rows] == ["demand-x0.5", "demand-x1", "demand-x1000"]
    assert rows[2]["feasible"] == "false" and rows[2]["cost_per_hour"] == ""
    # every solved scenario's plan passed the independent verifier against its edited inputs
    assert [r["verified"] for r in rows] == ["true", "true", ""]
    assert float(rows[1]["cost_per_hour"]) == pytest.approx(doc["base"]["cost_per_hour"])
    png = (out / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    again = plot_png(doc["rows"], doc["parameter"], title=f"3 scenarios: {doc['parameter']}", fleet_gpus=40)
    assert again == png  # deterministic bytes
    # categorical sweep (each failure) plots too
    assert plot_png([{**doc["rows"][0], "value": "a"}, {**doc["rows"][2], "value": "b"}], "failure")[:4] == b"\x89PNG"


def test_whatif_cli_table_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_plan.cli import common

    monkeypatch.setattr(common.console, "_width", 240)  # a wide terminal: table cells are not folded
    flags = write_inputs(tmp_path / "in")
    (tmp_path / "s.yaml").write_text(
        "scenarios:\n"
        "  - name: double\n    edits: [{scale_demand: {factor: 2}}]\n"
        "  - name: no-us-east-at-1000x\n    edits: [{remove: {cluster: us-east}}, {scale_demand: {factor: 1000}}]\n"
    )
    runner = CliRunner()
    res = runner.invoke(app, ["whatif", *flags, "--scenario", str(tmp_path / "s.yaml"), "--price", "h100-sxm=x0.5", "--json", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    rows = {r["scenario"]: r for r in doc["rows"]}
    assert set(rows) == {"double", "no-us-east-at-1000x", "whatif"}
    assert rows["no-us-east-at-1000x"]["feasible"] is False and rows["no-us-east-at-1000x"]["reason"]
    assert rows["whatif"]["cost_per_hour"] < doc["base"]["cost_per_hour"]  # H100 at half price
    assert rows["double"]["cost_per_hour"] >= doc["base"]["cost_per_hour"]
    res = runner.invoke(app, ["whatif", *flags, "--scale", "1.5", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "base" in res.output and "whatif" in res.output and "demand all x1.5" in res.output
    # --out: whatif.json and, for the base and every solved scenario (the infeasible one has
    # none), the folder `solve` writes: plan, manifests, routing, report; diff, rollout, verify
    # and kubectl read them as they are
    out = tmp_path / "wi"
    res = runner.invoke(app, ["whatif", *flags, "--scenario", str(tmp_path / "s.yaml"), "--jobs", "1", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["base", "scenarios", "whatif.json"]
    assert sorted(p.name for p in (out / "scenarios").iterdir()) == ["double"]
    solve_out = tmp_path / "solved"
    # --no-deadline: whatif holds no wall-clock deadline, so the two commands compare on work budgets alone
    assert runner.invoke(app, ["solve", *flags, "--out", str(solve_out), "--time-limit", "30", "--no-deadline"]).exit_code == 0
    def files(folder: Path) -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def layout(folder: Path) -> set[str]:  # what every plan folder holds, whatever its replicas
        return {f for f in files(folder) if "/" not in f or f.split("/")[0] not in ("manifests", "routing", "plots")}

    assert files(out / "base") == files(solve_out)  # the same plan: the same files
    double = out / "scenarios/double"
    assert layout(double) == layout(solve_out)
    used = {r["cluster"] for r in json.loads((double / "plan.json").read_text())["replicas"]}
    assert {d.name for d in (double / "manifests").iterdir()} == used
    assert all((double / "manifests" / c / "kustomization.yaml").is_file() for c in used)
    # the same inputs give the same plan whichever command solves them
    # (all but the solver's work counters, which CP-SAT reports with some noise)
    def content(f: Path) -> dict:
        return {k: v for k, v in json.loads(f.read_text()).items() if k != "solve"}

    assert content(out / "base/plan.json") == content(solve_out / "plan.json")
    double = json.loads((out / "scenarios/double/plan.json").read_text())
    assert double["cost_per_hour"] == pytest.approx({r["scenario"]: r for r in json.loads((out / "whatif.json").read_text())["rows"]}["double"]["cost_per_hour"])
    res = runner.invoke(app, ["rollout", str(out / "base/plan.json"), str(out / "scenarios/double/plan.json"), "--json"])
    assert res.exit_code == 0, res.output


def test_change_penalty_keeps_a_5pct_replan_small(tmp_path: Path) -> None:
    # 10x the small inputs: a dozen replicas, so there is room to shuffle
    inputs = apply_scenario(make_inputs(), sc({"scale_demand": {"factor": 10}}))
    base = solve_inputs(inputs, solve_settings(**SETTINGS))
    # +10 % (was +5 % with power-of-two slices: byte-sized engines absorb +5 % without any change)
    grown = apply_scenario(inputs, sc({"scale_demand": {"factor": 1.1}}))
    free = solve_inputs(grown, solve_settings(**SETTINGS))  # re-planned from scratch
    kept = solve_inputs(grown, solve_settings(**SETTINGS, change_weight=1.0), base)  # --current base, penalised
    d_free, d_kept = diff_plans(base, free), diff_plans(base, kept)
    assert kept.cost_per_hour == pytest.approx(free.cost_per_hour, rel=1e-6)  # same cost: the penalty only breaks ties
    assert d_kept.replicas_touched <= 2 and d_kept.count("moved") == 0
    assert d_free.replicas_touched > d_kept.replicas_touched
    # the CLI diff shows it
    for name, p in (("base", base), ("free", free), ("kept", kept)):
        write_plan(p, tmp_path / f"{name}.json")
    runner = CliRunner()
    j_free = json.loads(runner.invoke(app, ["diff", str(tmp_path / "base.json"), str(tmp_path / "free.json"), "--json"]).output)
    j_kept = json.loads(runner.invoke(app, ["diff", str(tmp_path / "base.json"), str(tmp_path / "kept.json"), "--json"]).output)
    assert j_kept["counts"]["replicas_touched"] < j_free["counts"]["replicas_touched"]
    # both re-plans roll out safely from the base; the penalised one in fewer steps
    r_free, r_kept = plan_rollout(base, free, inputs.inventory), plan_rollout(base, kept, inputs.inventory)
    assert r_kept.status == r_free.status == "ok"
    assert all(s.ok for s in r_free.steps + r_kept.steps)
    assert r_kept.counts["add"] + r_kept.counts["delete"] < r_free.counts["add"] + r_free.counts["delete"]


@pytest.mark.slow
def test_executor_parity_local_vs_ray(base_plan) -> None:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'maestro-plan[ray]'); parity needs it")
    inputs = make_inputs()
    scenarios = demand_grid([0.5, 2.0, 1000.0])
    local = run_sweep(inputs, scenarios, base_plan, solve_settings(**SETTINGS), executor="local", jobs=2).rows
    on_ray = run_sweep(inputs, scenarios, base_plan, solve_settings(**SETTINGS), executor="ray", jobs=2).rows
    assert not ray.is_initialized()  # the sweep shut down the local Ray it started
    assert json.dumps(local, sort_keys=True) == json.dumps(on_ray, sort_keys=True)
    assert [r["feasible"] for r in local] == [True, True, False]


def test_whatif_plan_folders_are_safe_and_distinct() -> None:
    """Scenario names become folder names under --out: path separators and spaces cannot escape
    the folder, and names that sanitise alike still get their own folders."""
    from maestro_plan.cli.whatif_cmds import _plan_folders

    got = _plan_folders(["../etc", "a b", "a/b", "a_b", "x2"])
    assert got["x2"] == "x2"
    assert len(set(got.values())) == 5
    assert all("/" not in f and " " not in f and not f.startswith(".") for f in got.values())
