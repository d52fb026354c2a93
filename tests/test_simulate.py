"""The simulator against queueing theory, the estimator, and its own invariants.

Every case is a hand-built plan (maestro_plan.simulate.scenarios) on bundled catalogue models, so
nothing here depends on the solver.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from maestro_plan.errors import InputError
from maestro_plan.estimate import RequestMix, decode_step_ms, kv_bytes_per_token_per_gpu, prefill_ms, replica_capacity
from maestro_plan.load.loader import builtin_gpu_types, load_models
from maestro_plan.load.schema import TokenDist
from maestro_plan.simulate import SimConfig, run_simulation, simulate
from maestro_plan.simulate.scenarios import EngineSpec, contention_case, inputs_for, plan_for, workflow
from maestro_plan.simulate.traffic import LengthModel


@pytest.fixture(scope="module")
def models(repo):
    return load_models(repo / "models")[0]


@pytest.fixture(scope="module")
def h100():
    return builtin_gpu_types()["h100-sxm"]


def one_role(model: str, rate: float, i: int, o: int, *, slo_ms: float = 1e7, name: str = "q", priority: str = "interactive"):
    return workflow(name, priority, slo_ms, rate, [{"name": "r", "model": model, "calls_per_query": 1, "input_tokens": {"mean": i}, "output_tokens": {"mean": o}}])


# ------------------------------------------------------------------------------------ theory


def test_single_engine_without_batching_is_md1(models, h100):
    """--max-num-seqs 1, fixed lengths: Poisson arrivals, deterministic service = M/D/1.
    Pollaczek-Khinchine: mean wait = rho D / (2 (1 - rho)); e2e = wait + D + 2 x network."""
    m = models["llama-3.2-1b"]
    i, o, lat = 200, 50, 2.0
    D = prefill_ms(m, h100, 1, i) + sum(decode_step_ms(m, h100, 1, 1, i + j) for j in range(o - 1))
    rho = 0.7
    wf = one_role(m.id, rho / D * 1000.0, i, o)
    inputs = inputs_for({m.id: m}, [wf])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=1)], latency_ms=lat)
    rep = simulate(plan, inputs, SimConfig(duration_s=2000, seed=1, discipline="fifo", warmup_s=50))
    wq = rho * D / (2 * (1 - rho))
    e2e = rep["workflows"]["q"]["e2e_ms"]["mean"]
    assert e2e == pytest.approx(wq + D + 2 * lat, rel=0.05)
    eng = next(iter(rep["replicas"].values()))
    assert eng["mean_queue_ms"] == pytest.approx(wq, rel=0.10)
    assert eng["mean_call_ms"] - eng["mean_queue_ms"] == pytest.approx(D, rel=0.01)  # service time itself
    assert eng["utilization"] == pytest.approx(rho, abs=0.03)
    assert eng["mean_batch"] == pytest.approx(1.0)


def _saturate(models, h100, mid: str, i: int, o: int, batch: int):
    m = models[mid]
    mix = RequestMix(mean_input=i, mean_output=o, kv_tokens_per_request=i + o)
    per_req = math.ceil((i + o) / 16) * 16 * kv_bytes_per_token_per_gpu(m, 1)
    cap = replica_capacity(m, h100, 1, mix, latency_budget_ms=1e9, kv_pool_bytes_per_gpu=batch * per_req)
    assert cap is not None and cap.batch == batch
    inputs = inputs_for({m.id: m}, [one_role(m.id, 2.0 * cap.rps, i, o)])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=cap.kv_tokens_needed, max_num_seqs=cap.batch)])
    rep = simulate(plan, inputs, SimConfig(duration_s=150, seed=0, discipline="fifo", warmup_s=30, drain_s=0))
    return cap, next(iter(rep["replicas"].values()))


@pytest.mark.parametrize(
    "mid,i,o,batch",
    [("llama-3.1-8b", 256, 512, 32), ("qwen3-30b-a3b", 512, 768, 24), ("llama-3.1-8b", 1000, 200, 64), ("llama-3.2-1b", 500, 300, 64)],
)
def test_saturation_throughput_matches_estimator_capacity(models, h100, mid, i, o, batch):
    """Offered 2x the estimator's capacity, the engine runs full batches and serves within 10 % of
    replica_capacity for the same engine, mix and concurrency (decode- and prompt-heavy mixes)."""
    cap, eng = _saturate(models, h100, mid, i, o, batch)
    assert eng["mean_batch"] == pytest.approx(batch, rel=0.02)
    assert eng["utilization"] == pytest.approx(1.0, abs=0.01)
    assert eng["calls_per_s"] == pytest.approx(cap.rps, rel=0.10)


def test_saturation_prefill_heavy_mix_follows_chunked_prefill(models, h100):
    """With long prompts the simulator folds each prefill into a running step (vLLM V1 chunked
    prefill: the weights are read once per step), so it serves B / (O s + B (P - P(1))) per ms;
    the estimator's capacity model charges prompts the same marginal work and agrees."""
    mid, i, o, batch = "llama-3.1-8b", 1000, 200, 64
    cap, eng = _saturate(models, h100, mid, i, o, batch)
    m = models[mid]
    s = decode_step_ms(m, h100, 1, batch, i + o // 2)
    marginal = prefill_ms(m, h100, 1, i) - prefill_ms(m, h100, 1, 1)
    assert eng["calls_per_s"] == pytest.approx(batch / (o * s + batch * marginal) * 1000.0, rel=0.03)
    assert cap.rps == pytest.approx(eng["calls_per_s"], rel=0.02)


# ------------------------------------------------------------------------------------ invariants


def test_every_call_is_served_dropped_or_in_flight(models):
    """Conservation, with drops of both kinds, KV preemptions and calls cut off at the end."""
    a, b = models["llama-3.2-1b"], models["llama-3.2-3b"]
    chat = workflow(
        "chat", "interactive", 5000.0, 40.0,
        [
            {"name": "draft", "model": a.id, "calls_per_query": 1.5, "input_tokens": {"mean": 900, "percentiles": {99: 5000}}, "output_tokens": {"mean": 300, "percentiles": {99: 1500}}},
            {"name": "check", "model": b.id, "calls_per_query": 1, "depends_on": ["draft"], "input_tokens": {"mean": 500}, "output_tokens": {"mean": 20}},
        ],
    )  # fmt: skip
    inputs = inputs_for({a.id: a, b.id: b}, [chat])
    plan = plan_for(inputs, [EngineSpec(a.id, kv_tokens=12000, max_num_seqs=64, max_model_len=4096)])  # no route for 3b
    sim = run_simulation(plan, inputs, SimConfig(duration_s=60, seed=3, drain_s=0.0))
    from maestro_plan.simulate import build_report

    rep = build_report(sim)
    c = rep["calls"]
    assert c["dropped_by_reason"]["no_route"] > 0
    assert c["dropped_by_reason"]["prompt_over_max_model_len"] > 0
    assert c["in_flight_at_end"] > 0
    assert c["served"] > 0
    assert rep["replicas"][plan.replicas[0].id]["preemptions"] > 0
    assert c["issued"] == c["served"] + c["dropped"] + c["in_flight_at_end"]
    assert c["conserved"]
    w = rep["workflows"]["chat"]
    assert w["arrived"] == w["completed"] + w["failed"] + w["unfinished"]
    assert w["completed"] == 0  # every query needs the unrouted model
    assert w["slo_attainment"] == 0.0
    assert sim.fleet.notes == [f"no route for {b.id} from {chat.arrivals[0].source}: those calls are dropped (the plan sheds that demand)"]  # only the unrouted pair


def test_kv_pressure_preempts_but_everything_finishes(models):
    m = models["llama-3.2-1b"]
    wf = workflow("q", "interactive", 1e6, 30.0, [{"name": "r", "model": m.id, "calls_per_query": 2, "input_tokens": {"mean": 600, "percentiles": {99: 3000}}, "output_tokens": {"mean": 400, "percentiles": {99: 2000}}}])
    inputs = inputs_for({m.id: m}, [wf])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=16384, max_num_seqs=256)])
    rep = simulate(plan, inputs, SimConfig(duration_s=60, seed=0))
    eng = rep["replicas"][plan.replicas[0].id]
    assert eng["preemptions"] > 0
    assert eng["kv_occupancy_peak"] <= 1.0
    assert rep["calls"]["dropped"] == 0 and rep["calls"]["in_flight_at_end"] == 0
    assert rep["workflows"]["q"]["completed"] == rep["workflows"]["q"]["arrived"]


