"""Byte-exact packing core (maestro_plan.solve.patterns): known optima, feasibility and bound
invariants, brute-force optima on tiny instances."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.solve.patterns import solve_patterns
from maestro_plan.solve.patterns_cpsat import solve_cpsat

GIB = 2**30


def brute_force(sizes: list[int], capacity: int, kmax: int) -> int:
    """Fewest bins by exhaustive search (items in order, each into an open bin or a new one)."""
    best = len(sizes)

    def go(i: int, loads: list[int], counts: list[int]) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if i == len(sizes):
            best = len(loads)
            return
        for b in range(len(loads)):
            if loads[b] + sizes[i] <= capacity and counts[b] < kmax:
                loads[b] += sizes[i]
                counts[b] += 1
                go(i + 1, loads, counts)
                loads[b] -= sizes[i]
                counts[b] -= 1
        go(i + 1, loads + [sizes[i]], counts + [1])

    go(0, [], [])
    return best


def assert_feasible(res, sizes: list[int], capacity: int, kmax: int) -> None:
    assert sorted(i for b in res.bins for i in b) == list(range(len(sizes)))
    for b in res.bins:
        assert sum(sizes[i] for i in b) <= capacity
        assert len(b) <= kmax
    assert res.lower_bound <= res.n_bins
    assert res.proven_optimal == (res.lower_bound == res.n_bins)


def test_three_engines_share_one_gpu():
    """The issue's example: 26, 27 and 27 GiB engines fit one GPU with 80 GiB usable; slices
    (each engine > 1/4 GPU takes a half) would need two."""
    sizes = [26 * GIB, 27 * GIB, 27 * GIB]
    for solve in (solve_patterns, solve_cpsat):
        res = solve(sizes, 80 * GIB)
        assert res.n_bins == 1 and res.proven_optimal
        assert solve(sizes, 80 * GIB - 1).n_bins == 2  # one byte short: two GPUs, and proven
        assert solve(sizes, 80 * GIB, max_per_bin=2).n_bins == 2  # an engine cap of 2 per GPU binds


def _orlib(path: Path, count: int) -> list[tuple[str, int, int, list[int]]]:
    tok = path.read_text().split()
    out, i = [], 1
    for _ in range(count):
        name, cap, n, best = tok[i], round(float(tok[i + 1]) * 10), int(tok[i + 2]), int(tok[i + 3])
        out.append((name, cap, best, [round(float(t) * 10) for t in tok[i + 4 : i + 4 + n]]))
        i += 4 + n
    return out


def test_orlib_triplet_t60_optima(shared_data):
    """t60_00..02: 60 items, each optimal bin holds exactly three (optimum 20, by construction)."""
    unit = int(0.92 * 79.65 * GIB) // 1000  # the benchmark's byte mapping (benchmarks/binpack_bench.py)
    for name, cap, best, sizes in _orlib(shared_data / "orlib-binpack" / "binpack5.txt", 3):
        eng = [s * unit for s in sizes]
        res = solve_patterns(eng, cap * unit)
        assert_feasible(res, eng, cap * unit, len(eng))
        assert (res.n_bins, res.lower_bound) == (best, best) == (20, 20), name


def test_orlib_column_generation_alone(shared_data):
    """Without the exact-fill step: the pattern LP proves 20 on t60_00 and the packing is feasible;
    on u120_00 (no exact fill: the LP bound 47.3 rounds up to the optimum 48) it finds 48."""
    name, cap, best, sizes = _orlib(shared_data / "orlib-binpack" / "binpack5.txt", 1)[0]
    res = solve_patterns(sizes, cap, exact_fill=False)
    assert_feasible(res, sizes, cap, len(sizes))
    assert res.lower_bound == 20 <= res.n_bins and res.lp_bound == pytest.approx(20.0)
    tok = (shared_data / "orlib-binpack" / "binpack1.txt").read_text().split()
    u_sizes = [int(t) for t in tok[5 : 5 + 120]]
    assert (tok[1], tok[2], tok[4]) == ("u120_00", "150", "48")
    res = solve_patterns(u_sizes, 150)
    assert_feasible(res, u_sizes, 150, 120)
    assert (res.n_bins, res.lower_bound) == (48, 48) and 47 < res.lp_bound < 48


def test_deterministic():
    sizes = [7, 5, 5, 4, 4, 3, 3, 3, 2, 9, 6, 6, 1]
    assert solve_patterns(sizes, 12, 3) == solve_patterns(sizes, 12, 3)
    assert solve_cpsat(sizes, 12, 3) == solve_cpsat(sizes, 12, 3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="capacity"):
        solve_patterns([5, 11], 10)
    with pytest.raises(ValueError, match="positive"):
        solve_patterns([5], 10, max_per_bin=0)


tiny = st.integers(2, 30).flatmap(lambda cap: st.tuples(st.just(cap), st.lists(st.integers(1, cap), min_size=1, max_size=7), st.integers(1, 4)))


@settings(max_examples=60, deadline=None)
@given(tiny)
def test_tiny_instances_reach_brute_force_optimum(case):
    cap, sizes, kmax = case
    opt = brute_force(sizes, cap, kmax)
    for solve in (solve_patterns, solve_cpsat):
        res = solve(sizes, cap, kmax)
        assert_feasible(res, sizes, cap, kmax)
        assert res.lower_bound <= opt == res.n_bins


huge = st.lists(st.integers(1, 80 * GIB), min_size=1, max_size=6)


@settings(max_examples=30, deadline=None)
@given(huge, st.integers(1, 4))
def test_byte_sizes_on_a_rounded_grid_stay_feasible_and_bounded(sizes, kmax):
    """Sizes with no common divisor force the rounded grid: packings stay feasible in bytes and the
    lower bound never exceeds the true optimum."""
    cap = 80 * GIB + 12345
    res = solve_patterns(sizes, cap, kmax)
    assert_feasible(res, sizes, cap, kmax)
    assert res.lower_bound <= brute_force(sizes, cap, kmax) <= res.n_bins


@st.composite
def exactly_full(draw):
    """Bins cut into 1-4 parts that fill each exactly: the optimum is the number of bins (= L1)."""
    cap = draw(st.integers(4, 60))
    sizes = []
    for _ in range(draw(st.integers(1, 4))):
        cuts = sorted(draw(st.lists(st.integers(1, cap - 1), max_size=3, unique=True)))
        sizes += [b - a for a, b in zip([0] + cuts, cuts + [cap])]
    return cap, draw(st.permutations(sizes))


@settings(max_examples=60, deadline=None)
@given(exactly_full())
def test_exactly_full_instances_reach_their_optimum(case):
    cap, sizes = case
    res = solve_patterns(sizes, cap)
    assert_feasible(res, sizes, cap, len(sizes))
    assert res.n_bins == sum(sizes) // cap and res.proven_optimal
