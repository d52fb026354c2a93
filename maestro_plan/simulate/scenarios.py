"""Small hand-built fleets and workloads (pydantic Inputs and Plan objects, no solver) for the
simulator's tests and the compare benchmark's constructed contention case.

Everything is explicit: one cluster, one node pool, one source, engines given by the caller with
their KV tokens and --max-num-seqs. Models come from the caller (e.g. the bundled catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

from maestro_plan.estimate import kv_bytes_per_token_per_gpu, weights_bytes_per_gpu
from maestro_plan.load.loader import builtin_gpu_types
from maestro_plan.load.schema import Cluster, Inputs, Inventory, Link, ModelSpec, NodePool, Source, Workflow
from maestro_plan.plan.schema import InputDigest, Plan, Replica, Route, Settings, SolveInfo

CLUSTER = "c1"
SOURCE = "users"


@dataclass(frozen=True)
class EngineSpec:
    model: str
    kv_tokens: int
    max_num_seqs: int
    gpu: str = "h100-sxm"
    tp: int = 1
    max_model_len: int | None = None
    compute_share: float = 1.0
    fraction: float = 1.0  # of the source's traffic to this model
    priority: str = "interactive"


def workflow(name: str, priority: str, slo_ms: float, rate: float, roles: list[dict], *, percentile: float = 95.0) -> Workflow:
    """A workflow from plain role dicts (name, model, calls_per_query, depends_on, input_tokens, output_tokens)."""
    return Workflow.model_validate(
        {
            "name": name,
            "priority": priority,
            "slo": {"percentile": percentile, "latency_ms": slo_ms},
            "arrivals": [{"source": SOURCE, "rate_per_s": rate}],
            "roles": roles,
        }
    )


def inputs_for(models: dict[str, ModelSpec], workflows: list[Workflow], *, gpu: str = "h100-sxm", nodes: int = 4, latency_ms: float = 1.0) -> Inputs:
    inv = Inventory(
        name="sim-case",
        clusters=[Cluster(name=CLUSTER, region="r1", node_pools=[NodePool(name="p1", zone="z1", gpu_type=gpu, gpus_per_node=8, count=nodes, host_dram_gib=1024)])],
        sources=[Source(name=SOURCE, region="r1")],
        links=[Link(a=SOURCE, b=CLUSTER, latency_ms=latency_ms)],
    )
    return Inputs(inventory=inv, gpu_types=builtin_gpu_types(), models=dict(models), workflows=list(workflows))


def plan_for(inputs: Inputs, engines: list[EngineSpec], *, latency_ms: float = 1.0) -> Plan:
    """A plan with one replica per EngineSpec on node p1-000, p1-001, ... and routes from the source."""
    gpus = inputs.gpu_types
    replicas: list[Replica] = []
    routes: list[Route] = []
    slot = 0
    for i, e in enumerate(engines):
        m = inputs.models[e.model]
        node = f"p1-{slot // 8:03d}"
        idx = list(range(slot % 8, slot % 8 + e.tp))
        slot += e.tp
        kvb = e.kv_tokens * kv_bytes_per_token_per_gpu(m, e.tp)
        rid = f"{e.model}.{CLUSTER}.{node}.e{i}"
        replicas.append(
            Replica(
                id=rid, model=e.model, cluster=CLUSTER, zone="z1", node_pool="p1", node=node, gpu_type=e.gpu, gpu_indices=idx, tp=e.tp,
                memory_fraction=0.9, compute_share=e.compute_share, weights_bytes_per_gpu=weights_bytes_per_gpu(m, e.tp),
                kv_cache_bytes_per_gpu=kvb, overhead_bytes_per_gpu=0, max_model_len=e.max_model_len or m.context_len,
                max_num_seqs=e.max_num_seqs, kv_tokens=e.kv_tokens, capacity_rps=0.0, priority=e.priority,  # type: ignore[arg-type]
                price_per_hour=gpus[e.gpu].price_per_gpu_hour * e.tp * e.compute_share,
            )
        )  # fmt: skip
        routes.append(Route(source=SOURCE, model=e.model, replica=rid, fraction=e.fraction, rate_rps=0.0, network_latency_ms=latency_ms))
    return Plan(
        plan_id="hand-built",
        generator="maestro_plan.simulate.scenarios",
        inputs=InputDigest(
            inventory_name=inputs.inventory.name, inventory_sha256="", models_sha256="", workloads_sha256="",
            models=sorted(inputs.models), workflows=sorted(w.name for w in inputs.workflows),
        ),  # fmt: skip
        settings=Settings(),
        solve=SolveInfo(status="heuristic"),
        cost_per_hour=sum(r.price_per_hour for r in replicas),
        gpus_used={CLUSTER: {engines[0].gpu: slot}} if engines else {},
        replicas=replicas,
        routes=routes,
        demand=[],
    )


def contention_case(models: dict[str, ModelSpec], *, load: float = 1.0, model: str = "llama-3.1-8b") -> tuple[Inputs, Plan]:
    """One 8B engine on an H100 shared by two interactive workflows (a one-call chat and a 4-step
    agent) and a batch summarizer. load=1 puts the offered work near the engine's capacity at
    --max-num-seqs 16; larger values overload it. Used by the Maestro-vs-FIFO/EDF test and the
    compare benchmark's constructed case."""
    chat = workflow(
        "chat", "interactive", 4000.0, 3.0 * load,
        [{"name": "reply", "model": model, "calls_per_query": 1, "input_tokens": {"mean": 800}, "output_tokens": {"mean": 60}}],
    )  # fmt: skip
    agent = workflow(
        "agent", "interactive", 12000.0, 1.0 * load,
        [
            {"name": "plan", "model": model, "calls_per_query": 1, "input_tokens": {"mean": 1200}, "output_tokens": {"mean": 80}},
            {"name": "act", "model": model, "calls_per_query": 3, "depends_on": ["plan"], "input_tokens": {"mean": 1500}, "output_tokens": {"mean": 60}},
        ],
    )  # fmt: skip
    batch = workflow(
        "summaries", "batch", 120000.0, 1.5 * load,
        [{"name": "summarize", "model": model, "calls_per_query": 1, "input_tokens": {"mean": 4000}, "output_tokens": {"mean": 400}}],
        percentile=99.0,
    )  # fmt: skip
    inputs = inputs_for({model: models[model]}, [chat, agent, batch])
    plan = plan_for(inputs, [EngineSpec(model, kv_tokens=16 * 4608, max_num_seqs=16)])
    return inputs, plan
