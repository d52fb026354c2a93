"""`maestro-plan estimate`, `maestro-plan demand` and the physical checks of `validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.estimate import decode_step_ms, prefill_ms, replica_memory
from maestro_plan.load.loader import builtin_gpu_types, load_models

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def needs_catalogue():
    if not (MODELS / "llama-3.1-8b.yaml").exists():
        pytest.skip("bundled model catalogue absent")


def test_estimate_json_keys_and_values():
    needs_catalogue()
    r = run("estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "4096", "--prompt", "1024", "--json", "--models", str(MODELS))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for key in ("weights_bytes_per_gpu", "kv_bytes_per_token", "kv_pool_bytes", "decode_step_ms", "prefill_ms", "max_kv_tokens", "capacity"):
        assert key in out
    m = load_models(MODELS)[0]["llama-3.1-8b"]
    gpu = builtin_gpu_types()["h100-sxm"]
    mem = replica_memory(m, gpu, 1, max_model_len=m.context_len)
    assert out["tp"] == 1
    assert out["weights_bytes_per_gpu"] == mem.weights_bytes_per_gpu
    assert out["kv_bytes_per_token"] == 131072
    assert out["kv_pool_bytes"] == mem.kv_pool_bytes_per_gpu
    assert out["decode_step_ms"] == pytest.approx(decode_step_ms(m, gpu, 1, 8, 4096), abs=1e-3)
    assert out["prefill_ms"] == pytest.approx(prefill_ms(m, gpu, 1, 1024), abs=1e-3)
    rps = [c["rps"] or 0.0 for c in out["capacity"]]
    assert rps == sorted(rps) and rps[-1] > 0  # capacity grows with the budget


def test_estimate_human_output_and_default_tp():
    needs_catalogue()
    r = run("estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--models", str(MODELS))
    assert r.exit_code == 0, r.output
    m = load_models(MODELS)[0]["llama-3.1-70b"]
    gpu = builtin_gpu_types()["h100-sxm"]
    # the default TP is the smallest allowed one whose KV pool holds one max_model_len request
    tp = next(t for t in m.tp_degrees if replica_memory(m, gpu, t, max_model_len=m.context_len).fits)
    assert tp > 1 and not replica_memory(m, gpu, 1).fits
    assert "KV pool" in r.stdout and "decode step" in r.stdout and f"on {tp} x h100-sxm" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--model", "llama-3.1-8", "--gpu", "h100-sxm"], "did you mean 'llama-3.1-8b'"),
        (["--model", "llama-3.1-8b", "--gpu", "h100-sxmm"], "did you mean 'h100-sxm'"),
        (["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "3"], "TP 3"),
        (["--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "1"], "does not fit"),
        (["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "5000", "--context", "8192"], "at most 55 such sequences fit"),
        (["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--context", "999999"], "context length"),
    ],
)
def test_estimate_bad_input_exits_2(args, needle):
    needs_catalogue()
    r = run("estimate", *args, "--models", str(MODELS))
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def _write_fleet(tmp: Path, gpu: str, per_node: int, model: dict, slo_ms: float = 60000) -> list[str]:
    inv = {
        "name": "small",
        "clusters": [{"name": "c1", "region": "r1", "node_pools": [{"name": "p1", "zone": "z1", "gpu_type": gpu, "gpus_per_node": per_node, "count": 1, "host_dram_gib": 256}]}],
        "sources": [{"name": "s1"}],
        "links": [{"a": "s1", "b": "c1", "latency_ms": 5}],
    }
    (tmp / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp / "models").mkdir()
    (tmp / "models" / f"{model['id']}.yaml").write_text(yaml.safe_dump(model))
    (tmp / "wl").mkdir()
    wf = {
        "name": "w1", "priority": "interactive", "slo": {"latency_ms": slo_ms}, "arrivals": [{"source": "s1", "rate_per_s": 1.0}],
        "roles": [{"name": "r1", "model": model["id"], "calls_per_query": 1, "input_tokens": {"mean": 1000}, "output_tokens": {"mean": 300}}],
    }
    (tmp / "wl" / "w1.yaml").write_text(yaml.safe_dump(wf))
    return ["--inventory", str(tmp / "inv.yaml"), "--models", str(tmp / "models"), "--workloads", str(tmp / "wl")]


# meta-llama/Llama-3.1-70B config.json
L70 = {
    "id": "l70", "hf_repo": "meta-llama/Llama-3.1-70B", "tp_degrees": [1, 2],
    "architecture": {"model_type": "llama", "num_hidden_layers": 80, "hidden_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256, "max_position_embeddings": 131072},
}


def test_validate_reports_a_model_that_fits_no_gpu(tmp_path):
    args = _write_fleet(tmp_path, "l4", 2, L70)
    r = run("validate", *args)
    assert r.exit_code == 2, r.output
    assert "fits no GPU" in r.output and "short by" in r.output and "l4 at TP 2" in r.output


def test_validate_reports_an_impossible_slo(tmp_path):
    args = _write_fleet(tmp_path, "h100-sxm", 8, {**L70, "tp_degrees": [2, 4, 8]}, slo_ms=100)
    r = run("validate", *args)
    assert r.exit_code == 2, r.output
    assert "cannot meet its SLO of 100 ms" in r.output


def test_validate_accepts_a_feasible_fleet(tmp_path):
    args = _write_fleet(tmp_path, "h100-sxm", 8, {**L70, "tp_degrees": [2, 4, 8]})
    r = run("validate", *args)
    assert r.exit_code == 0, r.output


def test_demand_json(tmp_path):
    args = _write_fleet(tmp_path, "h100-sxm", 8, {**L70, "tp_degrees": [2, 4, 8]})
    r = run("demand", *args, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["reference_gpu"] == "h100-sxm"
    assert [(x["model"], x["source"], x["rate_rps"]) for x in out["per_model"]] == [("l70", "s1", 1.0)]
    # a single role: the mean call the percentile allows (its lengths' tail keeps it under the SLO)
    assert 0.9 * 60000 <= out["role_budgets"][0]["budget_ms"] < 60000
    k = out["kv_reservation"][0]
    assert k["tp"] == 2 and k["saved_bytes_per_gpu"] > 0
    human = run("demand", *args)
    assert human.exit_code == 0 and "KV reservation" in human.stdout
    bad = run("demand", *args, "--percentile", "150")
    assert bad.exit_code == 2