def test_same_seed_same_json_other_seed_differs(models):
    inputs, plan = contention_case(models, load=1.2)
    cfg = SimConfig(duration_s=60, seed=7, discipline="maestro")
    a = json.dumps(simulate(plan, inputs, cfg), sort_keys=True)
    b = json.dumps(simulate(plan, inputs, cfg), sort_keys=True)
    c = json.dumps(simulate(plan, inputs, SimConfig(duration_s=60, seed=8, discipline="maestro")), sort_keys=True)
    assert a == b
    assert a != c


def test_maestro_beats_fifo_and_edf_on_interactive_slo_under_contention(models):
    """Overloaded engine (2x): Maestro keeps interactive queries within SLO by serving them first
    and shortest-remaining first; EDF lets aging batch deadlines in; FIFO serves arrival order."""
    inputs, plan = contention_case(models, load=2.0)
    att = {}
    for d in ("fifo", "edf", "maestro"):
        rep = simulate(plan, inputs, SimConfig(duration_s=240, seed=0, discipline=d, warmup_s=30))
        att[d] = rep["classes"]["interactive"]["slo_attainment"]
    assert att["maestro"] >= 0.95
    assert att["maestro"] > att["edf"] + 0.2
    assert att["maestro"] > att["fifo"] + 0.2
    # below capacity the disciplines agree: nobody waits
    inputs, plan = contention_case(models, load=0.5)
    low = {d: simulate(plan, inputs, SimConfig(duration_s=120, seed=0, discipline=d))["classes"]["interactive"]["slo_attainment"] for d in ("fifo", "maestro")}
    assert low["fifo"] == low["maestro"] == 1.0


