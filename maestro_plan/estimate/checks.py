"""Physical impossibilities in the inputs, found with the memory and speed model (`maestro-plan validate`).

Only models that some workflow calls are checked (a catalogue entry nobody uses may be too big for
this fleet without harm):

1. the weights (plus vLLM's activation, non-torch and CUDA-graph memory) fit no GPU type of the
   fleet at any allowed TP that a node of that type can hold: says by how much the best case falls
   short;
2. the model fits, but its KV pool cannot hold one request of max_model_len on any such replica
   (vLLM refuses to start): says how many tokens fit;
3. a workflow whose critical path, predicted on the fastest GPU type of the fleet on an idle
   replica, already exceeds its end-to-end SLO.
"""

from __future__ import annotations

from maestro_plan.errors import Problem
from maestro_plan.estimate.demand import _budgets, predicted_call_ms
from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.estimate.memory import MemoryBreakdown, replica_memory
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec
from maestro_plan.units import GIB


def _fleet_options(inputs: Inputs) -> dict[str, int]:
    """GPU type -> most GPUs of that type on one node."""
    out: dict[str, int] = {}
    for c in inputs.inventory.clusters:
        for p in c.node_pools:
            if p.gpu_type in inputs.gpu_types:
                out[p.gpu_type] = max(out.get(p.gpu_type, 0), p.gpus_per_node)
    return out


def best_replica(model: ModelSpec, inputs: Inputs, engine: EngineDefaults = VLLM) -> tuple[GpuType, int, MemoryBreakdown] | None:
    """The (GPU type, TP, memory) of the fleet with the most KV room for this model, or None
    when the fleet has no GPU type at all."""
    best: tuple[GpuType, int, MemoryBreakdown] | None = None
    for gid, per_node in sorted(_fleet_options(inputs).items()):
        gpu = inputs.gpu_types[gid]
        tps = [t for t in model.tp_degrees if t <= per_node] or [min(model.tp_degrees)]
        for tp in tps:
            mem = replica_memory(model, gpu, tp, engine=engine, max_model_len=model.context_len)
            if best is None or mem.kv_pool_bytes_per_gpu * tp > best[2].kv_pool_bytes_per_gpu * best[1]:
                best = (gpu, tp, mem)
    return best


def physical_problems(inputs: Inputs, engine: EngineDefaults = VLLM) -> list[Problem]:
    problems: list[Problem] = []
    where = inputs.paths.get("models")
    fleet = _fleet_options(inputs)
    used = sorted({r.model for w in inputs.workflows for r in w.roles if r.model in inputs.models})
    for mid in used:
        m = inputs.models[mid]
        allowed = [(gid, t) for gid, n in fleet.items() for t in m.tp_degrees if t <= n]
        if not allowed:
            continue  # the loader already reports TP degrees no node can hold
        fits_any = False
        best_short: tuple[int, str, int, MemoryBreakdown] | None = None
        best_tokens: tuple[int, str, int] | None = None
        for gid, tp in sorted(allowed):
            gpu = inputs.gpu_types[gid]
            mem = replica_memory(m, gpu, tp, engine=engine)
            if mem.kv_pool_bytes_per_gpu <= 0:
                short = -mem.kv_pool_bytes_per_gpu
                if best_short is None or short < best_short[0]:
                    best_short = (short, gid, tp, mem)
                continue
            if best_tokens is None or mem.max_kv_tokens > best_tokens[0]:
                best_tokens = (mem.max_kv_tokens, gid, tp)
            if mem.max_kv_tokens >= m.context_len:
                fits_any = True
        if fits_any:
            continue
        if best_tokens is None and best_short is not None:
            short, gid, tp, mem = best_short
            problems.append(
                Problem(
                    f"model '{mid}' fits no GPU of the fleet: even on {gid} at TP {tp} (its largest TP there) one GPU would hold "
                    f"{mem.weights_bytes_per_gpu / GIB:.1f} GiB of weights + {(mem.activation_bytes_per_gpu + mem.non_torch_bytes_per_gpu + mem.cuda_graph_bytes_per_gpu) / GIB:.1f} GiB "
                    f"of activations, non-torch and CUDA-graph memory in {mem.budget_bytes_per_gpu / GIB:.1f} GiB "
                    f"({mem.gpu_memory_utilization:g} x {mem.hbm_bytes_per_gpu / GIB:.1f} GiB): short by {short / GIB:.1f} GiB per GPU.",
                    where,
                    f"{mid}.tp_degrees",
                    "allow a larger TP degree, use a quantized checkpoint (fp8/int4), or add GPUs with more memory to the inventory.",
                )
            )
        elif best_tokens is not None:
            tokens, gid, tp = best_tokens
            problems.append(
                Problem(
                    f"model '{mid}' loads, but its KV pool holds at most {tokens} tokens (on {gid} at TP {tp}), "
                    f"less than one request of max_model_len {m.context_len}; vLLM refuses to start such a replica.",
                    where,
                    f"{mid}.max_model_len",
                    f"set max_model_len to at most {tokens}, allow a larger TP degree, or add GPUs with more memory.",
                )
            )
    problems.extend(_slo_problems(inputs, fleet, engine))
    return problems


def _slo_problems(inputs: Inputs, fleet: dict[str, int], engine: EngineDefaults) -> list[Problem]:
    if not fleet:
        return []
    fastest = max((inputs.gpu_types[g] for g in fleet), key=lambda g: (g.hbm_tbps, g.id))
    out: list[Problem] = []
    for w in inputs.workflows:
        call_ms: dict[str, float] = {}
        for r in w.roles:
            m = inputs.models.get(r.model)
            if m is None:
                return out
            tps = [t for t in m.tp_degrees if t <= fleet[fastest.id]]
            tp = max(tps) if tps else max(m.tp_degrees)
            call_ms[r.name] = predicted_call_ms(m, fastest, tp, r.input_tokens.mean_tokens(), r.output_tokens.mean_tokens())
        rb = _budgets(w, call_ms, None, 0.0)  # the mean rule: its critical path is what an idle replica needs
        cp = max((b.critical_path_ms for b in rb), default=0.0)
        if cp > w.slo.latency_ms:
            path = ", ".join(f"{b.role} ({b.calls_per_query:g} x {b.predicted_call_ms:.0f} ms)" for b in rb if b.on_critical_path)
            out.append(
                Problem(
                    f"workflow '{w.name}' cannot meet its SLO of {w.slo.latency_ms:g} ms: its critical path takes {cp:.0f} ms "
                    f"even on an idle {fastest.id} replica at the largest allowed TP ({path}).",
                    inputs.paths.get("workloads"),
                    f"{w.name}.slo.latency_ms",
                    f"raise the SLO above {cp:.0f} ms, shorten outputs, or call faster models.",
                )
            )
    return out
