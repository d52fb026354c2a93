"""Traffic for the simulator: query arrivals (Poisson or a replayed trace), token lengths, and the
workflow DAGs each query walks.

Randomness: every stream is a numpy Generator seeded with ``[seed, crc32(name)]`` (one stream per
workflow/source for arrivals, per workflow/role for lengths, loop counts and routing draws), so a
seed gives the same run, and adding a workflow does not change the draws of the others.

Token lengths (per role, from its TokenDist): maestro_plan.estimate.lengths.LengthModel (the same
draws the percentile latency model makes; see its docstring).

Calls per query: a role with calls_per_query c is called floor(c) times, plus once more with
probability frac(c) (loops unrolled, in sequence), so the mean is c.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Literal

import numpy as np

from maestro_plan.errors import InputError, Problem
from maestro_plan.estimate.lengths import LengthModel
from maestro_plan.load import safe
from maestro_plan.load.schema import Inputs

POOL = 4096
"""Draws made at a time per stream (vectorized); the order of use is fixed, so runs are deterministic."""


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent, stable random stream for `name` under `seed`."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))])


# --------------------------------------------------------------------------------------------
# Token lengths
# --------------------------------------------------------------------------------------------


class Pool:
    """Draws from one stream POOL at a time; `take()` returns the next value."""

    __slots__ = ("_fill", "_buf", "_i")

    def __init__(self, fill) -> None:  # fill: () -> np.ndarray
        self._fill = fill
        self._buf: list = []
        self._i = 0

    def take(self):
        if self._i >= len(self._buf):
            self._buf = self._fill().tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        return v


# --------------------------------------------------------------------------------------------
# Workflow graphs
# --------------------------------------------------------------------------------------------


@dataclass
class RoleSpec:
    index: int
    name: str
    model: str
    calls_per_query: float
    deps: tuple[int, ...]
    children: tuple[int, ...]
    depth: int  # position: longest chain of roles before it
    mean_input: float
    mean_output: float
    inputs: Pool
    outputs: Pool
    extra_call: Pool  # uniform draws deciding the fractional call
    route_u: Pool  # uniform draws choosing the replica


@dataclass
class WorkflowSpec:
    index: int
    name: str
    priority: str  # "interactive" | "batch"
    slo_ms: float
    slo_percentile: float
    roles: list[RoleSpec]
    roots: tuple[int, ...]
    sources: dict[str, float]  # source -> queries/s

    def n_calls(self, r: RoleSpec) -> int:
        c = r.calls_per_query
        base = int(math.floor(c))
        frac = c - base
        if frac > 1e-12 and r.extra_call.take() < frac:
            base += 1
        return base


def build_workflows(inputs: Inputs, seed: int) -> list[WorkflowSpec]:
    out: list[WorkflowSpec] = []
    for wi, w in enumerate(sorted(inputs.workflows, key=lambda w: w.name)):
        names = [r.name for r in w.roles]
        idx = {n: i for i, n in enumerate(names)}
        graph = {n: set(r.depends_on) for n, r in zip(names, w.roles)}
        order = list(TopologicalSorter(graph).static_order())
        depth: dict[str, int] = {}
        for n in order:
            depth[n] = 1 + max((depth[d] for d in graph[n]), default=-1)
        children: dict[str, list[int]] = {n: [] for n in names}
        for n, r in zip(names, w.roles):
            for d in r.depends_on:
                children[d].append(idx[n])
        roles = []
        for i, r in enumerate(w.roles):
            lin = LengthModel.of(r.input_tokens)
            lout = LengthModel.of(r.output_tokens)
            base = f"{w.name}/{r.name}"
            g_in, g_out, g_x, g_u = (stream(seed, base + s) for s in ("#in", "#out", "#loop", "#route"))
            roles.append(
                RoleSpec(
                    index=i,
                    name=r.name,
                    model=r.model,
                    calls_per_query=float(r.calls_per_query),
                    deps=tuple(idx[d] for d in r.depends_on),
                    children=tuple(sorted(children[r.name])),
                    depth=depth[r.name],
                    mean_input=r.input_tokens.mean_tokens(),
                    mean_output=r.output_tokens.mean_tokens(),
                    inputs=Pool(lambda m=lin, g=g_in: m.sample(g, POOL)),
                    outputs=Pool(lambda m=lout, g=g_out: m.sample(g, POOL)),
                    extra_call=Pool(lambda g=g_x: g.random(POOL)),
                    route_u=Pool(lambda g=g_u: g.random(POOL)),
                )
            )
        out.append(
            WorkflowSpec(
                index=wi,
                name=w.name,
                priority=w.priority.value,
                slo_ms=float(w.slo.latency_ms),
                slo_percentile=float(w.slo.percentile),
                roles=roles,
                roots=tuple(i for i, r in enumerate(roles) if not r.deps),
                sources={a.source: float(a.rate_per_s) for a in w.arrivals},
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Arrivals
# --------------------------------------------------------------------------------------------


@dataclass
class Arrivals:
    """Query arrivals sorted by time: times in ms, workflow index, source name."""

    t_ms: np.ndarray
    workflow: np.ndarray
    source: list[str]
    skipped_rows: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.t_ms.size)


def _sorted(t: list[np.ndarray], w: list[np.ndarray], s: list[list[str]]) -> Arrivals:
    if not t:
        return Arrivals(np.zeros(0), np.zeros(0, dtype=np.int64), [])
    tt = np.concatenate(t)
    ww = np.concatenate(w).astype(np.int64)
    ss = [x for chunk in s for x in chunk]
    order = np.lexsort((ww, tt))  # by time, ties by workflow index: deterministic
    return Arrivals(tt[order], ww[order], [ss[i] for i in order.tolist()])


# Arrivals in one simulation: every arrival becomes a request object with its own events, so 5
# million is several GB of state and hours of event processing; real runs (600 s of the bundled
# workloads) draw thousands.
MAX_ARRIVALS = 5_000_000


def poisson_arrivals(workflows: list[WorkflowSpec], duration_s: float, seed: int, rate_scale: float = 1.0) -> Arrivals:
    """A Poisson process per (workflow, source) at rate x rate_scale over [0, duration_s)."""
    expected = sum(sum(wf.sources.values()) for wf in workflows) * rate_scale * duration_s
    if not expected <= MAX_ARRIVALS:  # checked before any array is allocated (NaN fails too)
        raise InputError(
            f"the simulation would draw about {expected:,.0f} arrivals; at most {MAX_ARRIVALS:,}.",
            field="--rate-scale / --duration", hint="shorten --duration or lower --rate-scale.",
        )
    t, w, s = [], [], []
    for wf in workflows:
        for src, rate in sorted(wf.sources.items()):
            g = stream(seed, f"arrivals/{wf.name}/{src}")
            n = int(g.poisson(rate * rate_scale * duration_s))
            times = np.sort(g.random(n)) * duration_s * 1000.0
            t.append(times)
            w.append(np.full(n, wf.index))
            s.append([src] * n)
    return _sorted(t, w, s)


TIME_COLUMNS = ("timestamp", "time", "ts", "arrival_time")


def _parse_time(v: object) -> float:
    """Seconds: a number, or an ISO-8601 date-time (seconds since the epoch, naive = UTC)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        x = float(v)
    else:
        s = str(v).strip().lstrip("\ufeff")
        try:
            x = float(s)
        except ValueError:
            d = datetime.fromisoformat(s.replace("Z", "+00:00"))
            if d.tzinfo is None:

                d = d.replace(tzinfo=UTC)
            x = d.timestamp()
    if not math.isfinite(x):
        raise ValueError("not a finite number")
    return x


