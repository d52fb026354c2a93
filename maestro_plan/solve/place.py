"""Second pass: put the counted replicas (and swap slots) on real nodes and GPU indices.

Per pool, items are placed in decreasing size (first-fit decreasing, FFD), ties broken by key:
- an item of tp whole GPUs goes to the first node (inventory order) with tp fully free GPUs and
  takes the lowest free indices (a TP group needs any tp GPUs of one node, not contiguous ones);
- a slice of u/8 GPU goes to the partially used GPU with room, else to the first fully free GPU.

Why this never fails on what the solver counted: all sizes are powers of two (TP 1, 2, 4, ... and
slices 1/2, 1/4, 1/8). Placing in decreasing size keeps every node's used GPUs a multiple of the
current size, so on a node of G GPUs the free room for size-t items is floor(G/t) - used/t slots;
summed over the pool's N nodes that is exactly N floor(G/t) minus the larger items' GPUs / t,
which formulate.py's cut `sum_{tp >= t} tp n <= N floor(G/t) t` keeps non-negative (for t that
divides G it is the plain GPU count). Slices: with decreasing sizes at most one GPU is ever
partially used and its used share is a multiple of the current slice, so slices fill GPUs exactly
and need ceil(units / 8) GPUs, which is what the solver paid for. Non-power-of-two node sizes (6,
10 GPUs) are therefore handled exactly by the cuts, not by a repair loop.

With --current, replicas of the plan in force are first pinned to their old node and GPUs where
those are free and the same configuration is still counted there; the rest is placed by FFD. If
pinning leaves FFD without room (it can: pinned items break the decreasing order), placement is
redone without pinning, which the argument above guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass

from maestro_plan.solve.problem import UNITS_PER_GPU, Problem


class PlacementError(RuntimeError):
    """The counted replicas do not fit the pool (a solver or formulation bug, never an input error)."""


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


def _ffd(nodes: list[str], gpn: int, items: list[_Item], used: dict[str, list[int]], out: list[Placed], pool: int) -> bool:
    for it in sorted(items, key=lambda i: (-i.units, i.key)):
        if it.units >= UNITS_PER_GPU:
            for nd in nodes:
                free = [i for i in range(gpn) if used[nd][i] == 0]
                if len(free) >= it.tp:
                    idx = tuple(free[: it.tp])
                    for i in idx:
                        used[nd][i] = UNITS_PER_GPU
                    out.append(Placed(it.kind, it.ref, pool, nd, idx, 0))
                    break
            else:
                return False
        else:
            spot = None
            for nd in nodes:
                for i in range(gpn):
                    if 0 < used[nd][i] and used[nd][i] + it.units <= UNITS_PER_GPU:
                        spot = (nd, i)
                        break
                if spot:
                    break
            if spot is None:
                for nd in nodes:
                    for i in range(gpn):
                        if used[nd][i] == 0:
                            spot = (nd, i)
                            break
                    if spot:
                        break
            if spot is None:
                return False
            nd, i = spot
            out.append(Placed(it.kind, it.ref, pool, nd, (i,), used[nd][i]))
            used[nd][i] += it.units
    return True


def place(prob: Problem, counts: dict[int, int], slots: dict[int, int] | None = None, current_plan=None) -> list[Placed]:
    slots = slots or {}
    items_by_pool: dict[int, list[_Item]] = {}
    for gi, cnt in sorted(counts.items()):
        if cnt <= 0:
            continue
        g = prob.groups[gi]
        c = prob.candidates[g.cand]
        for _ in range(cnt):
            items_by_pool.setdefault(g.pool, []).append(_Item("replica", gi, c.units, c.tp, g.key))
    for ti, k in sorted(slots.items()):
        if k <= 0:
            continue
        t = prob.slot_types[ti]
        items_by_pool.setdefault(t.pool, []).append(_Item("slot", ti, t.units, t.tp, t.key))
    pinned_src: dict[tuple[str, str], list] = {}
    if current_plan is not None:
        for r in current_plan.replicas:
            pinned_src.setdefault((r.cluster, r.node_pool), []).append(r)
    out: list[Placed] = []
    for pi in sorted(items_by_pool):
        p = prob.pools[pi]
        items = items_by_pool[pi]
        nodes = list(p.node_names)
        placed: list[Placed] = []
        done = False
        cur = pinned_src.get((p.cluster, p.name), [])
        if cur:
            used = {nd: [0] * p.gpus_per_node for nd in nodes}
            rest = list(items)
            for r in sorted(cur, key=lambda r: r.id):
                if r.node not in used:
                    continue
                units = r.tp * UNITS_PER_GPU if r.tp > 1 else int(round(r.compute_share * UNITS_PER_GPU))
                ck = f"{r.model}@{r.gpu_type}/tp{r.tp}/u{units}"
                match = next((it for it in rest if it.kind == "replica" and prob.candidates[prob.groups[it.ref].cand].key == ck), None)
                if match is None:
                    continue
                idx = tuple(sorted(r.gpu_indices))
                if any(i >= p.gpus_per_node for i in idx):
                    continue
                if units >= UNITS_PER_GPU:
                    if any(used[r.node][i] for i in idx):
                        continue
                    for i in idx:
                        used[r.node][i] = UNITS_PER_GPU
                    placed.append(Placed("replica", match.ref, pi, r.node, idx, 0, r.id))
                else:
                    i = idx[0]
                    if used[r.node][i] + units > UNITS_PER_GPU:
                        continue
                    placed.append(Placed("replica", match.ref, pi, r.node, (i,), used[r.node][i], r.id))
                    used[r.node][i] += units
                rest.remove(match)
            if _ffd(nodes, p.gpus_per_node, rest, used, placed, pi):
                done = True
            else:
                placed = []
        if not done:
            used = {nd: [0] * p.gpus_per_node for nd in nodes}
            if not _ffd(nodes, p.gpus_per_node, items, used, placed, pi):
                raise PlacementError(f"pool {p.key}: the counted replicas do not fit its {p.node_count} node(s) of {p.gpus_per_node} GPUs")
        out.extend(placed)
    return out
