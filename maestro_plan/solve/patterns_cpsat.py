"""CP-SAT comparison model for the byte-exact packing core (maestro_plan.solve.patterns): boolean
assignment of items to bins. Kept to measure against the pattern column generation (see the design
note in patterns.py and benchmarks/results/binpack.md), not used by the planner."""

from __future__ import annotations

import math
from functools import reduce

from maestro_plan.solve.patterns import PackResult, first_fit_decreasing, l1_bound, validate_items

CPSAT_WORKERS = 2  # the benchmarks' pinned cores; interleave_search keeps 2 workers deterministic


def solve_cpsat(sizes: list[int], capacity: int, max_per_bin: int | None = None, work_limit: float = 10.0) -> PackResult:
    """Boolean assignment x[i, b] over the FFD bin count, bin-use y_b with y_b >= y_{b+1}, item i in a
    bin <= i (symmetry breaking), sizes divided by their gcd (exact). `work_limit` is CP-SAT's
    deterministic time (~seconds), never wall clock, so the answer is a function of the input."""
    from ortools.sat.python import cp_model

    sizes = [int(s) for s in sizes]
    kmax = len(sizes) if max_per_bin is None else int(max_per_bin)
    validate_items(sizes, capacity, kmax)
    if not sizes:
        return PackResult((), 0, True, 0.0, 0, "cpsat")
    ffd = first_fit_decreasing(sizes, capacity, kmax)
    g = reduce(math.gcd, sizes, capacity)
    w, cap = [s // g for s in sizes], capacity // g
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    m = cp_model.CpModel()
    nb = len(ffd)
    x = {(i, b): m.NewBoolVar(f"x{i}_{b}") for r, i in enumerate(order) for b in range(min(r + 1, nb))}
    y = [m.NewBoolVar(f"y{b}") for b in range(nb)]
    for r, i in enumerate(order):
        m.AddExactlyOne(x[i, b] for b in range(min(r + 1, nb)))
    for b in range(nb):
        items = [i for r, i in enumerate(order) if b <= r]
        m.Add(sum(w[i] * x[i, b] for i in items) <= cap * y[b])
        m.Add(sum(x[i, b] for i in items) <= kmax)
        if b + 1 < nb:
            m.AddImplication(y[b + 1], y[b])
    lb0 = l1_bound(sizes, capacity, kmax)
    m.Add(sum(y) >= lb0)
    m.Minimize(sum(y))
    rank = {i: r for r, i in enumerate(order)}
    hint = {i: b for b, bin_ in enumerate(sorted(ffd, key=lambda b: min(rank[i] for i in b))) for i in bin_}
    for (i, b), v in x.items():
        m.AddHint(v, int(hint[i] == b))
    s = cp_model.CpSolver()
    s.parameters.num_workers = CPSAT_WORKERS
    s.parameters.interleave_search = True
    s.parameters.max_deterministic_time = work_limit
    s.parameters.random_seed = 0
    st = s.Solve(m)
    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return PackResult(tuple(tuple(sorted(b)) for b in sorted(ffd)), lb0, len(ffd) == lb0, float(lb0), 0, "cpsat")
    bins = sorted(sorted(i for (i, b2), v in x.items() if b2 == b and s.Value(v)) for b in range(nb))
    bins = [b for b in bins if b]
    lb = max(lb0, math.ceil(s.BestObjectiveBound() - 1e-6))
    return PackResult(tuple(tuple(b) for b in bins), lb, len(bins) == lb, float(s.BestObjectiveBound()), 0, "cpsat")
