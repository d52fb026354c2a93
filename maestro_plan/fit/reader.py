"""Read call logs (CSV, JSONL, JSON, Parquet; OTLP JSON span exports) into flat tables.

Every row keeps where it came from (`_line`: the line of a CSV/JSONL file where the record starts,
or the row/item number of Parquet and JSON arrays) so that problems are reported as
"file:line 12: ...". Nested JSON is flattened with dots (`usage.prompt_tokens`); OTLP attribute
lists ([{key, value: {intValue: ...}}]) become `attributes.<key>` columns; an OTLP export line
(`{"resourceSpans": [...]}`, the OpenTelemetry Collector file exporter's format) yields one row per
span, with the resource attributes under `resource.`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from maestro_plan.errors import InputError
from maestro_plan.load import safe

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
JSON_SUFFIXES = {".json"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass
class RowIssue:
    """One unusable row: file, position ('line 12' / 'row 3' / 'item 4'), field, what is wrong."""

    file: str
    where: str
    message: str
    field: str | None = None

    def render(self) -> str:
        f = f" ({self.field})" if self.field else ""
        return f"{self.file}:{self.where}{f}: {self.message}"


@dataclass
class RawLog:
    path: Path
    frame: pd.DataFrame  # every column as read, plus `_line` (int)
    unit: str  # "line" | "row" | "item"
    issues: list[RowIssue] = field(default_factory=list)
    records: int = 0  # records read (including ones with a parse problem)


# --------------------------------------------------------------------------------------------
# Flattening
# --------------------------------------------------------------------------------------------


def _any_value(v: Any) -> Any:
    """An OTLP AnyValue ({"intValue": "12"}, {"stringValue": "x"}, ...) as a plain value."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    if "arrayValue" in v:
        return json.dumps([_any_value(x) for x in v["arrayValue"].get("values", [])])
    if "kvlistValue" in v:
        return json.dumps({x.get("key"): _any_value(x.get("value")) for x in v["kvlistValue"].get("values", [])})
    return None


def _is_attr_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) and "key" in x and "value" in x for x in v)


def flatten(obj: dict, prefix: str = "", out: dict | None = None) -> dict:
    out = {} if out is None else out
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            flatten(v, key, out)
        elif _is_attr_list(v):
            for a in v:
                out[f"{key}.{a['key']}"] = _any_value(a["value"])
        elif isinstance(v, list):
            out[key] = json.dumps(v, sort_keys=True, default=str)
        else:
            out[key] = v
    return out


def _otlp_spans(doc: dict) -> list[dict]:
    rows = []
    for rs in doc.get("resourceSpans") or []:
        res = flatten({"attributes": (rs.get("resource") or {}).get("attributes") or []})
        res = {"resource." + k.removeprefix("attributes."): v for k, v in res.items()}
        for ss in (rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []):
            for span in ss.get("spans") or []:
                if isinstance(span, dict):
                    rec = flatten(span)
                    rec.update(res)
                    rows.append(rec)
    return rows


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


