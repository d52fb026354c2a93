"""Apply a scenario to the inputs: Inputs -> edited Inputs (pure; the base is never modified).

`apply_scenario` validates first (scenario.validate_scenario), then applies the edits in order.
Edits that depend on the state left by earlier edits (removing more GPUs than remain, removing
every cluster) raise InputError here, still before any solve.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from maestro_plan.errors import Collector, InputError
from maestro_plan.load.loader import check_fleet_size
from maestro_plan.load.schema import Cluster, Inputs, Inventory, NodePool
from maestro_plan.whatif.scenario import (
    AddGpus,
    Remove,
    RemoveGpus,
    ScaleDemand,
    Scenario,
    SetPrice,
    SetSlo,
    validate_scenario,
)


def apply_scenario(inputs: Inputs, scenario: Scenario, *, origin: str | Path = "scenario", prefix: str = "", validate: bool = True) -> Inputs:
    """The inputs with the scenario's edits applied, in order. Raises InputError on bad edits."""
    if validate:
        validate_scenario(scenario, inputs, origin=origin, prefix=prefix)
    out = inputs
    for j, e in enumerate(scenario.edits):
        out = e.apply(out, str(origin), f"{prefix}edits[{j}].{e.kind}")  # each edit owns its apply()
    col = Collector()
    check_fleet_size(out.inventory, str(origin), col)  # added GPUs: bounded before any work
    col.raise_if_any()
    return out


# --------------------------------------------------------------------------------------------
# Demand and SLOs
# --------------------------------------------------------------------------------------------


def scale_demand(inputs: Inputs, e: ScaleDemand) -> Inputs:
    wfs = []
    for w in inputs.workflows:
        if e.workflow is not None and w.name != e.workflow:
            wfs.append(w)
            continue
        arrivals = [
            a.model_copy(update={"rate_per_s": a.rate_per_s * e.factor}) if e.source is None or a.source == e.source else a
            for a in w.arrivals
        ]
        wfs.append(w.model_copy(update={"arrivals": arrivals}))
    return inputs.model_copy(update={"workflows": wfs})


def set_slo(inputs: Inputs, e: SetSlo) -> Inputs:
    wfs = []
    for w in inputs.workflows:
        if e.workflow is not None and w.name != e.workflow:
            wfs.append(w)
            continue
        upd: dict = {}
        if e.latency_ms is not None:
            upd["latency_ms"] = e.latency_ms
        if e.factor is not None:
            upd["latency_ms"] = w.slo.latency_ms * e.factor
        if e.percentile is not None:
            upd["percentile"] = e.percentile
        wfs.append(w.model_copy(update={"slo": w.slo.model_copy(update=upd)}))
    return inputs.model_copy(update={"workflows": wfs})


# --------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------


def _with_clusters(inputs: Inputs, clusters: list[Cluster], origin: str, where: str) -> Inputs:
    if not clusters:
        raise InputError("the scenario removes every node of the fleet; nothing is left to plan on.", file=origin, field=where, hint="remove less.")
    inv = inputs.inventory
    names = {c.name for c in clusters}
    gone = {c.name for c in inv.clusters} - names
    links = [l for l in inv.links if l.a not in gone and l.b not in gone]
    new_inv = inv.model_copy(update={"clusters": clusters, "links": links})
    return inputs.model_copy(update={"inventory": new_inv})


def _rebuild(inputs: Inputs, keep_pool, origin: str, where: str) -> Inputs:
    """Rebuild the cluster list with `keep_pool(cluster, pool) -> NodePool | None`; drop empty clusters."""
    clusters = []
    for c in inputs.inventory.clusters:
        pools = [q for q in (keep_pool(c, p) for p in c.node_pools) if q is not None]
        if pools:
            clusters.append(c.model_copy(update={"node_pools": pools}))
    return _with_clusters(inputs, clusters, origin, where)


def _without_nodes(pool: NodePool, drop: set[str]) -> NodePool | None:
    left = [n for n in pool.node_names if n not in drop]
    if len(left) == pool.node_count:
        return pool
    if not left:
        return None
    if pool.nodes is None and left == pool.node_names[: len(left)]:
        return pool.model_copy(update={"count": len(left)})
    return pool.model_copy(update={"nodes": left, "count": None})


