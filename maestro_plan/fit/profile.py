"""Reconstruct workflow profiles from a clean call table.

Per workflow (the workflow column, else one workflow):
- queries = trace ids; calls per query per role = the role's calls / queries (loops unrolled, so
  a role called 11 times in an average run gets 11; runs without the role count as 0);
- role DAG: inside each trace, a call's predecessor is the call that ended last before it started
  (when start and end times are known, so parallel calls get no edge between them), else the
  previous call in order (timestamp, then the order column, then file order). A pair of roles
  (a -> b) becomes an edge when it occurs in at least `min_edge_share` of the traces that hold
  both roles and a's first call comes earlier on average than b's (later pairs are loop-backs,
  already counted in calls_per_query); the result is transitively reduced;
- arrival rate = queries / span of query start times (per source by share of queries), burstiness
  = peak over mean of query starts per `window_s` window;
- per role: input and output token mean, percentiles (numpy linear interpolation), max and a
  histogram; the role-aware predictor's mean predicted high percentile of output tokens.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from maestro_plan.errors import InputError
from maestro_plan.fit.predictor import BucketQuantile, Evaluation, evaluate
from maestro_plan.fit.table import Calls, clean_name

PERCENTILES = (50, 90, 95, 99)
HIST_BINS = 16


@dataclass
class FitOptions:
    name: str | None = None  # workflow name when the logs have no workflow column
    priority: str = "interactive"
    slo_ms: float | None = None
    slo_percentile: float = 95.0
    percentile: float = 99.0  # output percentile that the KV reservation uses
    rate_per_s: float | None = None  # total queries/s, overrides the measured rate
    rate_scale: float = 1.0  # multiplies the rate (logs from a fraction of the traffic)
    default_source: str = "users-us-east"
    window_s: float = 60.0
    min_edge_share: float = 0.05


@dataclass
class RoleFit:
    name: str
    log_name: str
    model: str
    calls: int
    calls_per_query: float
    depends_on: list[str]
    input: dict
    output: dict
    mean_input: float
    reserve_aware: float
    reserve_base: float
    shared_prefix: bool
    models_seen: dict[str, int]
    context_len: int | None = None


@dataclass
class WorkflowFit:
    name: str
    queries: int
    calls: int
    span_s: float | None
    rate_per_s: float
    peak_to_mean: float
    arrivals: list[dict]
    slo_ms: float
    slo_from: str
    roles: list[RoleFit]
    edges: list[tuple[str, str]]
    evaluation: Evaluation | None
    notes: list[str] = field(default_factory=list)
    doc: dict = field(default_factory=dict)

    def kv_tokens_per_query(self) -> dict[str, float | None]:
        """Reserved KV tokens per query (sum over roles of calls x per-call reservation)."""
        aware = sum(r.calls_per_query * (r.mean_input + r.reserve_aware) for r in self.roles)
        base = sum(r.calls_per_query * (r.mean_input + r.reserve_base) for r in self.roles)
        ctx = None
        if all(r.context_len for r in self.roles):
            ctx = sum(r.calls_per_query * float(r.context_len or 0) for r in self.roles)
        return {"role_aware": aware, "role_agnostic": base, "max_context": ctx}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _num(x: float, nd: int = 1) -> float | int:
    v = round(float(x), nd)
    return int(v) if v == int(v) else v


def _pkey(p: float) -> float | int:
    return int(p) if float(p).is_integer() else float(p)


def histogram(x: np.ndarray) -> dict:
    """Geometric bins from 0 to the max (bin i holds values in (edges[i], edges[i+1]]; zeros go
    to the first bin)."""
    hi = float(np.max(x))
    if hi <= 0:
        return {"edges": [0, 1], "counts": [int(len(x))]}
    pos = x[x > 0]
    lo = max(1.0, float(np.min(pos)) - 1.0) if len(pos) else 1.0
    top = max(lo + 1.0, hi)
    inner = np.unique(np.round(np.geomspace(lo, top, HIST_BINS)).astype(int))
    edges = np.unique(np.concatenate([[0], inner]))
    if edges[-1] < hi:
        edges = np.append(edges, math.ceil(hi))
    idx = np.clip(np.searchsorted(edges, x, side="left") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    return {"edges": [int(e) for e in edges], "counts": [int(c) for c in counts]}


def token_dist(x: np.ndarray, extra: float) -> dict:
    x = np.asarray(x, dtype=float)
    pcts = sorted(set(PERCENTILES) | {extra})
    d: dict = {}
    mean = float(np.mean(x))
    if mean > 0:
        d["mean"] = _num(mean)
    d["percentiles"] = {_pkey(p): _num(np.percentile(x, p)) for p in pcts}
    if float(np.max(x)) > 0:
        d["max"] = _num(np.max(x), 0)
    d["histogram"] = histogram(x)
    return d


def _transitive_reduction(nodes: list[str], edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        succ[a].add(b)

    def reachable(a: str, b: str, skip: tuple[str, str]) -> bool:
        stack, seen = [a], {a}
        while stack:
            n = stack.pop()
            for m in succ[n]:
                if (n, m) == skip or m in seen:
                    continue
                if m == b:
                    return True
                seen.add(m)
                stack.append(m)
        return False

    return {e for e in sorted(edges) if not reachable(e[0], e[1], e)}


def role_dag(df: pd.DataFrame, min_share: float) -> tuple[dict[str, list[str]], dict[str, float], str]:
    """Return (role -> depends_on, role -> mean first position, how predecessors were found).

    `df` holds one workflow, sorted by trace then call order, with columns trace, role, ts, end.
    """
    timed = bool(df["ts"].notna().all() and df["end"].notna().all())
    pair_traces: Counter = Counter()
    both_traces: Counter = Counter()
    first_pos: dict[str, list[float]] = defaultdict(list)
    for _, g in df.groupby("trace", sort=False):
        roles = g["role"].to_numpy()
        n = len(roles)
        pairs = set()
        if timed:
            start = g["ts"].to_numpy(dtype=float)
            end = g["end"].to_numpy(dtype=float)
            for j in range(1, n):
                done = np.flatnonzero(end[:j] <= start[j] + 1e-9)
                if len(done):
                    i = done[np.argmax(end[done])]
                    if roles[i] != roles[j]:
                        pairs.add((roles[i], roles[j]))
        else:
            for a, b in zip(roles[:-1], roles[1:]):
                if a != b:
                    pairs.add((a, b))
        present = sorted(set(roles))
        seen = set()
        for k, r in enumerate(roles):
            if r not in seen:
                seen.add(r)
                first_pos[r].append(k / max(1, n - 1))
        for a in present:
            for b in present:
                if a != b:
                    both_traces[(a, b)] += 1
        pair_traces.update(pairs)
    rank = {r: float(np.mean(v)) for r, v in first_pos.items()}
    order = {r: i for i, r in enumerate(sorted(rank, key=lambda r: (rank[r], r)))}
    edges = {
        (a, b)
        for (a, b), n in pair_traces.items()
        if order[a] < order[b] and n >= min_share * both_traces[(a, b)]
    }
    edges = _transitive_reduction(sorted(rank), edges)
    deps: dict[str, list[str]] = {r: sorted(a for a, b in edges if b == r) for r in rank}
    how = "call start/end times (parallel calls get no edge)" if timed else "call order inside each trace"
    return deps, rank, how


def _peak_to_mean(starts: np.ndarray, t0: float, span: float, window: float) -> float | None:
    nwin = int(math.ceil(span / window)) if span > 0 else 0
    if nwin < 4 or len(starts) < 2:
        return None
    idx = np.clip(((starts - t0) // window).astype(int), 0, nwin - 1)
    counts = np.bincount(idx, minlength=nwin)
    mean = counts.mean()
    return float(min(1000.0, max(1.0, counts.max() / mean))) if mean > 0 else None


# --------------------------------------------------------------------------------------------
# one workflow
# --------------------------------------------------------------------------------------------


def fit_workflow(name: str, df: pd.DataFrame, opts: FitOptions, calls: Calls, catalogue: dict | None) -> WorkflowFit:
    notes: list[str] = []
    df = df.copy()
    has_trace = df["trace"].notna().any()
    role_names = df["role"].dropna().unique()
    if not has_trace:
        if len(set(role_names)) > 1:
            raise InputError(
                f"workflow '{name}': the logs name {len(set(role_names))} roles but have no trace (session) id, so calls per query and the role DAG cannot be reconstructed.",
                field="--trace-col",
                hint="map the column that identifies one query (trace id, session id, run id) with --trace-col NAME.",
            )
        df["trace"] = df["seq"].astype(str)
        notes.append("no trace id: each call is taken as one query")
    # role: the agent name; logs without a role column: the model; a blank role: "unlabelled"
    fallback = pd.Series("unlabelled", index=df.index) if "role" in calls.present else df["model"]
    df["role_log"] = df["role"].where(df["role"].notna(), fallback)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for r in sorted(df["role_log"].astype(str).unique()):
        base = clean_name(r, "role")
        cand, k = base, 2
        while cand in used:
            cand = f"{base[:60]}-{k}"
            k += 1
        used.add(cand)
        mapping[r] = cand
    df["role"] = df["role_log"].astype(str).map(mapping)
    df = df.sort_values(["trace", "ts", "order", "seq"], na_position="last", kind="mergesort").reset_index(drop=True)

    traces = df["trace"].astype(str)
    n_q = int(traces.nunique())
    n_calls = len(df)
    q = opts.percentile / 100.0

    # arrivals -----------------------------------------------------------------------------
    first = df.groupby("trace", sort=False).first()
    starts = df.groupby("trace", sort=False)["ts"].min()
    src = first["source"].map(lambda s: clean_name(s, opts.default_source) if s is not None else opts.default_source)
    src = src.where(first["source"].notna(), opts.default_source)
    span: float | None = None
    if starts.notna().all() and n_q >= 2:
        span = float(starts.max() - starts.min())
    if opts.rate_per_s is not None:
        total = float(opts.rate_per_s)
        rate_from = f"--rate-per-s {opts.rate_per_s:g}"
    elif span and span > 0:
        total = n_q / span
        rate_from = f"{n_q} queries over {span:.1f} s of query start times"
    else:
        why = "the logs have no timestamp column" if df["ts"].isna().all() else "all queries start at the same time" if n_q >= 2 else "the logs hold a single query"
        raise InputError(
            f"workflow '{name}': cannot measure the arrival rate: {why}.",
            field="--timestamp-col",
            hint="map the call start time with --timestamp-col NAME (and --timestamp-unit for relative numbers), or state the rate with --rate-per-s X.",
        )
    total *= opts.rate_scale
    if opts.rate_scale != 1.0:
        rate_from += f", scaled x{opts.rate_scale:g}"
    arrivals = []
    t0 = float(starts.min()) if span else 0.0
    overall_ptm = _peak_to_mean(starts.to_numpy(dtype=float), t0, span or 0.0, opts.window_s) if span else None
    if span and overall_ptm is None:
        notes.append(f"span {span:.0f} s is under 4 windows of {opts.window_s:g} s: peak_to_mean set to 1")
    for s_name, share in sorted((src.value_counts() / n_q).items()):
        ptm = None
        if span:
            ptm = _peak_to_mean(starts[src == s_name].to_numpy(dtype=float), t0, span, opts.window_s)
        arrivals.append({"source": s_name, "rate_per_s": float(f"{total * share:.6g}"), "peak_to_mean": _num(ptm if ptm else 1.0, 3)})

    # SLO ----------------------------------------------------------------------------------
    if opts.slo_ms is not None:
        slo_ms, slo_from = float(opts.slo_ms), "--slo-ms"
    else:
        g = df.groupby("trace", sort=False)
        if df["ts"].notna().all() and df["end"].notna().all():
            e2e = (g["end"].max() - g["ts"].min()).to_numpy(dtype=float)
            how = "first call start to last call end"
        elif df["latency"].notna().any():
            e2e = g["latency"].sum(min_count=1).dropna().to_numpy(dtype=float)
            how = "sum of call latencies (calls taken as sequential)"
        else:
            raise InputError(
                f"workflow '{name}': no --slo-ms given and the logs carry no latency or end time to observe one.",
                field="--slo-ms",
                hint="give the end-to-end latency objective with --slo-ms N (and --slo-percentile P), or map a latency column with --latency-col.",
            )
        if len(e2e) == 0:
            raise InputError(f"workflow '{name}': no query has a latency to derive the SLO from.", field="--slo-ms", hint="give --slo-ms N.")
        slo_ms = max(1.0, float(np.percentile(e2e, opts.slo_percentile)) * 1000.0)
        slo_from = f"observed p{opts.slo_percentile:g} end-to-end latency ({how})"

    # DAG ----------------------------------------------------------------------------------
    deps, rank, dag_how = role_dag(df, opts.min_edge_share)

    # predictor ----------------------------------------------------------------------------
    roles_arr = df["role"].to_numpy(dtype=object)
    inp = df["input"].to_numpy(dtype=float)
    out = df["output"].to_numpy(dtype=float)
    evaluation = evaluate(roles_arr, inp, out, traces.to_numpy(), q)
    if evaluation is None:
        notes.append("too few calls to score the predictor on held-out calls (needs 10 on each side)")
    aware = BucketQuantile(q, by_role=True).fit(roles_arr, inp, out).predict(roles_arr, inp)
    base = BucketQuantile(q, by_role=False).fit(roles_arr, inp, out).predict(roles_arr, inp)

    # roles --------------------------------------------------------------------------------
    roles: list[RoleFit] = []
    for role in sorted(rank, key=lambda r: (rank[r], r)):
        m = (df["role"] == role).to_numpy()
        sub = df[m]
        models = Counter(sub["model"].astype(str))
        model = sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        if len(models) > 1:
            notes.append(f"role '{role}' calls {len(models)} models ({', '.join(f'{k}: {v}' for k, v in sorted(models.items()))}); using the most frequent, {model}")
        cached = sub["cached"].to_numpy(dtype=float)
        shared = bool(np.isfinite(cached).any() and np.nansum(cached) >= 0.5 * float(sub["input"].sum()) > 0)
        ctx = None
        if catalogue and model in catalogue:
            ctx = int(getattr(catalogue[model], "context_len", 0) or 0) or None
        roles.append(
            RoleFit(
                name=role,
                log_name=str(sub["role_log"].iloc[0]),
                model=model,
                calls=int(m.sum()),
                calls_per_query=int(m.sum()) / n_q,
                depends_on=deps.get(role, []),
                input=token_dist(inp[m], opts.percentile),
                output=token_dist(out[m], opts.percentile),
                mean_input=float(inp[m].mean()),
                reserve_aware=float(aware[m].mean()),
                reserve_base=float(base[m].mean()),
                shared_prefix=shared,
                models_seen=dict(models),
                context_len=ctx,
            )
        )
    edges = sorted((d, r.name) for r in roles for d in r.depends_on)
    fit = WorkflowFit(
        name=name,
        queries=n_q,
        calls=n_calls,
        span_s=span,
        rate_per_s=total,
        peak_to_mean=overall_ptm or 1.0,
        arrivals=arrivals,
        slo_ms=slo_ms,
        slo_from=slo_from,
        roles=roles,
        edges=edges,
        evaluation=evaluation,
        notes=notes,
    )
    fit.doc = _document(fit, opts, calls, rate_from, dag_how)
    return fit


def _document(fit: WorkflowFit, opts: FitOptions, calls: Calls, rate_from: str, dag_how: str) -> dict:
    ev = fit.evaluation
    pred = (
        f"held-out pinball loss at p{opts.percentile:g} {ev.aware_loss:.1f} role-aware vs {ev.base_loss:.1f} role-agnostic "
        f"({ev.n_test} held-out calls, coverage {ev.aware_coverage:.3f} vs {ev.base_coverage:.3f})"
        if ev
        else "not scored (too few calls)"
    )
    files = ", ".join(calls.files)
    note = (
        f"Fitted by `maestro-plan fit` from {files}: {fit.calls} calls in {fit.queries} queries"
        + (f" over {fit.span_s:.0f} s" if fit.span_s else "")
        + f". calls_per_query = calls of the role / queries. depends_on from {dag_how} (pairs in >= {opts.min_edge_share:.0%} of traces, loops folded into calls_per_query)."
        + f" Rate: {rate_from}; peak_to_mean: max over mean query starts per {opts.window_s:g} s window."
        + f" SLO: {fit.slo_from}. Token figures: mean, numpy linear-interpolation percentiles, max and a geometric histogram of the logged counts."
        + f" reserve_output_tokens: mean over the role's calls of the role-aware p{opts.percentile:g} output predictor (input-length buckets per role); {pred}."
    )
    roles = []
    for r in fit.roles:
        d: dict = {"name": r.name, "model": r.model, "calls_per_query": _num(r.calls_per_query, 4)}
        if r.depends_on:
            d["depends_on"] = list(r.depends_on)
        d["input_tokens"] = r.input
        d["output_tokens"] = r.output
        if r.reserve_aware > 0:
            d["reserve_output_tokens"] = _num(r.reserve_aware)
        if r.shared_prefix:
            d["shared_prefix"] = True
        d["description"] = f"{r.calls} calls logged as role {r.log_name}" + (f" (models: {', '.join(f'{k} x{v}' for k, v in sorted(r.models_seen.items()))})" if len(r.models_seen) > 1 else "")
        roles.append(d)
    return {
        "name": fit.name,
        "description": f"Fitted from call logs: {len(fit.roles)} roles, {fit.calls} calls, {fit.queries} queries.",
        "priority": opts.priority,
        "slo": {"percentile": _pkey(opts.slo_percentile), "latency_ms": _num(fit.slo_ms, 0)},
        "arrivals": fit.arrivals,
        "roles": roles,
        "sources_note": note,
    }


def fit_workflows(calls: Calls, opts: FitOptions, catalogue: dict | None = None) -> list[WorkflowFit]:
    """Fit every workflow in the call table. Needs at least 2 usable calls."""
    df = calls.frame
    if len(df) == 0:
        raise InputError("no usable calls remain in the logs (see the row problems above).", hint="fix the rows listed, or map the right columns with --input-col/--output-col/...")
    if len(df) < 2:
        raise InputError("only 1 usable call in the logs; a profile needs at least 2 calls.", hint="fit a longer log (hundreds of calls give stable percentiles).")
    default = clean_name(opts.name or "fitted", "fitted")
    wf = df["workflow"].map(lambda w: clean_name(w, default) if w is not None else default)
    out = []
    for name in sorted(wf.unique()):
        sub = df[wf == name]
        if len(sub) < 2:
            raise InputError(f"workflow '{name}' has a single usable call; a profile needs at least 2.", field="--workflow-col", hint="fit more logs of it, or leave --workflow-col out to fit all calls as one workflow.")
        out.append(fit_workflow(name, sub, opts, calls, catalogue))
    return out