def _sniff_format(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    with open(p, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "jsonl"
    if text.startswith(b"["):
        return "json"
    return "csv"


def _read_csv(p: Path) -> RawLog:
    issues: list[RowIssue] = []
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
            delim = "\t" if p.suffix.lower() == ".tsv" else max(counts, key=lambda d: counts[d])
            f.seek(0)
            reader = csv.reader(f, delimiter=delim)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError("file is empty.", file=p, hint="export the call log into it, or leave it out.") from None
            header = [h.strip() for h in header]
            if not any(header):
                raise InputError("first line (the header) is blank.", file=p, hint="put the column names on line 1.")
            dup = sorted({h for h in header if header.count(h) > 1 and h})
            if dup:
                raise InputError(f"header names column(s) {', '.join(dup)} twice.", file=p, field="line 1", hint="give each column a unique name.")
            rows: list[list[str]] = []
            lines: list[int] = []
            start = reader.line_num + 1
            records = 0
            for rec in safe.csv_rows(reader, p):
                if not any(c.strip() for c in rec):
                    start = reader.line_num + 1
                    continue
                records += 1
                if len(rec) != len(header):
                    issues.append(RowIssue(str(p), f"line {start}", f"has {len(rec)} fields, the header has {len(header)}."))
                else:
                    rows.append(rec)
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise InputError(f"is not UTF-8 text ({e.reason} at byte {e.start}).", file=p, hint="export the log as UTF-8 CSV, JSONL or Parquet.") from None
    except csv.Error as e:
        raise safe.csv_error(e, p) from None
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_line"] = lines
    return RawLog(p, frame, "line", issues, records)


def _records_frame(records: list[dict], lines: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame["_line"] = lines
    return frame


def _read_jsonl(p: Path) -> RawLog:
    issues: list[RowIssue] = []
    records: list[dict] = []
    lines: list[int] = []
    n = 0
    try:
        with open(p, encoding="utf-8-sig") as f:
            for i, line in enumerate(f, 1):
                s = line.strip()
                if not s:
                    continue
                n += 1
                try:
                    obj = safe.json_loads(s)
                except json.JSONDecodeError as e:
                    issues.append(RowIssue(str(p), f"line {i}", f"is not valid JSON ({e.msg} at column {e.colno})."))
                    continue
                if not isinstance(obj, dict):
                    issues.append(RowIssue(str(p), f"line {i}", f"is a JSON {type(obj).__name__}, not an object (one call per line)."))
                    continue
                if "resourceSpans" in obj:
                    spans = _otlp_spans(obj)
                    records.extend(spans)
                    lines.extend([i] * len(spans))
                    n += len(spans) - 1  # count spans, not export lines
                else:
                    records.append(flatten(obj))
                    lines.append(i)
    except UnicodeDecodeError as e:
        raise InputError(f"is not UTF-8 text ({e.reason} at byte {e.start}).", file=p, hint="export the log as UTF-8 JSONL.") from None
    if n == 0:
        raise InputError("file is empty.", file=p, hint="export the call log into it, or leave it out.")
    return RawLog(p, _records_frame(records, lines), "line", issues, n)


def _read_json(p: Path) -> RawLog:
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"is not UTF-8 text ({e.reason} at byte {e.start}).", file=p) from None
    if not text.strip():
        raise InputError("file is empty.", file=p, hint="export the call log into it, or leave it out.")
    try:
        doc = safe.json_loads(text)
    except json.JSONDecodeError as e:
        if text.count("\n") > 1 and text.lstrip().startswith("{"):
            return _read_jsonl(p)  # JSON Lines saved as .json
        raise InputError(f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).", file=p) from None
    if isinstance(doc, dict) and "resourceSpans" in doc:
        spans = _otlp_spans(doc)
        return RawLog(p, _records_frame(spans, list(range(1, len(spans) + 1))), "span", [], len(spans))
    if isinstance(doc, dict):
        lists = [k for k in ("data", "records", "calls", "logs", "items", "spans") if isinstance(doc.get(k), list)]
        if not lists:
            raise InputError("JSON document is an object without a list of calls.", file=p, hint="give a list of call records, one JSON object per line (JSONL), or an OTLP export with 'resourceSpans'.")
        doc = doc[lists[0]]
    if not isinstance(doc, list):
        raise InputError(f"JSON document is a {type(doc).__name__}, not a list of call records.", file=p)
    issues: list[RowIssue] = []
    records, lines = [], []
    for i, item in enumerate(doc, 1):
        if isinstance(item, dict):
            records.append(flatten(item))
            lines.append(i)
        else:
            issues.append(RowIssue(str(p), f"item {i}", f"is a JSON {type(item).__name__}, not an object."))
    if not doc:
        raise InputError("JSON list of calls is empty.", file=p, hint="export the call log into it, or leave it out.")
    return RawLog(p, _records_frame(records, lines), "item", issues, len(doc))


def _read_parquet(p: Path) -> RawLog:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(p).metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if size > safe.LOG_MAX_BYTES:  # checked on the footer, before decompressing anything
            raise InputError(f"Parquet file holds {size / 2**30:,.1f} GiB uncompressed; at most {safe.LOG_MAX_BYTES // 2**30} GiB.", file=p, hint="split the log into several files.")
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"is not a readable Parquet file ({e}).", file=p) from None
    while any(pa.types.is_struct(t.type) for t in table.schema):
        table = table.flatten()  # struct column `usage` -> `usage.prompt_tokens`, ...
    if table.num_rows == 0:
        raise InputError("Parquet file has no rows.", file=p, hint="export the call log into it, or leave it out.")
    frame = table.to_pandas()
    frame["_line"] = range(1, len(frame) + 1)
    return RawLog(p, frame, "row", [], len(frame))


def read_log(path: str | Path) -> RawLog:
    """Read one log file. File-level problems raise InputError; row-level ones are in `issues`."""
    p = Path(path)
    if not p.exists():
        raise InputError("log file does not exist.", file=p, hint="check the path (relative paths are from the current directory).")
    if p.is_dir():
        raise InputError("is a directory, a log file was expected.", file=p, hint="name the CSV, JSONL or Parquet files inside it (a shell glob works: dir/*.jsonl).")
    if p.stat().st_size == 0:
        raise InputError("file is empty.", file=p, hint="export the call log into it, or leave it out.")
    safe.check_size(p, safe.LOG_MAX_BYTES)
    fmt = _sniff_format(p)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet}[fmt]
    return reader(p)
