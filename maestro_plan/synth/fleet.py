"""The synthetic fleet: clusters in real regions, node pools of real instance shapes, latency links."""

from __future__ import annotations

from collections import defaultdict

from maestro_plan.errors import InputError
from maestro_plan.load.schema import Cluster, GpuType, Inventory, Link, NodePool, Source
from maestro_plan.synth.spec import Rng, SynthSpec, apportion
from maestro_plan.synth.tables import NODE_SHAPES, REGIONS, TYPE_WEIGHTS, Shape, one_way_ms


def _type_mix(n_c: int, types: list[str], flex: list[str], rng: Rng) -> tuple[list[str], list[int]]:
    """The GPU types of one cluster (a primary with 1-GPU shapes, more types in bigger clusters) and
    each one's share of its GPUs."""
    primary = rng.weighted(flex, [TYPE_WEIGHTS[t] for t in flex])
    chosen = [primary]
    extra = 0 if n_c < 16 else (1 if n_c < 64 else 2 + (1 if n_c >= 512 else 0))
    for _ in range(extra):
        rest = [t for t in types if t not in chosen]
        if rest:
            chosen.append(rng.weighted(rest, [TYPE_WEIGHTS[t] for t in rest]))
    share = apportion(n_c, [TYPE_WEIGHTS[t] * rng.uniform(0.5, 1.5) for t in chosen])
    return chosen, share


def _node_groups(chosen: list[str], share: list[int]) -> dict[str, list[tuple[Shape, int]]]:
    """type -> [(shape, nodes)], largest shapes first; GPUs the secondary types' shapes cannot hold
    go to the primary type (chosen[0]), whose 1-GPU shape takes any remainder."""
    primary = chosen[0]
    groups: dict[str, list[tuple[Shape, int]]] = defaultdict(list)  # type -> [(shape, nodes)]
    carry = 0
    for t, g in zip(chosen[1:], share[1:]):
        smallest = min(s.gpus for s in NODE_SHAPES[t])
        usable = (g // smallest) * smallest
        carry += g - usable
        for s in sorted(NODE_SHAPES[t], key=lambda s: -s.gpus):
            nodes, usable = divmod(usable, s.gpus)
            if nodes:
                groups[t].append((s, nodes))
    g = share[0] + carry
    for s in sorted(NODE_SHAPES[primary], key=lambda s: -s.gpus):
        nodes, g = divmod(g, s.gpus)
        if nodes:
            groups[primary].append((s, nodes))
    return groups


def _cluster(cname: str, region: str, n_c: int, types: list[str], flex: list[str], rng: Rng) -> Cluster:
    """One cluster of n_c GPUs: node pools of real shapes spread round-robin over up to 3 zones."""
    chosen, share = _type_mix(n_c, types, flex, rng)
    groups = _node_groups(chosen, share)
    n_nodes = sum(n for v in groups.values() for _, n in v)
    n_zones = 3 if n_nodes >= 6 else (2 if n_nodes >= 2 else 1)
    zones = [f"{region}{chr(ord('a') + z)}" for z in range(n_zones)]
    pools = []
    offset = rng.below(n_zones)
    for t in chosen:
        for s, nodes in groups.get(t, []):
            for z in range(n_zones):
                zi = (z + offset) % n_zones
                count = nodes // n_zones + (1 if z < nodes % n_zones else 0)
                if count:
                    pools.append(
                        NodePool(
                            name=f"{cname}-{t}-{s.gpus}g-{zones[zi][-1]}",
                            zone=zones[zi],
                            gpu_type=t,
                            gpus_per_node=s.gpus,
                            count=count,
                            host_dram_gib=s.host_dram_gib,
                            interconnect=s.interconnect,
                            labels={"node.kubernetes.io/instance-type": s.instance},
                        )
                    )
            offset = (offset + nodes) % n_zones
    pools.sort(key=lambda p: p.name)
    return Cluster(name=cname, region=region, node_pools=pools)


def make_fleet(spec: SynthSpec, rng: Rng, gpu_types: dict[str, GpuType]) -> Inventory:
    types = [t for t in TYPE_WEIGHTS if t in gpu_types and t in NODE_SHAPES]
    if not types:
        raise InputError("the built-in GPU table has none of the GPU types synth knows node shapes for.", file="maestro_plan/data/gpus.yaml")
    flex = [t for t in types if any(s.gpus == 1 for s in NODE_SHAPES[t])]
    names: list[tuple[str, str, tuple[float, float]]] = []
    for k in range(spec.clusters):
        region, lat, lon = REGIONS[k % len(REGIONS)]
        suffix = "" if k < len(REGIONS) else f"-{chr(ord('a') + k // len(REGIONS))}"
        names.append((region + suffix, region, (lat, lon)))
    sizes = [1 + n for n in apportion(spec.gpus - spec.clusters, [rng.uniform(0.75, 1.25) for _ in range(spec.clusters)])]
    clusters = [_cluster(cname, region, n_c, types, flex, rng) for (cname, region, _), n_c in zip(names, sizes)]
    regions_used = sorted({(r, loc) for _, r, loc in names})
    sources = [Source(name=f"users-{r}", region=r) for r, _ in regions_used]
    batch_region, batch_loc = names[0][1], names[0][2]
    sources.append(Source(name=f"batch-{batch_region}", region=batch_region))
    loc_of_source = {f"users-{r}": loc for r, loc in regions_used} | {f"batch-{batch_region}": batch_loc}
    links = []
    for i, (a, _, la) in enumerate(names):
        for b, _, lb in names[i + 1 :]:
            links.append(Link(a=a, b=b, latency_ms=one_way_ms(la, lb)))
    for s in sources:
        for c, _, lc in names:
            links.append(Link(a=s.name, b=c, latency_ms=one_way_ms(loc_of_source[s.name], lc)))
    shape_notes = "; ".join(f"{t}: " + ", ".join(f"{s.instance} ({s.source})" for s in NODE_SHAPES[t]) for t in types)
    return Inventory(
        name=f"synth-{spec.gpus}g-s{spec.seed}"[:63].rstrip("-."),
        description=f"Synthetic fleet: {spec.gpus} GPUs in {spec.clusters} cluster(s), generated by maestro-plan synth (seed {spec.seed}).",
        clusters=clusters,
        sources=sources,
        links=links,
        sources_note=(
            "Synthetic. Node shapes copy real cloud instances: " + shape_notes + ". Latencies: great-circle distance between the "
            "regions' metro areas x 2.1 / 204 km per ms (Bozkurt et al. 2018 rule of thumb), at least 100 km apart."
        ),
    )
