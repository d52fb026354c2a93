"""Regenerate tests/data/emit/plan.json, the small fixed plan of the emitter tests.

The plan is hand-built (not solved) so that every emitter path is exercised: two identical exclusive
replicas (one Deployment, replicas: 2), two replicas sharing one GPU (one pod, two engines), a TP-8
replica, a batch replica on L4, a replica spanning two nodes (LeaderWorkerSet), a warm-standby swap
slot (two models taking turns on one GPU) with a standby route, and three replicas on the two nodes
of a `count` pool (l4-c: two packed on l4-c-000, a TP-2 one on l4-c-001). Memory figures follow the arithmetic of maestro_plan.estimate (weights from the
catalogue's checkpoint_bytes, KV bytes per token = 2 x layers x kv_heads x head_dim x 2 / TP,
overhead = activation 2 GiB + non-torch 0.3 GiB at TP 1 / 2.1 GiB at TP >= 2); rates are round.
Run: .venv/bin/python tests/data/emit/make_plan.py
"""

from __future__ import annotations

from pathlib import Path

from maestro_plan.plan.io import write_plan
from maestro_plan.plan.schema import Binding, Demand, InputDigest, KvSummary, Plan, Replica, Route, Settings, SolveInfo, Standby

GIB = 2**30
H100 = int(79.65 * GIB)
L4 = int(22.49 * GIB)
W = {"llama-3.1-8b": 16060522496, "llama-3.2-1b": 2471645608, "llama-3.1-70b": 141107412992}
KVT = {"llama-3.1-8b": 2 * 32 * 8 * 128 * 2, "llama-3.2-1b": 2 * 16 * 8 * 64 * 2, "llama-3.1-70b": 2 * 80 * 8 * 128 * 2}
OVH1 = int(2.3 * GIB)
OVHN = int(4.1 * GIB)
PRICE = {"h100-sxm": 12.29, "l4": 1.6688}


def rep(rid, model, cluster, zone, pool, node, gpu, idx, tp, kv_tokens, seqs, cap, load, lat, budget, *, share=1.0, prio="interactive",
        roles=(), prefix=False, workers=(), hbm=H100):
    stages = 1 + len(workers)
    w = W[model] // (tp * stages)
    kvb = kv_tokens * KVT[model] // (tp * stages)
    ovh = OVH1 if tp == 1 else OVHN
    return Replica(
        id=rid, model=model, cluster=cluster, zone=zone, node_pool=pool, node=node, gpu_type=gpu, gpu_indices=list(idx), tp=tp,
        worker_nodes=list(workers), memory_fraction=round((w + kvb + ovh) / hbm, 4), compute_share=share, weights_bytes_per_gpu=w,
        kv_cache_bytes_per_gpu=kvb, overhead_bytes_per_gpu=ovh, max_model_len=32768, max_num_seqs=seqs, kv_tokens=kv_tokens,
        capacity_rps=cap, load_rps=load, latency_budget_ms=budget, predicted_latency_ms=lat, priority=prio, roles=list(roles),
        prefix_caching=prefix, price_per_hour=round(PRICE[gpu] * tp * stages * share, 4),
    )


