"""`maestro-plan import inventory` on real-format nvidia-smi and kubectl samples (tests/data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import Collector, InputError
from maestro_plan.load.importers.common import inventory_yaml, match_gpu_type
from maestro_plan.load.importers.kubectl import inventory_from_kubectl, parse_quantity
from maestro_plan.load.importers.nvidia_smi import inventory_from_nvidia_smi, parse_nvidia_smi_csv
from maestro_plan.load.loader import builtin_gpu_types, check_inventory, load_gpu_types, load_inventory
from maestro_plan.load.schema import Inventory

DATA = Path(__file__).parent / "data"
SMI = DATA / "nvidia-smi"
K8S = DATA / "kubectl"


def _pools(inv: Inventory) -> dict[str, tuple[str, str, int, int]]:
    """pool name -> (zone, gpu type, GPUs per node, nodes)"""
    return {p.name: (p.zone, p.gpu_type, p.gpus_per_node, p.node_count) for c in inv.clusters for p in c.node_pools}


def _gpus(inv: Inventory) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in inv.clusters:
        for p in c.node_pools:
            out[p.gpu_type] = out.get(p.gpu_type, 0) + p.node_count * p.gpus_per_node
    return out


# --------------------------------------------------------------------------------------------
# GPU product -> type
# --------------------------------------------------------------------------------------------


def test_every_product_label_maps_back_to_its_type() -> None:
    table = builtin_gpu_types()
    for g in table.values():
        for label in g.product_labels:
            assert match_gpu_type(label, table, "x", "f").id == g.id
        # GFD writes the nvidia-smi name with '-' for spaces; both spellings must resolve
        for label in g.product_labels:
            assert match_gpu_type(label.replace(" ", "-"), table, "x", "f").id == g.id


@pytest.mark.parametrize(
    ("product", "memory_mib", "suggested"),
    [
        ("NVIDIA A100 80GB PCIe", 81920, "a100-80gb"),  # not in the table; same model token and memory
        ("NVIDIA A100-PCIE-40GB", 40960, "a100-40gb"),
        ("NVIDIA-H100-80GB-HBM3e", None, "h100-sxm"),
        ("NVIDIA A10", 23028, "a10g"),
        ("NVIDIA GeForce RTX 4090", 24564, None),  # nothing close: no misleading suggestion
        ("Tesla T4", 15360, None),
    ],
)
def test_unknown_product_error_names_it_and_suggests_the_closest(product: str, memory_mib: float | None, suggested: str | None) -> None:
    with pytest.raises(InputError) as e:
        match_gpu_type(product, builtin_gpu_types(), "nodes.json", "items[0]", memory_mib)
    text = e.value.render()
    assert f"'{product}'" in text and "items[0]" in text and "gpu_types" in text
    if suggested:
        assert f"closest known product is GPU type '{suggested}'" in text
    else:
        assert "closest" not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2113602436Ki", 2113602436 * 1024), ("768Gi", 768 * 2**30), ("1e9", 1e9), ("8", 8), (8, 8), ("500M", 5e8), ("250m", 0.25), ("1.5Ti", 1.5 * 2**40)],
)
def test_kubernetes_quantities(value: object, expected: float) -> None:
    assert parse_quantity(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["8 GPUs", "12Qi", "", "abc", True])
def test_bad_kubernetes_quantities(value: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)


# --------------------------------------------------------------------------------------------
# nvidia-smi
# --------------------------------------------------------------------------------------------


def test_single_p5_host() -> None:
    inv = inventory_from_nvidia_smi(SMI / "p5-h100-node.csv", cluster="lab", region="us-east-1", zone="us-east-1a", host_dram_gib=2048)
    assert _pools(inv) == {"h100-sxm-x8-us-east-1a": ("us-east-1a", "h100-sxm", 8, 1)}
    pool = inv.clusters[0].node_pools[0]
    assert pool.interconnect.value == "nvlink"  # NVLink part: link faster than its PCIe
    assert pool.host_dram_gib == 2048
    assert pool.node_names == ["lab-host-001"]


def test_pdsh_prefixed_noheader_output_groups_hosts() -> None:
    hosts = parse_nvidia_smi_csv((SMI / "pdsh-a100-l40s-noheader.txt").read_text(), "f")
    assert [(h.name, len(h.gpus)) for h in hosts] == [("gpu-a100-01", 8), ("gpu-a100-02", 8), ("gpu-l40s-01", 4)]
    assert hosts[0].gpus[0].memory_mib == 81920
    inv = inventory_from_nvidia_smi(SMI / "pdsh-a100-l40s-noheader.txt", region="us-east-1", zone="us-east-1b", host_dram_gib=1152)
    pools = _pools(inv)
    assert pools["a100-80gb-x8-us-east-1b"] == ("us-east-1b", "a100-80gb", 8, 2)
    assert pools["l40s-x4-us-east-1b"] == ("us-east-1b", "l40s", 4, 1)
    l40s = next(p for p in inv.clusters[0].node_pools if p.gpu_type == "l40s")
    assert l40s.interconnect.value == "pcie" and l40s.nodes == ["gpu-l40s-01"]


def test_concatenated_outputs_are_separate_hosts() -> None:
    hosts = parse_nvidia_smi_csv((SMI / "concatenated-l4-hosts.csv").read_text(), "f")
    assert [len(h.gpus) for h in hosts] == [4, 4]
    inv = inventory_from_nvidia_smi(SMI / "concatenated-l4-hosts.csv", cluster="edge", region="us-west-2", zone="us-west-2a", host_dram_gib=192)
    assert _gpus(inv) == {"l4": 8}
    assert inv.clusters[0].node_pools[0].nodes == ["edge-host-001", "edge-host-002"]


def test_index_restart_without_repeated_header_starts_a_new_host() -> None:
    text = "index, name, memory.total [MiB]\n0, NVIDIA L4, 23034 MiB\n1, NVIDIA L4, 23034 MiB\n0, NVIDIA L4, 23034 MiB\n"
    assert [len(h.gpus) for h in parse_nvidia_smi_csv(text, "f")] == [2, 1]


def test_hostname_column() -> None:
    inv = inventory_from_nvidia_smi(SMI / "hostname-column-a10g.csv", region="eu-west-1", zone="eu-west-1a", host_dram_gib=192)
    pool = inv.clusters[0].node_pools[0]
    assert (pool.gpu_type, pool.gpus_per_node, pool.nodes) == ("a10g", 4, ["ip-10-0-12-34", "ip-10-0-12-35"])


def test_nounits_values_are_mib() -> None:
    hosts = parse_nvidia_smi_csv((SMI / "h200-nounits.csv").read_text(), "f")
    assert {g.memory_mib for g in hosts[0].gpus} == {143771}
    inv = inventory_from_nvidia_smi(SMI / "h200-nounits.csv", region="us-east-1", zone="us-east-1a", host_dram_gib=2048)
    assert _gpus(inv) == {"h200": 8}


def test_host_mixing_gpu_types_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "mixed.txt"
    p.write_text("host1: 0, NVIDIA L4, 23034 MiB\nhost1: 1, NVIDIA L40S, 46068 MiB\n")
    with pytest.raises(InputError, match="mixes GPU types"):
        inventory_from_nvidia_smi(p, region="r", zone="z", host_dram_gib=64)


# --------------------------------------------------------------------------------------------
# kubectl
# --------------------------------------------------------------------------------------------


def test_eks_node_list() -> None:
    inv = inventory_from_kubectl(K8S / "eks-us-east-1-nodes.json", cluster="us-east")
    c = inv.clusters[0]
    assert (c.name, c.region) == ("us-east", "us-east-1")  # region from topology.kubernetes.io/region
    assert _pools(inv) == {
        "p5.48xlarge-us-east-1a": ("us-east-1a", "h100-sxm", 8, 2),
        "p5.48xlarge-us-east-1b": ("us-east-1b", "h100-sxm", 8, 1),
        "p4de.24xlarge-us-east-1b": ("us-east-1b", "a100-80gb", 8, 1),
        "g6e.12xlarge-us-east-1a": ("us-east-1a", "l40s", 4, 2),
    }
    assert _gpus(inv) == {"h100-sxm": 24, "a100-80gb": 8, "l40s": 8}
    p5 = next(p for p in c.node_pools if p.name == "p5.48xlarge-us-east-1a")
    # least allocatable memory of the two p5 nodes (2101602436 Ki: capacity minus the kubelet's
    # reservation), floored to 0.1 GiB; below the nominal 2048 GiB
    assert p5.host_dram_gib == pytest.approx(2004.2)
    assert p5.labels == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    assert p5.nodes == ["ip-10-20-1-17.ec2.internal", "ip-10-20-1-92.ec2.internal"]
    assert "1 node(s) skipped (no GPUs, cordoned or NotReady)" in inv.description  # the m5.2xlarge system node


def test_single_amd_node_yaml() -> None:
    inv = inventory_from_kubectl(K8S / "aks-mi300x-node.yaml", cluster="aks-eastus")
    pool = inv.clusters[0].node_pools[0]
    assert inv.clusters[0].region == "eastus"
    assert (pool.gpu_type, pool.gpus_per_node, pool.zone, pool.interconnect.value) == ("mi300x", 8, "0", "xgmi")
    assert pool.host_dram_gib == pytest.approx(1807.1)  # allocatable 1894912452 Ki (capacity 1924120516 Ki less the kubelet reservation)


def test_region_flag_overrides_and_zone_flag_fills_in(tmp_path: Path) -> None:
    doc = yaml.safe_load((K8S / "aks-mi300x-node.yaml").read_text())
    for key in ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"):
        doc["metadata"]["labels"].pop(key)
    f = tmp_path / "node.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="no topology.kubernetes.io/zone"):
        inventory_from_kubectl(f)
    inv = inventory_from_kubectl(f, region="east-us", zone="east-us-1")
    assert inv.clusters[0].region == "east-us"
    assert inv.clusters[0].node_pools[0].zone == "east-us-1"


# --------------------------------------------------------------------------------------------
# Output: valid, deterministic, usable
# --------------------------------------------------------------------------------------------


def test_cli_writes_an_inventory_that_loads_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "inv" / "us-east.yaml"
    result = CliRunner().invoke(app, ["import", "inventory", "--kubectl", str(K8S / "eks-us-east-1-nodes.json"), "--cluster", "us-east", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 node pools, 6 nodes, 40 GPUs" in result.output
    inv, f = load_inventory(out)
    col = Collector()
    check_inventory(inv, load_gpu_types(), f, col)
    assert col.problems == []
    assert _gpus(inv) == {"h100-sxm": 24, "a100-80gb": 8, "l40s": 8}


def test_output_is_deterministic() -> None:
    runs = [CliRunner().invoke(app, ["import", "inventory", "--nvidia-smi", str(SMI / "pdsh-a100-l40s-noheader.txt"), "--region", "us-east-1", "--zone", "us-east-1a", "--host-dram-gib", "1152"]) for _ in range(2)]
    assert runs[0].exit_code == 0, runs[0].output
    assert runs[0].output == runs[1].output
    doc = yaml.safe_load(runs[0].output)
    assert doc["clusters"][0]["node_pools"][0]["gpu_type"] == "a100-80gb"


def test_extra_gpu_types_make_an_unknown_product_importable(tmp_path: Path) -> None:
    # A site's own GPU: its type comes with the import and travels in the output inventory.
    h100 = builtin_gpu_types()["h100-sxm"].model_dump(mode="json")
    custom = {**h100, "id": "gh200-144g", "name": "NVIDIA GH200 144G HBM3e", "product_labels": ["NVIDIA-GH200-144G-HBM3e", "NVIDIA GH200 144G HBM3e"], "hbm_gib": 143.39}
    types = tmp_path / "types.yaml"
    types.write_text(yaml.safe_dump({"gpu_types": [custom]}))
    smi = tmp_path / "smi.csv"
    smi.write_text("index, name, memory.total [MiB]\n0, NVIDIA GH200 144G HBM3e, 146831 MiB\n1, NVIDIA GH200 144G HBM3e, 146831 MiB\n")
    out = tmp_path / "inv.yaml"
    args = ["import", "inventory", "--nvidia-smi", str(smi), "--region", "us-east-1", "--zone", "us-east-1a", "--host-dram-gib", "512", "--out", str(out)]
    assert CliRunner().invoke(app, args[:-2]).exit_code == 2  # without --gpu-types: unknown product
    result = CliRunner().invoke(app, [*args, "--gpu-types", str(types)])
    assert result.exit_code == 0, result.output
    inv, _ = load_inventory(out)
    assert [g.id for g in inv.gpu_types] == ["gh200-144g"]
    assert _gpus(inv) == {"gh200-144g": 2}


@pytest.mark.parametrize(("name", "mib", "gid"), [("NVIDIA H100 NVL", 95830, "h100-nvl"), ("NVIDIA GH200 480GB", 97871, "gh200")])
def test_h100_nvl_and_gh200_are_built_in(tmp_path: Path, name: str, mib: int, gid: str) -> None:
    smi = tmp_path / "smi.csv"
    smi.write_text(f"index, name, memory.total [MiB]\n0, {name}, {mib} MiB\n")
    out = tmp_path / "inv.yaml"
    args = ["import", "inventory", "--nvidia-smi", str(smi), "--region", "us-east-1", "--zone", "us-east-1a", "--host-dram-gib", "512", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    inv, _ = load_inventory(out)
    assert _gpus(inv) == {gid: 1}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["NVIDIA H100 80GB HBM3", "NVIDIA L4", "NVIDIA A10G", "NVIDIA L40S"]), st.integers(min_value=1, max_value=8)),
        min_size=1,
        max_size=12,
    )
)
def test_concatenated_hosts_roundtrip(hosts: list[tuple[str, int]]) -> None:
    """Any sequence of hosts written as concatenated nvidia-smi outputs comes back host by host."""
    mem = {"NVIDIA H100 80GB HBM3": 81559, "NVIDIA L4": 23034, "NVIDIA A10G": 23028, "NVIDIA L40S": 46068}
    lines = []
    for name, n in hosts:
        lines.append("index, name, memory.total [MiB]")
        lines += [f"{i}, {name}, {mem[name]} MiB" for i in range(n)]
    parsed = parse_nvidia_smi_csv("\n".join(lines) + "\n", "f")
    assert [(h.gpus[0].name, len(h.gpus)) for h in parsed] == hosts
    assert sum(len(h.gpus) for h in parsed) == sum(n for _, n in hosts)


def test_inventory_yaml_roundtrips_through_the_schema() -> None:
    inv = inventory_from_kubectl(K8S / "eks-us-east-1-nodes.json", cluster="us-east")
    again = Inventory.model_validate(yaml.safe_load(inventory_yaml(inv)))
    assert again == inv


def test_kubectl_cordoned_notready_allocatable_and_gke_labels(tmp_path: Path) -> None:
    """From the real EKS export: a cordoned node and a NotReady node are left out (and named in the
    description), a node whose device plugin marks a GPU unhealthy counts its allocatable 7, and a
    GKE node without GPU Feature Discovery is typed by cloud.google.com/gke-accelerator."""
    import copy
    import json

    doc = json.loads((K8S / "eks-us-east-1-nodes.json").read_text())
    gpu_nodes = [n for n in doc["items"] if "nvidia.com/gpu" in n["status"].get("capacity", {})]
    base = gpu_nodes[0]
    items = []
    for name, change in (("cordoned-0", "cordon"), ("notready-0", "notready"), ("degraded-0", "alloc7"), ("gke-a3-0", "gke")):
        n = copy.deepcopy(base)
        n["metadata"]["name"] = name
        n["metadata"]["labels"]["kubernetes.io/hostname"] = name
        if change == "cordon":
            n.setdefault("spec", {})["unschedulable"] = True
        elif change == "notready":
            n["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
        elif change == "alloc7":
            n["status"]["allocatable"]["nvidia.com/gpu"] = "7"
        else:
            for k in [k for k in n["metadata"]["labels"] if k.startswith("nvidia.com/")]:
                del n["metadata"]["labels"][k]
            n["metadata"]["labels"]["cloud.google.com/gke-accelerator"] = "nvidia-h100-80gb"
        items.append(n)
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    inv = inventory_from_kubectl(path, cluster="c1")
    nodes = {n: p for c in inv.clusters for p in c.node_pools for n in p.node_names}
    assert set(nodes) == {"degraded-0", "gke-a3-0"}
    assert nodes["degraded-0"].gpus_per_node == 7 and nodes["gke-a3-0"].gpu_type == "h100-sxm"
    assert "cordoned-0 (cordoned)" in inv.description and "notready-0 (NotReady)" in inv.description
    # allocatable memory (capacity minus the kubelet's reservation) is what the pool offers
    alloc_gib = 2101602436 * 1024 / 2**30
    assert nodes["degraded-0"].host_dram_gib <= alloc_gib + 1e-6
