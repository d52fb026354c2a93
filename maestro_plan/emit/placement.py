"""Where a pod may run: node selectors and affinity built from labels a real cluster has.

- A node the inventory names (`nodes:` of a pool, e.g. from `import inventory --kubectl`) is pinned
  by `kubernetes.io/hostname` (a well-known label the kubelet sets to the node name).
- A node of a `count` pool has no name anyone knows (the plan's `<pool>-000` is the planner's own
  handle), so its pod selects the POOL: the pool's `labels` from the inventory (instance type, a
  node-group label such as eks.amazonaws.com/nodegroup or cloud.google.com/gke-nodepool), the
  zone (`topology.kubernetes.io/zone`, well-known, set by the cloud provider), and the GPU product
  and count that NVIDIA GPU Feature Discovery labels (`nvidia.com/gpu.product`, `nvidia.com/gpu.count`).
  The plan's packing is kept by construction: one pod holds all the replicas the plan put on that
  node, and a required pod anti-affinity on `kubernetes.io/hostname` over every such pod keeps two
  planned nodes from landing on one real node.
"""

from __future__ import annotations

from typing import Any

from maestro_plan.emit.common import LABEL_PREFIX, NodeInfo, Workload, gpu_product_label, node_index
from maestro_plan.load.schema import GpuType, Inputs, NodePool

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
VENDOR_PRODUCT_LABEL = {"nvidia": "nvidia.com/gpu.product", "amd": "amd.com/gpu.product-name"}
"""Node labels set by NVIDIA GPU Feature Discovery and by the ROCm node labeller."""
VENDOR_COUNT_LABEL = {"nvidia": "nvidia.com/gpu.count"}
"""GPU Feature Discovery's GPU count label (GFD README, 'Generated Labels')."""
PLANNED_NODE = f"{LABEL_PREFIX}/planned-node"
"""Pod label of every pod that occupies a planned node of a `count` pool (the anti-affinity key)."""


def count_pool_nodes(inputs: Inputs) -> set[str]:
    """The planner's handles of nodes in `count` pools (no real name known)."""
    return {n for n, info in node_index(inputs).items() if info.pool.nodes is None}


def pool_selector(pool: NodePool, gpu: GpuType) -> dict[str, str]:
    """Labels every node of the pool carries (as the inventory states them)."""
    sel = {ZONE: pool.zone}
    product = gpu_product_label(gpu)
    if product and gpu.vendor in VENDOR_PRODUCT_LABEL:
        sel[VENDOR_PRODUCT_LABEL[gpu.vendor]] = product
    if gpu.vendor in VENDOR_COUNT_LABEL:
        sel[VENDOR_COUNT_LABEL[gpu.vendor]] = str(pool.gpus_per_node)
    sel.update(pool.labels)  # the inventory's own labels win (e.g. a zone label spelt by the cloud)
    return dict(sorted(sel.items()))


def node_selector(inputs: Inputs, node: str, gpu: GpuType, *, pinned: bool) -> dict[str, str]:
    info: NodeInfo = node_index(inputs)[node]
    if pinned:
        sel = {HOSTNAME: node}
        product = gpu_product_label(gpu)
        if product and gpu.vendor in VENDOR_PRODUCT_LABEL:
            sel[VENDOR_PRODUCT_LABEL[gpu.vendor]] = product
        return sel
    return pool_selector(info.pool, gpu)


def planned_node_anti_affinity() -> dict[str, Any]:
    """No two pods that each stand for a whole planned node of a count pool share a real node."""
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchExpressions": [{"key": PLANNED_NODE, "operator": "Exists"}]}, "topologyKey": HOSTNAME}
            ]
        }
    }


def hostname_affinity(nodes: list[str]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": sorted(nodes)}]}]
            }
        }
    }


def planned_node_label(w: Workload) -> dict[str, str]:
    return {} if w.pinned else {PLANNED_NODE: "true"}
