"""Per-step Kubernetes manifest bundles for a rollout (`maestro-plan rollout OLD NEW --out DIR`).

Each step of the rollout (whatif/rollout.py) leaves a set of engines on the GPUs: the replicas in
service plus those drained but not yet deleted. The manifests of that state are the k8s emitter's
(emit/k8s.py, a pure function of a Plan) run on the intermediate plan holding exactly those
engines. A step's bundle is the difference between the manifests after it and before it:
objects to apply (new or changed) and objects to delete. Starting from OLD's manifests and taking
every step's bundle in order ends with exactly NEW's manifests.

Intermediate plans keep each engine as the plan it comes from has it (an unchanged replica keeps
OLD's figures, a staged copy is the OLD replica on its spare GPUs). Every object carries OLD's plan
id until it has its final (NEW) form: an engine that only NEW has is started in its final form
and is not re-applied later; the last step ("route") re-applies the rest with NEW's plan id.
A drain step changes routing only (the route weights of the routing table), not manifests.
A changed or deleted workload object re-creates its pods: engines that stay in service but run in
such a pod (co-located engines share one pod; pod templates carry the plan id and replica ids)
restart, and plan.txt names them at their step (the rollout's capacity check does not see this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_plan.emit.common import kustomization, to_yaml, write
from maestro_plan.emit.k8s import LABEL_PREFIX, NAMESPACE, build_k8s
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan, Replica, Standby
from maestro_plan.whatif.diff import diff_plans
from maestro_plan.whatif.rollout import Rollout

Objects = dict[tuple[str, str], dict[str, Any]]  # (cluster, file name) -> object


@dataclass
class Bundle:
    index: int
    action: str
    note: str
    apply: Objects = field(default_factory=dict)
    delete: Objects = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)  # engines that stay but whose pod is replaced


    @property
    def folder(self) -> str:
        return f"step-{self.index:02d}-{self.action}"


def _flat(objs: dict[str, dict[str, dict[str, Any]]]) -> Objects:
    return {(c, name): o for c, files in objs.items() for name, o in files.items() if name != "kustomization.yaml"}


def _step_plan(old: Plan, new: Plan, held: list[Any]) -> Plan:
    """The plan holding exactly the engines `held` (rollout Units), each as its own plan has it."""
    d = diff_plans(old, new)
    as_old = {b.id: a for a, b in d.unchanged}
    sb_old = {(s.model, s.cluster, s.node): s for s in old.standby}
    replicas: list[Replica] = []
    standby: list[Standby] = []
    for u in sorted(held, key=lambda u: u.uid):
        if u.standby is not None:
            key = (u.standby.model, u.standby.cluster, u.standby.node)
            standby.append(sb_old[key] if u.side == "both" and key in sb_old else u.standby)
        elif u.side == "stage":
            node = u.gpus[0][0]
            replicas.append(u.replica.model_copy(update={"id": u.uid, "node": node, "gpu_indices": [g for _, g in u.gpus]}))
        else:
            replicas.append(as_old.get(u.replica.id, u.replica) if u.side == "both" else u.replica)
    ids = [r.id for r in replicas]  # a resized replica may keep its id: the OLD engine is told apart
    replicas = [r.model_copy(update={"id": f"old:{r.id}"}) if ids.count(r.id) > 1 and r in old.replicas else r for r in replicas]
    return old.model_copy(update={"replicas": replicas, "standby": standby})


def _state(old: Plan, new: Plan, inputs: Inputs, held: list[Any], final: Objects) -> Objects:
    """The manifests of an intermediate step: an object in its final form where it has reached it,
    otherwise with OLD's plan id."""
    p = _step_plan(old, new, held)
    as_old = _flat(build_k8s(p, inputs))
    as_new = _flat(build_k8s(p.model_copy(update={"plan_id": new.plan_id}), inputs))
    return {k: (as_new[k] if final.get(k) == as_new.get(k) else o) for k, o in as_old.items()}