def _read_rows(path: Path) -> tuple[list[tuple[int, dict]], str]:
    """(line number, row) pairs of a CSV (header row) or JSON Lines file."""
    if not path.exists():
        raise InputError("trace file does not exist.", file=path, hint="check the path given to --trace.")
    rows: list[tuple[int, dict]] = []
    safe.check_size(path, safe.LOG_MAX_BYTES)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"trace file cannot be read as UTF-8 text: {e}.", file=path) from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = safe.json_loads(line)
            except json.JSONDecodeError as e:
                rows.append((i, {"__error__": f"not valid JSON ({e.msg})"}))
                continue
            rows.append((i, obj if isinstance(obj, dict) else {"__error__": "not a JSON object"}))
        return rows, "line"
    reader = csv.DictReader(text.splitlines())
    if safe.csv_header(reader, path) is None:
        raise InputError("trace file is empty.", file=path, hint="give a CSV with a header row (timestamp,workflow[,source]) or JSON Lines.")
    for i, row in enumerate(safe.csv_rows(reader, path), start=2):
        if None in row:
            rows.append((i, {"__error__": f"has {len(row) - 1 + len(row[None])} fields, the header has {len(reader.fieldnames)}"}))
            continue
        rows.append((i, {(k or "").strip().lower(): v for k, v in row.items()}))
    return rows, "line"


