"""The bundled fleet inventories/multi-region-fleet.yaml: shape, references, latencies, realism."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import Collector
from maestro_plan.load.loader import check_inventory, load_gpu_types, load_inventory
from maestro_plan.load.schema import Inventory

FLEET = Path(__file__).resolve().parent.parent / "inventories" / "multi-region-fleet.yaml"

# AWS instance shapes (GPUs, host DRAM GiB): SkyPilot AWS catalog columns AcceleratorCount/MemoryGiB
# and the AWS Batch GPU instance table, as cited in the fleet's sources_note.
SHAPES = {
    "p5.48xlarge": ("h100-sxm", 8, 2048),
    "p5en.48xlarge": ("h200", 8, 2048),
    "p4de.24xlarge": ("a100-80gb", 8, 1152),
    "p4d.24xlarge": ("a100-40gb", 8, 1152),
    "g6e.48xlarge": ("l40s", 8, 1536),
    "g6e.12xlarge": ("l40s", 4, 384),
    "g6.48xlarge": ("l4", 8, 768),
    "g6.4xlarge": ("l4", 1, 64),
    "g5.48xlarge": ("a10g", 8, 768),
    "g5.4xlarge": ("a10g", 1, 64),
}


@pytest.fixture(scope="module")
def fleet() -> Inventory:
    inv, _ = load_inventory(FLEET)
    return inv


def _latency(inv: Inventory, a: str, b: str) -> float:
    for link in inv.links:
        if {link.a, link.b} == {a, b}:
            return link.latency_ms
    raise AssertionError(f"no link {a} <-> {b}")


def test_fleet_passes_the_inventory_checks(fleet: Inventory) -> None:
    col = Collector()
    check_inventory(fleet, load_gpu_types(list(fleet.gpu_types)), FLEET, col)
    assert col.problems == []


def test_clusters_regions_zones(fleet: Inventory) -> None:
    assert {(c.name, c.region) for c in fleet.clusters} == {("us-east", "us-east-1"), ("us-west", "us-west-2"), ("eu-west", "eu-west-1")}
    for c in fleet.clusters:
        zones = {p.zone for p in c.node_pools}
        assert len(zones) >= 2, c.name
        assert all(z.startswith(c.region) for z in zones), c.name  # AWS zone names extend the region


def test_size_and_mix(fleet: Inventory) -> None:
    gpus: dict[str, int] = {}
    for c in fleet.clusters:
        for p in c.node_pools:
            gpus[p.gpu_type] = gpus.get(p.gpu_type, 0) + p.node_count * p.gpus_per_node
    assert sum(gpus.values()) == 424
    assert len(gpus) >= 4
    assert {"h100-sxm", "a100-80gb", "l40s", "h200"} <= set(gpus)
    assert set(gpus) & {"l4", "a10g"}


def test_node_shapes_match_their_instance_types(fleet: Inventory) -> None:
    for c in fleet.clusters:
        for p in c.node_pools:
            itype = p.labels["node.kubernetes.io/instance-type"]
            gpu, n, dram = SHAPES[itype]
            assert (p.gpu_type, p.gpus_per_node, p.host_dram_gib) == (gpu, n, dram), p.name
            nvlink = gpu in ("h100-sxm", "h200", "a100-80gb", "a100-40gb")
            assert p.interconnect.value == ("nvlink" if nvlink else "pcie"), p.name


def test_price_overrides_are_plausible(fleet: Inventory) -> None:
    table = load_gpu_types()
    for c in fleet.clusters:
        for p in c.node_pools:
            if p.price_per_gpu_hour is not None:
                base = table[p.gpu_type].price_per_gpu_hour
                # a smaller instance or another region moves the price, never by more than 2x
                assert 0.5 * base <= p.price_per_gpu_hour <= 1.5 * base, p.name


def test_links_cover_every_pair_and_every_source(fleet: Inventory) -> None:
    clusters = [c.name for c in fleet.clusters]
    assert {s.name for s in fleet.sources} == {"users-us-east", "users-us-west", "users-eu-west", "batch-us-east"}
    for a, b in itertools.combinations(clusters, 2):
        assert _latency(fleet, a, b) > 30  # cross-region: tens of ms
    region = {c.name: c.region for c in fleet.clusters}
    for s in fleet.sources:
        for c in clusters:
            lat = _latency(fleet, s.name, c)
            if s.region == region[c]:
                assert lat <= 5, (s.name, c)
            else:
                assert lat > 30, (s.name, c)


def test_latencies_are_half_the_measured_rtt(fleet: Inventory) -> None:
    # Imaoka 2019, EC2 ping over VPC peering: average RTTs in ms
    rtt = {("us-east", "us-west"): 72.115, ("us-east", "eu-west"): 75.975, ("us-west", "eu-west"): 131.737}
    for (a, b), ms in rtt.items():
        assert _latency(fleet, a, b) == pytest.approx(ms / 2, abs=0.01)
    # a source reaches a remote cluster no faster than the clusters reach each other
    assert _latency(fleet, "users-eu-west", "us-west") == _latency(fleet, "eu-west", "us-west")
    # triangle inequality holds between the three regions
    for a, b, c in itertools.permutations(["us-east", "us-west", "eu-west"]):
        assert _latency(fleet, a, c) <= _latency(fleet, a, b) + _latency(fleet, b, c) + 1e-9


def test_sources_note_names_its_sources(fleet: Inventory) -> None:
    note = fleet.sources_note
    for needle in ("skypilot-catalog", "aws-ping", "node_shapes.csv", "72.115", "gpus.yaml"):
        assert needle in note


def test_eight_gpu_nvlink_nodes_are_what_real_clusters_run(shared_data: Path) -> None:
    """Alibaba's traces (node_shapes.csv) have A100-SXM4-80GB and H800 only in 8-GPU nodes, as our NVLink pools."""
    with open(shared_data / "gpu-inventory" / "node_shapes.csv") as f:
        rows = list(csv.DictReader(f))
    for model in ("A100-SXM4-80GB", "H800"):
        sizes = {int(r["gpus_per_node"]) for r in rows if r["gpu_model"] == model}
        assert sizes == {8}, model


