"""estimate-sweep: GPU type x TP x weight format x max_num_seqs for one model; the Pareto front is
exactly the undominated points, the pick meets its limits and is the cheapest per token among those
that do, infeasible configurations are absent."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.estimate.pareto import pareto, pick, sweep
from maestro_plan.load.loader import load_gpu_types, load_models

ROOT = Path(__file__).resolve().parent.parent


def points(model: str = "llama-3.1-8b", gpus: tuple[str, ...] = ("h100-sxm", "a100-80gb", "l4")):
    mods, _ = load_models(ROOT / "models")
    table = load_gpu_types([])
    return mods[model], sweep(mods[model], {g: table[g] for g in gpus}, prompt=2048, output=256)


def test_front_is_exactly_the_undominated_points() -> None:
    _, pts = points()
    for y in ("tokens_per_s_gpu", "tokens_per_dollar"):
        front = pareto(pts, y)

        def dominated(p, y: str = y) -> bool:
            return any(q.tokens_per_s_user >= p.tokens_per_s_user and getattr(q, y) >= getattr(p, y)
                       and (q.tokens_per_s_user > p.tokens_per_s_user or getattr(q, y) > getattr(p, y)) for q in pts)

        assert front and not any(dominated(p) for p in front)
        assert all(dominated(p) or p in front for p in pts)


def test_axes_and_feasibility() -> None:
    m, pts = points()
    assert {p.gpu for p in pts} == {"h100-sxm", "a100-80gb", "l4"}
    assert {p.weights for p in pts if p.gpu == "a100-80gb"} == {"bf16"}  # no FP8 tensor cores on an A100
    assert {p.weights for p in pts if p.gpu == "h100-sxm"} == {"bf16", "fp8 (what-if)"}
    assert {p.tp for p in pts} <= set(m.tp_degrees)
    # more sequences: more throughput per GPU, slower per user (same GPU, TP, format)
    run = sorted((p for p in pts if (p.gpu, p.tp, p.weights) == ("h100-sxm", 1, "bf16")), key=lambda p: p.max_num_seqs)
    assert len(run) > 3
    assert all(a.tokens_per_s_gpu < b.tokens_per_s_gpu and a.tokens_per_s_user > b.tokens_per_s_user for a, b in zip(run, run[1:]))
    _, big = points("llama-3.1-70b", ("l4",))  # 70B in bf16 does not fit 24 GB at TP 1
    assert all(p.tp > 1 for p in big if p.weights == "bf16")


def test_pick_meets_the_limits_and_is_cheapest() -> None:
    _, pts = points()
    p = pick(pts, ttft_ms=None, tpot_ms=20.0)
    assert p is not None and p.tpot_ms <= 20.0
    assert p.tokens_per_dollar == max(q.tokens_per_dollar for q in pts if q.tpot_ms <= 20.0)
    assert pick(pts, ttft_ms=0.001, tpot_ms=None) is None


def test_cli_prints_front_and_pick_and_plots(tmp_path: Path, monkeypatch) -> None:
    from maestro_plan.cli import common

    monkeypatch.setattr(common.console, "_width", 80)
    png = tmp_path / "p.png"
    res = CliRunner().invoke(app, ["estimate-sweep", "--model", "llama-3.1-8b", "--gpus", "h100-sxm,l4", "--tpot-ms", "30", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "planner's pick (TPOT <= 30 ms)" in res.output and "Pareto front" in res.output
    assert max(len(x) for x in res.output.splitlines() if not x.startswith("planner's pick")) <= 80
    assert png.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(CliRunner().invoke(app, ["estimate-sweep", "--model", "llama-3.1-8b", "--gpus", "l4", "--json"]).output)
    assert doc["pareto"] and doc["pick"]["gpu"] == "l4"
    res = CliRunner().invoke(app, ["estimate-sweep", "--model", "llama-3.1-8b", "--gpus", "h1OO"])
    assert res.exit_code == 2 and "unknown GPU type" in res.output
