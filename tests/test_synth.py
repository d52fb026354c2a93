"""Synthetic fleets: deterministic bytes, sizes as asked, outputs that validate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import InputError
from maestro_plan.load.loader import load_inputs, load_models
from maestro_plan.synth import NODE_SHAPES, SynthSpec, generate, one_way_ms, write_synth


def _validate(out: Path):
    inputs = load_inputs(out / "inventories", out / "models", out / "workloads")
    try:  # the estimator's physical checks, as `maestro-plan validate` runs them
        from maestro_plan.estimate.checks import physical_problems
    except ImportError:  # pragma: no cover
        return inputs
    assert physical_problems(inputs) == []
    return inputs


def _sizes(inputs) -> tuple[int, int, int, int]:
    gpus = sum(p.node_count * p.gpus_per_node for c in inputs.inventory.clusters for p in c.node_pools)
    return gpus, len(inputs.models), len(inputs.inventory.clusters), len(inputs.workflows)


def test_same_seed_identical_bytes(tmp_path: Path) -> None:
    spec = SynthSpec(gpus=120, models=9, clusters=3, workflows=4, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    write_synth(spec, a)
    write_synth(spec, b)
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert fa == fb
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_identical_across_processes_and_hash_seeds() -> None:
    """No dependence on set or dict hash order: two interpreters with different PYTHONHASHSEED."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from maestro_plan.synth import SynthSpec, generate; "
        "f = generate(SynthSpec(gpus=150, models=7, clusters=3, workflows=4, seed=11)); "
        "print(hashlib.sha256(''.join(k + v for k, v in f.items()).encode()).hexdigest())"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": h}).stdout
        for h in ("1", "2")
    }
    assert len(outs) == 1


def test_different_seeds_differ() -> None:
    a = generate(SynthSpec(gpus=120, models=9, clusters=3, workflows=4, seed=1))
    b = generate(SynthSpec(gpus=120, models=9, clusters=3, workflows=4, seed=2))
    assert a != b
    assert a["inventories/fleet.yaml"] != b["inventories/fleet.yaml"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(1, 4),
    extra=st.integers(0, 160),
    m=st.integers(1, 16),
    w=st.integers(1, 6),
    seed=st.integers(0, 2**31),
)
def test_sizes_as_asked_and_valid(tmp_path_factory: pytest.TempPathFactory, k: int, extra: int, m: int, w: int, seed: int) -> None:
    n = k + extra
    out = tmp_path_factory.mktemp("synth")
    write_synth(SynthSpec(gpus=n, models=m, clusters=k, workflows=w, seed=seed), out)
    inputs = _validate(out)
    assert _sizes(inputs) == (n, m, k, w)
    # every model is called by some role; node shapes are real ones of their GPU type
    called = {r.model for wf in inputs.workflows for r in wf.roles}
    assert called == set(inputs.models)
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            assert (p.gpus_per_node, p.host_dram_gib) in {(s.gpus, s.host_dram_gib) for s in NODE_SHAPES[p.gpu_type]}
    # every source reaches every cluster (the latency of every route is known)
    links = {frozenset((lk.a, lk.b)) for lk in inputs.inventory.links}
    for s in inputs.inventory.sources:
        for c in inputs.inventory.clusters:
            assert frozenset((s.name, c.name)) in links
    for wf in inputs.workflows:
        prefix = "users-" if wf.priority.value == "interactive" else "batch-"
        assert all(a.source.startswith(prefix) for a in wf.arrivals)


def test_load_sets_the_fluid_gpu_need(tmp_path: Path) -> None:
    """The written demand is the largest that fits in `load` of every GPU type in synth's fluid
    relaxation: re-solving that LP on the files gives a scale factor of 1 (rates have 4 digits)."""
    from maestro_plan import estimate as est
    from maestro_plan.synth.perf import Perf as _Perf

    totals = []
    for load in (0.2, 0.5):
        out = tmp_path / f"l{load}"
        write_synth(SynthSpec(gpus=200, models=6, clusters=2, workflows=3, seed=3, load=load), out)
        inputs = _validate(out)
        perf = _Perf(inputs.inventory, inputs.models, inputs.gpu_types)
        scale = perf.max_scale(est.compute_demand(inputs).per_model, load)  # synth sizes with the planner's budgets
        assert scale == pytest.approx(1.0, rel=0.01)
        totals.append(math.fsum(a.rate_per_s for w in inputs.workflows for a in w.arrivals))
    assert totals[1] > totals[0]


def test_bundled_catalogue_variants(bundled_paths: dict[str, Path], tmp_path: Path) -> None:
    if not any(bundled_paths["models"].glob("*.yaml")):
        pytest.skip("bundled models/ not present")
    base, _ = load_models(bundled_paths["models"])
    write_synth(SynthSpec(gpus=400, models=len(base) + 6, clusters=2, workflows=3, seed=5), tmp_path, base)
    inputs = _validate(tmp_path)
    variants = [m for m in inputs.models.values() if "-ft" in m.id]
    assert len(variants) >= 6
    for v in variants:
        root = base[v.id.rsplit("-ft", 1)[0]]
        assert v.architecture == root.architecture and v.hf_repo != root.hf_repo


def test_latency_model_known_values() -> None:
    # same place: the 100 km floor -> 100 x 2.1 / 204 = 1.03 ms
    assert one_way_ms((38.95, -77.45), (38.95, -77.45)) == pytest.approx(1.0, abs=0.05)
    # N. Virginia to Oregon: ~3,450 km great circle -> ~35.5 ms one way
    assert 33 <= one_way_ms((38.95, -77.45), (45.84, -119.70)) <= 38


def test_bad_spec_is_input_error() -> None:
    with pytest.raises(InputError):
        generate(SynthSpec(gpus=2, models=3, clusters=3, workflows=1))
    with pytest.raises(InputError):
        generate(SynthSpec(gpus=10, models=3, clusters=1, workflows=1, load=0))


def test_cli_synth_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--gpus", "64", "--models", "5", "--clusters", "2", "--workflows", "2", "--seed", "3", "--out", str(out), "--embedded"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", "-i", str(out / "inventories"), "-m", str(out / "models"), "-w", str(out / "workloads")])
    assert res.exit_code == 0, res.output
    # re-running into the same folder with fewer models leaves no stale model files
    res = runner.invoke(app, ["synth", "--gpus", "64", "--models", "3", "--clusters", "2", "--workflows", "2", "--seed", "3", "--out", str(out), "--embedded"])
    assert res.exit_code == 0, res.output
    assert len(list((out / "models").glob("*.yaml"))) == 3
    # a foreign non-empty folder is refused (exit 2, no traceback)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = runner.invoke(app, ["synth", "--gpus", "8", "--models", "1", "--clusters", "1", "--workflows", "1", "--out", str(foreign)])
    assert res.exit_code == 2 and (foreign / "notes.txt").read_text() == "keep me"
