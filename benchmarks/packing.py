"""The packing and assignment core on its own: generalized assignment (GAP) and vector bin packing
(VBP), formulated on the same `LinearModel` and solved by the same backends as the planner.

These are the two sub-structures of placement (jobs -> capacitated agents with agent-dependent
cost, and multi-resource items -> identical bins), so the public benchmark sets with proven optima
test the integerisation and the backends against known answers:

- GAP, OR-Library format (gap-orlib/README.md): m agents, n jobs; m rows of n costs; m rows of n
  weights; m capacities. Minimise cost, every job on exactly one agent, weight <= capacity.
- VBP, VPSolver .vbp format (vbp-vectorpack/README.md): d; d capacities; m item types; m lines of
  d sizes and a demand count. Minimise bins.

The VBP model uses integer counts per (item type, bin) rather than one binary per item, bins in a
fixed order (y_b >= y_{b+1}) and the volume lower bound as a cut; its warm start and upper bound
come from first-fit decreasing (items by total normalised size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from maestro_plan.solve.model import LinearModel, SolveResult


@dataclass(frozen=True)
class GapInstance:
    name: str
    costs: list[list[int]]  # [agent][job]
    weights: list[list[int]]
    capacities: list[int]

    @property
    def agents(self) -> int:
        return len(self.capacities)

    @property
    def jobs(self) -> int:
        return len(self.costs[0])


@dataclass(frozen=True)
class VbpInstance:
    name: str
    capacities: list[int]
    sizes: list[list[int]]  # [item type][dimension]
    demands: list[int]

    @property
    def items(self) -> int:
        return sum(self.demands)


def read_gap(path: str | Path) -> GapInstance:
    p = Path(path)
    nums = [int(t) for t in p.read_text().split()]
    m, n = nums[0], nums[1]
    pos = 2
    costs = [nums[pos + i * n : pos + (i + 1) * n] for i in range(m)]
    pos += m * n
    weights = [nums[pos + i * n : pos + (i + 1) * n] for i in range(m)]
    pos += m * n
    caps = nums[pos : pos + m]
    if len(caps) != m:
        raise ValueError(f"{p}: truncated GAP instance")
    return GapInstance(p.name, costs, weights, caps)


def read_vbp(path: str | Path) -> VbpInstance:
    p = Path(path)
    nums = [int(t) for t in p.read_text().split()]
    d = nums[0]
    caps = nums[1 : 1 + d]
    m = nums[1 + d]
    pos = 2 + d
    sizes, demands = [], []
    for _ in range(m):
        sizes.append(nums[pos : pos + d])
        demands.append(nums[pos + d])
        pos += d + 1
    return VbpInstance(p.stem, caps, sizes, demands)


# ------------------------------------------------------------------------------------------
# GAP
# ------------------------------------------------------------------------------------------


def gap_model(inst: GapInstance) -> tuple[LinearModel, list[list[int]]]:
    lm = LinearModel()
    x = [[lm.var(f"x[{i},{j}]", 0, 1, integer=True) for j in range(inst.jobs)] for i in range(inst.agents)]
    for j in range(inst.jobs):
        lm.eq(f"assign[{j}]", "assign", {x[i][j]: 1.0 for i in range(inst.agents)}, 1.0)
    for i in range(inst.agents):
        lm.le(f"cap[{i}]", "capacity", {x[i][j]: float(inst.weights[i][j]) for j in range(inst.jobs)}, float(inst.capacities[i]))
    lm.objective("cost", "min", {x[i][j]: float(inst.costs[i][j]) for i in range(inst.agents) for j in range(inst.jobs)})
    return lm, x


def gap_greedy(inst: GapInstance) -> list[int] | None:
    """Regret greedy (Martello-Toth style): assign the job with the largest cost regret first."""
    left = list(inst.capacities)
    todo = set(range(inst.jobs))
    assign = [-1] * inst.jobs
    while todo:
        best = None
        for j in sorted(todo):
            feas = sorted((inst.costs[i][j], i) for i in range(inst.agents) if inst.weights[i][j] <= left[i])
            if not feas:
                return None
            regret = (feas[1][0] - feas[0][0]) if len(feas) > 1 else math.inf
            key = (-regret, feas[0][0], j)
            if best is None or key < best[0]:
                best = (key, j, feas[0][1])
        assert best is not None
        _, j, i = best
        assign[j] = i
        left[i] -= inst.weights[i][j]
        todo.remove(j)
    return assign


def solve_gap(inst: GapInstance, *, solver: str = "cpsat", time_limit: float = 10.0, seed: int = 0, warm_start: bool = True) -> tuple[SolveResult, list[int] | None]:
    lm, x = gap_model(inst)
    hint = None
    if warm_start:
        g = gap_greedy(inst)
        if g is not None:
            hint = [0.0] * len(lm.vars)
            for j, i in enumerate(g):
                hint[x[i][j]] = 1.0
    res = run_backend(lm, solver, time_limit=time_limit, seed=seed, hint=hint)
    assign = None
    if res.values is not None:
        assign = [next(i for i in range(inst.agents) if res.values[x[i][j]] > 0.5) for j in range(inst.jobs)]
    return res, assign


# ------------------------------------------------------------------------------------------
# VBP
# ------------------------------------------------------------------------------------------


def vbp_lower_bound(inst: VbpInstance) -> int:
    return max(math.ceil(sum(s[k] * q for s, q in zip(inst.sizes, inst.demands)) / inst.capacities[k] - 1e-9) for k in range(len(inst.capacities)))


def vbp_ffd(inst: VbpInstance) -> list[list[int]]:
    """First-fit decreasing by total normalised size; returns bins as lists of item-type indices."""
    caps = inst.capacities
    items = [t for t, q in enumerate(inst.demands) for _ in range(q)]
    items.sort(key=lambda t: (-sum(s / c for s, c in zip(inst.sizes[t], caps)), t))
    bins: list[list[int]] = []
    loads: list[list[int]] = []
    for t in items:
        for b, load in enumerate(loads):
            if all(load[k] + inst.sizes[t][k] <= caps[k] for k in range(len(caps))):
                bins[b].append(t)
                for k in range(len(caps)):
                    load[k] += inst.sizes[t][k]
                break
        else:
            if any(inst.sizes[t][k] > caps[k] for k in range(len(caps))):
                raise ValueError(f"{inst.name}: item type {t} exceeds the bin")
            bins.append([t])
            loads.append(list(inst.sizes[t]))
    return bins


def vbp_model(inst: VbpInstance, upper: int) -> tuple[LinearModel, list[int], list[list[int]]]:
    lm = LinearModel()
    y = [lm.var(f"y[{b}]", 0, 1, integer=True) for b in range(upper)]
    x = [[lm.var(f"x[{t},{b}]", 0, inst.demands[t], integer=True) for b in range(upper)] for t in range(len(inst.sizes))]
    for t, q in enumerate(inst.demands):
        lm.eq(f"demand[{t}]", "demand", {x[t][b]: 1.0 for b in range(upper)}, float(q))
    for b in range(upper):
        for k, cap in enumerate(inst.capacities):
            terms = {x[t][b]: float(inst.sizes[t][k]) for t in range(len(inst.sizes)) if inst.sizes[t][k]}
            terms[y[b]] = -float(cap)
            lm.le(f"cap[{b},{k}]", "capacity", terms, 0.0)
        if b + 1 < upper:
            lm.ge(f"order[{b}]", "symmetry", {y[b]: 1.0, y[b + 1]: -1.0}, 0.0)
    lm.ge("volume", "bound", {v: 1.0 for v in y}, float(vbp_lower_bound(inst)))
    lm.objective("bins", "min", {v: 1.0 for v in y})
    return lm, y, x


def solve_vbp(inst: VbpInstance, *, solver: str = "cpsat", time_limit: float = 10.0, seed: int = 0) -> tuple[SolveResult, int, int]:
    """Returns (result, bins of the best solution, FFD bins)."""
    ffd = vbp_ffd(inst)
    upper = len(ffd)
    lm, y, x = vbp_model(inst, upper)
    hint = [0.0] * len(lm.vars)
    for b, items in enumerate(ffd):
        hint[y[b]] = 1.0
        for t in items:
            hint[x[t][b]] += 1.0
    res = run_backend(lm, solver, time_limit=time_limit, seed=seed, hint=hint)
    best = upper if res.values is None else int(round(sum(res.values[v] for v in y)))
    return res, min(best, upper), upper


# ------------------------------------------------------------------------------------------


def run_backend(lm: LinearModel, solver: str, *, time_limit: float, seed: int, hint=None) -> SolveResult:
    if solver == "cpsat":
        from maestro_plan.solve.cpsat import solve_cpsat

        # the settings benchmarks/results/packing.md was measured with: two interleaved workers
        # (faster to the proven optima of these pure packing models than the planner's one
        # deterministic worker) and a wall-clock cap of 3 x the work budget + 10 s
        return solve_cpsat(lm, time_limit=time_limit, seed=seed, hint=hint, wall_cap=3.0 * time_limit + 10.0, params={"num_workers": 2, "interleave_search": True})
    if solver == "highs":
        from maestro_plan.solve.milp import solve_highs

        return solve_highs(lm, time_limit=time_limit, seed=seed, hint=hint)
    if solver == "cbc":
        from maestro_plan.solve.milp import solve_cbc

        return solve_cbc(lm, time_limit=time_limit, seed=seed, hint=hint)
    raise ValueError(f"unknown solver {solver!r}")
