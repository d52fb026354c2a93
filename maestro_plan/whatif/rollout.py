"""Ordered rollout from the plan in force (OLD) to a new plan (NEW) that never drops below demand.

Rules the order follows:
- Add before remove: each round first starts every NEW replica whose GPUs have room, cluster by
  cluster, then drains and deletes the OLD replicas that are no longer needed, cluster by cluster.
- Drain before delete: a replica is first drained (its route weight set to 0, traffic goes to the
  others) and only then deleted (its GPUs freed).
- A replica is drained only if every (source, model) demand can still be served by the replicas
  left in service (checked as a max-flow: each source may use the replicas of a model in the
  clusters it routes that model to in OLD or NEW; each replica serves at most its capacity_rps).
- When a NEW replica needs GPUs still held by an OLD replica that cannot be drained yet (its
  capacity is needed), the OLD replica is first copied to spare GPUs of the same type in the same
  cluster (GPUs with room beside what NEW will run on them, from the inventory when given; failing
  that, GPUs NEW needs later, borrowed until the replaced replica is back), the copy takes its
  traffic, the original is drained and deleted, the NEW replica starts, and the copy is removed.
  When there is no such spare room the rollout stops with status "blocked" and says what blocks it.

Demand floor: for each (source, model) the smaller of the two plans' served demand (served_rps).
Both plans are sized for it, so it can hold at the first and at the last step; with the planner's
headroom that floor is the traffic the fleet carries while the change is rolled out. A model only
one plan serves has floor 0 (it is being introduced or retired).

Replicas are identified by placement (model, cluster, node, GPU indices, TP) as in diff.py: a
replica unchanged between the plans stays in service throughout (counted at the smaller of its two
capacity figures, which differ when the request mix changed); a resized one is replaced in
place (the new engine starts once the old one's memory is freed, unless both fit at once).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from ortools.graph.python import max_flow
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from maestro_plan.errors import InputError
from maestro_plan.load.schema import Inventory
from maestro_plan.plan.schema import Plan, Replica, Standby
from maestro_plan.whatif.diff import diff_plans, place

MEM_EPS = 1e-6  # memory fractions on one GPU may add up to 1 + MEM_EPS (rounding in plan files)
FLOW_SCALE = 1_000_000  # requests/s are compared in micro-requests/s (integers for the max-flow)

Action = Literal["start", "add", "drain", "delete", "stage-add", "route", "blocked"]

# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepReplica(_M):
    id: str
    model: str
    place: str
    capacity_rps: float
    side: Literal["old", "new", "stage"]


class ModelCapacity(_M):
    model: str
    capacity_rps: float = Field(description="Sum of capacity_rps of the replicas in service")
    demand_rps: float = Field(description="Sum of the (source, model) demand floors")


class PairCapacity(_M):
    source: str
    model: str
    demand_rps: float
    reachable_rps: float = Field(description="Capacity of the in-service replicas this source may use")
    assigned_rps: float = Field(description="Rate the max-flow routes for this source (>= demand when the step is safe)")


class Step(_M):
    index: int
    action: Action
    cluster: str = ""
    replicas: list[StepReplica] = Field(default_factory=list)
    note: str = ""
    ok: bool = Field(description="Every (source, model) demand is served after this step")
    min_margin_rps: float | None = Field(None, description="Smallest reachable - demand over (source, model) pairs")
    capacity: list[ModelCapacity] = Field(default_factory=list)
    pairs: list[PairCapacity] = Field(default_factory=list)
    gpus_held: int = Field(0, description="Distinct GPUs holding at least one engine after this step")
    _held: list[Any] = PrivateAttr(default_factory=list)  # engines on GPUs after this step (whatif/bundles.py)


class Rollout(_M):
    status: Literal["ok", "blocked"]
    reason: str = ""
    old_plan: str
    new_plan: str
    floor_rule: str = "per (source, model): min(OLD served_rps, NEW served_rps); a model in one plan only: 0"
    counts: dict[str, int]
    peak_gpus: int = Field(0, description="Most GPUs held at once during the rollout")
    steps: list[Step]

    def render(self) -> str:
        lines = []
        for s in self.steps:
            head = f"{s.index:>3}. {s.action:<9} {s.cluster:<10}"
            what = ", ".join(f"{r.model}@{r.place}" for r in s.replicas[:4])
            if len(s.replicas) > 4:
                what += f" (+{len(s.replicas) - 4} more)"
            cap = "  ".join(f"{c.model} {c.capacity_rps:.3g}/{c.demand_rps:.3g}" for c in s.capacity)
            flag = "ok" if s.ok else "BELOW DEMAND"
            lines.append(f"{head} {what}{'  ' + s.note if s.note else ''}")
            lines.append(f"      capacity/demand rps: {cap}  [{flag}; min margin {s.min_margin_rps if s.min_margin_rps is not None else 0:.3g} rps; {s.gpus_held} GPUs held]")
        lines.append(f"status: {self.status}{': ' + self.reason if self.reason else ''}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Working state
# --------------------------------------------------------------------------------------------


@dataclass
class Unit:
    uid: str
    model: str
    cluster: str
    gpu_type: str
    gpus: tuple[tuple[str, int], ...]  # (node, gpu index) it occupies
    memory_fraction: float
    capacity_rps: float
    side: Literal["old", "new", "stage", "both"]
    replica: Replica | None = None
    place: str = ""
    requires: str | None = None  # a standby serves only while its swap-slot replica (this uid) is in service
    standby: Standby | None = None

    def step_replica(self) -> StepReplica:
        side = "new" if self.side == "both" else self.side
        return StepReplica(id=self.uid, model=self.model, place=self.place, capacity_rps=self.capacity_rps, side=side)


def _unit(r: Replica, side: Literal["old", "new", "both"]) -> Unit:
    gpus = tuple((n, g) for n in [r.node, *r.worker_nodes] for g in sorted(r.gpu_indices))
    return Unit(r.id, r.model, r.cluster, r.gpu_type, gpus, r.memory_fraction, r.capacity_rps, side, r, place(r))


def _standby_unit(sb: Standby, side: Literal["old", "new", "both"], slot_uid: str | None) -> Unit:
    """A model kept warm in host DRAM: no GPU of its own; serves (up to its slot's capacity) while
    the replica whose GPU slice it wakes up on is in service."""
    cap = sb.capacity_rps if sb.capacity_rps > 0 else sb.serves_rate_rps
    return Unit(f"standby:{sb.model}@{sb.node}", sb.model, sb.cluster, "", (), 0.0, cap, side, None,
                f"{sb.cluster}/{sb.node} standby (host DRAM)", slot_uid, sb)


@dataclass(frozen=True)
class GpuSlot:
    node: str
    index: int
    cluster: str
    gpu_type: str


def gpu_slots(old: Plan, new: Plan, inventory: Inventory | None) -> dict[tuple[str, int], GpuSlot]:
    """Every GPU the rollout may use: the inventory's, or (without one) those either plan uses."""
    out: dict[tuple[str, int], GpuSlot] = {}
    if inventory is not None:
        for c in inventory.clusters:
            for p in c.node_pools:
                for n in p.node_names:
                    for g in range(p.gpus_per_node):
                        out[(n, g)] = GpuSlot(n, g, c.name, p.gpu_type)
        missing = sorted(
            {n for plan in (old, new) for r in plan.replicas for n in [r.node, *r.worker_nodes] if any((n, g) not in out for g in r.gpu_indices)}
        )
        if missing:
            raise InputError(
                f"the plans place replicas on nodes the inventory does not have: {', '.join(missing[:5])}.",
                field="--inventory", hint="pass the inventory the plans were made from.",
            )
        return out
    for plan in (old, new):
        for r in plan.replicas:
            for n in [r.node, *r.worker_nodes]:
                for g in r.gpu_indices:
                    out[(n, g)] = GpuSlot(n, g, r.cluster, r.gpu_type)
    return out


class _State:
    def __init__(self, units: list[Unit], floors: dict[tuple[str, str], float], elig: dict[tuple[str, str], set[str]]) -> None:
        self.in_service: dict[str, Unit] = {}
        self.held: dict[str, Unit] = {}
        self.used: dict[tuple[str, int], float] = defaultdict(float)
        self.floors = floors
        self.elig = elig
        self.sources_of: dict[str, list[str]] = defaultdict(list)
        for s, m in sorted(floors):
            self.sources_of[m].append(s)
        for u in units:
            self.hold(u)
            self.in_service[u.uid] = u

    def fits(self, u: Unit) -> bool:
        if u.requires is not None and u.requires not in self.in_service:
            return False
        return all(self.used[g] + u.memory_fraction <= 1.0 + MEM_EPS for g in u.gpus)

    def hold(self, u: Unit) -> None:
        self.held[u.uid] = u
        for g in u.gpus:
            self.used[g] += u.memory_fraction

    def free(self, u: Unit) -> None:
        del self.held[u.uid]
        for g in u.gpus:
            self.used[g] -= u.memory_fraction
            if self.used[g] <= MEM_EPS:
                del self.used[g]

    def flow(self, model: str, without: set[str] = frozenset()) -> tuple[bool, dict[str, tuple[float, float, float]]]:
        """Max-flow for one model. Returns (all floors met, source -> (floor, reachable, assigned))."""
        reps = [
            u for u in self.in_service.values()
            if u.model == model and u.uid not in without and (u.requires is None or (u.requires in self.in_service and u.requires not in without))
        ]
        reps.sort(key=lambda u: u.uid)
        sources = self.sources_of.get(model, [])
        if not sources:
            return True, {}
        smf = max_flow.SimpleMaxFlow()
        S, T = 0, 1
        src_node = {s: 2 + i for i, s in enumerate(sources)}
        rep_node = {u.uid: 2 + len(sources) + i for i, u in enumerate(reps)}
        need = 0
        src_arcs = {}
        reach: dict[str, float] = {}
        for s in sources:
            d = int(round(self.floors[(s, model)] * FLOW_SCALE))
            need += d
            src_arcs[s] = smf.add_arc_with_capacity(S, src_node[s], d)
            clusters = self.elig.get((s, model), set())
            reach[s] = 0.0
            for u in reps:
                if u.cluster in clusters:
                    smf.add_arc_with_capacity(src_node[s], rep_node[u.uid], 10**15)
                    reach[s] += u.capacity_rps
        for u in reps:
            smf.add_arc_with_capacity(rep_node[u.uid], T, int(math.floor(u.capacity_rps * FLOW_SCALE + 1e-6)))
        smf.solve(S, T)
        total = smf.optimal_flow()
        out = {s: (self.floors[(s, model)], reach[s], smf.flow(src_arcs[s]) / FLOW_SCALE) for s in sources}
        return total >= need - len(sources), out

    def feasible(self, without: set[str] = frozenset(), models: set[str] | None = None) -> bool:
        ms = models if models is not None else set(self.sources_of)
        return all(self.flow(m, without)[0] for m in sorted(ms))

    def shortfall(self, without: set[str], model: str) -> str:
        _, pairs = self.flow(model, without)
        for s, (d, _reach, got) in sorted(pairs.items()):
            if got < d - len(pairs) / FLOW_SCALE:
                return f"{s}/{model} would get {got:.3g} of {d:.3g} rps"
        return f"{model} would be short"


# --------------------------------------------------------------------------------------------
# Planning the order
# --------------------------------------------------------------------------------------------


def _floors_and_eligibility(old: Plan, new: Plan) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], set[str]]]:
    served_old = defaultdict(float)
    served_new = defaultdict(float)
    for d in old.demand:
        served_old[(d.source, d.model)] += d.served_rps
    for d in new.demand:
        served_new[(d.source, d.model)] += d.served_rps
    floors = {k: min(served_old.get(k, 0.0), served_new.get(k, 0.0)) for k in set(served_old) | set(served_new)}
    floors = {k: v for k, v in sorted(floors.items()) if v > 0}
    elig: dict[tuple[str, str], set[str]] = defaultdict(set)
    for plan in (old, new):
        cluster_of = {r.id: r.cluster for r in plan.replicas}
        cluster_of.update({f"standby:{s.model}@{s.node}": s.cluster for s in plan.standby})
        for rt in plan.routes:
            c = cluster_of.get(rt.replica)
            if c is not None:
                elig[(rt.source, rt.model)].add(c)
    return floors, dict(elig)


