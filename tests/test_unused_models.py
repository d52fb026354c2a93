"""A catalogue model no workflow calls (deepseek-v3, TP 8 only) is not planned and does not block
planning on a fleet of 4-GPU nodes; for a model that IS called, the fix suggested is true."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from test_whatif import write_inputs

from maestro_plan.errors import InputError
from maestro_plan.load.loader import load_inputs
from maestro_plan.whatif.sweep import solve_inputs, solve_settings

ROOT = Path(__file__).resolve().parent.parent


def small_fleet(tmp_path: Path) -> list[str]:
    """The what-if test inputs with every 8-GPU node split in two 4-GPU nodes, plus deepseek-v3."""
    flags = write_inputs(tmp_path)
    inv_file = tmp_path / "inventory.yaml"
    doc = yaml.safe_load(inv_file.read_text())
    for c in doc["clusters"]:
        for p in c["node_pools"]:
            if p["gpus_per_node"] == 8:
                p["gpus_per_node"], p["count"] = 4, 2 * p.get("count", 1)
    inv_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(ROOT / "models" / "deepseek-v3.yaml", tmp_path / "models" / "deepseek-v3.yaml")
    return flags


def test_unused_model_neither_blocks_nor_is_planned(tmp_path: Path) -> None:
    flags = small_fleet(tmp_path)
    inputs = load_inputs(flags[1], flags[3], flags[5])
    assert "deepseek-v3" in inputs.models
    plan = solve_inputs(inputs, solve_settings(time_limit_s=5.0))
    assert plan.replicas and "deepseek-v3" not in {r.model for r in plan.replicas}


def test_a_called_model_too_big_for_the_nodes_gets_a_true_fix(tmp_path: Path) -> None:
    flags = small_fleet(tmp_path)
    wf = next((tmp_path / "workloads").glob("*.yaml"))
    doc = yaml.safe_load(wf.read_text())
    doc["roles"][0]["model"] = "deepseek-v3"
    wf.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(InputError) as e:
        load_inputs(flags[1], flags[3], flags[5])
    text = e.value.render()
    assert "needs at least TP 8" in text and "add nodes of at least 8 GPUs" in text
    assert "allow a TP degree of at most" not in text  # its weights need 8 GPUs: that fix would be false
