"""`maestro-plan emit` / `summary`: writes atomically; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from emit_testlib import EMIT, INPUT_ARGS
from typer.testing import CliRunner

from maestro_plan.cli.main import app

runner = CliRunner()


def _emit(plan: Path, out: Path, *extra: str, inputs: list[str] | None = None):
    return runner.invoke(app, ["emit", str(plan), "--out", str(out), *extra, *(inputs or INPUT_ARGS)])


def test_emit_all_and_one_format(tmp_path: Path) -> None:
    res = _emit(EMIT / "plan.json", tmp_path / "out", "--quiet")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out/manifests/us-east/kustomization.yaml").is_file() and (tmp_path / "out/report.html").is_file()
    res = _emit(EMIT / "plan.json", tmp_path / "only", "--format", "routing")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "only").rglob("*") if p.is_file()) == ["routing.json"]
    assert not list(tmp_path.glob(".*staging*")), "staging folder left behind"


def test_summary_json(tmp_path: Path) -> None:
    res = runner.invoke(app, ["summary", str(EMIT / "plan.json"), "--json", *INPUT_ARGS])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["cost_per_hour"] == pytest.approx(364.75, abs=0.01)


def _assert_bad(res, out: Path, words: str) -> None:
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output
    assert not out.exists(), "bad input must not write anything"


def test_missing_plan(tmp_path: Path) -> None:
    _assert_bad(_emit(tmp_path / "nope.json", tmp_path / "out"), tmp_path / "out", "does not exist")


def test_newer_plan_schema(tmp_path: Path) -> None:
    doc = json.loads((EMIT / "plan.json").read_text())
    doc["schema_version"] = "2.0"
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(doc))
    _assert_bad(_emit(p, tmp_path / "out"), tmp_path / "out", "schema 2.0")


def test_unknown_format(tmp_path: Path) -> None:
    _assert_bad(_emit(EMIT / "plan.json", tmp_path / "out", "--format", "helm"), tmp_path / "out", "unknown format")


def _copy_inputs(tmp_path: Path) -> Path:
    d = tmp_path / "inputs"
    shutil.copytree(EMIT, d, ignore=shutil.ignore_patterns("golden", "*.py", "plan.json"))
    return d


def test_node_renamed_since_the_plan(tmp_path: Path) -> None:
    d = _copy_inputs(tmp_path)
    inv = d / "inventory.yaml"
    inv.write_text(inv.read_text().replace("h100-e-002", "h100-e-099"))
    res = _emit(EMIT / "plan.json", tmp_path / "out", inputs=["--inventory", str(inv), "--models", str(d / "models"), "--workloads", str(d / "workloads")])
    _assert_bad(res, tmp_path / "out", "h100-e-002")


def test_model_renamed_since_the_plan(tmp_path: Path) -> None:
    d = _copy_inputs(tmp_path)
    m = d / "models" / "llama-3.2-1b.yaml"
    m.write_text(m.read_text().replace("id: llama-3.2-1b", "id: llama-3.2-1b-instruct"))
    for w in (d / "workloads").glob("*.yaml"):
        w.write_text(w.read_text().replace("model: llama-3.2-1b", "model: llama-3.2-1b-instruct"))
    res = _emit(EMIT / "plan.json", tmp_path / "out", inputs=["--inventory", str(d / "inventory.yaml"), "--models", str(d / "models"), "--workloads", str(d / "workloads")])
    _assert_bad(res, tmp_path / "out", "llama-3.2-1b-instruct")


def test_failed_emit_leaves_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert _emit(EMIT / "plan.json", out, "--format", "routing").exit_code == 0
    before = (out / "routing.json").read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    import maestro_plan.emit as emit_pkg

    monkeypatch.setitem(emit_pkg.EMITTERS, "report", boom)
    res = _emit(EMIT / "plan.json", out, "--format", "all")
    assert res.exit_code == 1 and "internal error" in res.output
    assert (out / "routing.json").read_bytes() == before and not (out / "manifests").exists()
