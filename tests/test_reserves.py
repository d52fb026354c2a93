"""Reserves and checkpoint sizes as inputs (issue 15 item 3): per GPU type and per model, with the
pinned engine's values (maestro_plan/data/vllm.yaml) as defaults; checkpoint_bytes / weight_bytes
size the weights. Checked through the estimator, the solver (candidates) and the verifier."""

from __future__ import annotations

from pathlib import Path

import _solver_inputs as S
import pytest
import yaml

from maestro_plan.errors import InputError
from maestro_plan.estimate import VLLM, engine_for, loaded_weight_bytes, replica_memory, weight_bytes_total, weights_bytes_per_gpu
from maestro_plan.load.loader import builtin_gpu_types, load_models
from maestro_plan.load.schema import EngineReserves
from maestro_plan.solve.planner import solve
from maestro_plan.units import GIB
from maestro_plan.verify import verify_plan

REPO = Path(__file__).resolve().parent.parent
M1B, M8B = "llama-3.2-1b", "llama-3.1-8b"


@pytest.fixture(scope="module")
def models():
    return load_models(REPO / "models")[0]


def test_defaults_are_the_pinned_engine_values(models) -> None:
    gpu = builtin_gpu_types()["h100-sxm"]
    assert engine_for(models[M8B], gpu) is VLLM
    mem = replica_memory(models[M8B], gpu, 1)
    assert mem.gpu_memory_utilization == VLLM.gpu_memory_utilization == 0.92
    assert (mem.activation_bytes_per_gpu, mem.non_torch_bytes_per_gpu, mem.cuda_graph_bytes_per_gpu) == (VLLM.activation_bytes_dense, VLLM.non_torch_bytes_tp1, VLLM.cuda_graph_bytes)


def test_gpu_type_reserves_and_model_reserves_win_in_that_order(models) -> None:
    base_gpu = builtin_gpu_types()["h100-sxm"]
    gpu = base_gpu.model_copy(update={"reserves": EngineReserves(gpu_memory_utilization=0.85, activation_bytes=3 * GIB, cuda_graph_bytes=GIB)})
    m = models[M8B]
    mem0 = replica_memory(m, base_gpu, 1)
    mem = replica_memory(m, gpu, 1)
    assert mem.gpu_memory_utilization == 0.85
    assert mem.activation_bytes_per_gpu == 3 * GIB and mem.cuda_graph_bytes_per_gpu == GIB
    assert mem.non_torch_bytes_per_gpu == VLLM.non_torch_bytes_tp1  # not set: the default
    hbm = int(gpu.hbm_gib * GIB)
    assert mem.kv_pool_bytes_per_gpu == int(hbm * 0.85) - mem.weights_bytes_per_gpu - 3 * GIB - VLLM.non_torch_bytes_tp1 - GIB
    assert mem.kv_pool_bytes_per_gpu < mem0.kv_pool_bytes_per_gpu
    mine = m.model_copy(update={"reserves": EngineReserves(activation_bytes=GIB)})
    both = replica_memory(mine, gpu, 1)
    assert both.activation_bytes_per_gpu == GIB and both.gpu_memory_utilization == 0.85  # the model's figure, the GPU's utilization


def test_checkpoint_bytes_size_the_weights(models) -> None:
    m = models[M8B]
    assert loaded_weight_bytes(m) == m.checkpoint_bytes == weight_bytes_total(m)  # bf16: the count is the checkpoint
    # an int4 checkpoint of the same architecture (a quarter of the bytes): weights follow it at every TP
    q = m.model_copy(update={"checkpoint_bytes": m.checkpoint_bytes // 4, "id": "llama-3.1-8b-q"})
    for tp in (1, 2):
        full = weights_bytes_per_gpu(m, tp)
        assert weights_bytes_per_gpu(q, tp) == pytest.approx(full / 4, rel=1e-6)
    measured = q.model_copy(update={"weight_bytes": 5 * 10**9})  # a measured size wins over the checkpoint
    assert loaded_weight_bytes(measured) == 5 * 10**9
    assert weights_bytes_per_gpu(measured, 1) == pytest.approx(weights_bytes_per_gpu(m, 1) * 5e9 / weight_bytes_total(m), rel=1e-6)


def test_deepseek_checkpoint_less_its_mtp_layer(models) -> None:
    """DeepSeek-V3's checkpoint holds its multi-token-prediction layer, which vLLM does not load."""
    m = models["deepseek-v3"]
    assert m.checkpoint_bytes > weight_bytes_total(m) * 1.02
    assert loaded_weight_bytes(m) == pytest.approx(weight_bytes_total(m), rel=2e-3)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("gpu_memory_utilization", 1.5, "less than or equal to 1"), ("activation_bytes", -1, "greater than or equal to 0"), ("cuda_graph_bytes", "lots", "integer")],
)
def test_bad_reserves_are_clear_input_errors(tmp_path: Path, field: str, value, words: str) -> None:
    doc = yaml.safe_load((REPO / "models" / f"{M1B}.yaml").read_text())
    doc["reserves"] = {field: value}
    (tmp_path / f"{M1B}.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as e:
        load_models(tmp_path)
    text = str(e.value)
    assert f"reserves.{field}" in text and words in text, text


def test_solver_and_verifier_use_the_gpu_types_reserves(tmp_path: Path) -> None:
    """A GPU type whose engines may take 0.80 of HBM (a measured start-up) and a model with a
    bigger activation peak: whole-GPU replicas run at 0.80, the verifier accepts the plan, and
    the same plan is refused against the default reserves' weaker limit (KV too large)."""
    l4 = builtin_gpu_types()["l4"].model_dump(mode="json")
    l4["reserves"] = {"gpu_memory_utilization": 0.8}
    paths = S.write_inputs(tmp_path, clusters={"c1": [S.pool("p-l4", "l4", count=2)]}, models=[M8B], workflows=[S.workflow("w", [S.role("r", M8B)], rate=1.0)])
    inv = yaml.safe_load(paths["inventory"].read_text())
    inv["gpu_types"] = [l4]
    paths["inventory"].write_text(yaml.safe_dump(inv, sort_keys=False))
    inputs = S.load(paths)
    plan, _ = solve(inputs, S.settings(colocation=False, standby=False, min_zones_interactive=1))
    rep = verify_plan(plan, inputs)
    assert rep.ok, [v.render() for v in rep.violations]
    assert plan.replicas and all(r.memory_fraction == pytest.approx(0.8) for r in plan.replicas)
    # the same replicas claiming the default 0.92 are over the GPU type's 0.80
    greedy = plan.model_copy(update={"replicas": [r.model_copy(update={"memory_fraction": 0.92}) for r in plan.replicas]})
    bad = verify_plan(greedy, inputs)
    assert any(v.constraint == "memory" and "0.8" in v.detail for v in bad.violations), [v.render() for v in bad.violations]
