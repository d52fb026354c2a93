"""Commands: estimate (memory and speed of one replica) and demand (per-model demand from workflows)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, WorkloadsOpt, console, emit_json, guarded
from maestro_plan.errors import InputError, unknown_name_hint
from maestro_plan.units import GIB

CAPACITY_BUDGETS_MS = (1000.0, 2000.0, 5000.0, 10000.0, 30000.0)
"""Per-call latency budgets of the capacity table `estimate` prints."""


def _closest_hint(name: str, choices: Any, what: str) -> str:
    """'did you mean' hint that prefers names starting with what was typed ('h100' -> 'h100-pcie, h100-sxm')."""
    prefixed = sorted(c for c in choices if str(c).startswith(name))
    if prefixed:
        return f"did you mean {' or '.join(repr(c) for c in prefixed[:3])}?"
    return unknown_name_hint(name, choices, what)


def _gib(b: float) -> str:
    return f"{b / GIB:.2f}"


def estimate_report(
    model_id: str,
    gpu_id: str,
    tp: int | None,
    batch: int,
    context: int | None,
    prompt: int | None,
    output: int,
    models_path: Path | None,
    inventory_path: Path | None,
    gpu_memory_utilization: float | None = None,
) -> dict[str, Any]:
    """Everything `maestro-plan estimate` prints, as a JSON-ready dict. Bad input -> InputError."""
    from maestro_plan.estimate import RequestMix, decode_step_ms, prefill_ms, replica_capacity, replica_memory
    from maestro_plan.estimate.engine import VLLM
    from maestro_plan.estimate.memory import kv_bytes_per_sequence
    from maestro_plan.load.loader import default_paths, load_gpu_types, load_inventory, load_models, tp_allowed

    mpath = models_path if models_path is not None else default_paths()["models"]
    mods, where = load_models(mpath)
    if model_id not in mods:
        raise InputError(f"unknown model '{model_id}'.", field="--model", hint=_closest_hint(model_id, mods, "models"))
    extra = list(load_inventory(inventory_path)[0].gpu_types) if inventory_path is not None else []
    gpus = load_gpu_types(extra)
    if gpu_id not in gpus:
        raise InputError(f"unknown GPU type '{gpu_id}'.", field="--gpu", hint=_closest_hint(gpu_id, gpus, "GPU types"))
    m, gpu = mods[model_id], gpus[gpu_id]
    a = m.architecture
    if tp is None:
        fitting = [t for t in m.tp_degrees if replica_memory(m, gpu, t, max_model_len=m.context_len, gpu_memory_utilization=gpu_memory_utilization).fits]
        tp = fitting[0] if fitting else max(m.tp_degrees)
    elif tp not in m.tp_degrees:
        ok = tp_allowed(a.num_attention_heads, 1 if a.is_mla else a.kv_heads, tp)
        why = "is not among the model's tp_degrees" if ok else f"does not split {a.num_attention_heads} attention heads / {a.kv_heads} KV heads evenly"
        raise InputError(f"TP {tp} {why} for model '{model_id}'.", file=where.get(model_id), field="--tp", hint=f"use one of {m.tp_degrees}.")
    mem = replica_memory(m, gpu, tp, max_model_len=m.context_len, gpu_memory_utilization=gpu_memory_utilization)
    if mem.kv_pool_bytes_per_gpu <= 0:
        bigger = [t for t in m.tp_degrees if t > tp]
        raise InputError(
            f"model '{model_id}' does not fit {gpu_id} at TP {tp}: {_gib(mem.weights_bytes_per_gpu)} GiB of weights per GPU plus "
            f"{_gib(mem.activation_bytes_per_gpu + mem.non_torch_bytes_per_gpu + mem.cuda_graph_bytes_per_gpu)} GiB of activations, "
            f"non-torch and CUDA-graph memory exceed {_gib(mem.budget_bytes_per_gpu)} GiB "
            f"({mem.gpu_memory_utilization:g} x HBM) by {_gib(mem.shortfall_bytes_per_gpu)} GiB.",
            field="--tp",
            hint=(f"try --tp {bigger[0]}." if bigger else "use a GPU with more memory or a quantized checkpoint."),
        )
    ctx = min(2048, m.context_len) if context is None else context
    pr = min(2048, m.context_len) if prompt is None else prompt
    for flag, v in (("--context", ctx), ("--prompt", pr)):
        if v < 1 or v > m.context_len:
            raise InputError(f"{flag} {v} is outside 1..{m.context_len} (the model's context length).", field=flag, hint=f"use at most {m.context_len} tokens.")
    if batch < 1:
        raise InputError(f"--batch {batch} must be at least 1.", field="--batch")
    per_seq = kv_bytes_per_sequence(m, tp, math.ceil(ctx / VLLM.block_size) * VLLM.block_size)
    fit_n = int(mem.kv_pool_bytes_per_gpu // per_seq) if per_seq > 0 else 0
    if batch > fit_n:
        raise InputError(
            f"a batch of {batch} sequences of {ctx} tokens needs {_gib(batch * per_seq)} GiB of KV per GPU; the pool holds "
            f"{_gib(mem.kv_pool_bytes_per_gpu)} GiB, so at most {fit_n} such sequences fit on {gpu_id} at TP {tp}.",
            field="--batch",
            hint=f"use --batch {max(fit_n, 1)} or less, a shorter --context, or a larger --tp." if fit_n else "use a shorter --context or a larger --tp.",
        )
    capacity = []
    mix = RequestMix(mean_input=float(pr), mean_output=float(output), kv_tokens_per_request=float(min(pr + output, m.context_len)), max_model_len=m.context_len)
    for budget in CAPACITY_BUDGETS_MS:
        cap = replica_capacity(m, gpu, tp, mix, latency_budget_ms=budget)
        capacity.append(
            {
                "latency_budget_ms": budget,
                "rps": round(cap.rps, 4) if cap else None,
                "batch": cap.batch if cap else None,
                "ttft_ms": round(cap.ttft_ms, 2) if cap else None,
                "tpot_ms": round(cap.tpot_ms, 3) if cap else None,
                "latency_ms": round(cap.latency_ms, 1) if cap else None,
                "kv_bytes_per_gpu_needed": cap.kv_bytes_per_gpu_needed if cap else None,
            }
        )
    return {
        "model": model_id,
        "gpu": gpu_id,
        "tp": tp,
        "engine": f"{VLLM.name} {VLLM.version}",
        "gpu_memory_utilization": mem.gpu_memory_utilization,
        "hbm_bytes_per_gpu": mem.hbm_bytes_per_gpu,
        "budget_bytes_per_gpu": mem.budget_bytes_per_gpu,
        "weights_bytes_per_gpu": mem.weights_bytes_per_gpu,
        "activation_bytes_per_gpu": mem.activation_bytes_per_gpu,
        "non_torch_bytes_per_gpu": mem.non_torch_bytes_per_gpu,
        "cuda_graph_bytes_per_gpu": mem.cuda_graph_bytes_per_gpu,
        "kv_bytes_per_token": mem.kv_bytes_per_token_per_gpu,
        "kv_pool_bytes": mem.kv_pool_bytes_per_gpu,
        "max_kv_tokens": mem.max_kv_tokens,
        "max_model_len": m.context_len,
        "max_concurrency_at_max_model_len": round(mem.max_concurrency_at_max_len, 2),
        "batch": batch,
        "context": ctx,
        "decode_step_ms": round(decode_step_ms(m, gpu, tp, batch, ctx), 4),
        "tokens_per_s": round(batch * 1000.0 / decode_step_ms(m, gpu, tp, batch, ctx), 1),
        "prompt": pr,
        "prefill_ms": round(prefill_ms(m, gpu, tp, pr), 4),
        "capacity_mix": {"input_tokens": pr, "output_tokens": output},
        "capacity": capacity,
    }


def demand_report(inventory: Path | None, models: Path | None, workloads: Path | None, percentile: float) -> dict[str, Any]:
    from maestro_plan.estimate import compute_demand
    from maestro_plan.load.loader import load_inputs

    inputs = load_inputs(inventory, models, workloads)
    if not 0 < percentile <= 100:
        raise InputError(f"--percentile {percentile} is outside (0, 100].", field="--percentile")
    d = compute_demand(inputs, percentile=percentile)
    return {
        "reference_gpu": d.reference_gpu,
        "percentile": d.percentile,
        "per_model": [
            {
                "model": x.model,
                "source": x.source,
                "rate_rps": round(x.rate_rps, 6),
                "peak_rate_rps": round(x.peak_rate_rps, 6),
                "priority": x.priority,
                "latency_budget_ms": round(x.latency_budget_ms, 1),
                "mean_input": round(x.mix.mean_input, 1),
                "mean_output": round(x.mix.mean_output, 1),
                "kv_tokens_per_request": round(x.mix.kv_tokens_per_request, 1),
                "roles": list(x.roles),
                "shared_prefix": x.shared_prefix,
            }
            for x in d.per_model
        ],
        "role_budgets": [
            {
                "workflow": b.workflow,
                "role": b.role,
                "model": b.model,
                "calls_per_query": b.calls_per_query,
                "predicted_call_ms": round(b.predicted_call_ms, 1),
                "budget_ms": round(b.budget_ms, 1),
                "on_critical_path": b.on_critical_path,
                "critical_path_ms": round(b.critical_path_ms, 1),
            }
            for b in d.role_budgets
        ],
        "kv_reservation": [
            {
                "model": r.model,
                "source": r.source,
                "gpu": r.gpu,
                "tp": r.tp,
                "concurrency": r.concurrency,
                "kv_tokens_per_request": r.kv_tokens_per_request,
                "predicted_bytes_per_gpu": r.predicted_bytes_per_gpu,
                "naive_bytes_per_gpu": r.naive_bytes_per_gpu,
                "saved_bytes_per_gpu": r.saved_bytes_per_gpu,
            }
            for r in d.kv_reservations
        ],
        "hbm_saved_bytes_total": sum(r.saved_bytes_per_gpu * r.tp for r in d.kv_reservations),
    }


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def estimate(
        model: Annotated[str, typer.Option("--model", help="Model id (models/<id>.yaml)")],
        gpu: Annotated[str, typer.Option("--gpu", help="GPU type id (maestro-plan gpus)")],
        tp: Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree (default: the smallest allowed one that fits)")] = None,
        batch: Annotated[int, typer.Option("--batch", help="Sequences in the decode step")] = 1,
        context: Annotated[int | None, typer.Option("--context", help="Tokens of context each sequence holds (default 2048)")] = None,
        prompt: Annotated[int | None, typer.Option("--prompt", help="Prompt tokens to prefill (default 2048)")] = None,
        output: Annotated[int, typer.Option("--output", help="Output tokens per request in the capacity table")] = 256,
        gpu_memory_utilization: Annotated[float | None, typer.Option("--gpu-memory-utilization", help="Override vLLM's default fraction")] = None,
        models: ModelsOpt = None,
        inventory: InventoryOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Memory and speed of one replica: weights, KV pool, decode step, prefill, capacity at a few SLOs."""
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise InputError(f"--gpu-memory-utilization {gpu_memory_utilization} is outside (0, 1].", field="--gpu-memory-utilization")
        r = estimate_report(model, gpu, tp, batch, context, prompt, output, models, inventory, gpu_memory_utilization)
        if json_out:
            emit_json(r)
            return
        t = Table(title=f"{r['model']} on {r['tp']} x {r['gpu']} ({r['engine']}, gpu_memory_utilization {r['gpu_memory_utilization']:g})")
        t.add_column("memory per GPU")
        t.add_column("GiB", justify="right")
        t.add_row("HBM", _gib(r["hbm_bytes_per_gpu"]))
        t.add_row("engine budget", _gib(r["budget_bytes_per_gpu"]))
        t.add_row("weights", _gib(r["weights_bytes_per_gpu"]))
        t.add_row("activation peak", _gib(r["activation_bytes_per_gpu"]))
        t.add_row("non-torch + CUDA graphs", _gib(r["non_torch_bytes_per_gpu"] + r["cuda_graph_bytes_per_gpu"]))
        t.add_row("KV pool", _gib(r["kv_pool_bytes"]))
        console.print(t)
        console.print(
            f"KV: {r['kv_bytes_per_token']:,} bytes per token per GPU; {r['max_kv_tokens']:,} tokens in the pool "
            f"({r['max_concurrency_at_max_model_len']:g} x max_model_len {r['max_model_len']:,})"
        )
        console.print(f"decode step, batch {r['batch']} at {r['context']:,} tokens of context: {r['decode_step_ms']:.2f} ms ({r['tokens_per_s']:,} tokens/s)")
        console.print(f"prefill of {r['prompt']:,} tokens: {r['prefill_ms']:.2f} ms")
        t = Table(title=f"capacity for {r['capacity_mix']['input_tokens']} in / {r['capacity_mix']['output_tokens']} out tokens per call")
        for col in ("per-call budget ms", "requests/s", "batch", "TTFT ms", "TPOT ms", "latency ms", "KV GiB/GPU"):
            t.add_column(col, justify="right")
        for c in r["capacity"]:
            if c["rps"] is None:
                t.add_row(f"{c['latency_budget_ms']:g}", "unreachable", "", "", "", "", "")
            else:
                t.add_row(f"{c['latency_budget_ms']:g}", f"{c['rps']:.2f}", str(c["batch"]), f"{c['ttft_ms']:.0f}", f"{c['tpot_ms']:.1f}", f"{c['latency_ms']:.0f}", _gib(c["kv_bytes_per_gpu_needed"]))
        console.print(t)

    @app.command()
    @guarded
    def demand(
        inventory: InventoryOpt = None,
        models: ModelsOpt = None,
        workloads: WorkloadsOpt = None,
        percentile: Annotated[float, typer.Option("--percentile", help="Percentile of input+output tokens reserved per request")] = 99.0,
        json_out: JsonOpt = False,
    ) -> None:
        """Per-model demand, per-role latency budgets and KV reservation for the workloads."""
        r = demand_report(inventory, models, workloads, percentile)
        if json_out:
            emit_json(r)
            return
        t = Table(title=f"demand per model and source (call times predicted on {r['reference_gpu']})")
        for col in ("model", "source", "calls/s", "priority", "budget ms", "in", "out", f"KV tokens p{percentile:g}", "roles"):
            t.add_column(col)
        for x in r["per_model"]:
            t.add_row(x["model"], x["source"], f"{x['rate_rps']:.3g}", x["priority"], f"{x['latency_budget_ms']:.0f}", f"{x['mean_input']:.0f}", f"{x['mean_output']:.0f}", f"{x['kv_tokens_per_request']:.0f}", ", ".join(x["roles"]))
        console.print(t)
        t = Table(title="per-call latency budgets (end-to-end SLO split along the critical path)")
        for col in ("workflow", "role", "model", "calls/query", "predicted ms", "budget ms", "critical"):
            t.add_column(col)
        for b in r["role_budgets"]:
            t.add_row(b["workflow"], b["role"], b["model"], f"{b['calls_per_query']:g}", f"{b['predicted_call_ms']:.0f}", f"{b['budget_ms']:.0f}", "yes" if b["on_critical_path"] else "")
        console.print(t)
        t = Table(title="KV reservation per replica: predicted lengths vs max_model_len x max_num_seqs")
        for col in ("model", "source", "GPU x TP", "seqs", "KV tokens/req", "predicted GiB/GPU", "naive GiB/GPU", "saved GiB/GPU"):
            t.add_column(col)
        for k in r["kv_reservation"]:
            t.add_row(k["model"], k["source"], f"{k['gpu']} x {k['tp']}", str(k["concurrency"]), str(k["kv_tokens_per_request"]), _gib(k["predicted_bytes_per_gpu"]), _gib(k["naive_bytes_per_gpu"]), _gib(k["saved_bytes_per_gpu"]))
        console.print(t)
        console.print(f"HBM saved against the naive reservation, one replica per row: {_gib(r['hbm_saved_bytes_total'])} GiB")
