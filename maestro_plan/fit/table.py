"""From raw log tables to one clean table of LLM calls (canonical columns, checked rows).

Canonical columns of `Calls.frame`:
    file, line (position label), seq (read order), workflow, trace, role, model, model_raw,
    input, output (tokens, float), ts, end (seconds since the epoch or since the log's origin),
    latency (s), source, order, cached (tokens)
Rows that cannot be used are dropped and reported (RowIssue with file and line); rows without any
token count (OpenTelemetry spans of tools or agent invocations) are skipped quietly but counted.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from maestro_plan.errors import InputError, Problem
from maestro_plan.fit.columns import BY_KEY, FIELDS, resolve
from maestro_plan.fit.reader import RawLog, RowIssue, read_log

MAX_TOKENS = 10_000_000  # more than any context window in use (Llama 4 Scout: 10M) -> a unit or parsing error
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass
class ReadOptions:
    columns: dict[str, str | None] = field(default_factory=dict)  # canonical key -> column named by a flag
    timestamp_unit: str = "auto"  # auto | s | ms | us | ns (numeric timestamps)
    default_model: str | None = None  # when the logs have no model column
    model_map: dict[str, str] = field(default_factory=dict)


@dataclass
class Calls:
    frame: pd.DataFrame
    present: set[str]  # canonical fields found in every file
    issues: list[RowIssue]
    records: int  # records read in all files
    skipped: Counter  # reason -> rows
    files: list[str]
    mappings: dict[str, dict[str, str]]  # file -> canonical -> column


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype(str).str.strip().isin(["", "nan", "None", "null", "NaN"])


def _unit_from_name(col: str) -> str | None:
    c = col.lower().replace("-", "_")
    if "unixnano" in c.replace("_", "") or c.endswith("_ns") or c.endswith("nanos"):
        return "ns"
    if c.endswith("_us"):
        return "us"
    if c.endswith("_ms") or c.endswith("millis"):
        return "ms"
    if c.endswith("_s") or c.endswith("_sec") or c.endswith("_seconds"):
        return "s"
    return None


def parse_times(raw: pd.Series, col: str, unit: str) -> tuple[pd.Series, pd.Series]:
    """Timestamps -> float seconds. Returns (values, bad mask). Numbers: epoch or relative, with
    the unit from --timestamp-unit, the column name (_ms, UnixNano) or the magnitude of epoch
    values (> 1e17 ns, > 1e14 us, > 1e11 ms). Text: ISO 8601 or any format pandas parses (UTC
    when no zone is given)."""
    blank = _blank(raw)
    num = pd.to_numeric(raw, errors="coerce")
    numeric_share = (num.notna() & ~blank).sum() / max(1, (~blank).sum())
    if numeric_share > 0.5:
        u = unit if unit != "auto" else _unit_from_name(col)
        if u is None:
            med = float(num.abs().median()) if num.notna().any() else 0.0
            u = "ns" if med > 1e17 else "us" if med > 1e14 else "ms" if med > 1e11 else "s"
        vals = num.astype(float) * TIME_UNITS[u]
        return vals, num.isna() & ~blank
    text = raw.where(~blank, None)
    t = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = t.isna() & ~blank
    if retry.any():
        t2 = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
        t = t.copy()
        t[retry] = t2
    secs = (t - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return secs, t.isna() & ~blank


def clean_name(value: str, fallback: str) -> str:
    """A log name as a maestro-plan identifier (lower-case DNS-1123 label, <= 63 characters)."""
    s = re.sub(r"[^a-z0-9.\-]+", "-", str(value).strip().lower())
    s = re.sub(r"-{2,}", "-", s).strip("-.")[:63].strip("-.")
    return s or fallback


def _missing_column_error(p: Path, key: str, columns: list[str]) -> Problem:
    f = BY_KEY[key]
    cols = [c for c in columns if c != "_line"]
    close = difflib.get_close_matches(key, [c.lower() for c in cols], n=1, cutoff=0.4)
    shown = ", ".join(cols[:20]) + (" ..." if len(cols) > 20 else "")
    hint = f"map the column with {f.flag} NAME" + (f" (maybe {f.flag} {close[0]})" if close else "") + f"; columns in this file: {shown}."
    return Problem(f"no column holds the {f.what} (looked for: {', '.join(f.aliases[:6])} ...).", str(p), f.flag, hint)


def _canonical(raw: RawLog, opts: ReadOptions, seq0: int) -> tuple[pd.DataFrame, dict[str, str], list[RowIssue], Counter]:
    p = raw.path
    df = raw.frame
    cols = [c for c in df.columns if c != "_line"]
    mapping, missing = resolve(cols, opts.columns)
    problems: list[Problem] = []
    for key, given in missing.items():
        flag = BY_KEY[key].flag
        close = difflib.get_close_matches(given, cols, n=1, cutoff=0.5)
        problems.append(
            Problem(
                f"{flag} names column '{given}', which this file does not have.",
                str(p),
                flag,
                (f"did you mean '{close[0]}'? " if close else "") + f"columns in this file: {', '.join(cols[:20])}{' ...' if len(cols) > 20 else ''}.",
            )
        )
    for f in FIELDS:
        if f.required and f.key not in mapping and f.key not in missing:
            problems.append(_missing_column_error(p, f.key, cols))
    if "model" not in mapping and "model" not in missing and not opts.default_model:
        pr = _missing_column_error(p, "model", cols)
        pr.hint = (pr.hint or "") + " Or give one catalogue model for all calls with --model ID."
        problems.append(pr)
    if problems:
        raise InputError(problems=problems)

    unit = raw.unit
    where = (unit + " ") + df["_line"].astype(int).astype(str)
    out = pd.DataFrame(index=df.index)
    out["file"] = str(p)
    out["line"] = where
    out["seq"] = np.arange(seq0, seq0 + len(df))
    issues: list[RowIssue] = []
    skipped: Counter = Counter()
    bad = pd.Series(False, index=df.index)

    def flag_rows(mask: pd.Series, field_name: str, msg_fn) -> None:
        nonlocal bad
        mask = mask & ~bad
        for i in np.flatnonzero(mask.to_numpy()):
            idx = df.index[i]
            issues.append(RowIssue(str(p), where[idx], msg_fn(idx), field_name))
        bad = bad | mask

    # tokens ------------------------------------------------------------------------------
    tok_blank = {}
    for key in ("input", "output"):
        col = mapping[key]
        rawcol = df[col]
        blank = _blank(rawcol)
        tok_blank[key] = blank
        num = pd.to_numeric(rawcol.where(~blank, None), errors="coerce")
        out[key] = num.astype(float)
    no_tokens = tok_blank["input"] & tok_blank["output"]
    for key in ("input", "output"):
        col = mapping[key]
        rawcol = df[col]
        num = out[key]
        blank = tok_blank[key] & ~no_tokens
        flag_rows(blank, col, lambda i, k=key: f"{k} token count is missing.")
        flag_rows(num.isna() & ~tok_blank[key], col, lambda i, c=rawcol: f"token count {str(c[i])[:40]!r} is not a number.")
        flag_rows(num < 0, col, lambda i, n=num: f"token count {n[i]:g} is negative.")
        flag_rows(num.notna() & ~np.isfinite(num.fillna(0)), col, lambda i, n=num: f"token count {n[i]} is not finite.")
        flag_rows((num % 1 != 0) & num.notna(), col, lambda i, n=num: f"token count {n[i]:g} is not a whole number.")
        flag_rows(num > MAX_TOKENS, col, lambda i, n=num: f"token count {n[i]:g} is beyond any model's context ({MAX_TOKENS:,}); check the column mapping.")

    # names -------------------------------------------------------------------------------
    for key in ("workflow", "trace", "role", "model", "source"):
        if key in mapping:
            s = df[mapping[key]]
            out[key] = s.where(~_blank(s), None).map(lambda v: None if v is None else str(v).strip())
        else:
            out[key] = None
    # OpenTelemetry: the agent name often sits on the parent `invoke_agent` span only
    if "span" in mapping and "parent" in mapping:
        span_ids = df[mapping["span"]].astype(str)
        parents = df[mapping["parent"]].astype(str)
        own = dict(zip(span_ids, out["role"]))
        parent_of = dict(zip(span_ids, parents))
        if "role" in mapping:

            def inherited(i: int) -> str | None:
                sid = parent_of.get(span_ids[i])
                for _ in range(32):
                    if sid is None or sid in ("", "nan", "None"):
                        return None
                    if own.get(sid):
                        return own[sid]
                    sid = parent_of.get(sid)
                return None

            need = out["role"].isna()
            for i in np.flatnonzero(need.to_numpy()):
                idx = df.index[i]
                out.at[idx, "role"] = inherited(idx)
    if "trace" in mapping:
        flag_rows(out["trace"].isna() & ~no_tokens, mapping["trace"], lambda i: "trace id is missing.")
    if "model" in mapping:
        flag_rows(out["model"].isna() & ~no_tokens, mapping["model"], lambda i: "model name is missing.")
    else:
        out["model"] = opts.default_model
    out["model_raw"] = out["model"]
    out["model"] = out["model"].map(lambda m: None if m is None else opts.model_map.get(m, m))

    # times -------------------------------------------------------------------------------
    out["ts"] = np.nan
    out["end"] = np.nan
    out["latency"] = np.nan
    if "timestamp" in mapping:
        vals, badt = parse_times(df[mapping["timestamp"]], mapping["timestamp"], opts.timestamp_unit)
        out["ts"] = vals
        flag_rows(badt & ~no_tokens, mapping["timestamp"], lambda i, c=df[mapping["timestamp"]]: f"timestamp {str(c[i])[:40]!r} is not a time.")
        flag_rows(vals.isna() & ~badt & ~no_tokens, mapping["timestamp"], lambda i: "timestamp is missing.")
    if "end" in mapping:
        vals, _ = parse_times(df[mapping["end"]], mapping["end"], opts.timestamp_unit)
        out["end"] = vals
    if "latency" in mapping:
        col = mapping["latency"]
        lat = pd.to_numeric(df[col].where(~_blank(df[col]), None), errors="coerce").astype(float)
        lat = lat * TIME_UNITS[_unit_from_name(col) or "s"]
        flag_rows(lat < 0, col, lambda i, v=lat: f"latency {v[i]:g} s is negative.")
        out["latency"] = lat
    fill = out["latency"].isna() & out["end"].notna() & out["ts"].notna()
    out.loc[fill, "latency"] = (out["end"] - out["ts"])[fill].clip(lower=0)
    fill_end = out["end"].isna() & out["latency"].notna() & out["ts"].notna()
    out.loc[fill_end, "end"] = (out["ts"] + out["latency"])[fill_end]

    out["order"] = pd.to_numeric(df[mapping["order"]], errors="coerce").astype(float) if "order" in mapping else np.nan
    out["cached"] = pd.to_numeric(df[mapping["cached"]], errors="coerce").astype(float) if "cached" in mapping else np.nan

    skipped["no token counts (not an LLM call)"] += int((no_tokens & ~bad).sum())
    keep = ~bad & ~no_tokens
    if (~keep).any():
        skipped["row errors"] += int(bad.sum())
    return out[keep].reset_index(drop=True), mapping, issues, skipped


def read_calls(paths: list[str | Path], opts: ReadOptions) -> Calls:
    """Read every log file into one clean call table. Configuration problems (a missing column,
    an unreadable file) raise InputError for all files at once; bad rows are dropped and listed."""
    if not paths:
        raise InputError("no log files given.", hint="pass one or more CSV, JSONL or Parquet files: maestro-plan fit calls.csv --out workloads/NAME.yaml")
    frames, issues, problems = [], [], []
    skipped: Counter = Counter()
    records = 0
    present: set[str] | None = None
    mappings: dict[str, dict[str, str]] = {}
    seq = 0
    for path in paths:
        try:
            raw = read_log(path)
            records += raw.records
            issues.extend(raw.issues)
            skipped["unreadable records"] += len(raw.issues)
            frame, mapping, row_issues, sk = _canonical(raw, opts, seq)
        except InputError as e:
            problems.extend(e.problems)
            continue
        seq += len(raw.frame)
        issues.extend(row_issues)
        skipped.update(sk)
        mappings[str(path)] = mapping
        frames.append(frame)
        keys = set(mapping)
        present = keys if present is None else present & keys
    if problems:
        raise InputError(problems=problems)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    skipped = Counter({k: v for k, v in skipped.items() if v})
    return Calls(frame, present or set(), issues, records, skipped, [str(p) for p in paths], mappings)


def check_models(calls: Calls, catalogue: dict[str, object], where: str = "--model-map") -> None:
    """Every model name (after --model-map) must be a catalogue id; otherwise one error listing the
    unknown names with their call counts and the flag that maps them."""
    if calls.frame.empty:
        return
    counts = calls.frame["model"].value_counts()
    unknown = [(m, int(n)) for m, n in counts.items() if m not in catalogue]
    if not unknown:
        return
    ids = sorted(catalogue)
    parts, examples = [], []
    for m, n in sorted(unknown, key=lambda x: (-x[1], x[0])):
        close = difflib.get_close_matches(str(m).lower(), ids, n=1, cutoff=0.3)
        parts.append(f"'{m}' ({n} calls)")
        examples.append(f"--model-map '{m}={close[0] if close else '<catalogue id>'}'")
    raise InputError(
        f"model name(s) in the logs are not in the model catalogue: {', '.join(parts)}.",
        field="model",
        hint=f"map each to a catalogue id, e.g. {' '.join(examples[:4])}. Catalogue ids: {', '.join(ids[:16])}{' ...' if len(ids) > 16 else ''}.",
    )


def summarize_issues(calls: Calls, limit: int = 20) -> list[str]:
    lines = [i.render() for i in calls.issues[:limit]]
    if len(calls.issues) > limit:
        lines.append(f"... and {len(calls.issues) - limit} more row problems.")
    return lines
