"""Same inputs and seed => byte-identical plan.json, on an idle and on a loaded machine (issue 15,
section 5; issue 18): every stage stops on work counters (CP-SAT deterministic time with one
worker, HiGHS node and iteration limits), not seconds. The load: two processes spinning on the
CPU while the second solve runs."""

from __future__ import annotations

import multiprocessing as mp

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
    plan, _ = solve(inputs, SolveSettings(objective="cost", solver="cpsat", seed=0, time_limit_s=2.0, workers=2))
    return dumps(plan)


def test_plan_is_byte_identical_under_cpu_load(tmp_path):
    write_synth(SynthSpec(gpus=32, models=4, clusters=2, workflows=2, seed=0), tmp_path)
    inputs = load_inputs(tmp_path / "inventories", tmp_path / "models", tmp_path / "workloads")
    idle = _plan(inputs)
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    workers = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        loaded = _plan(inputs)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
    assert loaded == idle