CODER = ["coding-agent/coder"]
replicas = [
    rep("llama-3.1-8b.us-east.h100-a-000.g0", "llama-3.1-8b", "us-east", "us-east-1a", "h100-a", "h100-a-000", "h100-sxm", [0], 1, 448512, 32, 2.8, 2.6, 2100.0, 3000.0,
        roles=CODER + ["nightly-summaries/summarize"], prefix=True),
    rep("llama-3.1-8b.us-east.h100-a-000.g1", "llama-3.1-8b", "us-east", "us-east-1a", "h100-a", "h100-a-000", "h100-sxm", [1], 1, 448512, 32, 2.8, 2.6, 2100.0, 3000.0,
        roles=CODER + ["nightly-summaries/summarize"], prefix=True),
    rep("llama-3.2-1b.us-east.h100-a-000.g2", "llama-3.2-1b", "us-east", "us-east-1a", "h100-a", "h100-a-000", "h100-sxm", [2], 1, 275200, 64, 9.0, 4.6, 450.0, 1200.0,
        share=0.3, roles=["coding-agent/critic"]),
    rep("llama-3.1-8b.us-east.h100-a-000.g2", "llama-3.1-8b", "us-east", "us-east-1a", "h100-a", "h100-a-000", "h100-sxm", [2], 1, 224256, 16, 1.5, 1.3, 2400.0, 3000.0,
        share=0.7, roles=CODER + ["nightly-summaries/summarize"], prefix=True),
    rep("llama-3.1-70b.us-east.h100-a-001.g0-7", "llama-3.1-70b", "us-east", "us-east-1a", "h100-a", "h100-a-001", "h100-sxm", range(8), 8, 460800, 64, 3.0, 2.3, 5200.0, 8000.0,
        roles=["coding-agent/planner"]),
    rep("llama-3.2-1b.us-east.l4-b-000.g0", "llama-3.2-1b", "us-east", "us-east-1b", "l4-b", "l4-b-000", "l4", [0], 1, 137600, 32, 2.0, 1.2, 700.0, 1200.0,
        roles=["coding-agent/critic"], hbm=L4),
    rep("llama-3.1-70b.eu-west.h100-e-000.pp2", "llama-3.1-70b", "eu-west", "eu-west-1a", "h100-e", "h100-e-000", "h100-sxm", range(8), 8, 460800, 64, 1.2, 0.7, 6100.0, 8000.0,
        roles=["coding-agent/planner"], workers=["h100-e-001"]),
    rep("llama-3.1-8b.eu-west.h100-e-002.g0", "llama-3.1-8b", "eu-west", "eu-west-1a", "h100-e", "h100-e-002", "h100-sxm", [0], 1, 448512, 32, 3.2, 3.0, 2100.0, 3000.0,
        roles=CODER, prefix=True),
]
SLOT = "llama-3.1-8b.eu-west.h100-e-002.g1.swap"
replicas += [
    rep("llama-3.2-1b.eu-west.l4-c-000.g0", "llama-3.2-1b", "eu-west", "eu-west-1b", "l4-c", "l4-c-000", "l4", [0], 1, 137600, 32, 2.0, 0.5, 700.0, 1200.0,
        roles=["coding-agent/critic"], hbm=L4),
    rep("llama-3.2-1b.eu-west.l4-c-000.g1", "llama-3.2-1b", "eu-west", "eu-west-1b", "l4-c", "l4-c-000", "l4", [1], 1, 137600, 32, 2.0, 0.5, 700.0, 1200.0,
        roles=["coding-agent/critic"], hbm=L4),
    rep("llama-3.1-8b.eu-west.l4-c-001.g0-1", "llama-3.1-8b", "eu-west", "eu-west-1b", "l4-c", "l4-c-001", "l4", [0, 1], 2, 65536, 16, 1.0, 0.0, 2600.0, 3000.0,
        prio="batch", roles=["nightly-summaries/summarize"], hbm=L4),
    rep(SLOT, "llama-3.1-8b", "eu-west", "eu-west-1a", "h100-e", "h100-e-002", "h100-sxm", [1], 1, 448512, 1, 0.0, 0.0, None, None,
        prio="batch").model_copy(update={"swap_models": ["llama-3.1-8b", "llama-3.2-1b"]}),
]
standby = [Standby(model=m, cluster="eu-west", node="h100-e-002", host_dram_bytes=W[m], cold_start_ms=round(W[m] / 64e9 * 1000, 1),
                   serves_rate_rps=rate, slot_replica=SLOT, gpu_indices=[1], capacity_rps=cap,
                   reason="rarely used in eu-west: kept warm in host DRAM, woken on swap slot " + SLOT)
           for m, rate, cap in (("llama-3.1-8b", 0.0, 0.3), ("llama-3.2-1b", 0.2, 1.5))]
replicas.sort(key=lambda r: r.id)


def route(src, model, rid, frac, rate, lat, prio="interactive"):
    return Route(source=src, model=model, replica=rid, fraction=frac, rate_rps=rate, network_latency_ms=lat, priority=prio)


