"""Second pass: put the counted replicas (and swap slots) on real nodes and GPU indices.

Whole GPUs (TP groups and whole-GPU swap slots) are placed first, in decreasing size (first-fit
decreasing, FFD), ties broken by key: an item of tp GPUs goes to the first node (inventory order)
with tp fully free GPUs and takes the lowest free indices (a TP group needs any tp GPUs of one node,
not contiguous ones). All sizes are powers of two, so decreasing order keeps every node's used GPUs
a multiple of the current size: on a node of G GPUs the free room for size-t items is floor(G/t) -
used/t slots, summed over the pool's N nodes exactly N floor(G/t) minus the larger items' GPUs / t,
which formulate.py's cut `sum_{tp >= t} tp n <= N floor(G/t) t` keeps non-negative. Non-power-of-two
node sizes (6, 10 GPUs) are therefore handled exactly by the cuts.

Co-located engines and slice swap slots (sub-GPU items) are then packed by their bytes into the
GPUs left free, each GPU holding at most the usable HBM U = gpu_memory_utilization x HBM (the
budget the estimator sizes engines against) and at most MAX_ENGINES_PER_GPU items:
maestro_plan.solve.patterns.solve_patterns, which returns first-fit decreasing where that meets
the L1 bound and otherwise runs Gilmore-Gomory column generation with exact knapsack pricing
(deterministic: node and round limits, no clock). The solver counted these items in the aggregate
rows only (bytes summed per pool: a relaxation), so the exact packing may need more GPUs than the
solver paid for; those GPUs are real, the plan's cost counts them (assemble.py), and the reported
gap is then measured from that cost to the solver's bound. When the packing needs more GPUs than
the pool has, placement fails (PlacementError with the GPUs needed) and the planner repairs
(planner._place_with_repair: the pool's GPU bound lowered by the shortfall, re-solved, at most
PLACE_REPAIR_ROUNDS times, the first solve's bound kept); the aggregate and DFF rows (formulate.py)
make that rare (it takes a pool filled to within a few GPUs). The greedy start counts first-fit
decreasing bins (heuristic.py) and placement never packs worse than FFD, so greedy plans place.

With --current, replicas of the plan in force are first pinned to their old node and GPUs where
those are free (in bytes, for co-located ones) and the same configuration is still counted there;
the rest is placed by FFD (sub-GPU items first-fit into partly used GPUs, then fresh ones). That
placement is kept only where it fits and uses no more GPUs than placing afresh (which is computed
first, and used otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce

from maestro_plan.solve.patterns import first_fit_decreasing, l1_bound, solve_patterns
from maestro_plan.solve.problem import MAX_ENGINES_PER_GPU, UNITS_PER_GPU, Problem, units_of_share

PLACE_GRID_CELLS = 1_000
"""Pricing grid of the pattern packer at placement (patterns.GRID_CELLS is 20,000): engine bytes have
no common divisor, so the grid is inexact either way (patterns stay byte-feasible, sizes rounded up
to 1/1000 of the usable HBM in pricing only); measured on OR-Library u120_00 mapped onto a full H100's
bytes: 48 GPUs (the optimum) in 2.1 s at 1,000 cells, 5.0 s at 4,000, 26.6 s at 20,000."""


class PlacementError(RuntimeError):
    """The counted replicas do not fit the pool: `pool` (index), `needed` GPUs the exact packing
    takes there (0 when whole-GPU items alone do not fit: a formulation bug, never an input error)."""

    def __init__(self, message: str, pool: int = -1, needed: int = 0) -> None:
        super().__init__(message)
        self.pool, self.needed = pool, needed


@dataclass(frozen=True)
class Placed:
    kind: str  # "replica" | "slot"
    ref: int  # group index or slot-type index
    pool: int
    node: str
    gpu_indices: tuple[int, ...]
    offset: int  # units already used on the GPU before this slice (0 for whole GPUs)
    keep_id: str = ""  # id of the replica of the plan in force pinned here (ids stay stable)


@dataclass(frozen=True)
class _Item:
    kind: str
    ref: int
    units: int
    tp: int
    key: str
    nbytes: int  # sub-GPU items: bytes held on the GPU; 0 for whole GPUs

    @property
    def whole(self) -> bool:
        return self.nbytes == 0


class _Gpus:
    """Per node and GPU index: whole (taken by a whole-GPU item), or bytes and items of co-located ones."""

    def __init__(self, nodes: list[str], gpn: int) -> None:
        self.nodes, self.gpn = nodes, gpn
        self.whole = {nd: [False] * gpn for nd in nodes}
        self.nbytes = {nd: [0] * gpn for nd in nodes}
        self.count = {nd: [0] * gpn for nd in nodes}
        self.units = {nd: [0] * gpn for nd in nodes}

    def free(self, nd: str, i: int) -> bool:
        return not self.whole[nd][i] and self.count[nd][i] == 0

    def fits(self, nd: str, i: int, it: _Item, usable: int) -> bool:
        return not self.whole[nd][i] and self.count[nd][i] < MAX_ENGINES_PER_GPU and self.nbytes[nd][i] + it.nbytes <= usable

    def put(self, nd: str, i: int, it: _Item, pool: int, out: list[Placed], keep_id: str = "") -> None:
        out.append(Placed(it.kind, it.ref, pool, nd, (i,), self.units[nd][i], keep_id))
        self.nbytes[nd][i] += it.nbytes
        self.count[nd][i] += 1
        self.units[nd][i] += it.units


def _place_whole(g: _Gpus, items: list[_Item], out: list[Placed], pool: int) -> bool:
    for it in sorted((i for i in items if i.whole), key=lambda i: (-i.units, i.key)):
        for nd in g.nodes:
            free = [i for i in range(g.gpn) if g.free(nd, i)]
            if len(free) >= it.tp:
                idx = tuple(free[: it.tp])
                for i in idx:
                    g.whole[nd][i] = True
                out.append(Placed(it.kind, it.ref, pool, nd, idx, 0))
                break
        else:
            return False
    return True


def _first_fit(g: _Gpus, items: list[_Item], usable: int, out: list[Placed], pool: int) -> bool:
    """Sub-GPU items by decreasing bytes into the first GPU (partly used ones first) with room."""
    for it in sorted(items, key=lambda i: (-i.nbytes, i.key)):
        spots = [(nd, i) for nd in g.nodes for i in range(g.gpn) if g.count[nd][i] and g.fits(nd, i, it, usable)]
        spots += [(nd, i) for nd in g.nodes for i in range(g.gpn) if g.free(nd, i)]
        if not spots:
            return False
        g.put(*spots[0], it, pool, out)
    return True


def _pack_shared(g: _Gpus, items: list[_Item], usable: int, out: list[Placed], pool: int) -> int:
    """Sub-GPU items onto the free GPUs (none partly used yet) by the byte-exact packer: bins in
    the packer's order onto free GPUs in node and index order, items in a bin by decreasing bytes.
    Returns 0, or how many GPUs short the pool is."""
    if not items:
        return 0
    items = sorted(items, key=lambda i: (-i.nbytes, i.key))
    sizes = [it.nbytes for it in items]
    step = reduce(math.gcd, sizes)
    cap = usable // step * step  # every sum of sizes is a multiple of step: the same packings, an exact grid where step is large
    ffd = first_fit_decreasing(sizes, cap, MAX_ENGINES_PER_GPU)
    res = solve_patterns(sizes, cap, MAX_ENGINES_PER_GPU, grid_cells=PLACE_GRID_CELLS) if len(ffd) > l1_bound(sizes, cap, MAX_ENGINES_PER_GPU) else None
    packing = [list(b) for b in res.bins] if res is not None and res.n_bins < len(ffd) else ffd  # never worse than FFD (heuristic.py counts on it)
    free = [(nd, i) for nd in g.nodes for i in range(g.gpn) if g.free(nd, i)]
    bins = sorted((sorted(b) for b in packing), key=lambda b: b[0])
    if len(bins) > len(free):
        return len(bins) - len(free)
    for (nd, i), b in zip(free, bins):
        for k in b:
            g.put(nd, i, items[k], pool, out)
    return 0


def _items(prob: Problem, counts: dict[int, int], slots: dict[int, int]) -> dict[int, list[_Item]]:
    out: dict[int, list[_Item]] = {}
    for gi, cnt in sorted(counts.items()):
        g = prob.groups[gi]
        c = prob.candidates[g.cand]
        for _ in range(max(cnt, 0)):
            out.setdefault(g.pool, []).append(_Item("replica", gi, c.units, c.tp, g.key, c.mem_bytes))
    for ti, k in sorted(slots.items()):
        if k <= 0:
            continue
        t = prob.slot_types[ti]
        nb = 0 if t.units >= UNITS_PER_GPU else prob.pools[t.pool].usable_bytes * t.units // UNITS_PER_GPU
        out.setdefault(t.pool, []).append(_Item("slot", ti, t.units, t.tp, t.key, nb))
    return out


def _pin(prob: Problem, g: _Gpus, items: list[_Item], cur: list, usable: int, pi: int, placed: list[Placed]) -> list[_Item]:
    """Pin the plan in force's replicas where they were (same configuration, room left); returns
    the items still to place."""
    rest = list(items)
    for r in sorted(cur, key=lambda r: r.id):
        if r.node not in g.whole:
            continue
        idx = tuple(sorted(r.gpu_indices))
        if any(i >= g.gpn for i in idx):
            continue
        match = next((it for it in rest if it.kind == "replica" and _same_config(prob, it, r)), None)
        if match is None:
            continue
        if match.whole:
            if not all(g.free(r.node, i) for i in idx):
                continue
            for i in idx:
                g.whole[r.node][i] = True
            placed.append(Placed("replica", match.ref, pi, r.node, idx, 0, r.id))
        else:
            if not g.fits(r.node, idx[0], match, usable):
                continue
            g.put(r.node, idx[0], match, pi, placed, r.id)
        rest.remove(match)
    return rest


def _same_config(prob: Problem, it: _Item, r) -> bool:
    """The placed item has the configuration of replica r of the plan in force (the candidate key
    formulate._current_replicas derives from it)."""
    units = units_of_share(r.compute_share) if (r.tp == 1 and r.compute_share < 1.0) else r.tp * UNITS_PER_GPU
    return prob.candidates[prob.groups[it.ref].cand].key == f"{r.model}@{r.gpu_type}/tp{r.tp}/u{units}"


def place(prob: Problem, counts: dict[int, int], slots: dict[int, int] | None = None, current_plan=None) -> list[Placed]:
    items_by_pool = _items(prob, counts, slots or {})
    pinned_src: dict[tuple[str, str], list] = {}
    if current_plan is not None:
        for r in current_plan.replicas:
            pinned_src.setdefault((r.cluster, r.node_pool), []).append(r)
    out: list[Placed] = []
    for pi in sorted(items_by_pool):
        p = prob.pools[pi]
        items = items_by_pool[pi]
        usable = p.usable_bytes
        placed: list[Placed] = []
        g = _Gpus(list(p.node_names), p.gpus_per_node)
        if not _place_whole(g, items, placed, pi):
            raise PlacementError(f"pool {p.key}: the counted replicas do not fit its {p.node_count} node(s) of {p.gpus_per_node} GPUs", pi)
        short = _pack_shared(g, [i for i in items if not i.whole], usable, placed, pi)
        if short:
            raise PlacementError(f"pool {p.key}: the co-located engines' exact packing needs {short} GPU(s) more than its {p.gpus} have", pi, p.gpus + short)
        cur = pinned_src.get((p.cluster, p.name), [])
        if cur:  # the plan in force's places where that costs no GPU more than packing afresh
            pg, pinned = _Gpus(list(p.node_names), p.gpus_per_node), []
            rest = _pin(prob, pg, items, cur, usable, pi, pinned)
            if _place_whole(pg, rest, pinned, pi) and _first_fit(pg, [i for i in rest if not i.whole], usable, pinned, pi) and _used(pg) <= _used(g):
                placed = pinned
        out.extend(placed)
    return out


def _used(g: _Gpus) -> int:
    return sum(1 for nd in g.nodes for i in range(g.gpn) if not g.free(nd, i))