def build_bundles(old: Plan, new: Plan, inputs: Inputs, rollout: Rollout) -> list[Bundle]:
    """The bundle of every step that changes manifests or routing, in order (see module docstring).
    A blocked rollout gets bundles up to the step that blocks it."""
    cur = _flat(build_k8s(old, inputs))
    final = _flat(build_k8s(new, inputs))
    out: list[Bundle] = []
    for s in rollout.steps[1:]:
        if s.action == "blocked":
            break
        nxt = final if s.action == "route" else _state(old, new, inputs, s._held, final)
        b = Bundle(s.index, s.action, s.note)
        b.apply = {k: o for k, o in nxt.items() if cur.get(k) != o}
        b.delete = {k: o for k, o in cur.items() if k not in nxt}
        b.restarts = sorted(_replica_ids([cur[k] for k in [*b.apply, *b.delete] if k in cur]) & _replica_ids(nxt.values()))
        if b.apply or b.delete or s.action in ("drain", "route"):
            out.append(b)
        cur = nxt
    return out


def _replica_ids(objs: Any) -> set[str]:
    """Replica ids the workload objects run (the emitter's replicas annotation)."""
    key = f"{LABEL_PREFIX}/replicas"
    work = [o for o in objs if o["kind"] in ("Deployment", "LeaderWorkerSet")]
    return {i for o in work for i in o["metadata"].get("annotations", {}).get(key, "").split(",") if i}


def _write_objects(root: Path, rel: str, objs: Objects, head: str) -> list[str]:
    """rel/<cluster>/*.yaml plus a kustomization.yaml per cluster. Returns the cluster folders."""
    folders = []
    for c in sorted({c for c, _ in objs}):
        files = {name: o for (cc, name), o in sorted(objs.items()) if cc == c}
        for name, o in files.items():
            write(root, f"{rel}/{c}/{name}", to_yaml(o, header=head))
        write(root, f"{rel}/{c}/kustomization.yaml", to_yaml(kustomization(files), header=head))
        folders.append(f"{rel}/{c}")
    return folders


def _commands(b: Bundle, out_dir: Path, applied: list[str], deleted: list[str]) -> list[str]:
    def cmd(verb: str, folder: str) -> str:
        return f"kubectl --context {folder.rsplit('/', 1)[1]} {verb} -k {out_dir / folder}"

    ap = [cmd("apply", f) for f in applied]
    de = [cmd("delete", f) for f in deleted]
    return de + ap if b.action == "delete" else ap + de  # a delete step frees GPUs before anything takes them


def write_bundles(old: Plan, new: Plan, inputs: Inputs, rollout: Rollout, stage: Path, out_dir: Path) -> list[str]:
    """Write DIR/step-NN-<action>/{apply,delete}/<cluster>/ and DIR/plan.txt into `stage` (the
    folder that becomes `out_dir`). Returns plan.txt's lines."""
    head = f"Generated by maestro-plan rollout from plan {old.plan_id} to plan {new.plan_id}. Apply the steps in order (plan.txt)."
    lines = [
        f"Rollout from {rollout.old_plan} to {rollout.new_plan}: take the steps in order, each once the one before it is done",
        f"(engines ready, in-flight requests finished). Namespace: {NAMESPACE}. Details of every step: rollout.json.",
        "",
    ]
    for b in build_bundles(old, new, inputs, rollout):
        applied = _write_objects(stage, f"{b.folder}/apply", b.apply, head)
        deleted = _write_objects(stage, f"{b.folder}/delete", b.delete, head)
        lines.append(f"# step {b.index}: {b.action}: {b.note}")
        if b.action in ("drain", "route"):
            lines.append(f"#   routing: {'route weight 0 for the drained replicas (rollout.json)' if b.action == 'drain' else 'apply NEW routing/ (or its LiteLLM/gateway config)'}")
        if b.restarts:  # the emitter runs co-located engines in one pod and stamps pods with the plan id
            lines.append(f"#   restarts these engines that stay in service (their pod is re-created): {', '.join(b.restarts)}")
        lines += _commands(b, out_dir, applied, deleted)
        lines.append("")
    if rollout.status != "ok":
        lines.append(f"# blocked: {rollout.reason}")
    return lines
