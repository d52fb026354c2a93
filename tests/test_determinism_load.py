"""Same inputs and seed => byte-identical plan.json, on an idle and on a loaded machine (issue 15,
section 5; issue 18): every stage stops on work counters (CP-SAT deterministic time with one
worker, HiGHS node and iteration limits), not seconds. The load: two processes spinning on the
CPU while the second solve runs, on a 100-GPU synthetic fleet (the smallest shape of
benchmarks/solver_scale.py and plans_identical.py: 10 models, 2 clusters, 4 workflows), so that
column generation, the neighbourhood search and CP-SAT all run."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import dumps
from maestro_plan.solve import SolveSettings, solve
from maestro_plan.synth import SynthSpec, write_synth


def _spin(stop) -> None:  # a CPU-bound worker until told to stop
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


def _plan(inputs) -> str:
    plan, stats = solve(inputs, SolveSettings(objective="cost", solver="cpsat", seed=0, time_limit_s=2.0, workers=2))
    assert stats["model"].get("column_generation", 0) > 0  # the stages whose budgets are work counts ran
    assert not any("wall-clock" in n for n in plan.notes)  # no safety cap fired
    return dumps(plan)


@pytest.mark.slow
def test_plan_is_byte_identical_under_cpu_load(tmp_path):
    write_synth(SynthSpec(gpus=100, models=10, clusters=2, workflows=4, seed=0), tmp_path)
    inputs = load_inputs(tmp_path / "inventories", tmp_path / "models", tmp_path / "workloads")
    idle = _plan(inputs)
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    workers = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(3)]  # more busy processes than this machine's 2 cores
    for w in workers:
        w.start()
    try:
        loaded = _plan(inputs)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
    assert all(w.exitcode == 0 for w in workers)  # they were still spinning when told to stop
    assert loaded == idle


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_highs_and_cbc_stop_on_nodes_not_seconds(tmp_path, solver: str) -> None:
    """--solver highs|cbc: the final solve stops on a node count (SolveBudget.backend_nodes_per_s),
    so even a tiny --time-limit (0.2 s: one node) ends on work, with no wall-clock note, and gives
    the same bytes twice. Before, 0.2 s was HiGHS' and CBC's wall-clock limit."""
    write_synth(SynthSpec(gpus=32, models=4, clusters=2, workflows=2, seed=1), tmp_path)
    inputs = load_inputs(tmp_path / "inventories", tmp_path / "models", tmp_path / "workloads")
    settings = SolveSettings(objective="cost", solver=solver, seed=0, time_limit_s=0.2, workers=1)
    first, stats = solve(inputs, settings)
    again, _ = solve(inputs, settings)
    assert not stats["hit_wall_clock"]
    assert not any("wall-clock" in n for n in first.notes)
    assert dumps(first) == dumps(again)
