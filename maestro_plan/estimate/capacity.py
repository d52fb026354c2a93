"""Capacity of one replica under a latency budget, and measured capacity tables that override it.

Continuous batching model (vLLM V1 schedules prefills into the running batch). With B sequences
decoding at context C = mean_input + mean_output / 2, step time s = decode_step(B, C); a prompt of
I = mean_input tokens takes P = prefill(I). Requests arrive at rate lambda = B / x (Little's law,
x = mean per-call latency). Prefills take the fraction lambda * P of GPU time, so a decode token
waits s / (1 - lambda * P) on average:

    TTFT = P + s                      (the prompt, plus finishing the step in flight)
    TPOT = s / (1 - lambda * P)
    x    = TTFT + O * TPOT            (O = mean_output)

Substituting lambda = B / x gives x^2 - (B P + P + s + O s) x + B P (P + s) = 0, whose larger root
is the latency at concurrency B. `replica_capacity` returns the largest B (bounded by the KV pool
at `kv_tokens_per_request` per sequence, and by vLLM's max_num_seqs) whose latency meets the
budget; rps = B / x. rps grows with B in this model (x grows less than linearly in B until the
prefill share saturates), so the largest feasible B also gives the largest rate.
`latency_at_load` solves the same fixed point for a given rate below capacity.

KV per sequence is reserved at `kv_tokens_per_request` rounded up to whole 16-token blocks; for
sliding-window layers (Gemma-2) only the window is held, so long requests cost less than the
per-token figure times their length (memory.kv_bytes_per_sequence).

Measured tables (CapacityTable) give max requests/s at a latency per (model, GPU type, TP, input
and output length class); a cell whose class covers the mix and whose measured latency is within
the budget replaces the estimate (source "measured").
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maestro_plan.errors import InputError, Problem
from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.estimate.memory import kv_bytes_per_sequence, kv_bytes_per_token_per_gpu, replica_memory
from maestro_plan.estimate.perf import decode_step_ms_f, prefill_ms_f
from maestro_plan.load.schema import GpuType, ModelSpec


@dataclass(frozen=True)
class RequestMix:
    """What one replica serves: mean lengths and the KV reservation unit per request."""

    mean_input: float
    mean_output: float
    kv_tokens_per_request: float  # predicted high percentile of input + output
    max_model_len: int | None = None


@dataclass(frozen=True)
class CapacityResult:
    rps: float
    batch: int
    kv_tokens_needed: int
    kv_bytes_per_gpu_needed: int
    ttft_ms: float
    tpot_ms: float
    latency_ms: float
    source: str  # "estimate" or "measured"


def _round_block(tokens: float, block: int) -> int:
    return int(math.ceil(max(tokens, 1.0) / block) * block)


def _latency_at_batch(P: float, s: float, O: float, B: float) -> float:
    b = B * P + P + s + O * s
    disc = b * b - 4.0 * B * P * (P + s)
    return (b + math.sqrt(max(disc, 0.0))) / 2.0


@dataclass(frozen=True)
class _Point:
    batch: int
    latency_ms: float
    ttft_ms: float
    tpot_ms: float
    rps: float


def _point(model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, B: int, share: float) -> _Point:
    ctx = mix.mean_input + mix.mean_output / 2.0
    P = prefill_ms_f(model, gpu, tp, mix.mean_input, compute_share=share)
    s = decode_step_ms_f(model, gpu, tp, float(B), ctx, compute_share=share)
    O = max(mix.mean_output, 1.0)
    x = _latency_at_batch(P, s, O, float(B))
    lam = B / x  # per ms
    util = min(lam * P, 0.999999)
    return _Point(B, x, P + s, s / (1.0 - util), B / x * 1000.0)


def kv_bytes_per_request(model: ModelSpec, tp: int, mix: RequestMix, engine: EngineDefaults = VLLM) -> float:
    """KV bytes per GPU reserved for one request (block-rounded high-percentile length, SWA capped)."""
    return kv_bytes_per_sequence(model, tp, _round_block(mix.kv_tokens_per_request, engine.block_size))


def max_batch_by_memory(model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, kv_pool_bytes_per_gpu: int | None = None, engine: EngineDefaults = VLLM) -> int:
    """Concurrent sequences whose reserved KV fits the pool (and vLLM's max_num_seqs)."""
    pool = replica_memory(model, gpu, tp, engine=engine).kv_pool_bytes_per_gpu if kv_pool_bytes_per_gpu is None else kv_pool_bytes_per_gpu
    per = kv_bytes_per_request(model, tp, mix, engine)
    if pool <= 0 or per <= 0:
        return 0
    return int(min(pool // per, engine.max_num_seqs_for(gpu.hbm_gib, gpu.name)))


def _result(model: ModelSpec, tp: int, mix: RequestMix, pt: _Point, source: str, engine: EngineDefaults) -> CapacityResult:
    kv_tokens = pt.batch * _round_block(mix.kv_tokens_per_request, engine.block_size)
    kv_bytes = int(math.ceil(pt.batch * kv_bytes_per_request(model, tp, mix, engine)))
    return CapacityResult(
        rps=pt.rps,
        batch=pt.batch,
        kv_tokens_needed=int(kv_tokens),
        kv_bytes_per_gpu_needed=kv_bytes,
        ttft_ms=pt.ttft_ms,
        tpot_ms=pt.tpot_ms,
        latency_ms=pt.latency_ms,
        source=source,
    )


def replica_capacity(
    model: ModelSpec,
    gpu: GpuType,
    tp: int,
    mix: RequestMix,
    *,
    latency_budget_ms: float,
    kv_pool_bytes_per_gpu: int | None = None,
    compute_share: float = 1.0,
    table: CapacityTable | None = None,
    engine: EngineDefaults = VLLM,
) -> CapacityResult | None:
    """Largest sustainable rate of one replica whose mean per-call latency meets the budget.

    None when even one request at a time misses the budget, or no request's KV fits the pool.
    """
    if latency_budget_ms <= 0:
        return None
    bmax = max_batch_by_memory(model, gpu, tp, mix, kv_pool_bytes_per_gpu, engine)
    est: CapacityResult | None = None
    if bmax >= 1:
        first = _point(model, gpu, tp, mix, 1, compute_share)
        if first.latency_ms <= latency_budget_ms:
            lo, hi = 1, bmax
            best = first
            while lo < hi:  # largest B with latency <= budget (latency grows with B)
                mid = (lo + hi + 1) // 2
                pt = _point(model, gpu, tp, mix, mid, compute_share)
                if pt.latency_ms <= latency_budget_ms:
                    lo, best = mid, pt
                else:
                    hi = mid - 1
            est = _result(model, tp, mix, best, "estimate", engine)
    if table is not None:
        row = table.lookup(model.id, gpu.id, tp, mix, latency_budget_ms)
        if row is not None:
            measured_rps = row.max_rps * compute_share
            batch = max(1, int(math.ceil(measured_rps * row.latency_ms / 1000.0)))
            pt = _Point(batch, row.latency_ms, row.ttft_ms or float("nan"), row.tpot_ms or float("nan"), measured_rps)
            return _result(model, tp, mix, pt, "measured", engine)
        tighter = table.tightest(model.id, gpu.id, tp, mix)
        if tighter is not None and est is not None and est.rps > tighter.max_rps * compute_share:
            # the budget is tighter than every measured cell: never promise more than was measured
            return CapacityResult(**{**est.__dict__, "rps": tighter.max_rps * compute_share})
    return est


def latency_at_load(model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, rps: float, *, compute_share: float = 1.0) -> float:
    """Mean per-call latency (ms) at `rps` requests/s; inf when the replica cannot sustain that rate."""
    if rps <= 0:
        return _point(model, gpu, tp, mix, 1, compute_share).latency_ms
    lam = rps / 1000.0  # per ms
    ctx = mix.mean_input + mix.mean_output / 2.0
    P = prefill_ms_f(model, gpu, tp, mix.mean_input, compute_share=compute_share)
    if lam * P >= 1.0:
        return math.inf
    O = max(mix.mean_output, 1.0)

    def g(x: float) -> float:
        B = max(lam * x, 1.0)
        s = decode_step_ms_f(model, gpu, tp, B, ctx, compute_share=compute_share)
        return P + s + O * s / (1.0 - lam * P) - x

    lo = P
    if g(lo) <= 0:
        return lo
    hi = max(2.0 * lo, 1.0)
    while g(hi) > 0:
        hi *= 2.0
        if hi > 1e8:
            return math.inf
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    return hi


# --------------------------------------------------------------------------------------------
# Measured capacity tables
# --------------------------------------------------------------------------------------------


class CapacityRow(BaseModel):
    """One measured cell: a replica of `model` on `tp` GPUs of `gpu` served at most `max_rps`
    requests/s with mean per-call latency `latency_ms`, for requests of at most `input_tokens` in
    and `output_tokens` out (the length class)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    gpu: str = Field(min_length=1)
    tp: int = Field(gt=0, le=64)
    input_tokens: float = Field(gt=0, allow_inf_nan=False, description="Upper bound of the input-length class, tokens")
    output_tokens: float = Field(gt=0, allow_inf_nan=False, description="Upper bound of the output-length class, tokens")
    max_rps: float = Field(gt=0, allow_inf_nan=False)
    latency_ms: float = Field(gt=0, allow_inf_nan=False, description="Mean per-call latency at max_rps (the SLO it was measured under)")
    ttft_ms: float | None = Field(None, gt=0, allow_inf_nan=False)
    tpot_ms: float | None = Field(None, gt=0, allow_inf_nan=False)
    source: str = ""


@dataclass(frozen=True)
class CapacityTable:
    rows: tuple[CapacityRow, ...]
    path: str = ""

    def _cell(self, model: str, gpu: str, tp: int, mix: RequestMix) -> list[CapacityRow]:
        rows = [r for r in self.rows if r.model == model and r.gpu == gpu and r.tp == tp and r.input_tokens >= mix.mean_input and r.output_tokens >= mix.mean_output]
        if not rows:
            return []
        # the smallest length class that covers the mix
        key = min((r.input_tokens, r.output_tokens) for r in rows)
        return [r for r in rows if (r.input_tokens, r.output_tokens) == key]

    def lookup(self, model: str, gpu: str, tp: int, mix: RequestMix, latency_budget_ms: float) -> CapacityRow | None:
        """The measured row of the matching cell with the largest latency within the budget."""
        ok = [r for r in self._cell(model, gpu, tp, mix) if r.latency_ms <= latency_budget_ms]
        return max(ok, key=lambda r: (r.latency_ms, r.max_rps)) if ok else None

    def tightest(self, model: str, gpu: str, tp: int, mix: RequestMix) -> CapacityRow | None:
        cell = self._cell(model, gpu, tp, mix)
        return min(cell, key=lambda r: (r.latency_ms, r.max_rps)) if cell else None

    def covers(self, model: str, gpu: str, tp: int) -> bool:
        return any(r.model == model and r.gpu == gpu and r.tp == tp for r in self.rows)


def _num(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        try:
            f = float(s)
        except ValueError:
            return s
        return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f
    return v


def load_capacity_table(path: str | Path) -> CapacityTable:
    """Read a measured capacity table (CSV with a header row, or YAML/JSON: a list of rows or
    {rows: [...]}) with columns model, gpu, tp, input_tokens, output_tokens, max_rps, latency_ms
    [, ttft_ms, tpot_ms, source]. Every bad row is reported (InputError, exit 2)."""
    from maestro_plan.load.loader import read_document, validation_problems

    p = Path(path)
    if p.suffix.lower() == ".csv":
        if not p.exists():
            raise InputError("capacity table does not exist.", file=p, hint="check the path.")
        try:
            with p.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                raw = [{k.strip(): _num(v) for k, v in row.items() if k is not None and v not in (None, "")} for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise InputError(f"capacity table cannot be read as CSV: {e}.", file=p) from None
        prefix = "row"
    else:
        doc = read_document(p)
        raw = doc.get("rows") if isinstance(doc, dict) else doc
        prefix = "rows"
        if not isinstance(raw, list):
            raise InputError("capacity table must be a list of rows (or a mapping with 'rows').", file=p, field="rows")
    if not raw:
        raise InputError("capacity table has no rows.", file=p, hint="add at least one measured row.")
    rows: list[CapacityRow] = []
    problems: list[Problem] = []
    for i, r in enumerate(raw):
        where = f"{prefix}[{i + 2 if prefix == 'row' else i}]"
        if not isinstance(r, dict):
            problems.append(Problem("must be a mapping of column -> value.", str(p), where))
            continue
        try:
            rows.append(CapacityRow.model_validate(r))
        except ValidationError as e:
            problems.extend(validation_problems(e, CapacityRow, p, where))
    if problems:
        raise InputError(problems=problems)
    return CapacityTable(rows=tuple(rows), path=str(p))


def kv_bytes_per_token(model: ModelSpec, tp: int) -> int:
    return kv_bytes_per_token_per_gpu(model, tp)
