"""The built-in GPU spec table (maestro_plan/data/gpus.yaml): complete, sourced, self-consistent."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.load.loader import builtin_gpu_types, load_gpu_types
from maestro_plan.load.schema import GpuType

REQUIRED = ["h100-sxm", "h100-pcie", "h200", "b200", "a100-80gb", "a100-40gb", "l40s", "l4", "a10g", "mi300x"]
FIGURES = ["hbm_gib", "hbm_tbps", "bf16_tflops", "fp8_tflops", "int8_tops", "interconnect_gbps", "host_to_gpu_gbps", "tdp_w", "price_per_gpu_hour", "product_labels"]


@pytest.fixture(scope="module")
def table() -> dict[str, GpuType]:
    return builtin_gpu_types()


def test_all_required_types_present(table: dict[str, GpuType]) -> None:
    assert set(REQUIRED) <= set(table)


@pytest.mark.parametrize("gid", REQUIRED)
def test_every_figure_has_a_source(table: dict[str, GpuType], gid: str) -> None:
    g = table[gid]
    for f in FIGURES:
        assert f in g.sources, f"{gid}: no source for {f}"
        assert len(g.sources[f]) > 15, f"{gid}: source for {f} says too little"
    # spec-sheet figures point at a document (URL, catalog or named table)
    for f in ("hbm_tbps", "bf16_tflops", "price_per_gpu_hour"):
        text = g.sources[f] + " " + g.sources.get("hbm_tbps", "")
        assert re.search(r"https?://|[a-z0-9-]+\.(com|sh|ai|net)|SKYPILOT|datasheet|DRIVER_MIB", text, re.I), f"{gid}.{f}"


@pytest.mark.parametrize(
    ("gid", "mib"),
    # memory.total as NVML/nvidia-smi reports it (MiB): the table stores it in GiB
    [("h100-sxm", 81559), ("h100-pcie", 81559), ("h200", 143771), ("b200", 183359), ("a100-80gb", 81920), ("a100-40gb", 40960), ("l40s", 46068), ("l4", 23034), ("a10g", 23028)],
)
def test_hbm_is_what_the_driver_reports(table: dict[str, GpuType], gid: str, mib: int) -> None:
    assert table[gid].hbm_gib == pytest.approx(mib / 1024, abs=0.01)


def test_known_spec_sheet_values(table: dict[str, GpuType]) -> None:
    h100 = table["h100-sxm"]
    assert (h100.hbm_tbps, h100.bf16_tflops, h100.fp8_tflops, h100.interconnect_gbps) == (3.35, 989.5, 1979, 450)
    assert table["a100-80gb"].bf16_tflops == 312 and table["a100-80gb"].fp8_tflops == 0  # no FP8 on Ampere
    assert table["mi300x"].bf16_tflops == pytest.approx(1307.4)
    assert table["mi300x"].hbm_gib == pytest.approx(205822885888 / 2**30, abs=0.01)


def test_dense_figures_are_consistent(table: dict[str, GpuType]) -> None:
    for g in table.values():
        # FP8 runs at twice the BF16 tensor rate on every part that has it (Hopper, Ada, Blackwell, CDNA3)
        if g.fp8_tflops:
            assert g.fp8_tflops == pytest.approx(2 * g.bf16_tflops, rel=0.02), g.id
        # dense BF16 of these parts is far below any sparse marketing figure: at most B200's 2250
        assert 50 < g.bf16_tflops <= 2250, g.id
        assert 0.25 <= g.hbm_tbps <= 8.0, g.id
        assert g.price_per_gpu_hour > 0 and g.tdp_w > 0, g.id


def test_interconnect_is_one_direction(table: dict[str, GpuType]) -> None:
    nvlink = {"h100-sxm": 450, "h200": 450, "b200": 900, "a100-80gb": 300, "a100-40gb": 300, "mi300x": 448, "h100-nvl": 300}
    for gid, bw in nvlink.items():
        assert table[gid].interconnect_gbps == bw
        assert table[gid].interconnect_gbps > table[gid].host_to_gpu_gbps
    for gid in ("h100-pcie", "l40s", "l4", "a10g"):  # PCIe cards talk over their PCIe link
        assert table[gid].interconnect_gbps == table[gid].host_to_gpu_gbps
    for g in table.values():
        if g.id == "gh200":  # host DRAM sits behind NVLink-C2C (900 GB/s total), not PCIe
            assert g.host_to_gpu_gbps == g.interconnect_gbps == 450
            continue
        assert g.host_to_gpu_gbps in (32, 64), g.id  # PCIe gen4 / gen5 x16, per direction


def test_product_labels_are_unique_and_gfd_shaped(table: dict[str, GpuType]) -> None:
    seen: dict[str, str] = {}
    for g in table.values():
        assert g.product_labels, g.id
        for label in g.product_labels:
            assert label not in seen, f"{label} used by {seen.get(label)} and {g.id}"
            seen[label] = g.id
        first = g.product_labels[0]
        assert " " not in first, f"{g.id}: the first label is the node-label value and has no spaces"
        if g.vendor == "nvidia":
            # GFD's value is the nvidia-smi name with spaces as '-'
            assert first == g.product_labels[1].replace(" ", "-"), g.id


def test_inventory_types_override_and_add(table: dict[str, GpuType]) -> None:
    cheaper = table["l4"].model_copy(update={"price_per_gpu_hour": 0.5})
    new = table["l4"].model_copy(update={"id": "l4-onprem", "product_labels": []})
    merged = load_gpu_types([cheaper, new])
    assert merged["l4"].price_per_gpu_hour == 0.5
    assert "l4-onprem" in merged and len(merged) == len(table) + 1
    assert builtin_gpu_types()["l4"].price_per_gpu_hour == table["l4"].price_per_gpu_hour  # built-ins untouched


def test_gpus_command_lists_the_table() -> None:
    result = CliRunner().invoke(app, ["gpus", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["id"] for r in rows} >= set(REQUIRED)
    assert next(r for r in rows if r["id"] == "h200")["hbm_gib"] == pytest.approx(140.4)