def test_validate_accepts_the_fleet_with_small_models_and_workloads(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    # meta-llama/Llama-3.2-1B config.json numbers
    (models / "m.yaml").write_text(
        "id: small\nhf_repo: meta-llama/Llama-3.2-1B-Instruct\narchitecture: {model_type: llama, num_hidden_layers: 16, hidden_size: 2048, "
        "num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, intermediate_size: 8192, vocab_size: 128256, "
        "tie_word_embeddings: true, max_position_embeddings: 131072}\ntp_degrees: [1, 2, 4, 8]\n"
    )
    wl = tmp_path / "w.yaml"
    wl.write_text(
        "name: chat\npriority: interactive\nslo: {latency_ms: 3000}\narrivals:\n"
        + "".join(f"  - {{source: {s}, rate_per_s: 1}}\n" for s in ("users-us-east", "users-us-west", "users-eu-west", "batch-us-east"))
        + "roles:\n  - {name: reply, model: small, calls_per_query: 1, input_tokens: {mean: 500}, output_tokens: {mean: 100}}\n"
    )
    result = CliRunner().invoke(app, ["validate", "--inventory", str(FLEET), "--models", str(models), "--workloads", str(wl), "--json"])
    assert result.exit_code == 0, result.output
    assert '"total_gpus": 424' in result.output


def test_validate_with_the_bundled_models_and_workloads(repo: Path) -> None:
    """Once the bundled catalogue and workflows exist, the fleet must validate with them."""
    models, workloads = repo / "models", repo / "workloads"
    if not any(models.glob("*.yaml")) or not any(workloads.glob("*.yaml")):
        pytest.skip("bundled models/ or workloads/ not written yet")
    result = CliRunner().invoke(app, ["validate", "--inventory", str(FLEET), "--models", str(models), "--workloads", str(workloads)])
    assert result.exit_code == 0, result.output
