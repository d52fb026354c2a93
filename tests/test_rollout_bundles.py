"""`rollout OLD NEW --out DIR` per-step manifest bundles, on the small inputs of test_whatif.py
(OLD: the base plan; NEW: the plan for 3x the demand, which adds, moves and removes replicas):
the step folders exist in rollout order, every manifest passes the Kubernetes schema checks of
test_emit_k8s.py, and applying the steps' objects in order to OLD's objects ends with exactly
NEW's objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from emit_testlib import KUBERNETES_VERSION, validate_custom
from test_whatif import make_inputs, sc, write_inputs
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.emit.k8s import build_k8s
from maestro_plan.plan.io import write_plan
from maestro_plan.whatif import apply_scenario, diff_plans, plan_rollout
from maestro_plan.whatif.bundles import build_bundles
from maestro_plan.whatif.sweep import solve_inputs, solve_settings

SETTINGS = dict(time_limit_s=10.0, workers=1, seed=0)


@pytest.fixture(scope="module")
def plans():
    inputs = make_inputs()
    old = solve_inputs(inputs, solve_settings(**SETTINGS))
    # x2 (was x3 with power-of-two slices): the two plans still share replicas, so the route step restarts some
    new = solve_inputs(apply_scenario(inputs, sc({"scale_demand": {"factor": 2}})), solve_settings(**SETTINGS))
    return inputs, old, new


def _objects(plan, inputs) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c, n): o for c, files in build_k8s(plan, inputs).items() for n, o in files.items() if n != "kustomization.yaml"}


def _validate(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Kustomization":
        return
    if obj["kind"] == "LeaderWorkerSet":
        validate_custom(obj)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_steps_in_order_end_in_the_new_plans_objects(plans) -> None:
    inputs, old, new = plans
    r = plan_rollout(old, new, inputs.inventory)
    assert r.status == "ok" and r.counts["add"] > 0 and r.counts["delete"] > 0
    bundles = build_bundles(old, new, inputs, r)
    assert [b.index for b in bundles] == sorted(b.index for b in bundles)
    assert bundles[-1].action == "route"
    state = _objects(old, inputs)
    assert state != _objects(new, inputs)
    for b in bundles:
        assert b.action in {s.action for s in r.steps if s.index == b.index}
        assert not (set(b.apply) & set(b.delete))
        for k in b.delete:
            del state[k]
        state.update(b.apply)
    assert state == _objects(new, inputs)
    # the route step re-stamps pods that OLD and NEW share with NEW's plan id: those engines restart, and the bundle says so
    kept = {a.id for a, _ in diff_plans(old, new).unchanged}
    assert kept and bundles[-1].restarts and set(bundles[-1].restarts) <= kept | {r.id for r in new.replicas}
    # add before remove: the first bundle that deletes comes after the first that starts engines
    first_add = min(b.index for b in bundles if any(o["kind"] == "Deployment" for o in b.apply.values()))
    first_del = min(b.index for b in bundles if b.delete)
    assert first_add < first_del


def test_cli_writes_step_folders_and_plan_txt(plans, tmp_path: Path) -> None:
    inputs, old, new = plans
    flags = write_inputs(tmp_path / "in")
    write_plan(old, tmp_path / "old.json")
    write_plan(new, tmp_path / "new.json")
    out = tmp_path / "ro"
    res = CliRunner().invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "new.json"), *flags, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "rollout.json").read_text())["status"] == "ok"
    steps = sorted(p.name for p in out.iterdir() if p.name.startswith("step-"))
    assert steps and steps[-1].endswith("-route") and any(s.endswith("-add") for s in steps)
    n_files = 0
    for step in steps:
        for cluster in (out / step).glob("*/*"):  # apply/<cluster>, delete/<cluster>
            kust = yaml.safe_load((cluster / "kustomization.yaml").read_text())
            names = sorted(p.name for p in cluster.glob("*.yaml") if p.name != "kustomization.yaml")
            assert kust["resources"] == names and names
            for name in names:
                _validate(yaml.safe_load((cluster / name).read_text()))
                n_files += 1
    assert n_files > 0
    # plan.txt: one kubectl line per step folder, in step order
    cmds = [x for x in (out / "plan.txt").read_text().splitlines() if x.startswith("kubectl")]
    folders = [Path(c.split(" -k ")[1]).relative_to(out).parts[0] for c in cmds]
    assert folders == sorted(folders) and set(folders) == {s for s in steps if any((out / s).glob("*/*"))}
    assert "next: take the steps in order" in res.output
    # without the inputs: rollout.json only, and a note saying what the bundles need
    out2 = tmp_path / "ro2"
    res = CliRunner().invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--out", str(out2)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out2.iterdir()) == ["rollout.json"] and "--workloads" in res.output
