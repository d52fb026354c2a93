"""`maestro-plan fit`: workload profiles from call logs.

Synthetic logs are drawn from known distributions (fixed seeds) so the fit can be checked against
the truth; the real ChatDev calls (shared data) must reproduce the README table of that data set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.fit import BucketQuantile, FitOptions, ReadOptions, evaluate, fit_workflows, read_calls, render_yaml
from maestro_plan.fit.predictor import holdout_mask, pinball
from maestro_plan.load.loader import load_inputs, load_workflows

LOGS = Path(__file__).resolve().parent / "data" / "logs"
runner = CliRunner()

# Real config.json numbers of three catalogue models (a private catalogue keeps these tests
# independent of the bundled one).
CATALOGUE = {
    # https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
    "llama-3.1-8b": "hf_repo: meta-llama/Llama-3.1-8B-Instruct\nmax_model_len: 32768\narchitecture: {model_type: llama, num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256, max_position_embeddings: 131072}\n",
    # https://huggingface.co/Qwen/Qwen2.5-32B-Instruct/blob/main/config.json
    "qwen2.5-32b": "hf_repo: Qwen/Qwen2.5-32B-Instruct\narchitecture: {model_type: qwen2, num_hidden_layers: 64, hidden_size: 5120, num_attention_heads: 40, num_key_value_heads: 8, intermediate_size: 27648, vocab_size: 152064, max_position_embeddings: 32768}\n",
    # https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/config.json
    "llama-3.2-1b": "hf_repo: meta-llama/Llama-3.2-1B-Instruct\nmax_model_len: 32768\narchitecture: {model_type: llama, num_hidden_layers: 16, hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, intermediate_size: 8192, vocab_size: 128256, tie_word_embeddings: true, max_position_embeddings: 131072}\n",
}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    for mid, text in CATALOGUE.items():
        (d / f"{mid}.yaml").write_text(f"id: {mid}\n{text}")
    return d


# --------------------------------------------------------------------------------------------
# Synthetic logs from known distributions
# --------------------------------------------------------------------------------------------

# role -> (model, median input, sigma input, median output, sigma output): log-normal lengths
TRUTH = {
    "planner": ("llama-3.2-1b", 300.0, 0.2, 60.0, 0.3),
    "coder": ("qwen2.5-32b", 2000.0, 0.4, 900.0, 0.5),
    "reviewer": ("llama-3.1-8b", 2500.0, 0.4, 150.0, 0.6),
}
RATE = 0.5  # queries per second (Poisson)
Z = {50: 0.0, 90: 1.2815515655446004, 99: 2.3263478740408408}  # standard normal quantiles


def synthetic(n_traces: int, seed: int = 7) -> pd.DataFrame:
    """planner once, then 2..6 rounds (uniform, mean 4) of coder -> reviewer; calls run one after
    another, each taking 0.3 s + 20 ms per output token."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum(rng.exponential(1.0 / RATE, n_traces))
    rows = []
    for k, t in enumerate(starts):
        seq = ["planner"] + ["coder", "reviewer"] * int(rng.integers(2, 7))
        for step, role in enumerate(seq):
            model, mi, si, mo, so = TRUTH[role]
            inp = int(round(mi * np.exp(si * rng.standard_normal())))
            out = max(1, int(round(mo * np.exp(so * rng.standard_normal()))))
            lat = 0.3 + 0.02 * out
            rows.append(
                {"trace_id": f"t{k:05d}", "agent": role, "model": model, "prompt_tokens": inp, "completion_tokens": out,
                 "timestamp_ms": int(round(t * 1000)), "latency_ms": int(round(lat * 1000)), "step": step}
            )
            t += lat + 0.001
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def big_fit(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("synth")
    df = synthetic(1500)
    p = d / "calls.csv"
    df.to_csv(p, index=False)
    calls = read_calls([p], ReadOptions())
    fits = fit_workflows(calls, FitOptions(name="synthetic", percentile=99.0))
    return df, calls, fits[0]


def test_recovers_known_distributions(big_fit) -> None:
    df, calls, fit = big_fit
    assert calls.mappings[str(calls.files[0])] == {
        "input": "prompt_tokens", "output": "completion_tokens", "model": "model", "role": "agent",
        "trace": "trace_id", "timestamp": "timestamp_ms", "latency": "latency_ms", "order": "step",
    }
    roles = {r.name: r for r in fit.roles}
    assert set(roles) == set(TRUTH)
    # calls per query: planner 1, coder and reviewer uniform 2..6 -> 4
    assert roles["planner"].calls_per_query == pytest.approx(1.0)
    assert roles["coder"].calls_per_query == pytest.approx(4.0, rel=0.05)
    assert roles["reviewer"].calls_per_query == pytest.approx(roles["coder"].calls_per_query)
    for name, (model, mi, si, mo, so) in TRUTH.items():
        r = roles[name]
        assert r.model == model
        for p, tol in ((50, 0.05), (90, 0.08), (99, 0.15)):
            assert r.output["percentiles"][p] == pytest.approx(mo * np.exp(so * Z[p]), rel=tol), (name, p)
            assert r.input["percentiles"][p] == pytest.approx(mi * np.exp(si * Z[p]), rel=tol), (name, p)
        assert r.output["mean"] == pytest.approx(mo * np.exp(so**2 / 2), rel=0.06)
        h = r.output["histogram"]
        assert sum(h["counts"]) == r.calls and h["edges"][-1] >= r.output["max"]
    # Poisson arrivals at 0.5/s: 1500 queries -> about 2.6 % standard error
    assert fit.rate_per_s == pytest.approx(RATE, rel=0.1)
    assert 1.0 <= fit.peak_to_mean < 3.0
    # the DAG: planner -> coder -> reviewer (reviewer -> coder is the loop, folded into calls)
    assert fit.edges == [("coder", "reviewer"), ("planner", "coder")]
    # SLO observed from start/end times: a query lasts sum of its calls
    assert fit.slo_from.startswith("observed p95")
    assert 40_000 < fit.slo_ms < 200_000


def test_predictor_beats_role_agnostic_baseline(big_fit) -> None:
    _, _, fit = big_fit
    ev = fit.evaluation
    assert ev is not None and ev.n_test > 2000
    assert ev.aware_loss < 0.8 * ev.base_loss  # roles differ 15x in output length
    assert ev.aware_mae_p50 < ev.base_mae_p50
    assert 0.975 <= ev.aware_coverage <= 1.0  # p99 predictor covers about 99 % of held-out outputs
    roles = {r.name: r for r in fit.roles}
    # the reserve follows the role: planner's p99 is ~120 tokens, the baseline reserves coder-sized
    p99 = {n: mo * np.exp(so * Z[99]) for n, (_, _, _, mo, so) in TRUTH.items()}
    for name, r in roles.items():
        assert r.reserve_aware == pytest.approx(p99[name], rel=0.2), name
    assert roles["planner"].reserve_base > 3 * roles["planner"].reserve_aware


def test_bucket_quantile_follows_input() -> None:
    """Where output grows with input, the input buckets must track it (role known)."""
    rng = np.random.default_rng(1)
    inp = rng.uniform(100, 4000, 4000)
    out = 0.5 * inp * np.exp(0.1 * rng.standard_normal(4000))
    roles = np.array(["r"] * 4000, dtype=object)
    m = BucketQuantile(0.9, n_buckets=8, min_rows=100).fit(roles, inp, out)
    pred = m.predict(roles[:3], np.array([200.0, 1500.0, 3900.0]))
    assert pred[0] < pred[1] < pred[2]
    flat = BucketQuantile(0.9, n_buckets=1).fit(roles, inp, out).predict(roles, inp)
    assert pinball(out, m.predict(roles, inp), 0.9) < 0.5 * pinball(out, flat, 0.9)


def test_holdout_is_deterministic_and_keeps_traces_together() -> None:
    groups = np.array([f"t{i // 5}" for i in range(5000)])
    a, b = holdout_mask(groups), holdout_mask(groups.copy())
    assert (a == b).all()
    assert 0.2 < a.mean() < 0.3
    for g in np.unique(groups)[:50]:
        assert len(set(a[groups == g])) == 1


def test_evaluate_needs_enough_rows() -> None:
    r = np.array(["a", "b"] * 4, dtype=object)
    x = np.arange(8, dtype=float)
    assert evaluate(r, x, x, np.array([str(i) for i in range(8)]), 0.9) is None


def test_parallel_roles_get_no_edge_between_them(tmp_path: Path) -> None:
    """A, then B and C at the same time, then D after both: A->B, A->C, B->D, C->D; no B<->C."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(60):
        t0 = 1000.0 * k
        rows.append(("A", t0, 1.0))
        b, c = rng.uniform(1, 3, 2)
        rows += [("B", t0 + 1.5, b), ("C", t0 + 1.5, c)]
        rows.append(("D", t0 + 1.6 + max(b, c), 1.0))
    df = pd.DataFrame(
        [{"trace_id": f"q{i // 4}", "agent": r, "model": "llama-3.1-8b", "input_tokens": 100, "output_tokens": 10,
          "start_time": t, "end_time": t + d} for i, (r, t, d) in enumerate(rows)]
    )
    p = tmp_path / "par.csv"
    df.to_csv(p, index=False)
    fit = fit_workflows(read_calls([p], ReadOptions(timestamp_unit="s")), FitOptions(name="par"))[0]
    assert fit.edges == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


def _variants(df: pd.DataFrame, d: Path) -> dict[str, Path]:
    """The same calls in five export shapes."""
    out: dict[str, Path] = {}
    out["csv"] = d / "calls.csv"
    df.to_csv(out["csv"], index=False)
    iso = lambda ms: pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()  # noqa: E731
    out["jsonl_usage"] = d / "openai.jsonl"
    with open(out["jsonl_usage"], "w") as f:
        for r in df.itertuples():
            f.write(json.dumps({"id": f"c{r.Index}", "created": iso(r.timestamp_ms), "model": r.model,
                                "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens},
                                "metadata": {"session_id": r.trace_id, "agent": r.agent, "step": r.step},
                                "latency_ms": r.latency_ms}) + "\n")
    out["jsonl_otel_attrs"] = d / "spans.jsonl"
    with open(out["jsonl_otel_attrs"], "w") as f:
        for r in df.itertuples():
            f.write(json.dumps({"trace_id": r.trace_id, "start_time": iso(r.timestamp_ms),
                                "end_time": iso(r.timestamp_ms + r.latency_ms), "seq": r.step,
                                "attributes": {"gen_ai.agent.name": r.agent, "gen_ai.request.model": r.model,
                                               "gen_ai.usage.input_tokens": r.prompt_tokens,
                                               "gen_ai.usage.output_tokens": r.completion_tokens}}) + "\n")
    out["otlp"] = d / "otlp.jsonl"
    with open(out["otlp"], "w") as f:
        for trace, g in df.groupby("trace_id", sort=True):
            spans = [{"traceId": trace, "spanId": f"{trace}-{r.step}", "name": "chat",
                      "startTimeUnixNano": str(int(r.timestamp_ms) * 10**6),
                      "endTimeUnixNano": str(int(r.timestamp_ms + r.latency_ms) * 10**6),
                      "attributes": [{"key": "gen_ai.agent.name", "value": {"stringValue": r.agent}},
                                     {"key": "gen_ai.request.model", "value": {"stringValue": r.model}},
                                     {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(r.prompt_tokens)}},
                                     {"key": "gen_ai.usage.output_tokens", "value": {"intValue": str(r.completion_tokens)}}]}
                     for r in g.itertuples()]
            f.write(json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}) + "\n")
    out["parquet"] = d / "calls.parquet"
    pq = df.drop(columns=["prompt_tokens", "completion_tokens"]).copy()
    pq["usage"] = [{"prompt_tokens": a, "completion_tokens": b} for a, b in zip(df.prompt_tokens, df.completion_tokens)]
    pq.to_parquet(out["parquet"], index=False)
    return out


def test_formats_fit_identically(tmp_path: Path) -> None:
    df = synthetic(120, seed=11)
    paths = _variants(df, tmp_path)
    docs = {}
    for kind, p in paths.items():
        calls = read_calls([p], ReadOptions())
        assert len(calls.frame) == len(df), kind
        fit = fit_workflows(calls, FitOptions(name="same"))[0]
        docs[kind] = fit.doc
    ref = docs.pop("csv")
    for kind, doc in docs.items():
        assert doc["roles"] == ref["roles"], kind
        assert doc["arrivals"] == ref["arrivals"], kind
        assert doc["slo"] == ref["slo"], kind


def test_real_format_samples_agree(catalogue: Path) -> None:
    """The shipped samples carry the same two ChatDev runs as CSV, OTLP spans (agent name on the
    parent invoke_agent span) and OpenAI-style usage records."""
    common = ["--models", str(catalogue), "--rate-per-s", "1", "--slo-ms", "60000", "--json"]
    res = {}
    for name, extra in (
        ("chatdev_head.csv", ["--model", "qwen2.5-32b"]),
        ("otel_chatdev.jsonl", ["--model-map", "gpt-3.5-turbo=qwen2.5-32b"]),
        ("openai_usage.jsonl", ["--model-map", "gpt-3.5-turbo-0613=qwen2.5-32b"]),
    ):
        r = runner.invoke(app, ["fit", str(LOGS / name), "--out", str(catalogue.parent / f"{name}.yaml"), *common, *extra])
        assert r.exit_code == 0, r.output
        rep = json.loads(r.stdout)
        (wf,) = rep["workflows"].values()
        res[name] = {k: (v["calls_per_query"], v["input_p50"], v["output_p99"]) for k, v in wf["roles"].items()}
        assert wf["queries"] == 2 and wf["calls"] == 24
    assert res["otel_chatdev.jsonl"] == res["chatdev_head.csv"] == res["openai_usage.jsonl"]
    assert res["chatdev_head.csv"]["programmer"][0] == 5.0


def test_azure_trace_sample(catalogue: Path, tmp_path: Path) -> None:
    """Azure trace format: BOM header, TIMESTAMP with 7 decimals, no trace or role column."""
    out = tmp_path / "azure.yaml"
    r = runner.invoke(app, ["fit", str(LOGS / "azure_conv_head.csv"), "--out", str(out), "--models", str(catalogue), "--model", "llama-3.1-8b", "--slo-ms", "10000"])
    assert r.exit_code == 0, r.output
    (wf,) = load_workflows(out)[0]
    assert wf.roles[0].calls_per_query == 1.0
    raw = pd.read_csv(LOGS / "azure_conv_head.csv", encoding="utf-8-sig")
    t = pd.to_datetime(raw.TIMESTAMP)
    assert wf.total_rate_per_s == pytest.approx(len(raw) / (t.max() - t.min()).total_seconds(), rel=1e-5)
    assert wf.roles[0].output_tokens.percentiles[90] == pytest.approx(np.percentile(raw.GeneratedTokens, 90), abs=0.05)


def test_numeric_timestamp_units(tmp_path: Path) -> None:
    df = pd.DataFrame({"session_id": ["a", "a", "b", "b", "c"], "input_tokens": [10, 20, 30, 40, 50], "output_tokens": [1, 2, 3, 4, 5],
                       "timestamp": [0, 500, 4000, 4100, 8000], "model": "llama-3.1-8b"})
    p = tmp_path / "t.csv"
    df.to_csv(p, index=False)
    for unit, rate in (("ms", 3 / 8.0), ("s", 3 / 8000.0)):
        fit = fit_workflows(read_calls([p], ReadOptions(timestamp_unit=unit)), FitOptions(name="u", slo_ms=1000))[0]
        assert fit.rate_per_s == pytest.approx(rate)


# --------------------------------------------------------------------------------------------
# CLI: output, report, determinism
# --------------------------------------------------------------------------------------------


def test_cli_writes_valid_deterministic_profile(tmp_path: Path, catalogue: Path) -> None:
    df = synthetic(150, seed=5)
    p = tmp_path / "calls.csv"
    df.to_csv(p, index=False)
    out = tmp_path / "wl" / "agents.yaml"
    args = ["fit", str(p), "--out", str(out), "--models", str(catalogue), "--priority", "batch", "--slo-ms", "90000", "--rate-scale", "10"]
    r1 = runner.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    first = out.read_bytes()
    r2 = runner.invoke(app, [*args, "--report"])
    assert r2.exit_code == 0, r2.output
    assert out.read_bytes() == first
    assert "pinball p99" in r2.stdout and "coder" in r2.stdout and "saved" in r2.stdout and "…" not in r2.stdout
    wfs, _ = load_workflows(out)
    (wf,) = wfs
    assert wf.name == "agents" and wf.priority.value == "batch" and wf.slo.latency_ms == 90000
    assert {r.name for r in wf.roles} == set(TRUTH)
    assert all(r.reserve_output_tokens for r in wf.roles)
    fit = fit_workflows(read_calls([p], ReadOptions()), FitOptions(name="x"))[0]
    assert wf.total_rate_per_s == pytest.approx(10 * fit.rate_per_s, rel=1e-5)
    assert not list(out.parent.glob(".*tmp"))  # atomic write leaves no temp file


def test_cli_json_report_and_workflow_column(tmp_path: Path, catalogue: Path) -> None:
    a, b = synthetic(40, seed=1), synthetic(40, seed=2)
    a["app"], b["app"] = "Team A", "team_b"
    b["trace_id"] = "b" + b["trace_id"]
    p = tmp_path / "two.csv"
    pd.concat([a, b]).to_csv(p, index=False)
    out = tmp_path / "two.yaml"
    r = runner.invoke(app, ["fit", str(p), "--out", str(out), "--models", str(catalogue), "--workflow-col", "app", "--slo-ms", "5000", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert sorted(rep["workflows"]) == ["team-a", "team-b"]
    for w in rep["workflows"].values():
        assert w["kv_tokens_per_query"]["role_aware"] < w["kv_tokens_per_query"]["max_context"]
        assert 0 < w["kv_saved_vs_max_context"] < 1
    wfs, _ = load_workflows(out)
    assert sorted(w.name for w in wfs) == ["team-a", "team-b"]


# --------------------------------------------------------------------------------------------
# Real data: the ChatDev calls
# --------------------------------------------------------------------------------------------

# README table of ../shared/data/chatdev-warehouse-calls: calls/run, prompt mean / p90, completion mean / p90
CHATDEV_README = {
    "programmer": (10.95, 1758, 3141, 573, 1173),
    "code-reviewer": (6.95, 1687, 2577, 477, 1240),
    "chief-product-officer": (2.07, 1090, 2109, 285, 701),
    "chief-executive-officer": (1.45, 1399, 2510, 78, 169),
    "chief-technology-officer": (1.07, 545, 698, 8, 8),
    "software-test-engineer": (0.78, 1784, 3052, 790, 1519),
    "prompt-engineer": (0.23, 171, 186, 148, 167),
}


def test_chatdev_calls_fit_matches_readme(shared_data: Path, tmp_path: Path, catalogue: Path) -> None:
    calls_csv = shared_data / "chatdev-warehouse-calls" / "calls.csv"
    out = tmp_path / "chatdev.yaml"
    r = runner.invoke(app, ["fit", str(calls_csv), "--out", str(out), "--models", str(catalogue), "--model", "qwen2.5-32b", "--rate-per-s", "0.5", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)["workflows"]["chatdev"]
    wfs, _ = load_workflows(out)
    roles = {x.name: x for x in wfs[0].roles}
    for name, (cpr, pm, p90, cm, c90) in CHATDEV_README.items():
        x = roles[name]
        assert x.calls_per_query == pytest.approx(cpr, abs=0.005), name
        assert x.input_tokens.mean == pytest.approx(pm, abs=0.5), name
        assert x.input_tokens.percentiles[90] == pytest.approx(p90, abs=0.5), name
        assert x.output_tokens.mean == pytest.approx(cm, abs=0.5), name
        assert x.output_tokens.percentiles[90] == pytest.approx(c90, abs=0.5), name
    means = [roles[n].output_tokens.mean for n in CHATDEV_README]
    assert max(means) / min(means) > 70  # "roles differ 70x in output length"
    assert ("programmer", "code-reviewer") in {tuple(e) for e in rep["edges"]}
    ev = rep["heldout"]
    assert ev["pinball_role_aware"] < ev["pinball_role_agnostic"]
    # SLO observed from api_latency_s (calls sequential): p95 of the summed latency per run
    tasks = pd.read_csv(calls_csv).groupby("task_id").api_latency_s.sum(min_count=1).dropna()
    assert wfs[0].slo.latency_ms == pytest.approx(np.percentile(tasks, 95) * 1000, rel=1e-6)


def test_fitted_profile_validates_against_bundled_inputs(shared_data: Path, tmp_path: Path, bundled_paths: dict[str, Path]) -> None:
    """A fitted profile plugs into the bundled fleet and catalogue (skips until they exist)."""
    inv = bundled_paths["inventory"] / "multi-region-fleet.yaml"
    if not inv.exists() or not (bundled_paths["models"] / "qwen2.5-32b.yaml").exists():
        pytest.skip("bundled inventory/models not written yet")
    wl = tmp_path / "workloads"
    out = wl / "chatdev.yaml"
    r = runner.invoke(app, ["fit", str(shared_data / "chatdev-warehouse-calls" / "calls.csv"), "--out", str(out), "--models", str(bundled_paths["models"]),
                            "--model-col", "task_models", "--model-map", "GPT_3_5_TURBO=qwen2.5-32b", "--model-map", "GPT_3_5_TURBO_NEW=qwen2.5-32b",
                            "--model-map", "GPT_3_5_TURBO|GPT_4=qwen2.5-72b", "--model-map", "GPT_4=qwen2.5-72b", "--model-map", "GTP_4O_MINI=llama-3.1-8b",
                            "--model-map", "GPT_3_5_TURBO|GPT_3_5_TURBO_NEW=qwen2.5-32b", "--model-map", "LLAMA_31_8B=llama-3.1-8b", "--model-map", "LLAMA_3=llama-3.1-8b",
                            "--rate-per-s", "0.2", "--slo-ms", "1200000", "--source", "users-eu-west"])
    assert r.exit_code == 0, r.output
    inputs = load_inputs(inv, bundled_paths["models"], wl)
    assert inputs.workflows[0].arrivals[0].source == "users-eu-west"


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, a message naming what and where, never a traceback
# --------------------------------------------------------------------------------------------


def _fit(catalogue: Path, tmp_path: Path, *args: str):
    r = runner.invoke(app, ["fit", *args, "--out", str(tmp_path / "o.yaml"), "--models", str(catalogue)])
    assert "Traceback" not in r.output
    return r


def _csv(tmp_path: Path, text: str, name: str = "log.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD = "trace_id,role,model,prompt_tokens,completion_tokens,timestamp\n"


def test_missing_token_column_names_flag(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, "trace_id,role,model,prompt,out_toks\nt,a,llama-3.1-8b,1,2\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1", "--rate-per-s", "1")
    assert r.exit_code == 2
    assert "--input-col" in r.output and "--output-col" in r.output and "out_toks" in r.output


def test_flag_names_absent_column(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,1,2,0\nt,b,llama-3.1-8b,1,2,1\n")
    r = _fit(catalogue, tmp_path, p, "--role-col", "rol", "--slo-ms", "1")
    assert r.exit_code == 2 and "--role-col" in r.output and "'role'" in r.output


def test_missing_model_column_suggests_flags(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, "trace_id,prompt_tokens,completion_tokens\nt,1,2\nu,3,4\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1", "--rate-per-s", "1")
    assert r.exit_code == 2 and "--model-col" in r.output and "--model ID" in r.output


def test_bad_rows_are_skipped_with_line_numbers(tmp_path: Path, catalogue: Path) -> None:
    rows = [f"t{i},a,llama-3.1-8b,{100 + i},{10 + i},{i}" for i in range(20)]
    rows[3] = "t3,a,llama-3.1-8b,-5,10,3"  # line 5
    rows[7] = "t7,a,llama-3.1-8b,abc,10,7"  # line 9
    rows[9] = "t9,a,llama-3.1-8b,12.5,10,9"  # line 11
    p = _csv(tmp_path, GOOD + "\n".join(rows) + "\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1000")
    assert r.exit_code == 0, r.output
    err = r.stderr
    assert "line 5" in err and "negative" in err
    assert "line 9" in err and "'abc' is not a number" in err
    assert "line 11" in err and "not a whole number" in err
    assert "used 17 calls, skipped 3 with problems" in err
    r2 = _fit(catalogue, tmp_path, p, "--slo-ms", "1000", "--strict")
    assert r2.exit_code == 2 and "--strict" in r2.output


def test_all_rows_bad_exits_2(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,x,1,0\nu,a,llama-3.1-8b,-1,1,1\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 2
    assert "line 2" in r.output and "line 3" in r.output and "no usable calls" in r.output


def test_empty_and_header_only_files(tmp_path: Path, catalogue: Path) -> None:
    r = _fit(catalogue, tmp_path, _csv(tmp_path, "", "empty.csv"), "--slo-ms", "1")
    assert r.exit_code == 2 and "empty" in r.output
    r = _fit(catalogue, tmp_path, _csv(tmp_path, "", "empty.jsonl"), "--slo-ms", "1")
    assert r.exit_code == 2 and "empty" in r.output
    r = _fit(catalogue, tmp_path, _csv(tmp_path, GOOD, "header.csv"), "--slo-ms", "1")
    assert r.exit_code == 2 and "no usable calls" in r.output


def test_single_call(tmp_path: Path, catalogue: Path) -> None:
    r = _fit(catalogue, tmp_path, _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,10,2,0\n"), "--slo-ms", "1", "--rate-per-s", "1")
    assert r.exit_code == 2 and "only 1 usable call" in r.output


def test_unknown_model_suggests_model_map(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,gpt-4o,10,2,0\nu,a,Llama-3.1-8B-Instruct,10,2,1\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 2
    assert "--model-map" in r.output and "'gpt-4o' (1 calls)" in r.output and "llama-3.1-8b" in r.output
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1", "--model-map", "gpt-4o=llama-3.1-8b", "--model-map", "Llama-3.1-8B-Instruct=llama-3.1-8b")
    assert r.exit_code == 0, r.output


def test_bad_model_map(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,gpt-4o,10,2,0\nu,a,gpt-4o,10,2,1\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1", "--model-map", "gpt-4o")
    assert r.exit_code == 2 and "OLD=NEW" in r.output
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1", "--model-map", "gpt-4o=llama-3.1-8bb")
    assert r.exit_code == 2 and "did you mean 'llama-3.1-8b'" in r.output


def test_malformed_jsonl_lines(tmp_path: Path, catalogue: Path) -> None:
    lines = [json.dumps({"session_id": f"s{i}", "model": "llama-3.1-8b", "created": i, "usage": {"prompt_tokens": 10, "completion_tokens": 3}}) for i in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, "[1, 2]")
    p = _csv(tmp_path, "\n".join(lines) + "\n", "log.jsonl")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 0, r.output
    assert "line 3" in r.stderr and "not valid JSON" in r.stderr and "line 5" in r.stderr


def test_file_problems(tmp_path: Path, catalogue: Path) -> None:
    r = _fit(catalogue, tmp_path, str(tmp_path / "nope.csv"), "--slo-ms", "1")
    assert r.exit_code == 2 and "does not exist" in r.output
    r = _fit(catalogue, tmp_path, str(tmp_path), "--slo-ms", "1")
    assert r.exit_code == 2 and "directory" in r.output
    ok = _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,10,2,0\nu,a,llama-3.1-8b,10,2,1\n")
    r = runner.invoke(app, ["fit", ok, "--out", str(tmp_path / "o.txt"), "--models", str(catalogue), "--slo-ms", "1"])
    assert r.exit_code == 2 and ".yaml" in r.output
    r = _fit(catalogue, tmp_path, ok, "--slo-ms", "-5")
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_roles_without_trace_ids(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, "role,model,prompt_tokens,completion_tokens,timestamp\na,llama-3.1-8b,1,2,0\nb,llama-3.1-8b,1,2,1\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 2 and "--trace-col" in r.output


def test_rate_and_slo_need_a_source(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, "trace_id,role,model,prompt_tokens,completion_tokens\nt,a,llama-3.1-8b,1,2\nu,a,llama-3.1-8b,1,2\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 2 and "--rate-per-s" in r.output and "--timestamp-col" in r.output
    r = _fit(catalogue, tmp_path, p, "--rate-per-s", "1")
    assert r.exit_code == 2 and "--slo-ms" in r.output


def test_bad_timestamps_listed(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,1,2,2024-01-01T00:00:00Z\nu,a,llama-3.1-8b,1,2,yesterday\nv,a,llama-3.1-8b,1,2,2024-01-01T00:10:00Z\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 0, r.output
    assert "line 3" in r.stderr and "'yesterday' is not a time" in r.stderr


def test_render_yaml_validates(big_fit) -> None:
    _, calls, fit = big_fit
    text = render_yaml([fit], calls)
    assert text.startswith("# Workload profile fitted")
    assert "reserve_output_tokens" in text


def test_missing_timestamp_is_a_row_problem(tmp_path: Path, catalogue: Path) -> None:
    p = _csv(tmp_path, GOOD + "t,a,llama-3.1-8b,1,2,0\nu,a,llama-3.1-8b,1,2,\nv,a,llama-3.1-8b,1,2,10\n")
    r = _fit(catalogue, tmp_path, p, "--slo-ms", "1")
    assert r.exit_code == 0, r.output
    assert "line 3" in r.stderr and "timestamp is missing" in r.stderr
    (wf,) = load_workflows(tmp_path / "o.yaml")[0]
    assert wf.total_rate_per_s == pytest.approx(2 / 10)
