"""Which catalogue models a synthetic fleet serves (and their fine-tuned variants)."""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from maestro_plan.errors import InputError
from maestro_plan.load.loader import load_models, tp_allowed
from maestro_plan.load.schema import GpuType, Inventory, ModelSpec
from maestro_plan.synth.spec import Rng, SynthSpec
from maestro_plan.synth.tables import EMBEDDED_MODELS, MIN_CONTEXT


def embedded_catalogue() -> dict[str, ModelSpec]:
    return {d["id"]: ModelSpec.model_validate(d) for d in EMBEDDED_MODELS}


def smallest_tp(model: ModelSpec, gpu: GpuType, gpus_per_node: int) -> int | None:
    """The smallest allowed TP (at most the node's GPUs) at which one replica fits in memory."""
    from maestro_plan import estimate as est

    a = model.architecture
    kv = 1 if a.is_mla else a.kv_heads
    for tp in model.tp_degrees:
        if tp > gpus_per_node or not tp_allowed(a.num_attention_heads, kv, tp):
            continue
        mem = est.replica_memory(model, gpu, tp, max_model_len=model.context_len) if _accepts_max_len() else est.replica_memory(model, gpu, tp)
        if mem.fits:
            return tp
    return None


def fitting_configs(model: ModelSpec, inv: Inventory, gpu_types: dict[str, GpuType]) -> list[tuple[str, int]]:
    """(GPU type, TP) pairs of the fleet on which one replica of the model fits in memory."""
    shapes: dict[str, int] = {}
    for c in inv.clusters:
        for p in c.node_pools:
            shapes[p.gpu_type] = max(shapes.get(p.gpu_type, 0), p.gpus_per_node)
    out = []
    for t in sorted(shapes):
        tp = smallest_tp(model, gpu_types[t], shapes[t])
        if tp is not None:
            out.append((t, tp))
    return out


def fitting_domains(model: ModelSpec, inv: Inventory, gpu_types: dict[str, GpuType]) -> set[tuple[str, str]]:
    """Failure domains (cluster, zone) with a node pool that can hold one replica of the model."""
    return {(c.name, p.zone) for c in inv.clusters for p in c.node_pools if smallest_tp(model, gpu_types[p.gpu_type], p.gpus_per_node) is not None}


# Interactive models are spread over at least this many failure domains (Settings.min_zones_interactive
# default); synth only picks models the fleet can place in that many (or in all it has).
MIN_DOMAINS = 2


@lru_cache(maxsize=1)
def _accepts_max_len() -> bool:
    import inspect

    from maestro_plan import estimate as est

    return "max_model_len" in inspect.signature(est.replica_memory).parameters


def pick_models(spec: SynthSpec, rng: Rng, base: dict[str, ModelSpec], inv: Inventory, gpu_types: dict[str, GpuType]) -> dict[str, ModelSpec]:
    all_domains = {(c.name, p.zone) for c in inv.clusters for p in c.node_pools}
    need = min(MIN_DOMAINS, len(all_domains))
    usable = [m for _, m in sorted(base.items()) if m.context_len >= MIN_CONTEXT and len(fitting_domains(m, inv, gpu_types)) >= need]
    if not usable:
        raise InputError(
            "no catalogue model fits the nodes of the generated fleet in enough failure domains with a "
            f"context of at least {MIN_CONTEXT} tokens.",
            hint="give more GPUs (--gpus) or a catalogue with smaller models (--catalogue).",
        )
    if spec.models <= len(usable):
        return {m.id: m for m in sorted(rng.shuffled(usable)[: spec.models], key=lambda m: m.id)}
    from maestro_plan import estimate as est

    out = {m.id: m for m in usable}
    # fine-tunes are mostly of small and mid-size models: weight 3 under 40 GB of weights, else 1
    weights = [3.0 if est.weight_bytes_total(m) < 40e9 else 1.0 for m in usable]
    counter: dict[str, int] = defaultdict(int)
    while len(out) < spec.models:
        b = rng.weighted(usable, weights)
        counter[b.id] += 1
        vid = f"{b.id}-ft{counter[b.id]:03d}"
        out[vid] = b.model_copy(
            update={
                "id": vid,
                "hf_repo": f"synthetic/{vid}",
                "description": f"Synthetic fine-tune of {b.hf_repo}: same architecture, distinct weights (maestro-plan synth).",
            }
        )
    return dict(sorted(out.items()))


def load_catalogue(path: str | Path | None) -> dict[str, ModelSpec] | None:
    """The catalogue to derive models from: a models folder, or None for the embedded five."""
    if path is None:
        return None
    models, _ = load_models(path)
    return models
