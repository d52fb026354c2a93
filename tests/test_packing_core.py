"""The packing and assignment core (LinearModel + backends) against proven optima from public sets:
generalized assignment (OR-Library, gap-orlib) and vector bin packing (vbp-vectorpack).

A fast sample here; benchmarks/packing_bench.py runs the whole sets.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.packing import read_gap, read_vbp, solve_gap, solve_vbp, vbp_ffd, vbp_lower_bound
from maestro_plan.solve.cpsat import solve_cpsat
from maestro_plan.solve.milp import solve_highs
from maestro_plan.solve.model import LinearModel

GAP_SAMPLE = ["cattrysse1994/gap1-0", "cattrysse1994/gap4-2", "cattrysse1994/gap8-1", "chu1997/a05100"]
VBP_SAMPLE = ["Panigrahy/class1/class1_20_3_0", "Panigrahy/class6/class6_20_5_3", "Triplet/Caprara/classC_60_3_0"]


def _gap_optima(shared: Path) -> dict[str, int]:
    with (shared / "gap-orlib" / "optima.csv").open() as f:
        return {r["Path"]: int(r["Optimum"]) for r in csv.DictReader(f) if r["Optimum"]}


def _vbp_optima(shared: Path) -> dict[str, int]:
    out = {}
    for name in ("Triplet_summary_known.tsv", "Panigrahy_summary_known.tsv"):
        with (shared / "vbp-vectorpack" / name).open() as f:
            out.update({r["instance_name"]: int(r["OPT"]) for r in csv.DictReader(f, delimiter="\t")})
    return out


@pytest.mark.parametrize("name", GAP_SAMPLE)
@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_gap_proven_optimum(shared_data: Path, name: str, solver: str) -> None:
    inst = read_gap(shared_data / "gap-orlib" / name)
    res, assign = solve_gap(inst, solver=solver, time_limit=20)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(_gap_optima(shared_data)[name])
    # the assignment itself is feasible and costs what is claimed
    assert assign is not None
    load = [0] * inst.agents
    for j, i in enumerate(assign):
        load[i] += inst.weights[i][j]
    assert all(load[i] <= inst.capacities[i] for i in range(inst.agents))
    assert sum(inst.costs[i][j] for j, i in enumerate(assign)) == _gap_optima(shared_data)[name]


def test_gap_cbc_fallback(shared_data: Path) -> None:
    inst = read_gap(shared_data / "gap-orlib" / "cattrysse1994/gap1-0")
    res, _ = solve_gap(inst, solver="cbc", time_limit=20)
    assert res.status == "optimal" and res.objective == 261


@pytest.mark.parametrize("name", VBP_SAMPLE)
def test_vbp_proven_optimum(shared_data: Path, name: str) -> None:
    inst = read_vbp(shared_data / "vbp-vectorpack" / f"{name}.vbp")
    opt = _vbp_optima(shared_data)[inst.name]
    res, bins, ffd = solve_vbp(inst, solver="cpsat", time_limit=20)
    assert vbp_lower_bound(inst) <= opt <= ffd
    assert bins == opt
    assert res.status == "optimal"


def test_vbp_ffd_packs_validly(shared_data: Path) -> None:
    inst = read_vbp(shared_data / "vbp-vectorpack" / "Triplet/Falkenauer/classF_120_10_3.vbp")
    bins = vbp_ffd(inst)
    assert sorted(t for b in bins for t in b) == sorted(t for t, q in enumerate(inst.demands) for _ in range(q))
    for b in bins:
        for k, cap in enumerate(inst.capacities):
            assert sum(inst.sizes[t][k] for t in b) <= cap
    assert len(bins) >= vbp_lower_bound(inst) == 40


# ------------------------------------------------------------------------------------------
# CP-SAT integerisation of float models
# ------------------------------------------------------------------------------------------


def test_cpsat_rounds_float_rows_conservatively() -> None:
    """max 3x + 2y, 0.1234567 x + 0.0987654 y <= 1.0000001, x, y integer: CP-SAT's answer must be
    feasible for the float row (rounding may only tighten it) and equal HiGHS's."""
    lm = LinearModel()
    x = lm.var("x", 0, 100, integer=True)
    y = lm.var("y", 0, 100, integer=True)
    lm.le("r", "capacity", {x: 0.1234567, y: 0.0987654}, 1.0000001)
    lm.objective("v", "max", {x: 3.0, y: 2.0})
    a = solve_cpsat(lm, time_limit=5)
    b = solve_highs(lm, time_limit=5)
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective)
    assert not lm.violations(a.values)


def test_cpsat_continuous_resolution_and_exact_equality() -> None:
    """Fractions in 1/720720 steps: a demand splits exactly in thirds; the equality row is exact."""
    lm = LinearModel()
    f = [lm.var(f"f{i}", 0, 1, resolution=720720) for i in range(3)]
    lm.eq("sum", "demand", {v: 1.0 for v in f}, 1.0)
    for v in f:
        lm.le(f"cap{v}", "capacity", {v: 3.0}, 1.0)  # each part carries at most a third
    lm.objective("o", "min", {f[0]: 1.0})
    r = solve_cpsat(lm, time_limit=5)
    assert r.status == "optimal"
    assert r.values == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert not lm.violations(r.values)


def test_lexicographic_objectives_agree() -> None:
    """Phase 2 never gives up phase 1: min x + y, then max x; both backends end at x = 3, y = 1."""
    for solve in (solve_cpsat, solve_highs):
        lm = LinearModel()
        x = lm.var("x", 0, 3, integer=True)
        y = lm.var("y", 0, 5, integer=True)
        lm.ge("c", "demand", {x: 1.0, y: 1.0}, 4.0)
        lm.objective("first", "min", {x: 1.0, y: 1.0})
        lm.objective("second", "max", {x: 1.0})
        r = solve(lm, time_limit=5)
        assert r.status == "optimal"
        assert r.values == pytest.approx([3.0, 1.0])
        assert [p.objective for p in r.phases] == pytest.approx([4.0, 3.0])