def test_maestro_learns_remaining_time_per_state(models):
    from maestro_plan.simulate.engine import Simulator

    inputs, plan = contention_case(models, load=1.0)
    sim = run_simulation(plan, inputs, SimConfig(duration_s=60, seed=0, discipline="maestro"))
    assert isinstance(sim, Simulator) and sim.predictor is not None
    agent = next(w for w in sim.workflows if w.name == "agent")
    act = next(r for r in agent.roles if r.name == "act")
    p = sim.predictor
    # after the last 'act' call nothing remains; after the first, two more calls do
    last = p.remaining_after(p.state(agent.index, act.index, 2))
    first = p.remaining_after(p.state(agent.index, act.index, 0))
    assert last == pytest.approx(0.0, abs=1e-6)
    assert first > 0
    assert len(p.samples[p.state(agent.index, act.index, 0)]) > 10


# ------------------------------------------------------------------------------------ standby, traffic


def test_standby_pays_cold_start_then_unloads_when_idle(models):
    m = models["llama-3.2-1b"]
    wf = one_role(m.id, 0.005, 100, 10)  # one query per 200 s on average: mostly more than 60 s apart
    inputs = inputs_for({m.id: m}, [wf])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=8)])
    from maestro_plan.plan.schema import Route, Standby

    plan = plan.model_copy(
        update={
            "replicas": [],
            "routes": [Route(source="users", model=m.id, replica=f"standby:{m.id}@p1-000", fraction=1.0, rate_rps=0.0, network_latency_ms=1.0)],
            "standby": [Standby(model=m.id, cluster="c1", node="p1-000", host_dram_bytes=1, cold_start_ms=4000.0)],
        }
    )
    rep = simulate(plan, inputs, SimConfig(duration_s=5000, seed=0))
    w = rep["workflows"]["q"]
    eng = rep["replicas"][f"standby:{m.id}@p1-000"]
    assert w["completed"] == w["arrived"] > 10
    assert w["e2e_ms"]["p50"] >= 4000.0  # most calls find the engine unloaded and wait for the load
    assert w["e2e_ms"]["p50"] < 4000.0 + 1000.0
    assert w["arrived"] / 2 < eng["cold_starts"] <= w["arrived"]
    # the same traffic with the idle timeout longer than the run: one load, then warm
    warm = simulate(plan, inputs, SimConfig(duration_s=5000, seed=0, standby_idle_s=1e6))
    assert warm["replicas"][f"standby:{m.id}@p1-000"]["cold_starts"] == 1
    assert warm["workflows"]["q"]["e2e_ms"]["p50"] < 1000.0


def test_lognormal_lengths_match_mean_and_percentile():
    d = TokenDist(mean=1154.7, percentiles={50: 1020, 99: 4142})
    lm = LengthModel.of(d)
    assert lm.kind == "lognormal"
    x = lm.sample(np.random.default_rng(0), 200_000)
    assert x.mean() == pytest.approx(1154.7, rel=0.02)
    assert np.percentile(x, 99) == pytest.approx(4142, rel=0.03)
    assert LengthModel.of(TokenDist(mean=300)).sample(np.random.default_rng(0), 5).tolist() == [300] * 5
    h = LengthModel.of(TokenDist(histogram={"edges": [0, 1000, 2000], "counts": [1, 3]}))
    y = h.sample(np.random.default_rng(0), 100_000)
    assert ((y > 1000).mean()) == pytest.approx(0.75, abs=0.01)


