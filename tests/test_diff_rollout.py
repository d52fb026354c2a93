"""Plan diff and ordered rollout on hand-made plans: the identity rule, the cost delta, staging
through spare GPUs, a blocked rollout that says why, and a property test that no step of a rollout
ever leaves a (source, model) demand unserved (checked with Hall's condition, independent of the
max-flow the rollout uses)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.load.schema import Inventory
from maestro_plan.plan.io import write_plan
from maestro_plan.plan.schema import Demand, InputDigest, Plan, Replica, Route, Settings, SolveInfo
from maestro_plan.whatif.diff import diff_plans, replica_key
from maestro_plan.whatif.rollout import plan_rollout

PRICE = 4.0  # USD per GPU-hour of the made-up GPU type of these tests


def rep(model: str, node: str, idx: list[int], *, cluster: str = "c1", tp: int | None = None, cap: float = 10.0, mem: float = 0.9,
        seqs: int = 32, rid: str | None = None, gpu: str = "h100-sxm") -> Replica:
    tp = tp or len(idx)
    return Replica(
        id=rid or f"{model}.{cluster}.{node}.g{'-'.join(map(str, idx))}", model=model, cluster=cluster, zone=f"{cluster}-a",
        node_pool=f"{cluster}-pool", node=node, gpu_type=gpu, gpu_indices=idx, tp=tp, memory_fraction=mem,
        weights_bytes_per_gpu=1, kv_cache_bytes_per_gpu=1, overhead_bytes_per_gpu=1, max_model_len=8192, max_num_seqs=seqs,
        kv_tokens=1000, capacity_rps=cap, price_per_hour=PRICE * len(idx) * mem,
    )


def mk_plan(replicas: list[Replica], demand: dict[tuple[str, str], float], elig: dict[tuple[str, str], list[str]] | None = None) -> Plan:
    """A plan with routes from each source to the replicas of the model in its eligible clusters
    (all clusters when not given), split in proportion to capacity."""
    routes = []
    for (s, m), rate in sorted(demand.items()):
        cl = (elig or {}).get((s, m))
        reps = [r for r in replicas if r.model == m and (cl is None or r.cluster in cl)]
        total = sum(r.capacity_rps for r in reps)
        for r in reps:
            frac = r.capacity_rps / total if total else 0
            routes.append(Route(source=s, model=m, replica=r.id, fraction=frac, rate_rps=rate * frac, network_latency_ms=1.0))
    gpus: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in replicas:
        gpus[r.cluster][r.gpu_type] += len(r.gpu_indices)
    return Plan(
        plan_id="test", generator="test",
        inputs=InputDigest(inventory_name="t", inventory_sha256="0", models_sha256="0", workloads_sha256="0", models=[], workflows=[]),
        settings=Settings(), solve=SolveInfo(status="optimal"),
        cost_per_hour=round(sum(r.price_per_hour for r in replicas), 6),
        gpus_used={c: dict(t) for c, t in gpus.items()}, replicas=replicas, routes=routes,
        demand=[Demand(source=s, model=m, rate_rps=v, priority="interactive", latency_budget_ms=1000, mean_input_tokens=100,
                       mean_output_tokens=100, served_rps=v) for (s, m), v in sorted(demand.items())],
    )


def inventory(nodes: dict[str, tuple[str, int]]) -> Inventory:
    """nodes: name -> (cluster, GPUs); every node is h100-sxm."""
    clusters = defaultdict(list)
    for n, (c, g) in sorted(nodes.items()):
        clusters[c].append({"name": f"{n}-pool", "zone": f"{c}-a", "gpu_type": "h100-sxm", "gpus_per_node": g, "nodes": [n], "host_dram_gib": 100})
    return Inventory.model_validate({"name": "t", "clusters": [{"name": c, "region": c, "node_pools": p} for c, p in sorted(clusters.items())]})


# --------------------------------------------------------------------------------------------
# Diff
# --------------------------------------------------------------------------------------------


def test_diff_identity_rule_added_removed_moved_resized() -> None:
    a = rep("m1", "n1", [0])
    b = rep("m1", "n1", [1])
    c = rep("m2", "n2", [0, 1], cap=20)
    old = mk_plan([a, b, c], {("s", "m1"): 15, ("s", "m2"): 10})
    a2 = rep("m1", "n1", [0], rid="renamed-by-solver")  # same key, new id: unchanged
    b2 = rep("m1", "n1", [1], seqs=64, mem=0.95)  # same key, new engine settings: resized
    c2 = rep("m2", "n3", [0, 1], cap=20)  # same model elsewhere: moved
    d2 = rep("m3", "n3", [2])  # new model: added
    new = mk_plan([a2, b2, c2, d2], {("s", "m1"): 15, ("s", "m2"): 10, ("s", "m3"): 5})
    d = diff_plans(old, new)
    kinds = sorted((ch.kind, ch.model) for ch in d.changes)
    assert kinds == [("added", "m3"), ("moved", "m2"), ("resized", "m1")]
    assert [(x.id, y.id) for x, y in d.unchanged] == [(a.id, "renamed-by-solver")]
    resized = next(ch for ch in d.changes if ch.kind == "resized")
    assert set(resized.fields) == {"memory_fraction", "max_num_seqs"}
    assert d.cost_delta == pytest.approx(new.cost_per_hour - old.cost_per_hour)
    assert d.cost_delta == pytest.approx(PRICE * (0.95 - 0.9) + PRICE * 0.9)
    assert d.replicas_touched == 3
    text = d.render()
    assert "+ m3" in text and "~ m2" in text and "(moved)" in text and "max_num_seqs 32 -> 64" in text
    j = d.to_json()
    assert j["counts"]["added"] == 1 and j["counts"]["unchanged"] == 1
    assert replica_key(a) == ("m1", "c1", "n1", (0,), 1)


def test_diff_removed_and_identical() -> None:
    a = rep("m1", "n1", [0])
    b = rep("m1", "n2", [0])
    old = mk_plan([a, b], {("s", "m1"): 5})
    assert diff_plans(old, old).changes == []
    new = mk_plan([a], {("s", "m1"): 5})
    d = diff_plans(old, new)
    assert [(c.op, c.kind) for c in d.changes] == [("-", "removed")]
    assert d.gpus_delta == {"c1": {"h100-sxm": -1}}


# --------------------------------------------------------------------------------------------
# Rollout
# --------------------------------------------------------------------------------------------


def test_rollout_adds_before_removing_and_drains_before_delete() -> None:
    old = mk_plan([rep("m1", "n1", [0]), rep("m1", "n1", [1])], {("s", "m1"): 15})
    new = mk_plan([rep("m1", "n2", [0]), rep("m1", "n2", [1])], {("s", "m1"): 15})
    r = plan_rollout(old, new)
    assert r.status == "ok"
    actions = [s.action for s in r.steps]
    assert actions == ["start", "add", "drain", "delete", "route"]
    assert all(s.ok for s in r.steps)
    assert r.steps[1].capacity[0].capacity_rps == 40.0  # both generations serve during the change
    assert r.peak_gpus == 4


def test_rollout_keeps_a_needed_replica_until_its_replacement_serves() -> None:
    # m1 needs 15 rps: one of the two old replicas can go at once, the other only after the new one starts
    old = mk_plan([rep("m1", "n1", [0]), rep("m1", "n1", [1])], {("s", "m1"): 15})
    new = mk_plan([rep("m1", "n1", [0]), rep("m1", "n1", [1], seqs=64, cap=12)], {("s", "m1"): 15})
    inv = inventory({"n1": ("c1", 2)})
    r = plan_rollout(old, new, inv)
    # the resized replica on g1 must free its GPU; removing it leaves 10 < 15 and no spare GPU exists
    assert r.status == "blocked"
    assert "no spare h100-sxm GPUs in c1" in r.reason and "s/m1 would get 10 of 15 rps" in r.reason
    # with a spare GPU, the old engine is staged there, then replaced in place
    inv2 = inventory({"n1": ("c1", 2), "n9": ("c1", 1)})
    r2 = plan_rollout(old, new, inv2)
    assert r2.status == "ok", r2.reason
    acts = [(s.action, [x.side for x in s.replicas]) for s in r2.steps]
    assert acts[1] == ("stage-add", ["stage"])
    assert ("add", ["new"]) in acts
    assert all(s.ok for s in r2.steps)
    assert r2.steps[-1].capacity[0].capacity_rps == 22.0
    assert r2.counts["stage"] == 1


def test_rollout_respects_source_eligibility() -> None:
    # s-east may only use c1; moving its capacity to c2 would strand it
    old = mk_plan([rep("m1", "a1", [0], cluster="c1")], {("s-east", "m1"): 5}, {("s-east", "m1"): ["c1"]})
    new = mk_plan([rep("m1", "a2", [0], cluster="c1")], {("s-east", "m1"): 5}, {("s-east", "m1"): ["c1"]})
    r = plan_rollout(old, new)
    assert r.status == "ok" and all(s.ok for s in r.steps)
    # a plan that serves s-east from c2 only is a NEW that s-east can't use under OLD's routes: still safe,
    # because NEW's own routes make c2 eligible
    new2 = mk_plan([rep("m1", "b1", [0], cluster="c2")], {("s-east", "m1"): 5}, {("s-east", "m1"): ["c2"]})
    r2 = plan_rollout(old, new2)
    assert r2.status == "ok" and all(s.ok for s in r2.steps)
    assert {s.cluster for s in r2.steps if s.action == "add"} == {"c2"}
    assert {s.cluster for s in r2.steps if s.action == "delete"} == {"c1"}


def _hall_ok(step_units: dict[str, tuple[str, str, float]], floors: dict[tuple[str, str], float], elig: dict[tuple[str, str], set[str]]) -> bool:
    """Independent check (Hall's condition for a transportation problem): for every model and every
    subset of its sources, their summed demand fits in the capacity of replicas any of them may use."""
    by_model = defaultdict(list)
    for s, m in floors:
        by_model[m].append(s)
    for m, srcs in by_model.items():
        for k in range(1, len(srcs) + 1):
            for sub in itertools.combinations(srcs, k):
                need = sum(floors[(s, m)] for s in sub)
                clusters = set().union(*(elig.get((s, m), set()) for s in sub))
                have = sum(cap for (mm, cl, cap) in step_units.values() if mm == m and cl in clusters)
                if need > have + 1e-4:
                    return False
    return True


NODES = [("c1", "n1"), ("c1", "n2"), ("c2", "n3"), ("c2", "n4")]
GPUS_PER_NODE = 2


@st.composite
def plan_pair(draw):
    models = ["m1", "m2"]
    sources = ["s1", "s2"]

    def draw_replicas(tag: str) -> list[Replica]:
        out = []
        for cl, node in NODES:
            for g in range(GPUS_PER_NODE):
                choice = draw(st.sampled_from(["none", "m1", "m2", "share"]))
                if choice in ("m1", "m2"):
                    seqs = draw(st.sampled_from([32, 64]))  # the engine settings determine the capacity
                    out.append(rep(choice, node, [g], cluster=cl, cap=4.0 if seqs == 32 else 10.0, mem=0.9, seqs=seqs))
                elif choice == "share":  # two engines on one GPU
                    out.append(rep("m1", node, [g], cluster=cl, cap=3.0, mem=0.45))
                    out.append(rep("m2", node, [g], cluster=cl, cap=3.0, mem=0.45))
        return out

    old_r, new_r = draw_replicas("old"), draw_replicas("new")
    elig_old = {(s, m): set(draw(st.sets(st.sampled_from(["c1", "c2"]), min_size=1))) for s in sources for m in models}
    elig_new = {(s, m): set(draw(st.sets(st.sampled_from(["c1", "c2"]), min_size=1))) for s in sources for m in models}
    # demand: a fraction of what each plan can give each source alone, then checked jointly below
    demand = {}
    for s in sources:
        for m in models:
            frac = draw(st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.9, 1.0]))
            cap_old = sum(r.capacity_rps for r in old_r if r.model == m and r.cluster in elig_old[(s, m)])
            cap_new = sum(r.capacity_rps for r in new_r if r.model == m and r.cluster in elig_new[(s, m)])
            v = round(frac * min(cap_old, cap_new), 3)
            if v > 0:
                demand[(s, m)] = v
    return old_r, new_r, elig_old, elig_new, demand


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_pair(), st.booleans())
def test_rollout_never_below_demand(pp, with_spare: bool) -> None:
    old_r, new_r, elig_old, elig_new, demand = pp
    old = mk_plan(old_r, demand, {k: sorted(v) for k, v in elig_old.items()})
    new = mk_plan(new_r, demand, {k: sorted(v) for k, v in elig_new.items()})
    # a source may use a model's replicas in the clusters its routes land in, in either plan
    elig: dict[tuple[str, str], set[str]] = {}
    for plan in (old, new):
        cl = {x.id: x.cluster for x in plan.replicas}
        for rt in plan.routes:
            elig.setdefault((rt.source, rt.model), set()).add(cl[rt.replica])
    cap = lambda reps: {x.id: (x.model, x.cluster, x.capacity_rps) for x in reps}  # noqa: E731
    if not (_hall_ok(cap(old.replicas), demand, elig) and _hall_ok(cap(new.replicas), demand, elig)):
        event("skipped: a plan cannot serve the drawn demand")
        return  # a demand one of the plans cannot serve jointly: not a valid pair of plans
    nodes = {n: (c, GPUS_PER_NODE) for c, n in NODES}
    if with_spare:
        nodes.update({"spare1": ("c1", 1), "spare2": ("c2", 1)})
    r = plan_rollout(old, new, inventory(nodes))
    event(f"status={r.status}, staged={r.counts['stage'] > 0}")

    # Replay the steps independently: who serves, GPU memory, demand at every step.
    d = diff_plans(old, new)
    new_by_id = {x.id: x for x in new.replicas}
    where: dict[str, tuple[list[tuple[str, int]], float, tuple[str, str, float]]] = {}
    for _a, b in d.unchanged:
        where[b.id] = ([(b.node, g) for g in b.gpu_indices], b.memory_fraction, (b.model, b.cluster, b.capacity_rps))
    for c in d.changes:
        if c.old is not None:
            o = c.old
            where[f"old:{o.id}"] = ([(o.node, g) for g in o.gpu_indices], o.memory_fraction, (o.model, o.cluster, o.capacity_rps))
    in_service = {k: v[2] for k, v in where.items()}
    held = set(where)
    pending_new = {c.new.id for c in d.changes if c.new is not None}
    drained: set[str] = set()

    def mem() -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = defaultdict(float)
        for k in held:
            for gg in where[k][0]:
                out[gg] += where[k][1]
        return out

    for s in r.steps:
        if s.action == "drain":  # add before remove: nothing that could start now was left waiting
            used = mem()
            for nid in pending_new:
                x = new_by_id[nid]
                assert any(used[(x.node, g)] + x.memory_fraction > 1 + 1e-6 for g in x.gpu_indices), f"{nid} could start before step {s.index}"
        for x in s.replicas:
            if s.action in ("add", "stage-add"):
                if s.action == "add":
                    nx = new_by_id[x.id]
                    where[x.id] = ([(nx.node, g) for g in nx.gpu_indices], nx.memory_fraction, (nx.model, nx.cluster, nx.capacity_rps))
                    pending_new.discard(x.id)
                else:
                    node, idx = _slot_of(x.place)
                    src = next(o for o in old.replicas if o.id == x.id.removeprefix("stage:").split("@")[0])
                    assert src.model == x.model and src.cluster == s.cluster
                    where[x.id] = ([(node, g) for g in idx], src.memory_fraction, (src.model, src.cluster, src.capacity_rps))
                held.add(x.id)
                in_service[x.id] = where[x.id][2]
            elif s.action == "drain":
                del in_service[x.id]
                drained.add(x.id)
            elif s.action == "delete":
                assert x.id in drained, "deleted before drained"
                held.discard(x.id)
        assert all(v <= 1.0 + 1e-6 for v in mem().values()), f"GPU memory over-committed at step {s.index}"
        assert _hall_ok(in_service, demand, elig), f"below demand after step {s.index} ({s.action})"
        assert s.ok
    if r.status == "ok":
        assert sorted(in_service) == sorted(x.id for x in new.replicas)
        assert held == set(in_service)
    else:
        assert r.reason and r.steps[-1].action == "blocked"


def _slot_of(place: str) -> tuple[str, list[int]]:
    node = place.split(" ")[0].split("/")[1].split("+")[0]
    idx = place.split(" ")[1][1:]
    if "-" in idx:
        a, b = idx.split("-")
        return node, list(range(int(a), int(b) + 1))
    return node, [int(i) for i in idx.split(",")]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_diff_and_rollout(tmp_path: Path) -> None:
    old = mk_plan([rep("m1", "n1", [0]), rep("m1", "n1", [1])], {("s", "m1"): 15})
    new = mk_plan([rep("m1", "n2", [0]), rep("m1", "n1", [1])], {("s", "m1"): 15})
    write_plan(old, tmp_path / "old.json")
    write_plan(new, tmp_path / "new.json")
    runner = CliRunner()
    res = runner.invoke(app, ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert res.exit_code == 0, res.output
    assert "~ m1" in res.output and "(moved)" in res.output and "1 unchanged" in res.output
    res = runner.invoke(app, ["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["counts"]["moved"] == 1
    out = tmp_path / "rollout.json"
    res = runner.invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["status"] == "ok" and [s["action"] for s in doc["steps"]] == ["start", "add", "drain", "delete", "route"]
    res = runner.invoke(app, ["diff", str(tmp_path / "old.json"), str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "does not exist" in res.output
    # a resize in place with no spare GPU: blocked (exit 1), the reason written; a spare node in the inventory unblocks it
    write_plan(mk_plan([rep("m1", "n1", [0]), rep("m1", "n1", [1], seqs=64)], {("s", "m1"): 15}), tmp_path / "resized.json")
    res = runner.invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "resized.json"), "--out", str(out)])
    assert res.exit_code == 1 and json.loads(out.read_text())["status"] == "blocked"
    assert "no spare h100-sxm GPUs in c1" in json.loads(out.read_text())["reason"]
    inv = inventory({"n1": ("c1", 2), "n9": ("c1", 1)}).model_dump(mode="json", exclude_none=True)
    (tmp_path / "inv.json").write_text(json.dumps(inv))
    res = runner.invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "resized.json"), "--inventory", str(tmp_path / "inv.json")])
    assert res.exit_code == 0, res.output
    assert "stage-add" in res.output
    (tmp_path / "other.json").write_text(json.dumps({**inv, "name": "other-fleet"}))
    res = runner.invoke(app, ["rollout", str(tmp_path / "old.json"), str(tmp_path / "resized.json"), "--inventory", str(tmp_path / "other.json")])
    assert res.exit_code == 2 and "not the one the plans were made from" in res.output
