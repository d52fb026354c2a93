"""Plan <-> inputs cross-checks of the emitters: every name the plan references exists in the inputs,
and every plan string that reaches a manifest, a label or a container's shell script is safe."""

from __future__ import annotations

import re
from pathlib import Path

from maestro_plan.emit.common import node_index, standby_ref
from maestro_plan.errors import Collector, unknown_name_hint
from maestro_plan.load.schema import Inputs
from maestro_plan.plan.schema import Plan


def check_plan_matches(plan: Plan, inputs: Inputs, plan_file: str | Path | None = None) -> None:
    """Every name the plan references must exist in the inputs; otherwise InputError (exit 2).

    Catches a model or node renamed (or removed) since the plan was solved, a GPU type or pool
    that changed, GPU indices beyond a node's GPUs, and routes to replicas that do not exist.
    """
    col = Collector()
    f = str(plan_file) if plan_file is not None else "plan.json"
    check_shell_safe_names(plan, col, f)
    inv = inputs.inventory
    clusters = {c.name: c for c in inv.clusters}
    sources = {s.name for s in inv.sources}
    nodes = node_index(inputs)
    hint_inputs = "re-solve with the current inputs ('maestro-plan solve'), or pass the inputs the plan was made from."
    for i, r in enumerate(plan.replicas):
        where = f"replicas[{i}]"
        if r.model not in inputs.models:
            col.add(f"replica '{r.id}' runs model '{r.model}', which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(r.model, inputs.models, "models") + " " + hint_inputs)
        if r.cluster not in clusters:
            col.add(f"replica '{r.id}' is in cluster '{r.cluster}', which is not in inventory '{inv.name}'.", file=f, field=f"{where}.cluster",
                    hint=unknown_name_hint(r.cluster, clusters, "clusters") + " " + hint_inputs)
            continue
        info = nodes.get(r.node)
        if info is None or info.cluster.name != r.cluster:
            in_cluster = [n for n, v in nodes.items() if v.cluster.name == r.cluster]
            col.add(f"replica '{r.id}' is on node '{r.node}', which is not a node of cluster '{r.cluster}'.", file=f, field=f"{where}.node",
                    hint=unknown_name_hint(r.node, in_cluster, "nodes") + " " + hint_inputs)
            continue
        if info.pool.name != r.node_pool:
            col.add(f"replica '{r.id}' says node pool '{r.node_pool}', but node '{r.node}' is in pool '{info.pool.name}'.", file=f, field=f"{where}.node_pool", hint=hint_inputs)
        if info.pool.gpu_type != r.gpu_type:
            col.add(f"replica '{r.id}' says GPU type '{r.gpu_type}', but node '{r.node}' has '{info.pool.gpu_type}'.", file=f, field=f"{where}.gpu_type", hint=hint_inputs)
        if info.pool.zone != r.zone:
            col.add(f"replica '{r.id}' says zone '{r.zone}', but node '{r.node}' is in zone '{info.pool.zone}'.", file=f, field=f"{where}.zone", hint=hint_inputs)
        bad = [g for g in r.gpu_indices if g < 0 or g >= info.pool.gpus_per_node]
        if bad:
            col.add(f"replica '{r.id}' uses GPU indices {bad}, but node '{r.node}' has {info.pool.gpus_per_node} GPUs (0..{info.pool.gpus_per_node - 1}).", file=f, field=f"{where}.gpu_indices", hint=hint_inputs)
        if len(set(r.gpu_indices)) != r.tp:
            col.add(f"replica '{r.id}' has tp {r.tp} but {len(set(r.gpu_indices))} distinct GPU indices.", file=f, field=f"{where}.gpu_indices", hint="a replica uses exactly tp GPUs.")
        if r.model in inputs.models and r.tp not in inputs.models[r.model].tp_degrees:
            col.add(f"replica '{r.id}' runs '{r.model}' at TP {r.tp}, which the catalogue no longer allows ({inputs.models[r.model].tp_degrees}).", file=f, field=f"{where}.tp", hint=hint_inputs)
    for i, r in enumerate(plan.replicas):
        for k, wn in enumerate(r.worker_nodes):
            info = nodes.get(wn)
            if info is None or info.cluster.name != r.cluster or info.pool.gpu_type != r.gpu_type:
                col.add(f"replica '{r.id}' spans node '{wn}', which is not a '{r.gpu_type}' node of cluster '{r.cluster}'.", file=f,
                        field=f"replicas[{i}].worker_nodes[{k}]", hint=hint_inputs)
        if r.node in r.worker_nodes or len(set(r.worker_nodes)) != len(r.worker_nodes):
            col.add(f"replica '{r.id}' lists a node twice in node/worker_nodes.", file=f, field=f"replicas[{i}].worker_nodes", hint="each stage runs on its own node.")
    ids = [r.id for r in plan.replicas]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        col.add(f"replica ids repeat: {dup}.", file=f, field="replicas[].id", hint="replica ids must be unique.")
    for i, s in enumerate(plan.standby):
        where = f"standby[{i}]"
        if s.model not in inputs.models:
            col.add(f"standby keeps model '{s.model}' warm, which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(s.model, inputs.models, "models") + " " + hint_inputs)
        info = nodes.get(s.node)
        if info is None or info.cluster.name != s.cluster:
            col.add(f"standby of '{s.model}' is on node '{s.node}', which is not a node of cluster '{s.cluster}'.", file=f, field=f"{where}.node",
                    hint=unknown_name_hint(s.node, nodes, "nodes") + " " + hint_inputs)
        slot = next((r for r in plan.replicas if r.id == s.slot_replica), None)
        if slot is None or s.model not in slot.swap_models or slot.node != s.node:
            col.add(f"standby of '{s.model}' on node '{s.node}' names swap slot {s.slot_replica!r}, which is not a replica of the plan on that node "
                    "whose swap_models list the model; a standby engine needs the GPUs of its slot to wake up on.", file=f, field=f"{where}.slot_replica",
                    hint="re-solve with this version of maestro-plan (every standby then names its swap slot).")
    known = set(ids) | {standby_ref(s) for s in plan.standby}
    for i, rt in enumerate(plan.routes):
        where = f"routes[{i}]"
        if rt.source not in sources:
            col.add(f"route from source '{rt.source}', which is not in inventory '{inv.name}'.", file=f, field=f"{where}.source",
                    hint=unknown_name_hint(rt.source, sources, "sources") + " " + hint_inputs)
        if rt.model not in inputs.models:
            col.add(f"route for model '{rt.model}', which is not in the model catalogue.", file=f, field=f"{where}.model",
                    hint=unknown_name_hint(rt.model, inputs.models, "models") + " " + hint_inputs)
        if rt.replica not in known:
            col.add(f"route points at replica '{rt.replica}', which the plan does not have.", file=f, field=f"{where}.replica", hint="the plan is inconsistent; re-solve.")
    for i, d in enumerate(plan.demand):
        if d.model not in inputs.models:
            col.add(f"demand for model '{d.model}', which is not in the model catalogue.", file=f, field=f"demand[{i}].model",
                    hint=unknown_name_hint(d.model, inputs.models, "models") + " " + hint_inputs)
        if d.source not in sources:
            col.add(f"demand from source '{d.source}', which is not in inventory '{inv.name}'.", file=f, field=f"demand[{i}].source",
                    hint=unknown_name_hint(d.source, sources, "sources") + " " + hint_inputs)
    col.raise_if_any()


SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,252}$")
"""What a plan string may look like before it reaches a manifest, a shell script or a label: letters,
digits and . _ : @ / + - (no spaces, quotes, newlines or shell metacharacters), at most 253 characters.
Plans can come from anyone (a CI artifact, a colleague), so this is checked, and the scripts still
shlex.quote every value they interpolate."""


def check_shell_safe_names(plan: Plan, col: Collector, f: str) -> None:
    """Every id and name of the plan that an emitter writes into a manifest or a script must be SAFE_ID."""
    fields: list[tuple[str, str]] = []
    for i, r in enumerate(plan.replicas):
        fields += [(f"replicas[{i}].{k}", getattr(r, k)) for k in ("id", "model", "cluster", "zone", "node_pool", "node", "gpu_type")]
        fields += [(f"replicas[{i}].worker_nodes[{k}]", n) for k, n in enumerate(r.worker_nodes)]
        fields += [(f"replicas[{i}].swap_models[{k}]", n) for k, n in enumerate(r.swap_models)]
        fields += [(f"replicas[{i}].roles[{k}]", n) for k, n in enumerate(r.roles)]
    for i, sb in enumerate(plan.standby):
        fields += [(f"standby[{i}].{k}", getattr(sb, k)) for k in ("model", "cluster", "node")]
        if sb.slot_replica is not None:
            fields.append((f"standby[{i}].slot_replica", sb.slot_replica))
    for i, rt in enumerate(plan.routes):
        fields += [(f"routes[{i}].{k}", getattr(rt, k)) for k in ("source", "model", "replica")]
    for name, value in fields:
        if not SAFE_ID.match(value):
            col.add(f"{name} is {value!r}, which is not a safe identifier (it would reach a container's shell script or a label).",
                    file=f, field=name, hint="ids use letters, digits and . _ : @ / + - only (no spaces, quotes or newlines); re-solve to get a clean plan.")


