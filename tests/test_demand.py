"""Demand from workflows: rates, per-call budgets along the critical path, KV reservation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from maestro_plan.estimate import compute_demand
from maestro_plan.estimate.demand import mixture_quantile, predicted_call_ms, reference_gpu
from maestro_plan.load.loader import load_inputs
from maestro_plan.load.schema import Role

# config.json numbers of Llama-3.1-8B and Llama-3.2-3B
MODELS = {
    "l8": dict(model_type="llama", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072),
    "l3": dict(model_type="llama", num_hidden_layers=28, hidden_size=3072, num_attention_heads=24, num_key_value_heads=8, intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True, max_position_embeddings=131072),
}


def tok(mean: float, p50: float, p99: float) -> dict:
    return {"mean": mean, "percentiles": {50: p50, 99: p99}}


def write_inputs(tmp: Path, roles: list[dict], slo_ms: float = 20000, priority: str = "interactive") -> dict[str, Path]:
    inv = {
        "name": "t",
        "clusters": [{"name": "c1", "region": "r1", "node_pools": [{"name": "p1", "zone": "z1", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 2, "host_dram_gib": 1024}]}],
        "sources": [{"name": "s1"}, {"name": "s2"}],
        "links": [{"a": "s1", "b": "c1", "latency_ms": 5}, {"a": "s2", "b": "c1", "latency_ms": 30}],
    }
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp / "models").mkdir()
    for mid, arch in MODELS.items():
        (tmp / "models" / f"{mid}.yaml").write_text(yaml.safe_dump({"id": mid, "hf_repo": f"org/{mid}", "architecture": arch, "max_model_len": 32768}))
    (tmp / "wl").mkdir()
    wf = {"name": "team", "priority": priority, "slo": {"latency_ms": slo_ms}, "arrivals": [{"source": "s1", "rate_per_s": 2.0}, {"source": "s2", "rate_per_s": 1.0, "peak_to_mean": 3}], "roles": roles}
    (tmp / "wl" / "team.yaml").write_text(yaml.safe_dump(wf))
    return {"inventory": tmp / "inv.yaml", "models": tmp / "models", "workloads": tmp / "wl"}


ROLES = [
    {"name": "planner", "model": "l8", "calls_per_query": 1, "input_tokens": tok(800, 700, 3000), "output_tokens": tok(200, 180, 600)},
    {"name": "coder", "model": "l8", "calls_per_query": 3, "depends_on": ["planner"], "input_tokens": tok(2000, 1800, 8000), "output_tokens": tok(400, 350, 1500)},
    {"name": "tester", "model": "l3", "calls_per_query": 1, "depends_on": ["planner"], "input_tokens": tok(300, 250, 900), "output_tokens": tok(50, 40, 200)},
    {"name": "reviewer", "model": "l3", "calls_per_query": 1, "depends_on": ["coder", "tester"], "input_tokens": tok(1000, 900, 4000), "output_tokens": tok(100, 90, 400), "shared_prefix": True},
]


@pytest.fixture()
def inputs(tmp_path):
    p = write_inputs(tmp_path, ROLES)
    return load_inputs(p["inventory"], p["models"], p["workloads"])


def test_rates_per_source_and_model(inputs):
    d = compute_demand(inputs)
    keys = [(x.model, x.source) for x in d.per_model]
    assert keys == sorted(keys) == [("l3", "s1"), ("l3", "s2"), ("l8", "s1"), ("l8", "s2")]
    by = {(x.model, x.source): x for x in d.per_model}
    assert by[("l8", "s1")].rate_rps == pytest.approx(2.0 * (1 + 3))
    assert by[("l3", "s2")].rate_rps == pytest.approx(1.0 * (1 + 1))
    assert by[("l3", "s2")].peak_rate_rps == pytest.approx(3 * 2.0)
    assert by[("l8", "s1")].roles == ("team/coder", "team/planner")
    assert by[("l3", "s1")].shared_prefix and not by[("l8", "s1")].shared_prefix
    assert all(x.priority == "interactive" for x in d.per_model)
    # rate-weighted mean lengths: planner 1 call, coder 3 calls
    assert by[("l8", "s1")].mix.mean_input == pytest.approx((800 + 3 * 2000) / 4)
    assert by[("l8", "s1")].mix.mean_output == pytest.approx((200 + 3 * 400) / 4)


def test_budgets_split_the_slo_along_the_critical_path(inputs):
    """The mean rule (budget_rule="mean", kept to measure what the tail costs)."""
    d = compute_demand(inputs, budget_rule="mean")
    b = {x.role: x for x in d.role_budgets}
    gpu = reference_gpu(inputs)
    assert gpu.id == "h100-sxm"
    # predicted call times on the reference GPU, idle, batch 1
    assert b["planner"].predicted_call_ms == pytest.approx(predicted_call_ms(inputs.models["l8"], gpu, 1, 800, 200))
    path = ["planner", "coder", "reviewer"]  # coder (3 calls of the 8B) outweighs tester
    assert all(b[r].on_critical_path for r in path) and not b["tester"].on_critical_path
    assert math.fsum(b[r].calls_per_query * b[r].budget_ms for r in path) == pytest.approx(20000)
    # the same scale on the path: budget proportional to predicted time
    scale = {r: b[r].budget_ms / b[r].predicted_call_ms for r in path}
    assert max(scale.values()) == pytest.approx(min(scale.values()))
    # off the critical path a role gets more room than that scale
    assert b["tester"].budget_ms / b["tester"].predicted_call_ms > scale["planner"]
    # the model's budget keeps the tightest slack ratio of its roles, applied to the combined mix
    by = {(x.model, x.source): x for x in d.per_model}
    for (model, roles) in (("l8", ("planner", "coder")), ("l3", ("tester", "reviewer"))):
        x = by[(model, "s1")]
        ratio = min(b[r].budget_ms / b[r].predicted_call_ms for r in roles)
        idle = predicted_call_ms(inputs.models[model], gpu, 1, x.mix.mean_input, x.mix.mean_output)
        assert x.latency_budget_ms == pytest.approx(ratio * idle)
    # so a model's demand is never held to a short role's absolute budget with a long role's mix:
    # l3 serves tester (off the path: more slack) and reviewer; the reviewer's ratio binds
    assert by[("l3", "s1")].latency_budget_ms / predicted_call_ms(inputs.models["l3"], gpu, 1, by[("l3", "s1")].mix.mean_input, by[("l3", "s1")].mix.mean_output) == pytest.approx(scale["reviewer"])


def test_mixed_roles_of_one_model_get_the_budget_of_their_mix(tmp_path):
    """A long and a short role on one model: the short role's tiny absolute budget must not be
    applied to the long role's calls (that made ChatDev-like profiles falsely infeasible)."""
    from maestro_plan.estimate import replica_capacity

    inputs = _one_model_two_roles(tmp_path)
    d = compute_demand(inputs)
    (x,) = d.per_model
    rb = {r.role: r for r in d.role_budgets}
    assert x.latency_budget_ms > rb["short"].budget_ms  # looser than the short role's absolute budget
    assert x.latency_budget_ms < rb["long"].budget_ms  # tighter than the long role's
    gpu = reference_gpu(inputs)
    assert replica_capacity(inputs.models["l8"], gpu, 1, x.mix, latency_budget_ms=x.latency_budget_ms) is not None