def remove(inputs: Inputs, e: Remove, origin: str, where: str) -> Inputs:
    if e.cluster is not None:
        return _with_clusters(inputs, [c for c in inputs.inventory.clusters if c.name != e.cluster], origin, where)
    if e.zone is not None:
        return _rebuild(inputs, lambda c, p: None if p.zone == e.zone else p, origin, where)
    if e.node_pool is not None:
        return _rebuild(inputs, lambda c, p: None if p.name == e.node_pool else p, origin, where)
    drop = set(e.nodes or [])
    return _rebuild(inputs, lambda c, p: _without_nodes(p, drop), origin, where)


_NAME_BAD = re.compile(r"[^a-z0-9.\-]")


def _pool_name(base: str, taken: set[str]) -> str:
    name = _NAME_BAD.sub("-", base.lower())[:63].strip("-.")
    if name not in taken:
        return name
    for i in range(2, 1000):
        cand = f"{name[:58]}-{i}"
        if cand not in taken:
            return cand
    raise InputError(f"cannot find a free node pool name near '{name}'.")  # pragma: no cover


def _taken_names(inv: Inventory) -> set[str]:
    out = {c.name for c in inv.clusters} | {s.name for s in inv.sources}
    for c in inv.clusters:
        for p in c.node_pools:
            out.add(p.name)
            out.update(p.node_names)
    return out


def add_gpus(inputs: Inputs, e: AddGpus, origin: str, where: str) -> Inputs:
    inv = inputs.inventory
    cluster = next((c for c in inv.clusters if c.name == e.cluster), None)
    if cluster is None:
        raise InputError(f"cluster '{e.cluster}' was removed by an earlier edit.", file=origin, field=f"{where}.cluster")
    same = [p for p in cluster.node_pools if p.gpu_type == e.gpu_type and (e.zone is None or p.zone == e.zone)]
    target = None
    if e.pool is not None:
        target = next((p for p in cluster.node_pools if p.name == e.pool), None)
        if target is not None and target.gpu_type != e.gpu_type:
            raise InputError(f"pool '{e.pool}' holds {target.gpu_type} GPUs, not {e.gpu_type}.", file=origin, field=f"{where}.pool", hint="name another pool, or a new one.")
    elif same and (e.gpus_per_node is None or e.gpus_per_node == same[0].gpus_per_node):
        target = same[0]
    if target is not None:  # grow an existing pool by whole nodes
        gpn = target.gpus_per_node
        if e.count % gpn:
            raise InputError(
                f"pool '{target.name}' has {gpn} GPUs per node; {e.count} GPUs is not a whole number of nodes.",
                file=origin, field=f"{where}.count", hint=f"use a multiple of {gpn} (e.g. {max(gpn, e.count // gpn * gpn)} or {(e.count // gpn + 1) * gpn}).",
            )
        k = e.count // gpn
        if target.nodes is None:
            new_pool = target.model_copy(update={"count": (target.count or 0) + k})
        else:
            taken = _taken_names(inv)
            extra = []
            i = 0
            while len(extra) < k:
                cand = f"{target.name}-whatif-{i:03d}"[:63]
                if cand not in taken:
                    extra.append(cand)
                i += 1
            new_pool = target.model_copy(update={"nodes": [*target.nodes, *extra]})
        pools = [new_pool if p.name == target.name else p for p in cluster.node_pools]
    else:  # a new pool; shape from a pool of that GPU type elsewhere, or from the edit
        template = next((p for c in [cluster, *inv.clusters] for p in c.node_pools if p.gpu_type == e.gpu_type), None)
        gpn = e.gpus_per_node or (template.gpus_per_node if template else None)
        dram = e.host_dram_gib or (template.host_dram_gib if template else None)
        if gpn is None or dram is None:
            raise InputError(
                f"the fleet has no {e.gpu_type} node to copy the node shape from.", file=origin, field=where,
                hint="give gpus_per_node and host_dram_gib (from the instance type's specification).",
            )
        if e.count % gpn:
            raise InputError(
                f"{e.count} GPUs is not a whole number of {gpn}-GPU nodes.", file=origin, field=f"{where}.count",
                hint=f"use a multiple of {gpn}, or set gpus_per_node.",
            )
        zone = e.zone or (template.zone if template is not None and template in cluster.node_pools else cluster.node_pools[0].zone)
        interconnect = e.interconnect or (template.interconnect.value if template else ("nvlink" if gpn > 1 else "pcie"))
        name = e.pool or _pool_name(f"whatif-{e.gpu_type}-{e.cluster}", _taken_names(inv))
        new_pool = NodePool(
            name=name, zone=zone, gpu_type=e.gpu_type, gpus_per_node=gpn, count=e.count // gpn, host_dram_gib=dram,
            interconnect=interconnect, labels=dict(template.labels) if template else {},
            price_per_gpu_hour=e.price_per_gpu_hour,
        )
        pools = [*cluster.node_pools, new_pool]
    if e.price_per_gpu_hour is not None and target is not None:
        pools = [p.model_copy(update={"price_per_gpu_hour": e.price_per_gpu_hour}) if p.name == target.name else p for p in pools]
    clusters = [c.model_copy(update={"node_pools": pools}) if c.name == e.cluster else c for c in inv.clusters]
    return _with_clusters(inputs, clusters, origin, where)