def trace_arrivals(
    path: str | Path,
    workflows: list[WorkflowSpec],
    seed: int,
    *,
    on_bad_row: Literal["skip", "stop"] = "stop",
    duration_s: float | None = None,
) -> Arrivals:
    """Replay query arrivals from a trace: CSV (header row) or JSON Lines, one query per row.

    Columns: `timestamp` (seconds, or an ISO-8601 date-time; also `time`/`ts`/`arrival_time`),
    `workflow` (may be left out when the inputs have one workflow), `source` (optional: drawn from
    the workflow's sources in proportion to their rates). Times are shifted so the first row is at
    0 and sorted; rows past `duration_s` are left out. A malformed row is reported with its line
    number: on_bad_row="stop" raises InputError listing them all, "skip" leaves them out and notes
    them in the report.
    """
    p = Path(path)
    rows, unit = _read_rows(p)
    by_name = {w.name: w for w in workflows}
    problems: list[Problem] = []
    good: list[tuple[float, int, str | None]] = []
    for line, row in rows:
        if "__error__" in row:
            problems.append(Problem(f"{unit} {line}: {row['__error__']}.", str(p)))
            continue
        row = {str(k).strip().lower(): v for k, v in row.items()}
        tcol = next((c for c in TIME_COLUMNS if c in row and row[c] not in (None, "")), None)
        if tcol is None:
            problems.append(Problem(f"{unit} {line}: no timestamp (columns {', '.join(TIME_COLUMNS)}).", str(p), "timestamp"))
            continue
        try:
            ts = _parse_time(row[tcol])
        except (ValueError, TypeError, OverflowError):
            problems.append(Problem(f"{unit} {line}: timestamp {row[tcol]!r} is neither seconds nor an ISO-8601 date-time.", str(p), tcol))
            continue
        wname = row.get("workflow")
        if wname in (None, ""):
            if len(workflows) != 1:
                problems.append(Problem(f"{unit} {line}: no workflow; the inputs have {len(workflows)}.", str(p), "workflow", hint="add a workflow column."))
                continue
            wname = workflows[0].name
        wf = by_name.get(str(wname).strip())
        if wf is None:
            problems.append(Problem(f"{unit} {line}: unknown workflow {wname!r}; known: {', '.join(sorted(by_name))}.", str(p), "workflow"))
            continue
        src = row.get("source")
        if src not in (None, ""):
            src = str(src).strip()
            if src not in wf.sources:
                problems.append(Problem(f"{unit} {line}: workflow {wf.name} has no arrivals from source {src!r}; its sources: {', '.join(sorted(wf.sources))}.", str(p), "source"))
                continue
        else:
            src = None
        good.append((ts, wf.index, src))
    if problems and on_bad_row == "stop":
        shown = problems[:20]
        if len(problems) > 20:
            shown.append(Problem(f"... and {len(problems) - 20} more bad rows.", str(p)))
        shown.append(Problem("the trace has malformed rows.", str(p), hint="fix them, or pass --on-bad-row skip to leave them out."))
        raise InputError(problems=shown)
    if not good:
        raise InputError("trace has no usable rows.", file=p, hint="give rows with timestamp and workflow.")
    t0 = min(g[0] for g in good)
    g_src = stream(seed, "trace/source")
    t_ms, w, s = [], [], []
    for ts, wi, src in sorted(good, key=lambda g: (g[0], g[1])):
        rel = (ts - t0) * 1000.0
        if duration_s is not None and rel >= duration_s * 1000.0:
            continue
        if src is None:
            srcs = sorted(workflows[wi].sources)
            rates = np.asarray([workflows[wi].sources[x] for x in srcs])
            src = srcs[int(np.searchsorted(np.cumsum(rates / rates.sum()), g_src.random(), side="right").clip(0, len(srcs) - 1))]
        t_ms.append(rel)
        w.append(wi)
        s.append(src)
    return Arrivals(np.asarray(t_ms, dtype=float), np.asarray(w, dtype=np.int64), s, skipped_rows=[pr.message for pr in problems])


def trace_span_s(arr: Arrivals) -> float:
    return float(arr.t_ms[-1] / 1000.0) if len(arr) else 0.0


__all__ = [
    "Arrivals",
    "LengthModel",
    "RoleSpec",
    "WorkflowSpec",
    "build_workflows",
    "poisson_arrivals",
    "stream",
    "trace_arrivals",
]
