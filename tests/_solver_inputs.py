"""Tiny hand-written input folders for the solver tests (inventory, models, workloads).

Models are copied from the bundled catalogue (real config.json numbers); inventories and workloads
are written here, small enough that every solve takes well under a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def pool(name: str, gpu: str, *, zone: str = "z-a", gpus_per_node: int = 8, count: int = 1, price: float | None = None, dram_gib: float = 512) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "zone": zone, "gpu_type": gpu, "gpus_per_node": gpus_per_node, "count": count, "host_dram_gib": dram_gib}
    if price is not None:
        p["price_per_gpu_hour"] = price
    return p


def role(name: str, model: str, *, calls: float = 1.0, mean_in: float = 500, mean_out: float = 100, depends_on: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "calls_per_query": calls,
        "depends_on": depends_on or [],
        "input_tokens": {"mean": mean_in, "percentiles": {50: mean_in, 99: mean_in * 2}},
        "output_tokens": {"mean": mean_out, "percentiles": {50: mean_out, 99: mean_out * 2}},
    }


def workflow(name: str, roles: list[dict], *, rate: float | dict[str, float] = 1.0, priority: str = "batch", slo_ms: float = 60000.0) -> dict[str, Any]:
    rates = rate if isinstance(rate, dict) else {"users": rate}
    return {
        "name": name,
        "priority": priority,
        "slo": {"percentile": 95, "latency_ms": slo_ms},
        "arrivals": [{"source": s, "rate_per_s": r} for s, r in rates.items()],
        "roles": roles,
    }


def write_inputs(
    root: Path,
    *,
    clusters: dict[str, list[dict]],
    models: list[str],
    workflows: list[dict],
    sources: dict[str, dict[str, float]] | None = None,
    budgets: dict[str, float] | None = None,
) -> dict[str, Path]:
    """clusters: name -> pools; sources: source -> {cluster: one-way ms} (default: 'users' at 1 ms
    from every cluster)."""
    root.mkdir(parents=True, exist_ok=True)
    sources = sources or {"users": {c: 1.0 for c in clusters}}
    inv = {
        "name": "test-fleet",
        "clusters": [
            {"name": c, "region": f"{c}-region", "node_pools": pools, **({"budget_per_hour": budgets[c]} if budgets and c in budgets else {})}
            for c, pools in clusters.items()
        ],
        "sources": [{"name": s} for s in sources],
        "links": [{"a": s, "b": c, "latency_ms": ms} for s, cs in sources.items() for c, ms in cs.items()],
    }
    (root / "inventories").mkdir(exist_ok=True)
    (root / "inventories" / "fleet.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
    mdir = root / "models"
    mdir.mkdir(exist_ok=True)
    for m in models:
        shutil.copy(REPO / "models" / f"{m}.yaml", mdir / f"{m}.yaml")
    wdir = root / "workloads"
    wdir.mkdir(exist_ok=True)
    for w in workflows:
        (wdir / f"{w['name']}.yaml").write_text(yaml.safe_dump(w, sort_keys=False))
    return {"inventory": root / "inventories" / "fleet.yaml", "models": mdir, "workloads": wdir}


def load(paths: dict[str, Path]):
    from maestro_plan.load.loader import load_inputs

    return load_inputs(paths["inventory"], paths["models"], paths["workloads"])


def settings(**kw: Any):
    from maestro_plan.solve.problem import SolveSettings

    base: dict[str, Any] = {"time_limit_s": 5.0, "lp_bound": True}
    base.update(kw)
    return SolveSettings(**base)


def capacity(inputs, model: str, gpu: str, tp: int = 1, *, settings_=None, source: str = "users", cluster: str | None = None) -> float:
    """What one replica sustains for the (source, model) demand of these inputs (whole GPUs)."""
    from maestro_plan.estimate import VLLM, compute_demand, replica_capacity, replica_memory

    s = settings_ or settings()
    dm = compute_demand(inputs, percentile=s.length_percentile)
    d = next(x for x in dm.per_model if x.model == model and x.source == source)
    m = inputs.models[model]
    g = inputs.gpu_types[gpu]
    net = 0.0
    for lk in inputs.inventory.links:
        if {lk.a, lk.b} == {source, cluster or inputs.inventory.clusters[0].name}:
            net = lk.latency_ms
    mem = replica_memory(m, g, tp, gpu_memory_utilization=VLLM.gpu_memory_utilization, max_model_len=m.context_len)
    from dataclasses import replace

    mix = replace(d.mix, max_model_len=m.context_len)
    r = replica_capacity(m, g, tp, mix, latency_budget_ms=d.latency_budget_ms - 2 * net, kv_pool_bytes_per_gpu=mem.kv_pool_bytes_per_gpu)
    assert r is not None
    return r.rps