def test_trace_replay_uses_the_rows(models, tmp_path):
    m = models["llama-3.2-1b"]
    inputs = inputs_for({m.id: m}, [one_role(m.id, 1.0, 100, 10)])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=8)])
    tr = tmp_path / "t.csv"
    tr.write_text("timestamp,workflow,source\n1700000000.5,q,users\n1700000001.5,q,users\n1700000003,q\n1700000100,q,users\n")
    rep = simulate(plan, inputs, SimConfig(duration_s=50, seed=0, trace=str(tr)))
    assert rep["queries"]["started"] == 3  # the fourth row is past the duration
    assert rep["workflows"]["q"]["completed"] == 3
    whole = simulate(plan, inputs, SimConfig(duration_s=None, seed=0, trace=str(tr)))
    assert whole["queries"]["started"] == 4 and whole["config"]["duration_s"] == pytest.approx(100.5)
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"timestamp": "2023-11-16T18:15:46Z", "workflow": "q"}\n{"timestamp": "2023-11-16T18:15:47Z"}\n')
    assert simulate(plan, inputs, SimConfig(duration_s=50, seed=0, trace=str(jl)))["queries"]["started"] == 2


def test_malformed_trace_rows_stop_or_skip(models, tmp_path):
    m = models["llama-3.2-1b"]
    inputs = inputs_for({m.id: m}, [one_role(m.id, 1.0, 100, 10)])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=8)])
    tr = tmp_path / "t.csv"
    tr.write_text("timestamp,workflow,source\n0,q,users\nsoon,q,users\n2,q,elsewhere\n3,zz,users\n4,q,users\n")
    with pytest.raises(InputError) as e:
        simulate(plan, inputs, SimConfig(duration_s=50, trace=str(tr)))
    text = e.value.render()
    assert "line 3" in text and "line 4" in text and "line 5" in text and "--on-bad-row skip" in text
    rep = simulate(plan, inputs, SimConfig(duration_s=50, trace=str(tr), on_bad_row="skip"))
    assert rep["queries"]["started"] == 2
    assert len(rep["skipped_trace_rows"]) == 3


def test_plan_that_does_not_match_the_inputs_is_bad_input(models):
    a, b = models["llama-3.2-1b"], models["llama-3.2-3b"]
    inputs = inputs_for({a.id: a, b.id: b}, [one_role(a.id, 1.0, 100, 10)])
    plan = plan_for(inputs, [EngineSpec(a.id, kv_tokens=8192, max_num_seqs=8), EngineSpec(b.id, kv_tokens=8192, max_num_seqs=8)])
    other = inputs_for({a.id: a}, [one_role(a.id, 1.0, 100, 10, name="other")])
    with pytest.raises(InputError) as e:
        simulate(plan, other, SimConfig(duration_s=10))
    text = e.value.render()
    assert "llama-3.2-3b" in text and "replicas[1].model" in text
    assert "workflow(s) other" in text


def test_demand_the_plan_sheds_is_dropped(models):
    from maestro_plan.plan.schema import Demand

    m = models["llama-3.2-1b"]
    inputs = inputs_for({m.id: m}, [one_role(m.id, 20.0, 100, 10)])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=64)])
    plan = plan.model_copy(update={"demand": [Demand(source="users", model=m.id, rate_rps=20.0, priority="interactive", latency_budget_ms=1000.0,
                                                     mean_input_tokens=100, mean_output_tokens=10, served_rps=15.0, shed_rps=5.0)]})  # fmt: skip
    rep = simulate(plan, inputs, SimConfig(duration_s=100, seed=0))
    shed = rep["calls"]["dropped_by_reason"]["shed_by_plan"]
    assert shed / rep["calls"]["issued"] == pytest.approx(0.25, abs=0.02)
    assert rep["calls"]["conserved"]


@pytest.mark.parametrize("bad", [{"duration_s": None}, {"duration_s": 0}, {"duration_s": -5}, {"duration_s": float("nan")}, {"rate_scale": 0}, {"warmup_s": 20, "duration_s": 10}])
def test_bad_settings_are_input_errors(models, bad):
    m = models["llama-3.2-1b"]
    inputs = inputs_for({m.id: m}, [one_role(m.id, 1.0, 100, 10)])
    plan = plan_for(inputs, [EngineSpec(m.id, kv_tokens=8192, max_num_seqs=8)])
    with pytest.raises(InputError):
        simulate(plan, inputs, SimConfig(**bad))
