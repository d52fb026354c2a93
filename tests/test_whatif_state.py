"""State and correctness of what-if work (issue 17): a stale base is refused (or re-solved with
--rebase), the same inputs give the same plan whichever command solves them (a sweep point at x1
demand is the base plan), where the fleet runs out is a bracket (and bisected), and grid axes
combine."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_whatif import WORKFLOWS, write_inputs
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.whatif.sweep import brackets, demand_grid, product_grid, with_factor

FAST = ["--time-limit", "10", "--jobs", "1"]


def _solve(flags: list[str], out: Path) -> Path:
    res = CliRunner().invoke(app, ["solve", *flags, "--out", str(out), "--time-limit", "10", "--no-emit"])
    assert res.exit_code == 0, res.output
    return out / "plan.json"


def test_stale_base_is_refused_or_rebased(tmp_path: Path) -> None:
    flags = write_inputs(tmp_path / "in")
    base = _solve(flags, tmp_path / "plan1")
    # the inputs change after the base was solved: a workflow is added
    extra = {**WORKFLOWS[0], "name": "assist-two"}
    (tmp_path / "in" / "workloads" / "assist-two.yaml").write_text(yaml.safe_dump(extra, sort_keys=False))
    runner = CliRunner()
    for cmd in (["whatif", *flags, "--scale", "2", "--base", str(base), *FAST],
                ["sweep", *flags, "--demand", "1,2", "--base", str(base), "--out", str(tmp_path / "sw"), *FAST]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 2, res.output
        text = " ".join(res.output.split())
        assert "the plan is stale" in text and "assist-two" in text and "--rebase" in text, text
    assert not (tmp_path / "sw").exists()
    res = runner.invoke(app, ["emit", str(base), *flags, "--out", str(tmp_path / "em")])
    assert res.exit_code == 2 and "stale" in res.output
    res = runner.invoke(app, ["diff", str(base), str(base), *flags])
    assert res.exit_code == 2 and "stale" in res.output
    res = runner.invoke(app, ["rollout", str(base), str(base), *flags])
    assert res.exit_code == 2 and "stale" in res.output
    # --rebase: the base is re-solved from the current inputs, and the delta is the edit's only
    res = runner.invoke(app, ["whatif", *flags, "--scale", "1", "--base", str(base), "--rebase", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert doc["rows"][0]["cost_delta_per_hour"] == 0.0


def test_x1_sweep_point_is_the_solve_plan(tmp_path: Path) -> None:
    """`solve`, then `sweep --base` at x1: same replicas, same cost, nothing moved."""
    flags = write_inputs(tmp_path / "in")
    base = _solve(flags, tmp_path / "plan1")
    out = tmp_path / "sw"
    res = CliRunner().invoke(app, ["sweep", *flags, "--demand", "1", "--base", str(base), "--out", str(out), "--jobs", "1", "--no-emit"])
    assert res.exit_code == 0, res.output
    row = json.loads((out / "sweep.json").read_text())["rows"][0]
    assert row["cost_delta_per_hour"] == 0.0
    assert row["changes"] == {"added": 0, "removed": 0, "moved": 0, "resized": 0, "unchanged": row["replicas"]}
    # the scenario's plan.json is the base plan but for the solver's work counters
    strip = lambda f: {k: v for k, v in json.loads(f.read_text()).items() if k != "solve"}  # noqa: E731
    assert strip(out / "scenarios" / "demand-x1" / "plan.json") == strip(base)


def test_bracket_and_bisection(tmp_path: Path) -> None:
    flags = write_inputs(tmp_path / "in")
    out = tmp_path / "sw"
    res = CliRunner().invoke(app, ["sweep", *flags, "--demand", "1,1000", "--bisect", "3", "--out", str(out), "--no-plans", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["scenarios"] == 5  # two grid points, three bisection solves
    (b,) = doc["runs_out"]
    assert 1 <= b["last_feasible"] < b["first_infeasible"] <= 1000
    assert b["first_infeasible"] - b["last_feasible"] <= 999 / 2**3 + 1e-9  # halved three times
    text = " ".join(res.output.split())
    assert f"between {b['last_feasible']:g} (feasible) and {b['first_infeasible']:g} (infeasible)" in text


def test_brackets_never_claim_an_untried_value() -> None:
    rows = [{"value": 3.0, "feasible": True, "group": ""}, {"value": 5.0, "feasible": False, "group": ""},
            {"value": 7.0, "feasible": False, "group": ""}, {"value": 2.0, "feasible": False, "group": "fail-a"}]
    assert brackets(rows) == [{"group": "", "last_feasible": 3.0, "first_infeasible": 5.0},
                              {"group": "fail-a", "last_feasible": None, "first_infeasible": 2.0}]


def test_grid_axes_combine(tmp_path: Path) -> None:
    flags = write_inputs(tmp_path / "in")
    out = tmp_path / "sw"
    res = CliRunner().invoke(app, ["sweep", *flags, "--demand", "1,2", "--fail", "cluster", "--out", str(out), "--no-plans", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "sweep.json").read_text())
    names = [r["scenario"] for r in doc["rows"]]
    assert names == ["demand-x1--fail-eu-west", "demand-x1--fail-us-east", "demand-x2--fail-eu-west", "demand-x2--fail-us-east"]
    assert [r["group"] for r in doc["rows"]] == ["fail-eu-west", "fail-us-east"] * 2
    assert doc["rows"][0]["edits"] == "demand all x1; remove cluster eu-west"
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_with_factor_keeps_the_other_edits() -> None:
    (s,) = [x for x in product_grid([demand_grid([2.0], workflow="assist"), demand_grid([3.0])]) if x.value == 2.0]
    m = with_factor(s, 2.5)
    assert m.name == "demand-assist-x2.5--demand-x3" and m.value == 2.5 and m.group == "demand-x3"
    assert [e.factor for e in m.edits] == [2.5, 3.0]


def test_diff_pairs_by_model_cluster_and_shape_with_stable_addresses() -> None:
    from test_diff_rollout import mk_plan, rep

    from maestro_plan.whatif.diff import addresses, diff_plans

    small = rep("m1", "n1", [0, 1]).model_copy(update={"gpu_type": "h200", "tp": 2})
    keep = rep("m1", "n2", [0])
    old = mk_plan([small, keep], {("s", "m1"): 10})
    big = rep("m1", "n3", list(range(8))).model_copy(update={"tp": 8})
    same_shape = rep("m1", "n4", [3])  # keep's shape (h100-sxm, TP1, whole GPU) on another node
    new = mk_plan([big, same_shape], {("s", "m1"): 10})
    d = diff_plans(old, new)
    kinds = sorted((c.kind, (c.old or c.new).tp) for c in d.changes)
    # the TP1 engine moved; the TP2 H200 one is removed and the TP8 one added, never "moved" into it
    assert kinds == [("added", 8), ("moved", 1), ("removed", 2)]
    addr = addresses(old.replicas)
    assert addr[small.id] == "m1/c1/c1-pool/h200-tp2/0" and addr[keep.id] == "m1/c1/c1-pool/h100-sxm-tp1/0"
    assert "- m1/c1/c1-pool/h200-tp2/0" in d.render()
    # addresses carry no GPU index: the same replica on other GPUs of its pool keeps its address
    moved = rep("m1", "n2", [5], rid="other-id")
    assert addresses([moved])[moved.id] == addr[keep.id]
