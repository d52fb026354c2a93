"""Terminal output at 80 columns (CI logs, pipes): no id or number is cut or broken, wide tables
drop low-value columns or fold into stacked rows; human units; a closed pipe is no internal error;
every command ends with its next step."""

from __future__ import annotations

import io
import re

import pytest
import typer
from rich.console import Console
from rich.table import Table

from maestro_plan.cli.common import guarded, print_table
from maestro_plan.cli.progress import PHASES, best_text, phase_index
from maestro_plan.units import amount_text, duration_text

IDS = ["llama-3.1-70b-instruct", "qwen2.5-32b", "us-east/a100-p4de-use1b-000"]
NUMBERS = ["1,539.57", "-12.25", "74"]


def render(table: Table, width: int, **kw) -> str:
    buf = io.StringIO()
    print_table(table, out=Console(file=buf, width=width, color_system=None, legacy_windows=False), **kw)
    return buf.getvalue()


def wide_table(rows: int = 3) -> Table:
    t = Table(title="results")
    for col in ("model", "where", "$/h", "Δ $/h", "GPUs", "notes", "why not"):
        t.add_column(col)
    for _ in range(rows):
        t.add_row(IDS[0], IDS[2], NUMBERS[0], NUMBERS[1], NUMBERS[2], "spare words here", "needs 12 h100-sxm GPUs in us-east, 8 available")
    return t


def test_80_columns_never_cut_or_break_ids_and_numbers() -> None:
    for kw in ({}, {"drop": ("notes", "where")}, {"drop": ("notes",), "wrap": ("why not",)}):
        out = render(wide_table(), 80, **kw)
        assert max(len(line) for line in out.splitlines()) <= 80, out
        for token in [IDS[0], IDS[2], *NUMBERS]:
            assert token in out, (kw, token, out)  # whole, on one line
        assert "…" not in out


def test_dropping_columns_keeps_a_table_when_it_then_fits() -> None:
    out = render(wide_table(), 80, drop=("notes", "where", "why not"), wrap=())
    assert "┃ model" in out and "where" not in out and "notes" not in out  # a table, two columns fewer
    wide = render(wide_table(), 200)
    assert "where" in wide and "notes" in wide  # a wide terminal shows everything


def test_stacked_rows_when_nothing_else_fits() -> None:
    out = render(wide_table(2), 80)
    assert "┃" not in out  # no table: stacked blocks
    assert out.count(f"model   {IDS[0]}") == 2 and "why not needs 12 h100-sxm GPUs in us-east, 8 available" in " ".join(out.split())


def test_snapshot_at_80_columns() -> None:
    t = Table(title="what-if")
    for col in ("scenario", "feasible", "$/h", "GPUs by type"):
        t.add_column(col)
    t.add_row("demand-x2--fail-us-west", "yes", "1,539.57", "5×a100-40gb, 32×a100-80gb, 9×h100-sxm, 16×h200, 12×l40s")
    assert render(t, 80, wrap=("GPUs by type",)) == (
        "                                    what-if                                     \n"
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ scenario                ┃ feasible ┃ $/h      ┃ GPUs by type                 ┃\n"
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
        "│ demand-x2--fail-us-west │ yes      │ 1,539.57 │ 5×a100-40gb, 32×a100-80gb,   │\n"
        "│                         │          │          │ 9×h100-sxm, 16×h200, 12×l40s │\n"
        "└─────────────────────────┴──────────┴──────────┴──────────────────────────────┘\n"
    )


def test_cli_tables_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from maestro_plan.cli import common
    from maestro_plan.cli.main import app

    monkeypatch.setattr(common.console, "_width", 80)
    for args in (["gpus"], ["models"], ["validate"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        lines = res.output.splitlines()
        assert max(len(x) for x in lines) <= 80, res.output
        assert "…" not in res.output
    gpus = CliRunner().invoke(app, ["gpus"]).output
    assert re.search(r"a100-80gb .*unsupported", gpus)  # no FP8 on an A100: said so, not 0
    models = CliRunner().invoke(app, ["models"]).output
    assert "qwen3-30b-a3b" in models and "deepseek-v3" in models
    valid = CliRunner().invoke(app, ["validate"]).output
    assert "p95 20 min" in valid and "next: maestro-plan solve" in valid


def test_human_units() -> None:
    assert duration_text(1.2e6) == "20 min" and duration_text(850) == "850 ms" and duration_text(16_000) == "16 s"
    assert duration_text(9e6) == "2.5 h" and duration_text(None) == "?"
    assert amount_text(-8.9e-16, "req/s") == "0 req/s" and amount_text(0.023812, "req/s") == "0.0238 req/s"
    assert amount_text(1539.57) == "1,540" and amount_text(467.5, "$/h") == "468 $/h"


def test_broken_pipe_is_no_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    @guarded
    def cmd() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(typer.Exit) as e:
        cmd()
    assert e.value.exit_code == 1
    assert "internal error" not in capsys.readouterr().err


def test_solve_progress_phases() -> None:
    assert [phase_index(p) for p in PHASES] == list(range(len(PHASES)))
    assert phase_index("solving with cpsat") == PHASES.index("solving with")
    assert phase_index("column generation over per-model plans") == 2
    assert best_text("cost", 496.031) == "best $496.03/h"
    assert best_text("cost", 496.031, bound=467.5) == "best $496.03/h, bound $467.50/h"
    assert best_text("cost", 496.031, bound=float("-inf")) == "best $496.03/h"


def test_progress_callback_gets_the_live_bound() -> None:
    """CP-SAT's callback passes its best objective bound to a callback that takes `bound` (what the
    bar shows next to the best cost), and still calls an older 3-argument callback; never a bound
    above the cost it goes with."""
    from test_whatif import make_inputs

    from maestro_plan.solve import solve
    from maestro_plan.whatif.sweep import solve_settings

    calls: list[tuple[str, float, float | None]] = []
    old_style: list[float] = []
    settings = solve_settings(time_limit_s=10.0, workers=1, seed=0)
    with_bound, _ = solve(make_inputs(), settings, progress=lambda name, value, wall_s, bound=None: calls.append((name, value, bound)))
    without, _ = solve(make_inputs(), settings, progress=lambda name, value, wall_s: old_style.append(value))
    assert calls and old_style
    assert all(b is not None and b <= v + 1e-6 * max(1.0, abs(v)) for _, v, b in calls)
    assert with_bound.plan_id == without.plan_id  # display only: the plan is the same


def test_diff_lines_never_wrap_and_end_with_the_next_step(tmp_path, monkeypatch) -> None:
    from test_diff_rollout import mk_plan, rep
    from typer.testing import CliRunner

    from maestro_plan.cli import common
    from maestro_plan.cli.main import app
    from maestro_plan.plan.io import write_plan

    monkeypatch.setattr(common.console, "_width", 80)
    long_model = "a-model-with-a-rather-long-catalogue-identifier"
    old = mk_plan([rep(long_model, "n1", [0]), rep(long_model, "n1", [1])], {("s", long_model): 15})
    new = mk_plan([rep(long_model, "n2", [0]), rep(long_model, "n1", [1])], {("s", long_model): 15})
    write_plan(old, tmp_path / "old.json")
    write_plan(new, tmp_path / "new.json")
    res = CliRunner().invoke(app, ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert res.exit_code == 0, res.output
    (moved,) = [x for x in res.output.splitlines() if x.startswith("~ ")]
    assert "(moved)" in moved and moved.endswith("/h") and len(moved) > 80  # whole, on one line
    assert res.output.rstrip().splitlines()[-1].startswith("next: maestro-plan rollout")