routes = [
    route("users-us-east", "llama-3.1-8b", "llama-3.1-8b.us-east.h100-a-000.g0", 0.4, 2.6, 2.0),
    route("users-us-east", "llama-3.1-8b", "llama-3.1-8b.us-east.h100-a-000.g1", 0.4, 2.6, 2.0),
    route("users-us-east", "llama-3.1-8b", "llama-3.1-8b.us-east.h100-a-000.g2", 0.2, 1.3, 2.0),
    route("users-eu-west", "llama-3.1-8b", "llama-3.1-8b.eu-west.h100-e-002.g0", 1.0, 3.0, 3.0),
    route("users-us-east", "llama-3.1-70b", "llama-3.1-70b.us-east.h100-a-001.g0-7", 1.0, 2.0, 2.0),
    route("users-eu-west", "llama-3.1-70b", "llama-3.1-70b.eu-west.h100-e-000.pp2", 0.7, 0.7, 3.0),
    route("users-eu-west", "llama-3.1-70b", "llama-3.1-70b.us-east.h100-a-001.g0-7", 0.3, 0.3, 40.0),
    route("users-us-east", "llama-3.2-1b", "llama-3.2-1b.us-east.h100-a-000.g2", 0.7, 2.8, 2.0),
    route("users-us-east", "llama-3.2-1b", "llama-3.2-1b.us-east.l4-b-000.g0", 0.3, 1.2, 2.0),
    route("users-eu-west", "llama-3.2-1b", "llama-3.2-1b.us-east.h100-a-000.g2", 0.4, 0.8, 40.0),
    route("users-eu-west", "llama-3.2-1b", "llama-3.2-1b.eu-west.l4-c-000.g0", 0.25, 0.5, 3.0),
    route("users-eu-west", "llama-3.2-1b", "llama-3.2-1b.eu-west.l4-c-000.g1", 0.25, 0.5, 3.0),
    route("users-eu-west", "llama-3.2-1b", "standby:llama-3.2-1b@h100-e-002", 0.1, 0.2, 3.0),
]
demand = [
    Demand(source="users-us-east", model="llama-3.1-8b", rate_rps=6.5, priority="interactive", latency_budget_ms=3000.0, mean_input_tokens=4154.0, mean_output_tokens=577.0, served_rps=6.5),
    Demand(source="users-eu-west", model="llama-3.1-8b", rate_rps=3.0, priority="interactive", latency_budget_ms=3000.0, mean_input_tokens=4000.0, mean_output_tokens=600.0, served_rps=3.0),
    Demand(source="users-us-east", model="llama-3.1-70b", rate_rps=2.0, priority="interactive", latency_budget_ms=8000.0, mean_input_tokens=2000.0, mean_output_tokens=400.0, served_rps=2.0),
    Demand(source="users-eu-west", model="llama-3.1-70b", rate_rps=1.0, priority="interactive", latency_budget_ms=8000.0, mean_input_tokens=2000.0, mean_output_tokens=400.0, served_rps=1.0),
    Demand(source="users-us-east", model="llama-3.2-1b", rate_rps=4.0, priority="interactive", latency_budget_ms=1200.0, mean_input_tokens=1500.0, mean_output_tokens=100.0, served_rps=4.0),
    Demand(source="users-eu-west", model="llama-3.2-1b", rate_rps=2.0, priority="interactive", latency_budget_ms=1200.0, mean_input_tokens=1500.0, mean_output_tokens=100.0, served_rps=2.0),
]
gpus_used = {"us-east": {"h100-sxm": 11, "l4": 1}, "eu-west": {"h100-sxm": 18, "l4": 4}}
pred = sum(r.kv_cache_bytes_per_gpu * r.tp * (1 + len(r.worker_nodes)) for r in replicas)
naive = sum(32768 * r.max_num_seqs * KVT[r.model] for r in replicas)
plan = Plan(
    plan_id="5e1f0c2a9b7d4e3f8a6c1b0d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f",
    generator="maestro-plan 0.1.0 (hand-built test fixture)",
    inputs=InputDigest(inventory_name="emit-test-fleet", inventory_sha256="0" * 64, models_sha256="0" * 64, workloads_sha256="0" * 64,
                       models=["llama-3.1-70b", "llama-3.1-8b", "llama-3.2-1b"], workflows=["coding-agent", "nightly-summaries"]),
    settings=Settings(vllm_version="0.21.0"),
    solve=SolveInfo(status="optimal", objective=sum(r.price_per_hour for r in replicas), bound=sum(r.price_per_hour for r in replicas), gap=0.0),
    cost_per_hour=round(sum(r.price_per_hour for r in replicas), 4),
    gpus_used=gpus_used,
    replicas=replicas,
    standby=standby,
    routes=routes,
    demand=demand,
    kv=KvSummary(predicted_bytes=pred, naive_bytes=naive, saved_fraction=round(1 - pred / naive, 4)),
    binding=[Binding(constraint="memory", subject="h100-a-000 gpu 2", slack=0.28, unit="fraction of HBM"),
             Binding(constraint="capacity", subject="llama-3.1-8b in us-east", slack=0.1, unit="requests/s")],
    notes=["Hand-built fixture for the emitter tests; the 70B replica in eu-west spans two nodes to exercise the LeaderWorkerSet path."],
)
write_plan(plan, Path(__file__).with_name("plan.json"))