def plan_rollout(old: Plan, new: Plan, inventory: Inventory | None = None, *, old_name: str = "OLD", new_name: str = "NEW") -> Rollout:
    """The ordered steps from OLD to NEW (see the module docstring for the rules)."""
    d = diff_plans(old, new)
    unchanged = []
    for a, b in d.unchanged:  # same engine: count the smaller of the two plans' capacity figures
        u = _unit(b, "both")
        u.capacity_rps = min(a.capacity_rps, b.capacity_rps)
        unchanged.append(u)
    to_remove: list[Unit] = []
    to_add: list[Unit] = []
    for c in d.changes:
        if c.old is not None:
            to_remove.append(_unit(c.old, "old"))
        if c.new is not None:
            to_add.append(_unit(c.new, "new"))
    # uids must be unique across sides (a resized replica may keep its id)
    for u in to_remove:
        u.uid = f"old:{u.uid}"
    uid_old = {a.id: b.id for a, b in d.unchanged} | {u.replica.id: u.uid for u in to_remove if u.replica is not None}
    sb_new = {(x.model, x.cluster, x.node): x for x in new.standby}
    sb_old = {(x.model, x.cluster, x.node): x for x in old.standby}
    for k in sorted(set(sb_old) | set(sb_new)):
        o, n = sb_old.get(k), sb_new.get(k)
        if o is not None and n is not None and uid_old.get(o.slot_replica or "", None) == (n.slot_replica or None):
            u = _standby_unit(n, "both", n.slot_replica)
            u.capacity_rps = min(u.capacity_rps, _standby_unit(o, "old", None).capacity_rps)
            unchanged.append(u)
            continue
        if o is not None:
            u = _standby_unit(o, "old", uid_old.get(o.slot_replica) if o.slot_replica else None)
            u.uid = f"old:{u.uid}"
            to_remove.append(u)
        if n is not None:
            to_add.append(_standby_unit(n, "new", n.slot_replica))
    slots = gpu_slots(old, new, inventory)
    floors, elig = _floors_and_eligibility(old, new)
    st = _State([*unchanged, *to_remove], floors, elig)
    clusters = sorted({u.cluster for u in [*unchanged, *to_remove, *to_add]})
    models = sorted(set(st.sources_of))
    final_use: dict[tuple[str, int], float] = defaultdict(float)  # memory NEW leaves in use on each GPU
    for u in [*to_add, *unchanged]:
        for g in u.gpus:
            final_use[g] += u.memory_fraction

    steps: list[Step] = []

    def record(action: Action, cluster: str = "", units: list[Unit] = (), note: str = "") -> None:
        caps, pairs, ok, margin = [], [], True, None
        for m in models:
            good, per = st.flow(m)
            ok &= good
            caps.append(ModelCapacity(
                model=m,
                capacity_rps=round(math.fsum(u.capacity_rps for u in st.in_service.values() if u.model == m), 6),
                demand_rps=round(math.fsum(v[0] for v in per.values()), 6),
            ))
            for s, (fl, reach, got) in sorted(per.items()):
                pairs.append(PairCapacity(source=s, model=m, demand_rps=round(fl, 6), reachable_rps=round(reach, 6), assigned_rps=round(got, 6)))
                margin = reach - fl if margin is None else min(margin, reach - fl)
        held = len({g for u in st.held.values() for g in u.gpus})
        steps.append(Step(
            index=len(steps), action=action, cluster=cluster, replicas=[u.step_replica() for u in units], note=note, ok=ok,
            min_margin_rps=round(margin, 6) if margin is not None else None, capacity=caps, pairs=pairs, gpus_held=held,
        ))
        steps[-1]._held = list(st.held.values())

    record("start", note=f"{old_name} in force" + ("" if st.feasible() else "; NOTE: OLD itself does not meet the demand floor"))
    pending_add = sorted(to_add, key=lambda u: (u.cluster, u.uid))
    pending_rm = sorted(to_remove, key=lambda u: (u.cluster, u.uid))
    stage_count = 0
    max_stages = len(to_remove) + len(to_add) + 1
    status, reason = "ok", ""

    while pending_add or pending_rm:
        progress = False
        for c in clusters:  # add phase
            batch = []
            for u in pending_add:
                if u.cluster == c and st.fits(u):
                    st.hold(u)
                    st.in_service[u.uid] = u
                    batch.append(u)
            if batch:
                ids = {u.uid for u in batch}
                pending_add = [u for u in pending_add if u.uid not in ids]
                record("add", c, batch, "start engines, wait until ready")
                progress = True
        blocking = {g for u in pending_add for g in u.gpus}
        for c in clusters:  # remove phase: drain, then delete
            cands = [u for u in pending_rm if u.cluster == c]
            cands.sort(key=lambda u: (not any(g in blocking for g in u.gpus), u.side != "stage", u.uid))
            chosen: set[str] = set()
            batch = []
            for u in cands:
                if st.feasible(chosen | {u.uid}, {u.model}):
                    chosen.add(u.uid)
                    batch.append(u)
            if batch:
                for u in batch:
                    del st.in_service[u.uid]
                record("drain", c, batch, "route weight -> 0; in-flight requests finish")
                for u in batch:
                    st.free(u)
                record("delete", c, batch, "stop engines, free GPUs")
                pending_rm = [u for u in pending_rm if u.uid not in chosen]
                progress = True
                break  # freed GPUs: start what now fits before removing anything else
        if progress:
            continue
        # Stuck: stage an OLD replica that holds GPUs a NEW one needs onto spare GPUs.
        staged = False
        explain = []
        for a in pending_add:
            blockers = [u for u in pending_rm if any(g in set(a.gpus) for g in u.gpus)]
            if not blockers:
                holders = sorted({u.uid for u in st.held.values() if any(g in set(a.gpus) for g in u.gpus)})
                explain.append(f"new replica {a.uid} does not fit on {a.place}: its GPUs are held by {', '.join(holders) or 'nothing'} "
                               f"and NEW needs those too (NEW itself over-commits memory there)")
                continue
            for b in blockers:
                spot = None
                if stage_count < max_stages:
                    spot = _find_spot(b, st, slots, final_use, strict=True) or _find_spot(b, st, slots, final_use, strict=False)
                if spot is None:
                    explain.append(
                        f"new replica {a.uid} needs GPUs held by {b.uid}; draining {b.uid} first: {st.shortfall({b.uid}, b.model)}; "
                        f"no spare {b.gpu_type} GPUs in {b.cluster} to stage a copy on"
                    )
                    continue
                node, idx = spot
                uid = f"stage:{b.uid.removeprefix('old:')}@{node}.g{'-'.join(map(str, idx))}"
                if uid in st.in_service or any(u.uid == uid for u in pending_rm):  # staged there before: keep uids unique
                    uid = f"{uid}#{stage_count}"
                t = Unit(
                    uid=uid, model=b.model, cluster=b.cluster,
                    gpu_type=b.gpu_type, gpus=tuple((node, g) for g in idx), memory_fraction=b.memory_fraction,
                    capacity_rps=b.capacity_rps, side="stage", replica=b.replica,
                    place=f"{b.cluster}/{node} g{','.join(map(str, idx))} tp{len(idx)} {b.gpu_type}",
                )
                st.hold(t)
                st.in_service[t.uid] = t
                pending_rm.append(t)
                stage_count += 1
                record("stage-add", b.cluster, [t], f"temporary copy of {b.uid.removeprefix('old:')} so that its GPUs can be freed for {a.uid}")
                staged = True
                break
            if staged:
                break
        if staged:
            continue
        if not pending_add:
            for u in pending_rm:
                explain.append(f"draining {u.uid} would go below demand: {st.shortfall({u.uid}, u.model)} (NEW does not cover the floor with the routes it has)")
        status = "blocked"
        reason = "; ".join(dict.fromkeys(explain)) or "no step can be taken"
        reason += (
            ". Ways out: free GPUs of that type in that cluster (pass --inventory if spare nodes exist), accept the restart in "
            "place during low traffic, or re-plan with a higher --change-weight so that the replica is kept as it is"
        )
        record("blocked", note=reason)
        break

    if status == "ok":
        record("route", note=f"apply {new_name}'s routing table (weights per source and model)")
    counts = {
        "add": sum(len(s.replicas) for s in steps if s.action == "add"),
        "drain": sum(len(s.replicas) for s in steps if s.action == "drain"),
        "delete": sum(len(s.replicas) for s in steps if s.action == "delete"),
        "stage": sum(len(s.replicas) for s in steps if s.action == "stage-add"),
        "unchanged": len(unchanged),
        "steps": len(steps),
    }
    return Rollout(
        status=status, reason=reason, old_plan=old_name, new_plan=new_name, counts=counts,
        peak_gpus=max(s.gpus_held for s in steps), steps=steps,
    )