def _one_model_two_roles(tmp_path):
    from maestro_plan.load.schema import Inputs, Workflow

    p = write_inputs(tmp_path, ROLES)
    base = load_inputs(p["inventory"], p["models"], p["workloads"])
    wf = Workflow.model_validate(
        {
            "name": "pair",
            "priority": "interactive",
            "slo": {"latency_ms": 60000},
            "arrivals": [{"source": "s1", "rate_per_s": 1.0}],
            "roles": [
                {"name": "short", "model": "l8", "calls_per_query": 1, "input_tokens": {"mean": 500}, "output_tokens": {"mean": 8}},
                {"name": "long", "model": "l8", "calls_per_query": 1, "depends_on": ["short"], "input_tokens": {"mean": 2000}, "output_tokens": {"mean": 1500}},
            ],
        }
    )
    return Inputs(inventory=base.inventory, gpu_types=base.gpu_types, models=base.models, workflows=[wf])


def test_kv_reservation_from_percentiles_beats_the_naive_one(inputs):
    d99 = compute_demand(inputs, percentile=99)
    d50 = compute_demand(inputs, percentile=50)
    k99 = {(x.model, x.source): x.mix.kv_tokens_per_request for x in d99.per_model}
    k50 = {(x.model, x.source): x.mix.kv_tokens_per_request for x in d50.per_model}
    assert all(k99[k] > k50[k] for k in k99)
    # l8: coder's p99 (8000 + 1500) carries 3/4 of the calls, planner's is 3600: the mixture's p99
    # lies between the planner's and the coder's
    assert 3600 < k99[("l8", "s1")] <= 9500
    for r in d99.kv_reservations:
        assert r.concurrency >= 1
        assert 0 < r.predicted_bytes_per_gpu < r.naive_bytes_per_gpu
        assert r.saved_bytes_per_gpu == r.naive_bytes_per_gpu - r.predicted_bytes_per_gpu


def test_mixture_quantile():
    a = Role(name="a", model="m", calls_per_query=1, input_tokens=tok(100, 100, 200), output_tokens=tok(10, 10, 20))
    b = Role(name="b", model="m", calls_per_query=1, input_tokens=tok(1000, 1000, 2000), output_tokens=tok(100, 100, 200))
    assert mixture_quantile([(a, 1.0)], 99) == pytest.approx(220)
    mixed = mixture_quantile([(a, 1.0), (b, 1.0)], 50)
    assert 110 <= mixed <= 1100
    # all the weight on one role: that role's quantile
    assert mixture_quantile([(a, 1e-9), (b, 1.0)], 99) == pytest.approx(2200, rel=1e-3)
    c = Role(name="c", model="m", calls_per_query=1, input_tokens=tok(100, 100, 200), output_tokens=tok(10, 10, 20), reserve_output_tokens=50)
    assert mixture_quantile([(c, 1.0)], 99) == pytest.approx(250)


def test_batch_priority_and_bad_percentile(tmp_path):
    p = write_inputs(tmp_path, ROLES, priority="batch")
    d = compute_demand(load_inputs(p["inventory"], p["models"], p["workloads"]))
    assert {x.priority for x in d.per_model} == {"batch"}
    with pytest.raises(ValueError):
        compute_demand(load_inputs(p["inventory"], p["models"], p["workloads"]), percentile=0)
