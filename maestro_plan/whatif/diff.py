"""Plan diff: what changes between two plans, terraform-plan style, with the cost delta.

Identity rule (how a replica of OLD is recognised in NEW):
1. Two replicas are *the same engine* when they have the same placement key
   (model, cluster, node, GPU indices, TP). Replica ids are not used: a solver may renumber them.
   If their engine settings also agree (memory fraction, KV pool, max_num_seqs, max_model_len,
   compute share, worker nodes, prefix caching, priority) the replica is unchanged; otherwise it
   is `~ resized` (same GPUs, the engine restarts with new settings). Load, capacity and
   predicted latency are outcomes of routing, not engine settings, and never count as a change.
   When one plan holds several replicas with the same key (engines sharing a GPU), those with
   identical engine settings pair first, then the rest in id order.
2. Replicas left over on both sides are paired as `~ moved` (the engine goes from one place to
   another) only when they have the same model and *shape* (GPU type, TP, GPU slice): in the
   same cluster and pool first, then the same cluster, then anywhere, in sorted key order. A TP2
   H200 engine is never "moved" to a TP8 H100 one: that is a remove and an add. The pairing is
   for reading only - a move is rolled out as add + remove.
3. What is still left over is `+ added` (only in NEW) or `- removed` (only in OLD).

Each replica is printed by its *address*, stable like a terraform resource address and free of
GPU indices: model/cluster/pool/shape/ordinal (e.g. llama-3.1-8b/us-east/h100-p5-use1a/h100-sxm-tp1/0),
the ordinal counting the replicas of one (model, cluster, pool, shape) in node and GPU order.
Standbys (models warm in host DRAM) are matched by (model, cluster, node).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro_plan.plan.schema import Plan, Replica, Standby

ENGINE_FIELDS = (
    "memory_fraction",
    "kv_cache_bytes_per_gpu",
    "max_num_seqs",
    "max_model_len",
    "compute_share",
    "worker_nodes",
    "prefix_caching",
    "priority",
    "gpu_type",
    "swap_models",
)

ReplicaKey = tuple[str, str, str, tuple[int, ...], int]


def replica_key(r: Replica) -> ReplicaKey:
    """The placement identity of a replica: (model, cluster, node, GPU indices, TP)."""
    return (r.model, r.cluster, r.node, tuple(sorted(r.gpu_indices)), r.tp)


Shape = tuple[str, str, int, int]


def shape(r: Replica) -> Shape:
    """What makes two engines interchangeable: model, GPU type, TP and GPU slice (eighths)."""
    return (r.model, r.gpu_type, r.tp, round(r.compute_share * 8))


def shape_text(r: Replica) -> str:
    share = "" if r.compute_share >= 1 - 1e-9 else f"-slice{r.compute_share:g}"
    return f"{r.gpu_type}-tp{r.tp}{share}"


def addresses(replicas: list[Replica]) -> dict[str, str]:
    """Replica id -> stable address model/cluster/pool/shape/ordinal (see the module docstring)."""
    groups: dict[tuple[str, ...], list[Replica]] = defaultdict(list)
    for r in replicas:
        groups[(r.model, r.cluster, r.node_pool, shape_text(r))].append(r)
    out = {}
    for key, rs in groups.items():
        for i, r in enumerate(sorted(rs, key=lambda r: (r.node, sorted(r.gpu_indices), r.id))):
            out[r.id] = "/".join([*key, str(i)])
    return out


def _gpus(idx: list[int] | tuple[int, ...]) -> str:
    s = sorted(idx)
    if len(s) > 2 and s == list(range(s[0], s[-1] + 1)):
        return f"g{s[0]}-{s[-1]}"
    return "g" + ",".join(map(str, s))


def place(r: Replica) -> str:
    """Short placement text: cluster/node[+workers] g0-7 tp8."""
    nodes = "+".join([r.node, *r.worker_nodes])
    return f"{r.cluster}/{nodes} {_gpus(r.gpu_indices)} tp{r.tp} {r.gpu_type}"


def engine_changes(old: Replica, new: Replica) -> list[str]:
    out = []
    for f in ENGINE_FIELDS:
        a, b = getattr(old, f), getattr(new, f)
        if isinstance(a, float) and isinstance(b, float):
            if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                continue
        elif a == b:
            continue
        out.append(f)
    return out


@dataclass(frozen=True)
class Change:
    op: Literal["+", "-", "~"]
    kind: Literal["added", "removed", "resized", "moved", "standby-added", "standby-removed"]
    model: str
    old: Replica | None = None
    new: Replica | None = None
    fields: tuple[str, ...] = ()
    old_standby: Standby | None = None
    new_standby: Standby | None = None
    old_address: str = ""
    new_address: str = ""

    @property
    def cluster(self) -> str:
        r = self.new or self.old
        if r is not None:
            return r.cluster
        s = self.new_standby or self.old_standby
        assert s is not None
        return s.cluster

    @property
    def cost_delta(self) -> float:
        return (self.new.price_per_hour if self.new else 0.0) - (self.old.price_per_hour if self.old else 0.0)

    def text(self) -> str:
        if self.kind == "added":
            assert self.new
            return f"+ {self.new_address or self.model}  ({place(self.new)})  cap {self.new.capacity_rps:.3g} rps  {_money(self.cost_delta)}/h"
        if self.kind == "removed":
            assert self.old
            return f"- {self.old_address or self.model}  ({place(self.old)})  cap {self.old.capacity_rps:.3g} rps  {_money(self.cost_delta)}/h"
        if self.kind == "moved":
            assert self.old and self.new
            return f"~ {self.old_address or self.model} -> {self.new_address}  (moved)  {place(self.old)} -> {place(self.new)}  {_money(self.cost_delta)}/h"
        if self.kind == "resized":
            assert self.old and self.new
            parts = [f"{f} {_fmt(getattr(self.old, f))} -> {_fmt(getattr(self.new, f))}" for f in self.fields]
            return f"~ {self.new_address or self.model}  ({place(self.new)}, resized: {', '.join(parts)})"
        s = self.new_standby or self.old_standby
        assert s is not None
        return f"{self.op} {self.model:<16} standby {s.cluster}/{s.node} (host DRAM)"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "kind": self.kind, "model": self.model, "cluster": self.cluster, "cost_delta_per_hour": round(self.cost_delta, 6)}
        if self.old is not None:
            d["old"] = {"id": self.old.id, "address": self.old_address, "place": place(self.old), "capacity_rps": self.old.capacity_rps}
        if self.new is not None:
            d["new"] = {"id": self.new.id, "address": self.new_address, "place": place(self.new), "capacity_rps": self.new.capacity_rps}
        if self.fields:
            d["fields"] = {f: {"old": getattr(self.old, f), "new": getattr(self.new, f)} for f in self.fields}
        s = self.new_standby or self.old_standby
        if s is not None:
            d["standby"] = {"cluster": s.cluster, "node": s.node}
        return d


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and abs(v) >= 2**20:
        return f"{v / 2**30:.2f}GiB"
    return str(v)


def _money(x: float) -> str:
    return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"


@dataclass
class PlanDiff:
    changes: list[Change]
    unchanged: list[tuple[Replica, Replica]]
    old_cost: float
    new_cost: float
    gpus_delta: dict[str, dict[str, int]] = field(default_factory=dict)
    routes_changed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def cost_delta(self) -> float:
        return self.new_cost - self.old_cost

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def replicas_touched(self) -> int:
        """Replicas whose engine starts, stops or restarts (added + removed + moved + resized)."""
        return sum(1 for c in self.changes if c.kind in ("added", "removed", "moved", "resized"))

    def summary(self) -> str:
        add, rem, mov, res = (self.count(k) for k in ("added", "removed", "moved", "resized"))
        sb = self.count("standby-added") + self.count("standby-removed")
        pct = f", {self.cost_delta / self.old_cost * 100:+.1f}%" if self.old_cost > 0 else ""
        text = (
            f"Plan: {add} to add, {rem} to remove, {mov + res} to change ({mov} moved, {res} resized); "
            f"{len(self.unchanged)} unchanged."
        )
        if sb:
            text += f" Standbys: {sb} changed."
        text += f" Routes: {len(self.routes_changed)} (source, model) splits change."
        text += f" Cost: ${self.old_cost:,.2f}/h -> ${self.new_cost:,.2f}/h ({_money(self.cost_delta)}/h{pct})."
        return text

    def render(self) -> str:
        lines = [c.text() for c in self.changes]
        if self.gpus_delta:
            lines.append("")
            for cl, types in self.gpus_delta.items():
                lines.append(f"  GPUs {cl}: " + ", ".join(f"{t} {d:+d}" for t, d in types.items()))
        lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "counts": {k: self.count(k) for k in ("added", "removed", "moved", "resized", "standby-added", "standby-removed")}
            | {"unchanged": len(self.unchanged), "replicas_touched": self.replicas_touched},
            "cost": {"old_per_hour": self.old_cost, "new_per_hour": self.new_cost, "delta_per_hour": round(self.cost_delta, 6)},
            "gpus_delta": self.gpus_delta,
            "routes_changed": [{"source": s, "model": m} for s, m in self.routes_changed],
        }


def match_replicas(old: list[Replica], new: list[Replica]) -> tuple[list[tuple[Replica, Replica]], list[Replica], list[Replica]]:
    """Pairs with the same placement key (rule 1), then the OLD-only and NEW-only replicas."""
    by_old: dict[ReplicaKey, list[Replica]] = defaultdict(list)
    by_new: dict[ReplicaKey, list[Replica]] = defaultdict(list)
    for r in sorted(old, key=lambda r: r.id):
        by_old[replica_key(r)].append(r)
    for r in sorted(new, key=lambda r: r.id):
        by_new[replica_key(r)].append(r)
    pairs: list[tuple[Replica, Replica]] = []
    only_old: list[Replica] = []
    only_new: list[Replica] = []
    for k in sorted(set(by_old) | set(by_new)):
        a, b = list(by_old.get(k, [])), list(by_new.get(k, []))
        # engines sharing one placement (slices of a GPU): identical settings pair first
        for x in list(a):
            twin = next((y for y in b if not engine_changes(x, y)), None)
            if twin is not None:
                pairs.append((x, twin))
                a.remove(x)
                b.remove(twin)
        pairs += list(zip(a, b))
        only_old += a[len(b):]
        only_new += b[len(a):]
    return pairs, only_old, only_new


def _pair_moves(only_old: list[Replica], only_new: list[Replica]) -> tuple[list[tuple[Replica, Replica]], list[Replica], list[Replica]]:
    """Rule 2: same model and shape only; same cluster and pool first, then same cluster."""
    moves: list[tuple[Replica, Replica]] = []
    olds = sorted(only_old, key=replica_key)
    news = sorted(only_new, key=replica_key)
    used: set[int] = set()
    left_old: list[Replica] = []
    for o in olds:
        best = None
        best_score: tuple[int, ...] | None = None
        for j, n in enumerate(news):
            if j in used or shape(n) != shape(o):
                continue
            score = (n.cluster != o.cluster, n.node_pool != o.node_pool, j)
            if best_score is None or score < best_score:
                best, best_score = j, score
        if best is None:
            left_old.append(o)
        else:
            used.add(best)
            moves.append((o, news[best]))
    left_new = [n for j, n in enumerate(news) if j not in used]
    return moves, left_old, left_new


def _route_splits(plan: Plan) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    key_of = {r.id: "|".join(map(str, replica_key(r))) for r in plan.replicas}
    for rt in plan.routes:
        k = key_of.get(rt.replica, rt.replica)
        out[(rt.source, rt.model)][k] = out[(rt.source, rt.model)].get(k, 0.0) + rt.fraction
    return out


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """The changes from OLD to NEW under the identity rule of this module."""
    pairs, only_old, only_new = match_replicas(old.replicas, new.replicas)
    changes: list[Change] = []
    unchanged: list[tuple[Replica, Replica]] = []
    ao, an = addresses(old.replicas), addresses(new.replicas)
    for a, b in pairs:
        fields = engine_changes(a, b)
        if fields:
            changes.append(Change("~", "resized", a.model, a, b, tuple(fields), old_address=ao[a.id], new_address=an[b.id]))
        else:
            unchanged.append((a, b))
    moves, only_old, only_new = _pair_moves(only_old, only_new)
    changes += [Change("~", "moved", a.model, a, b, old_address=ao[a.id], new_address=an[b.id]) for a, b in moves]
    changes += [Change("+", "added", r.model, None, r, new_address=an[r.id]) for r in only_new]
    changes += [Change("-", "removed", r.model, r, None, old_address=ao[r.id]) for r in only_old]
    sb_old = {(s.model, s.cluster, s.node): s for s in old.standby}
    sb_new = {(s.model, s.cluster, s.node): s for s in new.standby}
    changes += [Change("+", "standby-added", k[0], new_standby=sb_new[k]) for k in sorted(set(sb_new) - set(sb_old))]
    changes += [Change("-", "standby-removed", k[0], old_standby=sb_old[k]) for k in sorted(set(sb_old) - set(sb_new))]
    order = {"~": 0, "+": 1, "-": 2}
    changes.sort(key=lambda c: (c.cluster, c.model, order[c.op], c.kind, (c.new or c.old).id if (c.new or c.old) else ""))

    gpus_delta: dict[str, dict[str, int]] = {}
    for cl in sorted(set(old.gpus_used) | set(new.gpus_used)):
        a, b = old.gpus_used.get(cl, {}), new.gpus_used.get(cl, {})
        d = {t: b.get(t, 0) - a.get(t, 0) for t in sorted(set(a) | set(b)) if b.get(t, 0) != a.get(t, 0)}
        if d:
            gpus_delta[cl] = d
    so, sn = _route_splits(old), _route_splits(new)
    routes_changed = []
    for k in sorted(set(so) | set(sn)):
        a, b = so.get(k, {}), sn.get(k, {})
        if set(a) != set(b) or any(abs(a[x] - b[x]) > 1e-6 for x in a):
            routes_changed.append(k)
    return PlanDiff(changes, unchanged, old.cost_per_hour, new.cost_per_hour, gpus_delta, routes_changed)
