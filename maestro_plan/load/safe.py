"""The one reading layer for untrusted files: YAML, JSON, JSON Lines and CSV, with limits.

Every reader of the project (inventories, models, workloads, plans, scenario files, capacity
tables, call logs, traces, Hugging Face configs, kubectl and nvidia-smi exports) reads files through
this module, so that hostile or broken input gets one kind of answer: an InputError (exit 2)
naming the file, what is wrong and the limit, never a traceback or an unbounded amount of work.

Limits (each a round figure far above any real input of this project, which are KB-sized):
- MAX_FILE_BYTES: 50 MiB per file (the largest bundled input is a few KB; a day of call logs
  from a busy agent system at ~300 B per call is ~1.5M calls in 500 MB, so logs get LOG_MAX_BYTES).
- MAX_DEPTH: 64 levels of nesting (the deepest real document, an OTLP export, is ~10 levels).
- MAX_NUMBER_DIGITS: 40 digits in one number literal (the largest real figure, bytes of a
  checkpoint, has 13; Python refuses to convert ints over 4,300 digits at all).
- MAX_STRING_CHARS: 1 MiB in one string; MAX_YAML_VALUES: 1,000,000 values in one YAML document
  (bounds the work a YAML alias bomb causes when the document is walked; JSON has no aliases, so
  its size is bounded by the file size).
- CSV fields: csv's own field_size_limit (131,072 characters), reported as an InputError.
Duplicate keys are refused in YAML and JSON alike (a silent override is a classic config bug).
Non-finite numbers (NaN, Infinity, YAML .inf, 1e400) are refused: no input needs them and they
cannot be written back as JSON.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.errors import InputError

MAX_FILE_BYTES = 50 * 1024 * 1024
LOG_MAX_BYTES = 1024 * 1024 * 1024
MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 40
MAX_STRING_CHARS = 1024 * 1024
MAX_YAML_VALUES = 1_000_000
CSV_FIELD_LIMIT = csv.field_size_limit()

_SCALAR_KEYS = (str, int, float, bool, date, type(None))


class LimitError(json.JSONDecodeError):
    """A JSON document that parses but breaks a limit. A JSONDecodeError, so that per-line readers
    (JSON Lines) that report bad lines keep doing so for these lines too."""


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def read_text(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, encoding: str = "utf-8", hint: str | None = None) -> str:
    """The text of a file that exists, is a regular file, is not empty and is within max_bytes."""
    p = Path(path)
    if not p.exists():
        raise InputError("file does not exist.", file=p, hint=hint or "check the path (relative paths are from the current directory).")
    if p.is_dir():
        raise InputError("is a directory, a file was expected.", file=p, hint="name a file inside it.")
    check_size(p, max_bytes)
    try:
        text = p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise InputError(f"is not UTF-8 text ({e.reason} at byte {e.start}).", file=p, hint="save it as UTF-8.") from None
    except OSError as e:
        raise InputError(f"cannot be read: {e.strerror}.", file=p) from None
    if not text.strip():
        raise InputError("file is empty.", file=p, hint="write the document into it, or remove the file.")
    return text


def check_size(p: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
    try:
        size = p.stat().st_size
    except OSError as e:
        raise InputError(f"cannot be read: {e.strerror}.", file=p) from None
    if size > max_bytes:
        raise InputError(
            f"file is {size / 2**20:,.0f} MiB, over the {max_bytes // 2**20:,} MiB limit for this kind of input.",
            file=p,
            hint="split it into smaller files, or check that it is the right file.",
        )


def read_document(path: str | Path) -> Any:
    """Parse one YAML or JSON file (by suffix: .json is JSON, anything else YAML)."""
    p = Path(path)
    text = read_text(p)
    doc = parse_json(text, p) if p.suffix.lower() == ".json" else parse_yaml(text, p)
    if doc is None:
        raise InputError("holds no document (only comments or blank lines).", file=p, hint="write the document into it, or remove the file.")
    return doc


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _number_error(s: str, doc: str, what: str) -> LimitError:
    shown = s if len(s) <= 24 else f"{s[:12]}...{s[-6:]} ({len(s):,} characters)"
    return LimitError(f"number {shown} {what}", doc, max(doc.find(s[:64]), 0))


def json_loads(text: str) -> Any:
    """json.loads with limits; every problem is a json.JSONDecodeError (LimitError for limits)."""

    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > MAX_NUMBER_DIGITS:
            raise _number_error(s, text, f"has more than {MAX_NUMBER_DIGITS} digits")
        return int(s)

    def parse_float(s: str) -> float:
        if len(s) > MAX_NUMBER_DIGITS + 8:
            raise _number_error(s, text, f"has more than {MAX_NUMBER_DIGITS} digits")
        x = float(s)
        if not math.isfinite(x):
            raise _number_error(s, text, "is out of range (over 1.8e308)")
        return x

    def parse_constant(s: str) -> Any:
        raise _number_error(s, text, "is not a finite number (NaN and Infinity are not JSON)")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            dup = next(k for i, (k, _) in enumerate(pairs) if any(k == k2 for k2, _ in pairs[:i]))
            raise LimitError(f"duplicate key '{dup[:80]}' in one object (JSON keeps only the last)", text, max(text.find(f'"{dup}"'), 0))
        return out

    try:
        doc = json.loads(text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant, object_pairs_hook=unique_keys)
    except RecursionError:
        raise LimitError(f"nesting is deeper than {MAX_DEPTH} levels", text, 0) from None
    problem = tree_problem(doc, max_values=None)
    if problem:
        raise LimitError(problem, text, 0)
    return doc


def parse_json(text: str, file: str | Path, hint: str = "fix the JSON syntax there.") -> Any:
    try:
        return json_loads(text)
    except LimitError as e:
        where = f" at line {e.lineno}, column {e.colno}" if e.pos else ""
        raise InputError(f"{e.msg}{where}.", file=file, hint="check that it is the right file; real inputs stay far within these limits.") from None
    except json.JSONDecodeError as e:
        raise InputError(f"is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.", file=file, hint=hint) from None


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader: no duplicate keys, scalar keys only, bounded nesting and number literals."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting is deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a key is a list or mapping (only plain keys are allowed)", key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, _SCALAR_KEYS):
            raise yaml.constructor.ConstructorError(None, None, f"a key is a {type(key).__name__} (only plain keys are allowed)", key_node.start_mark)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


def _checked_scalar(kind: str, base: Any) -> Any:
    def construct(loader: _Loader, node: yaml.ScalarNode) -> Any:
        value = str(node.value)
        if kind in ("int", "float") and len(value) > MAX_NUMBER_DIGITS + 8:
            raise yaml.constructor.ConstructorError(None, None, f"a number has {len(value):,} characters, over the limit of {MAX_NUMBER_DIGITS} digits", node.start_mark)
        try:
            return base(loader, node)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            raise yaml.constructor.ConstructorError(None, None, f"'{value[:40]}' is not a valid {kind} (check the !!{kind} tag)", node.start_mark) from None

    return construct


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
for _kind, _base in (
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("timestamp", yaml.SafeLoader.construct_yaml_timestamp),
    ("null", yaml.SafeLoader.construct_yaml_null),
):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_kind}", _checked_scalar(_kind, _base))


def parse_yaml(text: str, file: str | Path) -> Any:
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"is not valid YAML: {problem}{where}.", file=file, hint="fix the YAML syntax there (indentation, colons, quotes).") from None
    except RecursionError:
        raise InputError(f"nesting is deeper than {MAX_DEPTH} levels.", file=file, hint="check that it is the right file.") from None
    problem = tree_problem(doc)
    if problem:
        raise InputError(f"{problem}.", file=file, hint="check that it is the right file; real inputs stay far within these limits.")
    return doc


# --------------------------------------------------------------------------------------------
# The parsed tree
# --------------------------------------------------------------------------------------------


def tree_problem(doc: Any, max_values: int | None = MAX_YAML_VALUES) -> str | None:
    """The first limit a parsed document breaks (depth, size, string length, non-finite numbers,
    numbers too large), or None. Iterative, and stops after max_values values (alias bombs)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if max_values is not None and nodes > max_values:
            return f"holds more than {max_values:,} values (YAML aliases count each time they are used)"
        if depth > MAX_DEPTH:
            return f"nesting is deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
        else:
            problem = _scalar_problem(value)
            if problem:
                return problem
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"holds a non-finite number ({value}); give a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**MAX_NUMBER_DIGITS:
        return f"holds a number with more than {MAX_NUMBER_DIGITS} digits"
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return f"holds a string of {len(value):,} characters, over the limit of {MAX_STRING_CHARS:,}"
    return None


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def csv_error(e: csv.Error, file: str | Path, line: int | None = None) -> InputError:
    """An InputError for a csv.Error (a field over csv's size limit, broken quoting)."""
    where = f"line {line}" if line else None
    text = str(e)
    if "field larger than field limit" in text:
        return InputError(
            f"has a field longer than {CSV_FIELD_LIMIT:,} characters (the CSV reader's limit).",
            file=file, field=where, hint="check the quoting (an unclosed quote swallows the rest of the file).",
        )
    return InputError(f"is not readable as CSV: {text}.", file=file, field=where, hint="check the quoting, or export as JSONL.")


def csv_rows(reader: Any, file: str | Path) -> Iterator[Any]:
    """Iterate a csv.reader/DictReader, turning csv.Error into an InputError with the line."""
    it = iter(reader)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except csv.Error as e:
            raise csv_error(e, file, getattr(reader, "line_num", None)) from None
        yield row


def csv_header(reader: csv.DictReader, file: str | Path) -> list[str] | None:
    """A DictReader's field names (None for an empty file), csv.Error turned into an InputError."""
    try:
        names = reader.fieldnames
    except csv.Error as e:
        raise csv_error(e, file, 1) from None
    return list(names) if names is not None else None
