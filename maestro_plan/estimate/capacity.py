"""Capacity of one replica under a latency budget, and measured capacity tables that override it.

Continuous batching with chunked prefill, as vLLM V1 runs it. The V1 scheduler has no separate
prefill and decode phases: "There's no "decoding phase" nor "prefill phase" in the scheduler. Each
request just has the num_computed_tokens and num_tokens_with_spec" (vllm/v1/core/sched/scheduler.py,
Scheduler.schedule), and "In vLLM V1, chunked prefill is always enabled by default ... the scheduling
policy prioritizes decode requests. It batches all pending decode requests before scheduling any
prefill operations. When there are available tokens in the max_num_batched_tokens budget, it
schedules pending prefills" (docs/configuration/optimization.md, "Chunked Prefill",
https://docs.vllm.ai/en/latest/configuration/optimization.html#chunked-prefill). So a prompt is
computed inside decode steps that read the weights and pay the per-layer overhead anyway; what it
adds to those steps is only its marginal work

    M = prefill(I) - prefill(1)      (I = mean_input; the compute of the prompt beyond one token)

which is also how maestro_plan.simulate prices a chunk (prefill(p + c) - prefill(p)).

With B sequences decoding at context C = mean_input + mean_output / 2, step time s = decode_step(B, C),
P = prefill(I), requests arriving at rate lambda = B / x (Little's law, x = mean per-call latency):
prompts take the fraction lambda * M of GPU time, so a decode step lasts s / (1 - lambda * M) on
average, and

    TTFT = P + n s                    (the request's own whole prefill, plus the step in flight and
                                       one more step per extra chunk: n = ceil(I / (N - B)), N =
                                       --max-num-batched-tokens, B of which go to decoding sequences)
    TPOT = s / (1 - lambda * M)
    x    = TTFT + O * TPOT            (O = mean_output)

Substituting lambda = B / x gives x^2 - (T + B M + O s) x + T B M = 0 (T = TTFT), whose larger root
is the latency at concurrency B. The step's token budget must also carry the prompts: lambda * I
prompt tokens per ms times TPOT ms per step must fit in the N - B tokens left by the decoding
sequences, or prompts queue for the budget and the fixed point does not hold; such a B is infeasible.
(An earlier version of this model charged every prompt a whole pass of its own, stall term
lambda * P with the weight read and overheads included, as vLLM V0 without chunked prefill ran
them: it under-predicted prompt-heavy mixes by 13-22 % against the simulator, e.g. 17.6 vs 20.0
req/s for Llama-3.1-8B at 1000 in / 200 out on H100 at B = 64; now 19.96. For MoE models M also
holds the extra experts a long prompt touches beyond those the decode step reads: conservative.)

`replica_capacity` returns the largest B (bounded by the KV pool at `kv_tokens_per_request` per
sequence, by vLLM's max_num_seqs and by the token budget) whose latency meets the budget; rps = B / x.
rps grows with B in this model (x grows less than linearly in B until the prefill share saturates),
so the largest feasible B also gives the largest rate. `latency_at_load` solves the same fixed point
for a given rate below capacity.

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


def _latency_at_batch(T: float, M: float, s: float, O: float, B: float) -> float:
    """Larger root of x^2 - (T + B M + O s) x + T B M = 0: x = T + O s / (1 - (B / x) M)."""
    b = T + B * M + O * s
    disc = b * b - 4.0 * T * B * M
    return (b + math.sqrt(max(disc, 0.0))) / 2.0


@dataclass(frozen=True)
class _Point:
    batch: int
    latency_ms: float
    ttft_ms: float
    tpot_ms: float
    rps: float
    tokens_fit: bool = True  # the prompts fit the per-step token budget at this rate


@dataclass(frozen=True)
class _Mix:
    """What does not depend on the concurrency: prompt times and the per-step token budget."""

    P: float  # prefill(I): the request's own prompt, alone (in its TTFT)
    M: float  # prefill(I) - prefill(1): what its chunks add to steps that run anyway
    ctx: float
    O: float
    I: float
    budget: int  # --max-num-batched-tokens (vLLM's default for this GPU)
    block: int

    @classmethod
    def of(cls, model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, share: float, engine: EngineDefaults) -> _Mix:
        I = max(mix.mean_input, 1.0)
        P = prefill_ms_f(model, gpu, tp, I, compute_share=share)
        P1 = prefill_ms_f(model, gpu, tp, 1.0, compute_share=share)
        return cls(
            P=P,
            M=max(P - P1, 0.0),
            ctx=mix.mean_input + mix.mean_output / 2.0,
            O=max(mix.mean_output, 1.0),
            I=I,
            budget=engine.max_num_batched_tokens_for(gpu.hbm_gib, gpu.name),
            block=engine.block_size,
        )

    def room(self, B: float) -> float:
        """Prompt tokens one step can take beside B decoding sequences (at least one block's worth,
        as maestro_plan.simulate assumes, so a prompt always progresses)."""
        return max(self.budget - B, float(self.block))

    def ttft(self, s: float, B: float) -> float:
        return self.P + math.ceil(self.I / self.room(B)) * s


def _point(model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, B: int, share: float, engine: EngineDefaults = VLLM, mx: _Mix | None = None) -> _Point:
    mx = mx or _Mix.of(model, gpu, tp, mix, share, engine)
    s = decode_step_ms_f(model, gpu, tp, float(B), mx.ctx, compute_share=share)
    T = mx.ttft(s, B)
    x = _latency_at_batch(T, mx.M, s, mx.O, float(B))
    lam = B / x  # per ms
    util = min(lam * mx.M, 0.999999)
    tpot = s / (1.0 - util)
    return _Point(B, x, T, tpot, B / x * 1000.0, lam * mx.I * tpot <= mx.room(B))


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
        mx = _Mix.of(model, gpu, tp, mix, compute_share, engine)

        def ok(pt: _Point) -> bool:
            return pt.latency_ms <= latency_budget_ms and pt.tokens_fit

        first = _point(model, gpu, tp, mix, 1, compute_share, engine, mx)
        if ok(first):
            lo, hi = 1, bmax
            best = first
            while lo < hi:  # largest B that meets both (latency and token demand grow with B)
                mid = (lo + hi + 1) // 2
                pt = _point(model, gpu, tp, mix, mid, compute_share, engine, mx)
                if ok(pt):
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


def latency_at_load(
    model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, rps: float, *, compute_share: float = 1.0, engine: EngineDefaults = VLLM
) -> float:
    """Mean per-call latency (ms) at `rps` requests/s; inf when the replica cannot sustain that rate
    (the prompts' marginal work fills the GPU, or their tokens overflow the per-step budget)."""
    mx = _Mix.of(model, gpu, tp, mix, compute_share, engine)
    if rps <= 0:
        return _point(model, gpu, tp, mix, 1, compute_share, engine, mx).latency_ms
    lam = rps / 1000.0  # per ms
    if lam * mx.M >= 1.0:
        return math.inf
    stretch = 1.0 / (1.0 - lam * mx.M)

    def g(x: float) -> float:
        B = max(lam * x, 1.0)
        s = decode_step_ms_f(model, gpu, tp, B, mx.ctx, compute_share=compute_share)
        return mx.ttft(s, B) + mx.O * s * stretch - x

    lo = mx.P
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
    B = max(lam * hi, 1.0)
    s = decode_step_ms_f(model, gpu, tp, B, mx.ctx, compute_share=compute_share)
    if lam * mx.I * s * stretch > mx.room(B):
        return math.inf
    return hi


@dataclass(frozen=True)
class LoadPoint:
    """One replica at a steady request rate: the fixed point `latency_at_load` solves, in parts."""

    latency_ms: float  # mean per-call latency x
    batch: float  # mean concurrency B = rate x x (at least 1)
    step_ms: float  # decode step at B sequences of the mix's mean context
    stretch: float  # 1 / (1 - rate x M): decode steps lengthened by the prompts' chunks
    room: float  # prompt tokens one step takes beside B decoding sequences


def load_point(
    model: ModelSpec, gpu: GpuType, tp: int, mix: RequestMix, rps: float, *, compute_share: float = 1.0, engine: EngineDefaults = VLLM
) -> LoadPoint | None:
    """The parts of the per-call latency at `rps` (None when the replica cannot sustain it), so a
    caller can price one call of its own lengths: prefill(I) + ceil(I / room) x step + O x step x stretch."""
    x = latency_at_load(model, gpu, tp, mix, rps, compute_share=compute_share, engine=engine)
    if not math.isfinite(x):
        return None
    mx = _Mix.of(model, gpu, tp, mix, compute_share, engine)
    lam = max(rps, 0.0) / 1000.0
    B = max(lam * x, 1.0)
    s = decode_step_ms_f(model, gpu, tp, B, mx.ctx, compute_share=compute_share)
    return LoadPoint(x, B, s, 1.0 / (1.0 - lam * mx.M), mx.room(B))


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
    from maestro_plan.load import safe
    from maestro_plan.load.loader import read_document, validation_problems

    p = Path(path)
    if p.suffix.lower() == ".csv":
        if not p.exists():
            raise InputError("capacity table does not exist.", file=p, hint="check the path.")
        safe.check_size(p)
        try:
            with p.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                raw = [{k.strip(): _num(v) for k, v in row.items() if k is not None and v not in (None, "")} for row in safe.csv_rows(reader, p)]
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
