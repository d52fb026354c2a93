"""Report plots (issue 17): the memory map draws every used GPU (and no idle one), paged; model
colours never collide with each other or with the overhead's grey; capacity vs demand on a log
scale. Example and schema files of the what-if inputs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.colors as mcolors
from emit_testlib import fixture_inputs, fixture_plan
from typer.testing import CliRunner

from maestro_plan.emit import report
from maestro_plan.emit.report import OVERHEAD_GREY, _colors, emit_report, memory_rows, plot_memory_pages

ROOT = Path(__file__).resolve().parent.parent


def test_memory_map_rows_are_exactly_the_used_gpus() -> None:
    plan, inputs = fixture_plan(), fixture_inputs()
    rows = memory_rows(plan, inputs)
    want = {(r.cluster, n, g) for r in plan.replicas for n in [r.node, *r.worker_nodes] for g in r.gpu_indices}
    assert set(rows) == want and len(rows) == len(want)


def test_memory_map_pages_hold_every_used_gpu(tmp_path: Path, monkeypatch) -> None:
    plan, inputs = fixture_plan(), fixture_inputs()
    n = len(memory_rows(plan, inputs))
    monkeypatch.setattr(report, "MEMORY_ROWS_PER_PAGE", 2)
    pages = plot_memory_pages(plan, inputs)
    assert len(pages) == -(-n // 2) and all(p[:4] == b"\x89PNG" for p in pages)
    files = {str(p.relative_to(tmp_path)) for p in emit_report(plan, inputs, tmp_path)}
    assert {"plots/memory-map.png", "plots/memory-map-2.png"} <= files
    md = (tmp_path / "report.md").read_text()
    assert all(f"plots/memory-map-{k}.png" in md for k in range(2, len(pages) + 1))


def test_colours_never_collide_and_are_never_grey() -> None:
    for n in (13, 20, 54, 80):
        keys = [f"model-{i:03d}" for i in range(n)] * 3  # repeats must not shift colours
        cols = _colors(keys)
        rgb = [mcolors.to_hex(c) for c in cols.values()]
        assert len(cols) == n and len(set(rgb)) == n
        assert OVERHEAD_GREY not in rgb
        for c in cols.values():
            r, g, b = c[:3]
            assert max(r, g, b) - min(r, g, b) > 0.05, c  # not a grey


def test_capacity_plot_uses_a_log_scale(monkeypatch) -> None:
    seen = {}
    import matplotlib.axes

    real = matplotlib.axes.Axes.set_yscale

    def spy(self, value, **kw):
        seen["scale"] = value
        return real(self, value, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_yscale", spy)
    s = report.summary_data(fixture_plan(), fixture_inputs())
    assert report.plot_capacity(s)[:4] == b"\x89PNG" and seen["scale"] == "log"


def test_schema_and_example_files() -> None:
    from maestro_plan.cli.main import app
    from maestro_plan.estimate import load_capacity_table
    from maestro_plan.load.loader import load_inputs
    from maestro_plan.whatif.scenario import load_scenarios
    from maestro_plan.whatif.sweep import validate_all

    for what, key in (("scenario", "Scenario"), ("capacity-table", "CapacityRow")):
        res = CliRunner().invoke(app, ["schema", what])
        assert res.exit_code == 0, res.output
        assert key in json.loads(res.output)["$defs"]
    # the examples are valid against the bundled inputs
    inputs = load_inputs(ROOT / "inventories", ROOT / "models", ROOT / "workloads")
    scenarios = load_scenarios(ROOT / "examples/whatif/scenarios.yaml")
    validate_all(inputs, scenarios)
    assert len(scenarios) == 4
    table = load_capacity_table(ROOT / "examples/whatif/capacity-table.csv")
    assert {(r.model, r.gpu) for r in table.rows} == {("llama-3.1-8b", "h100-sxm")}
    assert all(r.model in inputs.models and r.gpu in inputs.gpu_types for r in table.rows)
