"""The bundled workloads (workloads/*.yaml): valid, varied, and traceable to their data."""

from __future__ import annotations

from graphlib import TopologicalSorter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maestro_plan.fit import FitOptions, ReadOptions, fit_workflows, read_calls
from maestro_plan.load.loader import load_inputs, load_workflows
from maestro_plan.load.schema import Workflow

REPO = Path(__file__).resolve().parent.parent
FILES = sorted((REPO / "workloads").glob("*.yaml"))
SOURCES = {"users-us-east", "users-us-west", "users-eu-west", "batch-us-east"}
SMALL = {"llama-3.2-1b", "llama-3.2-3b", "phi-3-mini"}
LARGE = {"llama-3.1-70b", "qwen2.5-72b", "deepseek-v3"}


def _load(path: Path) -> Workflow:
    wfs, _ = load_workflows(path)
    assert len(wfs) == 1, "one workflow per file"
    return wfs[0]


@pytest.fixture(scope="module")
def workflows() -> dict[str, Workflow]:
    return {p.stem: _load(p) for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_validates_and_says_where_numbers_come_from(path: Path) -> None:
    wf = _load(path)
    assert wf.name == path.stem
    assert len(wf.sources_note) > 200
    text = path.read_text()
    assert text.count("ARRIVAL RATES") == 1, "rates live in one clearly marked block"
    graph = {r.name: set(r.depends_on) for r in wf.roles}
    order = list(TopologicalSorter(graph).static_order())  # raises on a cycle
    assert set(order) == set(graph)
    for r in wf.roles:
        assert r.output_tokens.quantile(50) <= r.output_tokens.quantile(99)
        assert r.input_tokens.mean_tokens() > 0 and r.output_tokens.mean_tokens() > 0
    assert {a.source for a in wf.arrivals} <= SOURCES


def test_the_set_covers_the_brief(workflows: dict[str, Workflow]) -> None:
    assert len(workflows) >= 4
    assert {"chatdev-software-team", "react-retrieval-qa", "swe-agent-coding-loop", "document-pipeline"} <= set(workflows)
    prios = {w.priority.value for w in workflows.values()}
    assert prios == {"interactive", "batch"}
    models = {r.model for w in workflows.values() for r in w.roles}
    assert models & SMALL and models & LARGE and len(models) >= 8
    assert {a.source for w in workflows.values() for a in w.arrivals} == SOURCES
    for w in workflows.values():
        for r in w.roles:
            if r.model == "deepseek-v3":
                assert w.priority.value == "batch"
        if w.priority.value == "batch":
            assert {a.source for a in w.arrivals} == {"batch-us-east"}
    # interactive SLOs are tighter than batch ones
    inter = max(w.slo.latency_ms for w in workflows.values() if w.priority.value == "interactive" and w.name == "react-retrieval-qa")
    assert inter < min(w.slo.latency_ms for w in workflows.values() if w.priority.value == "batch")


def test_bundled_inputs_cross_check(bundled_paths: dict[str, Path]) -> None:
    inv = bundled_paths["inventory"] / "multi-region-fleet.yaml"
    models = bundled_paths["models"]
    if not inv.exists() or not list(models.glob("*.yaml")):
        pytest.skip("bundled inventory or models not written yet")
    inputs = load_inputs(inv, models, bundled_paths["workloads"])
    for w in inputs.workflows:
        for r in w.roles:
            ctx = inputs.models[r.model].context_len
            need = r.input_tokens.quantile(99) + r.output_tokens.quantile(99)
            assert need <= ctx, f"{w.name}/{r.name}: p99 input + output {need:g} > context {ctx} of {r.model}"


# --------------------------------------------------------------------------------------------
# Traceability to ../shared/data
# --------------------------------------------------------------------------------------------


def test_chatdev_numbers_match_the_calls(shared_data: Path, workflows: dict[str, Workflow]) -> None:
    calls = pd.read_csv(shared_data / "chatdev-warehouse-calls" / "calls.csv")
    runs = calls.task_id.nunique()
    wf = workflows["chatdev-software-team"]
    for r in wf.roles:
        log_role = r.name.replace("-", " ").title()
        x = calls[calls.role == log_role]
        assert len(x) > 0, log_role
        assert r.calls_per_query == pytest.approx(len(x) / runs, abs=5e-5)
        for side, col in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
            dist = getattr(r, side)
            assert dist.mean == pytest.approx(x[col].mean(), abs=0.051), (r.name, side)
            for p, v in dist.percentiles.items():
                assert v == pytest.approx(np.percentile(x[col], p), abs=0.051), (r.name, side, p)
            assert dist.max == x[col].max()
    tasks = pd.read_csv(shared_data / "chatdev-warehouse-calls" / "tasks.csv")
    # SLO rule: a p95 run's completion tokens at 40 ms and its calls at 450 ms must fit
    assert wf.slo.latency_ms >= (tasks.completion_tokens.quantile(0.95) * 0.040 + tasks.n_calls.quantile(0.95) * 0.450) * 1000
    # the rate: 8x the Azure conversation call rate over the calls per run of these roles
    per_run = sum(r.calls_per_query for r in wf.roles)
    assert wf.total_rate_per_s == pytest.approx(8 * 19366 / 3501.721937 / per_run, rel=1e-3)


def test_azure_rates_and_burstiness_are_the_traces(shared_data: Path, workflows: dict[str, Workflow]) -> None:
    """Fitting the Azure conversation trace reproduces the rate and 60-s peak/mean used above."""
    trace = shared_data / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
    fit = fit_workflows(read_calls([trace], ReadOptions(default_model="llama-3.1-8b")), FitOptions(name="conv", slo_ms=1000))[0]
    assert fit.rate_per_s == pytest.approx(5.5304, abs=1e-4)
    react = workflows["react-retrieval-qa"]
    calls_per_q = sum(r.calls_per_query for r in react.roles)
    assert react.total_rate_per_s == pytest.approx(20 * fit.rate_per_s / calls_per_q, rel=1e-3)
    for a in react.arrivals + workflows["chatdev-software-team"].arrivals:
        assert a.peak_to_mean == pytest.approx(fit.peak_to_mean, abs=5e-4)
    conv = pd.read_csv(trace, encoding="utf-8-sig")
    answer = next(r for r in react.roles if r.name == "answer-writer")
    assert answer.output_tokens.mean == pytest.approx(conv.GeneratedTokens.mean(), abs=0.051)
    assert answer.input_tokens.percentiles[99] == pytest.approx(np.percentile(conv.ContextTokens, 99), abs=0.051)


def test_swe_agent_loop_is_the_mooncake_sessions(shared_data: Path, workflows: dict[str, Workflow]) -> None:
    s = pd.read_json(shared_data / "mooncake-fast25" / "synthetic_trace.jsonl", lines=True)
    s["h0"] = s.hash_ids.str[0]
    n = s.groupby("h0").size()
    sessions = s[s.h0.isin(n[n > 1].index)]
    agent = next(r for r in workflows["swe-agent-coding-loop"].roles if r.name == "agent")
    assert agent.calls_per_query == pytest.approx(n[n > 1].mean(), abs=5e-5)
    assert agent.output_tokens.percentiles[99] == pytest.approx(np.percentile(sessions.output_length, 99), abs=0.051)
    trimmed = np.minimum(sessions.input_length, 32768 - 1024)
    assert agent.input_tokens.mean == pytest.approx(trimmed.mean(), abs=0.051)
    assert agent.shared_prefix


def test_document_chunks_follow_the_trace(shared_data: Path, workflows: dict[str, Workflow]) -> None:
    s = pd.read_json(shared_data / "mooncake-fast25" / "synthetic_trace.jsonl", lines=True)
    chunks = np.maximum(1, np.ceil((s.input_length - 20) / (1024 - 20)))
    doc = {r.name: r for r in workflows["document-pipeline"].roles}
    assert doc["chunk-summarizer"].calls_per_query == pytest.approx(chunks.mean(), abs=5e-5)
    assert doc["entity-extractor"].calls_per_query == doc["chunk-summarizer"].calls_per_query
    assert set(doc["synthesizer"].depends_on) == {"chunk-summarizer", "entity-extractor"}
    assert doc["synthesizer"].input_tokens.mean == pytest.approx((chunks * s.output_length.mean()).mean(), abs=0.051)
