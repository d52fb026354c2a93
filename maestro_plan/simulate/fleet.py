"""The planned fleet as the simulator sees it: one engine per plan replica (and per warm standby),
and the routing table, checked against the inputs.

A plan that does not belong to the inputs (a model, GPU type or workflow the inputs lack, a route
to a replica the plan does not list, a route whose model differs from its replica's) is bad input:
InputError (exit 2) naming the plan file, the field and the fix.

Warm standby (`standby:<model>@<node>` routes): an engine of the model on the node's GPU type at
the smallest allowed TP whose weights fit (the estimator's replica_memory), with the KV pool vLLM
would give it at its default memory fraction and vLLM's default --max-num-seqs. It is cold until a
call arrives, then pays the plan's cold_start_ms before serving; after `standby_idle_s` without
work it is unloaded again (default 60 s: the Knative Pod Autoscaler's default stable window,
knative.dev/docs/serving/autoscaling, `stable-window: 60s`, the usual way such models scale to zero).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from maestro_plan.errors import InputError, Problem
from maestro_plan.estimate import VLLM, replica_memory
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec
from maestro_plan.plan.schema import Plan

STANDBY_PREFIX = "standby:"


@dataclass
class EngineConfig:
    """One vLLM engine to simulate."""

    id: str
    model: ModelSpec
    gpu: GpuType
    tp: int
    compute_share: float
    kv_tokens: int
    max_num_seqs: int
    max_model_len: int
    max_num_batched_tokens: int
    gpus: float  # GPUs it occupies (share of co-located GPUs counted by compute_share)
    price_per_hour: float
    kv_bytes_per_gpu: int
    priority: str = "interactive"
    standby: bool = False
    cold_start_ms: float = 0.0


@dataclass
class RouteChoice:
    """Where one source's calls to one model go: cumulative fractions over engines, after the
    share the plan sheds (Demand.shed_rps / rate_rps, goodput plans): u < shed drops the call."""

    engines: list[int]
    cum: list[float]
    latency_ms: list[float]
    shed: float = 0.0

    def pick(self, u: float) -> int:
        """Index of the engine for a uniform draw u, or -1 when the call is shed."""
        if u < self.shed:
            return -1
        i = bisect.bisect_right(self.cum, u)
        return min(i, len(self.engines) - 1)


@dataclass
class Fleet:
    engines: list[EngineConfig]
    routes: dict[tuple[str, str, str], RouteChoice]  # (source, model, request class or "")
    notes: list[str] = field(default_factory=list)


def _node_gpu(inputs: Inputs) -> dict[str, tuple[str, GpuType, int]]:
    out: dict[str, tuple[str, GpuType, int]] = {}
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            gpu = inputs.gpu_types.get(p.gpu_type)
            if gpu is None:
                continue
            for n in p.node_names:
                out[n] = (c.name, gpu, p.gpus_per_node)
    return out


def build_fleet(plan: Plan, inputs: Inputs, *, plan_file: str | Path | None = None) -> Fleet:
    """Engines and routes of `plan`; InputError listing every mismatch with `inputs`."""
    pf = str(plan_file) if plan_file is not None else "plan"
    problems: list[Problem] = []
    hint_inputs = "pass the same --inventory/--models/--workloads the plan was made from."
    engines: list[EngineConfig] = []
    index: dict[str, int] = {}
    nodes = _node_gpu(inputs)
    for i, r in enumerate(plan.replicas):
        where = f"replicas[{i}]"
        if r.id in index:
            problems.append(Problem(f"replica id {r.id!r} appears twice.", pf, f"{where}.id"))
            continue
        m = inputs.models.get(r.model)
        g = inputs.gpu_types.get(r.gpu_type)
        if m is None:
            problems.append(Problem(f"model {r.model!r} is not in the model catalogue.", pf, f"{where}.model", hint_inputs))
        if g is None:
            problems.append(Problem(f"GPU type {r.gpu_type!r} is not known.", pf, f"{where}.gpu_type", hint_inputs))
        for n in [r.node, *r.worker_nodes]:
            if n not in nodes:
                problems.append(Problem(f"node {n!r} is not in the inventory {inputs.inventory.name!r}.", pf, f"{where}.node", hint_inputs))
        if m is None or g is None:
            continue
        stages = 1 + len(r.worker_nodes)
        index[r.id] = len(engines)
        engines.append(
            EngineConfig(
                id=r.id,
                model=m,
                gpu=g,
                tp=r.tp,
                compute_share=max(min(r.compute_share, 1.0), 1e-6),
                kv_tokens=r.kv_tokens,
                max_num_seqs=r.max_num_seqs,
                max_model_len=r.max_model_len,
                max_num_batched_tokens=VLLM.max_num_batched_tokens_for(g.hbm_gib, g.name),
                gpus=r.tp * stages * r.compute_share,
                price_per_hour=r.price_per_hour,
                kv_bytes_per_gpu=r.kv_cache_bytes_per_gpu,
                priority=r.priority,
            )
        )
    standby_index: dict[str, int] = {}
    for j, s in enumerate(plan.standby):
        key = f"{STANDBY_PREFIX}{s.model}@{s.node}"
        m = inputs.models.get(s.model)
        node = nodes.get(s.node)
        if m is None:
            problems.append(Problem(f"standby model {s.model!r} is not in the model catalogue.", pf, f"standby[{j}].model", hint_inputs))
            continue
        if node is None:
            problems.append(Problem(f"standby node {s.node!r} is not in the inventory.", pf, f"standby[{j}].node", hint_inputs))
            continue
        _, gpu, per_node = node
        tp = next((t for t in m.tp_degrees if t <= per_node and replica_memory(m, gpu, t).fits), None)
        if tp is None:
            problems.append(Problem(f"standby model {s.model} does not fit on one node of {gpu.id} ({per_node} GPUs).", pf, f"standby[{j}]"))
            continue
        mem = replica_memory(m, gpu, tp)
        standby_index[key] = len(engines)
        engines.append(
            EngineConfig(
                id=key,
                model=m,
                gpu=gpu,
                tp=tp,
                compute_share=1.0,
                kv_tokens=mem.max_kv_tokens,
                max_num_seqs=VLLM.max_num_seqs_for(gpu.hbm_gib, gpu.name),
                max_model_len=m.context_len,
                max_num_batched_tokens=VLLM.max_num_batched_tokens_for(gpu.hbm_gib, gpu.name),
                gpus=0.0,
                price_per_hour=0.0,
                kv_bytes_per_gpu=0,
                standby=True,
                cold_start_ms=s.cold_start_ms,
            )
        )
    sources = {s.name for s in inputs.inventory.sources} | {a.source for w in inputs.workflows for a in w.arrivals}
    grouped: dict[tuple[str, str, str], list[tuple[int, float, float]]] = {}  # (source, model, request class)
    for k, rt in enumerate(plan.routes):
        where = f"routes[{k}]"
        if rt.source not in sources:
            problems.append(Problem(f"source {rt.source!r} is not in the inventory or workloads.", pf, f"{where}.source", hint_inputs))
            continue
        if rt.replica.startswith(STANDBY_PREFIX):
            e = standby_index.get(rt.replica)
            if e is None:
                problems.append(Problem(f"route to {rt.replica!r}, which is not among the plan's standby entries.", pf, f"{where}.replica"))
                continue
        else:
            e = index.get(rt.replica)
            if e is None:
                problems.append(Problem(f"route to replica {rt.replica!r}, which the plan does not list.", pf, f"{where}.replica"))
                continue
        if engines[e].model.id != rt.model:
            problems.append(Problem(f"route for model {rt.model!r} goes to a replica of {engines[e].model.id!r}.", pf, f"{where}.model"))
            continue
        if rt.fraction > 0:  # per request class where the plan routes classes apart ('' = the whole pair)
            grouped.setdefault((rt.source, rt.model, rt.request_class), []).append((e, rt.fraction, rt.network_latency_ms))
    planned = set(plan.inputs.workflows)
    if planned:
        missing = sorted(w.name for w in inputs.workflows if w.name not in planned)
        if missing:
            problems.append(
                Problem(
                    f"the workloads have workflow(s) {', '.join(missing)} that the plan was not made for (it covers {', '.join(sorted(planned)) or 'none'}).",
                    pf,
                    "inputs.workflows",
                    hint_inputs,
                )
            )
    if problems:
        raise InputError(problems=problems)
    shed_of = {(d.source, d.model): d.shed_rps / (d.served_rps + d.shed_rps) for d in plan.demand if d.shed_rps > 0 and d.served_rps + d.shed_rps > 0}
    routes: dict[tuple[str, str, str], RouteChoice] = {}
    for key, items in sorted(grouped.items()):
        total = sum(f for _, f, _ in items)
        shed = min(max(shed_of.get(key[:2], 0.0), 0.0), 1.0)
        acc = shed
        cum = []
        for _, f, _ in items:
            acc += (1.0 - shed) * f / total
            cum.append(acc)
        cum[-1] = 1.0
        routes[key] = RouteChoice([e for e, _, _ in items], cum, [lat for _, _, lat in items], shed)
    notes = []
    needed = {(a.source, r.model) for w in inputs.workflows for a in w.arrivals for r in w.roles}
    for src, model in sorted(needed - {key[:2] for key in routes}):  # a pair is routed when any of its classes is
        notes.append(f"no route for {model} from {src}: those calls are dropped (the plan sheds that demand)")
    return Fleet(engines, routes, notes)
