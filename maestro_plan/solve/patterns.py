"""Byte-exact packing core: engines (items, sizes in bytes) onto GPUs of one type (bins, usable HBM
in bytes), at most `max_per_bin` engines per GPU. Independent of the planner's Problem type.

Design note (issue 15; figures: benchmarks/results/binpack.md, `python -m benchmarks.binpack_bench`)
----------------------------------------------------------------------------------------------------
Pick: Gilmore-Gomory pattern column generation (`solve_patterns`). Measured on the 160 OR-Library
instances mapped to H100 bytes (2 pinned cores, shared machine): the optimum on 160/160, each in
<= 1.67 s (1.84 s in an earlier run: wall times follow the load), every one proven (found = lower bound); the power-of-two slices the planner used before needed 1.48-1.50x the optimum.
Why: (1) the bound. The lower bound (L1, or ceil of the pattern LP where L1 is short) equals the
optimum on all 160, u250_13 included, whose L2 bound is one short; the boolean-assignment CP-SAT
model (`patterns_cpsat.solve_cpsat`, kept for comparison) has only the L1 bound and symmetric bins: it proved
u120_00 in 15.0 s wall (patterns: 0.55 s median on u120) and stayed at 21 bins on t60_00 (optimum 20)
after its 10-unit deterministic budget (32 s wall). (2) The integer step: LP rounding + first-fit
decreasing, residual diving (Waescher & Gau) and a node-limited HiGHS MIP over the generated
patterns reach the optimum on all 80 u-instances (FFD alone hits L1, and returns early, on 6 of
them, all u120). (3) Its shape: patterns are columns, so they drop
into the column generation we already run. Caveat, measured: where every bin of an L1-bin packing
must be exactly full (sum = L1 x capacity: the triplet class), an exact cover by the enumerated
exactly-full patterns (HiGHS MIP) runs first and solves all 80 t-instances, each in <= 0.92 s; the
column-generation path alone (`exact_fill=False`, bench solver `cg-only`) proves the bound but its
rounding misses the optimum by one GPU on 4 of 20 t60 and 1 of 20 t120 instances, the known
weakness of rounding on triplets. A branch-and-price (branching on item pairs) would close that in
general; it is not built.

How it is wired into the planner (measured, then picked): patterns as master columns would need a
pricing knapsack per GPU type inside every column generation round and a branch-and-price for
integrality, on fleets of thousands of GPUs; instead the planner keeps per-pool aggregate rows
(bytes summed within the usable HBM, as units of 1/65536 of it, plus dual-feasible-function rows,
solve/formulate.py add_inventory and the colgen master), a valid relaxation whose bound stays a lower
bound of the byte-exact problem, and packs each pool exactly afterwards (solve/place.py: this
module, which returns FFD where FFD meets the L1 bound). Where the exact packing needs more GPUs
than the aggregate rows counted, the plan pays for them and reports its gap from that cost
(solve/assemble.py). benchmarks/binpack_planner.py runs the OR-Library instances through the planner
this way.

Engines per GPU: the planner caps them at MAX_ENGINES_PER_GPU = 8 (solve/problem.py), today's slice
count: byte packing changes what each engine may hold, not how many processes share a GPU. Memory is
sound for any count (each engine's bytes include its own non-torch and CUDA-graph reserves,
data/vllm.yaml); the cap stands for what bytes do not model (per-process scheduling overhead),
unmeasured here. The planner enforces it through the sizes: every engine holds at least 1/8 of the
usable HBM (the rest beyond its need goes to its KV cache).

Interference/compute-share model: an engine's compute share is its share of the usable HBM
(time-shared in proportion to bytes, the slices' model made continuous), so bytes within U keep
the shares within 1 and one knapsack dimension suffices. A slowdown beyond the share when engines
run concurrently (time slicing / MPS) needs measured co-location data, which we do not have: the
gap covers memory packing exactly and compute only under the stated share model.

Exactness of the byte grid: sizes and capacity are first divided by their gcd (exact). If the
capacity is still above GRID_CELLS cells, pricing runs twice on a grid of g bytes: with sizes rounded
UP and capacity DOWN (every pattern found is feasible in bytes: conservative), and with sizes rounded
DOWN (every byte-feasible pattern stays feasible: a relaxation), whose optimum is a valid upper bound
V on the pricing value, so the Farley bound z_RMP / V stays a valid lower bound. On exact grids V is
the exact pricing optimum and the bound is ceil(z_LP).

Determinism: no wall-clock limits anywhere. HiGHS runs single-threaded with a node limit; CP-SAT
runs with interleaved search and a deterministic-time budget.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import reduce

import highspy
import numpy as np

GRID_CELLS = 20_000  # DP width: 20,001 x (cap+1) x chunks booleans stay < ~100 MB for a few hundred types
EPS = 1e-9  # reduced-cost tolerance (HiGHS' default dual feasibility tolerance is 1e-7; duals of ~1)
CG_MAX_ROUNDS = 2_000  # iteration cap on column generation (count, not time: deterministic)
DIVE_TRIES = 4  # look-ahead candidates per fractional dive step (count, deterministic)
MIP_MAX_NODES = 2_000  # deterministic node limit of the integer master over generated patterns
FULL_PATTERN_LIMIT = 50_000  # exact-fill patterns enumerated at most (t501: ~2,900 measured)


@dataclass(frozen=True)
class PackResult:
    bins: tuple[tuple[int, ...], ...]  # item indices (into the input list) per bin, every item once
    lower_bound: int  # proven lower bound on the number of bins
    proven_optimal: bool  # len(bins) == lower_bound
    lp_bound: float  # the pattern LP value (Farley bound when pricing was not exact)
    patterns: int  # columns generated
    method: str

    @property
    def n_bins(self) -> int:
        return len(self.bins)


def validate_items(sizes: list[int], capacity: int, max_per_bin: int) -> None:
    if capacity <= 0 or max_per_bin <= 0:
        raise ValueError(f"capacity ({capacity}) and max_per_bin ({max_per_bin}) must be positive")
    bad = [s for s in sizes if s <= 0 or s > capacity]
    if bad:
        raise ValueError(f"item sizes must be in (0, capacity={capacity}]; got {bad[:3]}")


def l1_bound(sizes: list[int], capacity: int, max_per_bin: int) -> int:
    """ceil(total / capacity) and ceil(n / max_per_bin): both valid for any packing."""
    if not sizes:
        return 0
    return max(-(-sum(sizes) // capacity), -(-len(sizes) // max_per_bin))


def _most_per_bin(sizes: list[int], capacity: int) -> int:
    """The most items any bin can hold: the longest prefix of the smallest sizes within capacity."""
    total, k = 0, 0
    for s in sorted(sizes):
        total += s
        if total > capacity:
            break
        k += 1
    return k


def first_fit_decreasing(sizes: list[int], capacity: int, max_per_bin: int) -> list[list[int]]:
    """FFD by size (ties by index): bins of item indices."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        for b, f in enumerate(free):
            if sizes[i] <= f and len(bins[b]) < max_per_bin:
                bins[b].append(i)
                free[b] -= sizes[i]
                break
        else:
            bins.append([i])
            free.append(capacity - sizes[i])
    return bins


