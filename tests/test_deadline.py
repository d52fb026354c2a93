"""The whole command's --time-limit as a deadline (maestro_plan/deadline.py, issue 18): a deadline
that has passed cuts the solve short and the plan says so (so plan_id changes with it); one that
does not bind changes no byte. No wall-clock figure is asserted: the passed deadline starts in the
past, the far one is a day away."""

from __future__ import annotations

import time

import pytest

from maestro_plan import deadline
from maestro_plan.deadline import Deadline, active
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import dumps
from maestro_plan.solve import SolveSettings, solve
from maestro_plan.synth import SynthSpec, write_synth
from maestro_plan.verify import verify_plan


@pytest.fixture(scope="module")
def synth_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("deadline")
    write_synth(SynthSpec(gpus=32, models=4, clusters=2, workflows=2, seed=0), d)
    return load_inputs(d / "inventories", d / "models", d / "workloads")


def _solve(inputs, solver: str = "cpsat"):
    return solve(inputs, SolveSettings(objective="cost", solver=solver, seed=0, time_limit_s=2.0, workers=1))


def test_a_far_deadline_changes_no_byte(synth_inputs) -> None:
    free, _ = _solve(synth_inputs)
    with active(Deadline(86_400.0, reserve_share=0.35)) as d:
        held, _ = _solve(synth_inputs)
    assert dumps(held) == dumps(free)
    assert d is not None and d.cut == [] and not d.binding


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_a_passed_deadline_cuts_the_solve_and_the_plan_says_so(synth_inputs, solver: str) -> None:
    free, _ = _solve(synth_inputs, solver)
    with active(Deadline(1.0, start=time.monotonic() - 100.0)) as d:
        cut, _ = _solve(synth_inputs, solver)
    assert d is not None and solver in d.cut  # the backend did not run: the best start is the plan
    notes = [n for n in cut.notes if n.startswith("--time-limit 1 s is a deadline for the whole command")]
    assert len(notes) == 1 and solver in notes[0] and "may give a different plan" in notes[0]
    assert cut.plan_id != free.plan_id  # the note is content: plan_id hashes it
    assert verify_plan(cut, synth_inputs).ok  # a cut plan is still a verified plan
    assert cut.cost_per_hour >= free.cost_per_hour - 1e-6 * free.cost_per_hour


def test_without_a_deadline_nothing_is_capped() -> None:
    assert deadline.current() is None
    assert deadline.cap(120.0) == 120.0
    assert not deadline.expired("anything")
    assert deadline.note(True) is None


def test_the_clock_starts_with_the_process() -> None:
    d = Deadline(10.0)
    age = time.monotonic() - d.start
    assert age > 0  # this process started before the test ran
    with open("/proc/uptime") as f:
        assert age <= float(f.read().split()[0])


@pytest.mark.parametrize(("flags", "held"), [([], False), (["--time-limit", "3"], True), (["--time-limit", "3", "--no-deadline"], False), (["--deadline"], True)])
def test_solve_holds_a_deadline_only_when_asked(tmp_path, monkeypatch, flags: list[str], held: bool) -> None:
    """Without --time-limit, `solve` keeps the work budgets only (the same bytes on any load: the
    README's first command, CI jobs); given, --time-limit is also a deadline."""
    from typer.testing import CliRunner

    from maestro_plan.cli.main import app

    d = tmp_path / "in"
    write_synth(SynthSpec(gpus=16, models=2, clusters=1, workflows=1, seed=0), d)
    seen: list[object] = []
    real = deadline.active

    def spy(dl):
        seen.append(dl)
        return real(dl)

    monkeypatch.setattr(deadline, "active", spy)
    args = ["solve", "--inventory", str(d / "inventories"), "--models", str(d / "models"), "--workloads", str(d / "workloads"), "--out", str(tmp_path / "out"), "--no-emit", "--slo-check", "none", *flags]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(seen) == 1 and (seen[0] is not None) == held