def _find_spot(
    b: Unit, st: _State, slots: dict[tuple[str, int], GpuSlot], final_use: dict[tuple[str, int], float], *, strict: bool
) -> tuple[str, tuple[int, ...]] | None:
    """Spare GPUs for a temporary copy of `b`: same cluster and GPU type, one node, room for its
    memory fraction now. strict: also room beside everything NEW will run there (the copy can never
    be in NEW's way); otherwise GPUs NEW needs later are borrowed (the copy leaves before them
    once the replica it stands in for is back). Multi-node replicas are not staged."""
    if b.replica is not None and b.replica.worker_nodes:
        return None
    n_gpus = len(b.gpus)
    by_node: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for (node, g), s in sorted(slots.items()):
        if s.cluster != b.cluster or s.gpu_type != b.gpu_type:
            continue
        if st.used.get((node, g), 0.0) + b.memory_fraction > 1.0 + MEM_EPS:
            continue
        later = final_use.get((node, g), 0.0)
        if strict and later + b.memory_fraction > 1.0 + MEM_EPS:
            continue
        by_node[node].append((later, g))
    for node in sorted(by_node, key=lambda n: (sum(x for x, _ in sorted(by_node[n])[:n_gpus]), n)):
        free = sorted(by_node[node])
        if len(free) >= n_gpus:
            return node, tuple(sorted(g for _, g in free[:n_gpus]))
    return None


def rollout_json(r: Rollout) -> dict[str, Any]:
    return r.model_dump(mode="json")