def remove_gpus(inputs: Inputs, e: RemoveGpus, origin: str, where: str) -> Inputs:
    inv = inputs.inventory
    cluster = next((c for c in inv.clusters if c.name == e.cluster), None)
    if cluster is None:
        raise InputError(f"cluster '{e.cluster}' was removed by an earlier edit.", file=origin, field=f"{where}.cluster")
    pools = [p for p in cluster.node_pools if p.gpu_type == e.gpu_type]
    have = sum(p.gpus_per_node * p.node_count for p in pools)
    if e.count > have:
        raise InputError(f"cluster '{e.cluster}' has {have} {e.gpu_type} GPUs; cannot remove {e.count}.", file=origin, field=f"{where}.count",
                         hint=f"remove at most {have}, or remove the whole cluster.")
    left = e.count
    drop: set[str] = set()
    for p in reversed(pools):
        for n in reversed(p.node_names):
            if left >= p.gpus_per_node:
                drop.add(n)
                left -= p.gpus_per_node
        if left == 0:
            break
    if left:
        sizes = sorted({p.gpus_per_node for p in pools})
        raise InputError(
            f"{e.count} {e.gpu_type} GPUs is not a whole number of nodes in '{e.cluster}' (nodes hold {', '.join(map(str, sizes))} GPUs).",
            file=origin, field=f"{where}.count", hint=f"use {e.count - left} (whole nodes), or another count.",
        )
    return _rebuild(inputs, lambda c, p: _without_nodes(p, drop) if c.name == e.cluster else p, origin, where)


def set_price(inputs: Inputs, e: SetPrice) -> Inputs:
    default = inputs.gpu_types[e.gpu_type].price_per_gpu_hour

    def edit(c: Cluster, p: NodePool) -> NodePool:
        if p.gpu_type != e.gpu_type or (e.cluster is not None and c.name != e.cluster):
            return p
        now = p.price_per_gpu_hour if p.price_per_gpu_hour is not None else default
        new = e.price_per_gpu_hour if e.price_per_gpu_hour is not None else now * (e.factor or 1.0)
        assert math.isfinite(new)
        return p.model_copy(update={"price_per_gpu_hour": new})

    clusters = [c.model_copy(update={"node_pools": [edit(c, p) for p in c.node_pools]}) for c in inputs.inventory.clusters]
    inputs = inputs.model_copy(update={"inventory": inputs.inventory.model_copy(update={"clusters": clusters})})
    if e.cluster is None:  # pools added later (add_gpus) take the type's price: change it too
        g = inputs.gpu_types[e.gpu_type]
        price = e.price_per_gpu_hour if e.price_per_gpu_hour is not None else g.price_per_gpu_hour * (e.factor or 1.0)
        inputs = inputs.model_copy(update={"gpu_types": {**inputs.gpu_types, e.gpu_type: g.model_copy(update={"price_per_gpu_hour": price})}})
    return inputs


def pool_price(inputs: Inputs, pool: NodePool) -> float:
    """USD per GPU-hour of a pool: its override, else its GPU type's default."""
    return pool.price_per_gpu_hour if pool.price_per_gpu_hour is not None else inputs.gpu_types[pool.gpu_type].price_per_gpu_hour


def fleet_gpus(inputs: Inputs) -> dict[str, int]:
    """GPU type -> GPUs in the fleet."""
    out: dict[str, int] = {}
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            out[p.gpu_type] = out.get(p.gpu_type, 0) + p.gpus_per_node * p.node_count
    return dict(sorted(out.items()))