# --- pricing: bounded knapsack with a cardinality cap on a byte grid ---------------------------------


@dataclass(frozen=True)
class _Grid:
    up: np.ndarray  # sizes in cells, rounded up (conservative)
    down: np.ndarray  # sizes in cells, rounded down (relaxation)
    cap: int  # capacity in cells, rounded down
    exact: bool


def _grid(type_sizes: list[int], capacity: int, cells: int = GRID_CELLS) -> _Grid:
    g = reduce(math.gcd, type_sizes, capacity)
    sizes, cap = [s // g for s in type_sizes], capacity // g
    if cap <= cells:
        a = np.array(sizes, dtype=np.int64)
        return _Grid(a, a, cap, True)
    cell = -(-cap // cells)
    up = np.array([-(-s // cell) for s in sizes], dtype=np.int64)
    down = np.array([s // cell for s in sizes], dtype=np.int64)
    return _Grid(up, down, cap // cell, False)


def _chunks(bound: int) -> list[int]:
    """Binary splitting of 0..bound copies into 1, 2, 4, ..., rest."""
    out, q = [], 1
    while bound > 0:
        out.append(min(q, bound))
        bound -= out[-1]
        q *= 2
    return out


def _knapsack(w: np.ndarray, v: np.ndarray, ub: np.ndarray, cap: int, kmax: int) -> tuple[float, list[int]]:
    """max sum v_t x_t s.t. sum w_t x_t <= cap, sum x_t <= kmax, 0 <= x_t <= ub_t (integers).
    DP over (items used, cells used), 0/1 over binary chunks; returns (value, x). The items-used
    axis is dropped (kept at size 1) when the sizes alone already cap the count at kmax."""
    pos = [t for t in range(len(w)) if v[t] > 0 and ub[t] > 0]
    counted = bool(pos) and kmax < cap // max(1, int(min(w[t] for t in pos)))
    rows = kmax + 1 if counted else 1
    dp = np.full((rows, cap + 1), -np.inf)
    dp[0, 0] = 0.0
    moves: list[tuple[int, int, np.ndarray]] = []
    for t in pos:
        for q in _chunks(int(ub[t])):
            dw, dk = q * int(w[t]), (q if counted else 0)
            if dk >= rows or dw > cap:
                break
            cand = np.full_like(dp, -np.inf)
            cand[dk:, dw:] = dp[: rows - dk, : cap + 1 - dw] + q * v[t]
            take = cand > dp
            dp = np.where(take, cand, dp)
            moves.append((t, q, take))
    k, c = np.unravel_index(int(np.argmax(dp)), dp.shape)
    best = float(dp[k, c])
    x = [0] * len(w)
    for t, q, take in reversed(moves):  # walk back through the 0/1 chunk decisions
        if take[k, c]:
            x[t] += q
            k, c = k - (q if counted else 0), c - q * int(w[t])
    return best, x


def _price(grid: _Grid, duals: np.ndarray, ub: np.ndarray, kmax: int) -> tuple[list[int], float]:
    """A feasible pattern of max dual value, and a proven upper bound on that max over all
    byte-feasible patterns."""
    val, x = _knapsack(grid.up, duals, ub, grid.cap, kmax)
    if grid.exact:
        return x, val
    relaxed, _ = _knapsack(grid.down, duals, ub, grid.cap, kmax)
    return x, relaxed


# --- master LP and integer master -----------------------------------------------------------------


def _master(demand: list[int], patterns: list[list[int]], integer: bool) -> tuple[highspy.Highs, list[float]]:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    inf = highspy.kHighsInf
    for d in demand:
        h.addRow(float(d), inf, 0, np.array([], dtype=np.int32), np.array([], dtype=np.float64))
    for p in patterns:
        _add_col(h, p)
    if integer:
        h.setOptionValue("mip_max_nodes", MIP_MAX_NODES)
        for j in range(len(patterns)):
            h.changeColIntegrality(j, highspy.HighsVarType.kInteger)
    h.run()
    return h, list(h.getSolution().col_value)


def _add_col(h: highspy.Highs, p: list[int]) -> None:
    idx = np.array([t for t, a in enumerate(p) if a], dtype=np.int32)
    val = np.array([float(p[t]) for t in idx], dtype=np.float64)
    h.addCol(1.0, 0.0, highspy.kHighsInf, len(idx), idx, val)


def _column_generation(demand: list[int], patterns: list[list[int]], grid: _Grid, kmax: int) -> tuple[float, float]:
    """Grow `patterns` until no pattern prices out; returns (z_LP of the restricted master,
    lower bound on the full pattern LP: z_RMP / V with V >= max pattern dual value, Farley)."""
    ub = np.array(demand, dtype=np.int64)
    h, _ = _master(demand, patterns, integer=False)
    seen = {tuple(p) for p in patterns}
    lp_lb = 0.0
    for _ in range(CG_MAX_ROUNDS):
        z = h.getInfo().objective_function_value
        duals = np.maximum(0.0, np.array(h.getSolution().row_dual))
        x, vmax = _price(grid, duals, ub, kmax)
        lp_lb = max(lp_lb, z / max(vmax, 1.0))
        if float(np.dot(duals, x)) <= 1.0 + EPS or tuple(x) in seen:
            break
        patterns.append(x)
        seen.add(tuple(x))
        _add_col(h, x)
        h.run()
    return h.getInfo().objective_function_value, lp_lb


def _round_and_repair(demand: list[int], patterns: list[list[int]], x: list[float], type_sizes: list[int], capacity: int, kmax: int) -> list[int]:
    """floor(x) copies of each pattern, the residual items packed by FFD into new single-use
    patterns (appended); returns integer counts per pattern."""
    counts = [int(math.floor(v + 1e-9)) for v in x]
    left = list(demand)
    for p, c in zip(patterns, counts):
        for t, a in enumerate(p):
            left[t] -= a * c
    resid = [type_sizes[t] for t in range(len(left)) for _ in range(max(0, left[t]))]
    rtype = [t for t in range(len(left)) for _ in range(max(0, left[t]))]
    for b in first_fit_decreasing(resid, capacity, kmax):
        p = [0] * len(demand)
        for i in b:
            p[rtype[i]] += 1
        patterns.append(p)
        counts.append(1)
    return counts


def _capped(patterns: list[list[int]], left: list[int]) -> list[list[int]]:
    """Distinct patterns cut down to the residual demand, plus one single-item pattern per type
    still demanded (so the residual master is always feasible); first-seen order."""
    lv = np.array(left, dtype=np.int64)
    units = np.eye(len(left), dtype=np.int64)[lv > 0]
    q = np.minimum(np.vstack([units, np.array(patterns, dtype=np.int64)]), lv)
    q = q[q.any(axis=1)]
    _, first = np.unique(q, axis=0, return_index=True)
    return q[np.sort(first)].tolist()


def _residual_lp(left: list[int], patterns: list[list[int]], seen: set, grid: _Grid, kmax: int) -> tuple[list[list[int]], list[float], float]:
    """Pattern LP on the residual demand (column generation); new columns join the shared pool."""
    if not any(left):
        return [], [], 0.0
    cols = _capped(patterns, left)
    z, _ = _column_generation(left, cols, grid, kmax)
    for c in cols:
        if tuple(c) not in seen:
            seen.add(tuple(c))
            patterns.append(c)
    _, x = _master(left, cols, integer=False)
    return cols, x, z


def _dive(demand: list[int], patterns: list[list[int]], grid: _Grid, kmax: int, target: int) -> tuple[list[list[int]], list[int]]:
    """Residual diving (Waescher & Gau's sequential rounding, with a limited look-ahead): fix
    floor(x_p) copies of every column with x_p >= 1; else one copy of the column with the largest x_p
    whose residual LP bound still allows `target` bins (up to DIVE_TRIES candidates, ties by order)."""
    seen = {tuple(p) for p in patterns}
    left, chosen, counts = list(demand), [], []
    cols, x, _ = _residual_lp(left, patterns, seen, grid, kmax)
    while any(left):
        whole = [(cols[j], int(math.floor(v + 1e-9))) for j, v in enumerate(x) if v >= 1 - 1e-9]
        if whole:
            for col, c in whole:
                chosen.append(col)
                counts.append(c)
                left = [max(0, d - a * c) for d, a in zip(left, col)]
            cols, x, _ = _residual_lp(left, patterns, seen, grid, kmax)
            continue
        for j in sorted(range(len(x)), key=lambda j: (-x[j], j))[:DIVE_TRIES]:
            nleft = [max(0, d - a) for d, a in zip(left, cols[j])]
            ncols, nx, nz = _residual_lp(nleft, patterns, seen, grid, kmax)
            if sum(counts) + 1 + math.ceil(nz - 1e-6) <= target:
                break  # the last candidate tried is kept when none keeps the target
        chosen.append(cols[j])
        counts.append(1)
        left, cols, x = nleft, ncols, nx
    return chosen, counts


def _full_patterns(type_sizes: list[int], demand: list[int], capacity: int, kmax: int) -> list[list[int]] | None:
    """Every pattern of <= kmax items that fills the bin exactly: sizes chosen in non-decreasing
    order, each but the last only while two more of it still fit, the last found by a look-up.
    None when there are more than FULL_PATTERN_LIMIT (then the enumeration is not worth it)."""
    asc = sorted(range(len(type_sizes)), key=lambda t: type_sizes[t])
    where = {type_sizes[t]: r for r, t in enumerate(asc)}
    out: list[list[int]] = []

    def grow(start: int, rest: int, picked: list[int]) -> bool:
        r = where.get(rest)
        if r is not None and r >= start and picked.count(asc[r]) < demand[asc[r]]:
            out.append([(picked + [asc[r]]).count(t) for t in range(len(type_sizes))])
            if len(out) > FULL_PATTERN_LIMIT:
                return False
        if len(picked) + 2 > kmax:
            return True
        for r in range(start, len(asc)):
            t = asc[r]
            if 2 * type_sizes[t] > rest:
                break
            if picked.count(t) < demand[t] and not grow(r, rest - type_sizes[t], picked + [t]):
                return False
        return True

    return out if grow(0, capacity, []) else None


def _exact_cover(demand: list[int], patterns: list[list[int]]) -> list[int] | None:
    """Integer counts with every demand met exactly (HiGHS MIP, set partitioning with
    multiplicities, node limit); None if none found within it."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("mip_max_nodes", MIP_MAX_NODES)
    for d in demand:
        h.addRow(float(d), float(d), 0, np.array([], dtype=np.int32), np.array([], dtype=np.float64))
    for p in patterns:
        _add_col(h, p)
        h.changeColIntegrality(h.getNumCol() - 1, highspy.HighsVarType.kInteger)
    h.run()
    x = [int(round(v)) for v in h.getSolution().col_value]
    ok = len(x) == len(patterns) and all(sum(p[t] * c for p, c in zip(patterns, x)) == d for t, d in enumerate(demand))
    return x if ok else None


def _to_bins(sizes: list[int], type_sizes: list[int], patterns: list[list[int]], counts: list[int]) -> list[list[int]]:
    """Expand pattern counts to bins of item indices; over-covered slots stay empty."""
    pool = {s: [i for i in range(len(sizes)) if sizes[i] == s] for s in type_sizes}
    for lst in pool.values():
        lst.reverse()  # pop() hands out the lowest index first
    bins = []
    for p, c in zip(patterns, counts):
        for _ in range(c):
            b = [pool[type_sizes[t]].pop() for t, a in enumerate(p) for _ in range(a) if pool[type_sizes[t]]]
            if b:
                bins.append(sorted(b))
    return sorted(bins)


def solve_patterns(sizes: list[int], capacity: int, max_per_bin: int | None = None, exact_fill: bool = True, grid_cells: int = GRID_CELLS) -> PackResult:
    """Gilmore-Gomory column generation: pattern LP (HiGHS) + exact knapsack pricing, then the
    integer master over generated patterns (HiGHS MIP, node limit) against LP rounding + FFD.
    `grid_cells`: the pricing grid's width where sizes have no large common divisor (see the note
    on the byte grid above; fewer cells: faster, the bound weaker, every pattern still feasible)."""
    sizes = [int(s) for s in sizes]
    kmax = len(sizes) if max_per_bin is None else int(max_per_bin)
    validate_items(sizes, capacity, kmax)
    if not sizes:
        return PackResult((), 0, True, 0.0, 0, "patterns")
    kmax = min(kmax, _most_per_bin(sizes, capacity))
    cnt = Counter(sizes)
    type_sizes = sorted(cnt, reverse=True)
    demand = [cnt[s] for s in type_sizes]
    grid = _grid(type_sizes, capacity, grid_cells)
    tindex = {s: t for t, s in enumerate(type_sizes)}
    patterns = []
    ffd = first_fit_decreasing(sizes, capacity, kmax)
    ffd_bins = len(ffd)
    for b in ffd:  # FFD's bins seed the master
        p = [0] * len(type_sizes)
        for i in b:
            p[tindex[sizes[i]]] += 1
        if p not in patterns:
            patterns.append(p)
    l1 = l1_bound(sizes, capacity, kmax)
    if ffd_bins == l1:
        return PackResult(tuple(tuple(sorted(b)) for b in sorted(ffd)), l1, True, float(l1), len(patterns), "patterns")
    full = _full_patterns(type_sizes, demand, capacity, kmax) if exact_fill and l1 * capacity == sum(sizes) else None
    if full:  # every bin of an L1-bin packing is exactly full: an exact cover by full patterns
        x = _exact_cover(demand, full)
        if x is not None:  # L1 bins reached: optimal without the LP
            bins = _to_bins(sizes, type_sizes, full, x)
            return PackResult(tuple(tuple(b) for b in bins), l1, True, float(l1), len(full), "patterns")
    z, lp_lb = _column_generation(demand, patterns, grid, kmax)
    lb = max(l1, math.ceil(lp_lb - 1e-6))
    _, x = _master(demand, patterns, integer=False)
    counts = _round_and_repair(demand, patterns, x, type_sizes, capacity, kmax)
    used, counts = list(patterns), counts
    if sum(counts) > lb:
        chosen, dcounts = _dive(demand, patterns, grid, kmax, lb)
        if sum(dcounts) < sum(counts):
            used, counts = chosen, dcounts
    if sum(counts) > lb:
        _, xi = _master(demand, patterns, integer=True)
        mip = [int(round(v)) for v in xi]
        if len(mip) == len(patterns) and 0 < sum(mip) < sum(counts) and _covers(demand, patterns, mip):
            used, counts = list(patterns), mip
    bins = _to_bins(sizes, type_sizes, used, counts)
    return PackResult(tuple(tuple(b) for b in bins), lb, len(bins) == lb, z if grid.exact else lp_lb, len(patterns), "patterns")


def _covers(demand: list[int], patterns: list[list[int]], counts: list[int]) -> bool:
    return all(sum(p[t] * c for p, c in zip(patterns, counts)) >= d for t, d in enumerate(demand))
