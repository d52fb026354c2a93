"""Fuzz campaign: hostile variants of every input kind and numeric flag, each command run with a
timeout and a memory cap, every result checked.

Seeded and reproducible: case i of seed s is generated from random.Random(f"{s}:{i}") alone, so
`--only i` replays one case. Each case writes its inputs into a fresh folder, then runs one
command in a child forked from this process (the CLI imported once; the child gets RLIMIT_AS and
a wall-clock timeout, and its peak RSS comes from wait4). Asserted for every case:

- exit code in {0, 1, 2, 3}, and no "internal error" / "Traceback" in the output;
- no hang (the child is killed at --timeout seconds) and peak RSS under --max-rss-mib;
- every .json written parses as strict JSON (no NaN/Infinity), every .yaml as YAML, Kubernetes
  objects' metadata.name are DNS-1123 names and label values are valid label values;
- nothing is written outside the case's --out paths (the case folder is listed before and after).

Input kinds: inventory, model (YAML and JSON), workload, call logs (CSV, JSONL, Parquet), scenario
files, capacity tables (CSV, YAML), plans, kubectl JSON, nvidia-smi CSV, HF config.json; plus the
numeric flags of solve, simulate, sweep, whatif, estimate, demand and synth.

    python -m benchmarks.fuzz [--cases 1000] [--seed 0] [--timeout 60] [--only N]   (MAESTRO_BENCH_QUICK=1: 96 cases)

Writes benchmarks/results/fuzz.json and fuzz.md (counts by kind and outcome, and every failure
with the command that replays it). tests/test_fuzz.py runs a fast slice (the same generator).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks._fuzz_inputs import (  # noqa: F401 - re-exported for tests/test_fuzz.py
    INVENTORY,
    KINDS,
    LABEL_VALUE_RE,
    NAME_RE,
    OK_CODES,
    Case,
    _write_inputs,
    dump_yaml,
    make_case,
    mutate_doc,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass
class Result:
    index: int
    kind: str
    mutation: str
    args: list[str]
    code: int | None
    outcome: str  # ok | internal | bad-code | hang | memory | unsafe-output | wrote-outside
    detail: str = ""
    wall_s: float = 0.0
    max_rss_mib: float = 0.0


# --------------------------------------------------------------------------------------------
# Running and checking
# --------------------------------------------------------------------------------------------


def run_case(case: Case, folder: Path, timeout_s: float, max_as_gib: float) -> tuple[int | None, str, float, float]:
    """(exit code or None on a hang, output, wall seconds, peak RSS MiB) of one command, run in a
    child forked from this process with an address-space cap."""
    from typer.testing import CliRunner

    from maestro_plan.cli.main import app

    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        code, out = 1, ""
        try:
            os.setsid()
            cap = int(max_as_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            os.chdir(folder)
            res = CliRunner().invoke(app, case.args)
            code, out = res.exit_code, res.output
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                out += f"\nTraceback: uncaught {type(res.exception).__name__}: {res.exception}"
        except BaseException as e:  # noqa: BLE001 - reported, never raised
            out += f"\nTraceback: harness {type(e).__name__}: {e}"
        finally:
            with os.fdopen(w, "w") as f:
                f.write(json.dumps({"code": code, "out": out[-4000:]}))
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    hung = False
    while True:
        left = timeout_s - (time.monotonic() - t0)
        if left <= 0:
            hung = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            data = os.read(r, 1 << 16)
            if not data:
                break
            chunks.append(data)
    if hung:
        os.killpg(pid, signal.SIGKILL)
    os.close(r)
    _, _, usage = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    rss = usage.ru_maxrss / 1024.0
    if hung:
        return None, "", wall, rss
    try:
        doc = json.loads(b"".join(chunks) or b"{}")
    except json.JSONDecodeError:
        doc = {"code": None, "out": "child died without a result (killed for memory?)"}
    return doc.get("code"), doc.get("out", ""), wall, rss


def check_outputs(case: Case, folder: Path, before: set[str]) -> tuple[str, str]:
    """('ok'|'unsafe-output'|'wrote-outside', detail) for what the case wrote."""
    outs = [Path(o) for o in case.outs]
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or str(p) in before:
            continue
        if not any(p == o or o in p.parents for o in outs):
            return "wrote-outside", str(p.relative_to(folder))
        problem = _file_problem(p)
        if problem:
            return "unsafe-output", f"{p.relative_to(folder)}: {problem}"
    return "ok", ""


def _strict_json(text: str) -> Any:
    def bad(s: str) -> Any:
        raise ValueError(f"non-JSON number {s}")

    return json.loads(text, parse_constant=bad)


def _file_problem(p: Path) -> str | None:
    try:
        if p.suffix == ".json":
            _strict_json(p.read_text(encoding="utf-8"))
        elif p.suffix in (".yaml", ".yml"):
            for doc in yaml.safe_load_all(p.read_text(encoding="utf-8")):
                problem = _k8s_problem(doc)
                if problem:
                    return problem
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        return f"{type(e).__name__}: {str(e)[:200]}"
    return None


def _k8s_problem(doc: Any) -> str | None:
    if not (isinstance(doc, dict) and "apiVersion" in doc and isinstance(doc.get("metadata"), dict)):
        return None
    meta = doc["metadata"]
    name = str(meta.get("name", ""))
    if not NAME_RE.match(name) or len(name) > 253:
        return f"metadata.name {name!r} is not a DNS-1123 name"
    for k, v in (meta.get("labels") or {}).items():
        if not LABEL_VALUE_RE.match(str(v)) or len(str(v)) > 63:
            return f"label {k}={v!r} is not a valid label value"
    for sel in _selectors(doc):
        for k, v in sel.items():
            if not LABEL_VALUE_RE.match(str(v)) or len(str(v)) > 63:
                return f"selector {k}={v!r} is not a valid label value"
    return None


def _selectors(doc: Any) -> list[dict]:
    out: list[dict] = []
    stack = [doc]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("nodeSelector", "matchLabels") and isinstance(v, dict):
                    out.append(v)
                else:
                    stack.append(v)
        elif isinstance(o, list):
            stack.extend(o)
    return out


def classify(case: Case, code: int | None, out: str, rss_mib: float, max_rss_mib: float) -> tuple[str, str]:
    if code is None:
        return "hang", ""
    if rss_mib > max_rss_mib:
        return "memory", f"{rss_mib:.0f} MiB"
    if "internal error" in out or "Traceback" in out:
        lines = [ln for ln in out.splitlines() if "internal error" in ln or "Traceback" in ln]
        return "internal", (lines[0] if lines else out.strip())[:300]
    if code not in OK_CODES:
        return "bad-code", f"exit {code}: {out.strip()[-200:]}"
    return "ok", ""


def base_plan(folder: Path) -> Path:
    """The plan every plan case mutates: the baseline solved by the greedy heuristic."""
    from typer.testing import CliRunner

    from maestro_plan.cli.main import app

    inputs = _write_inputs(folder / "inputs")
    res = CliRunner().invoke(app, ["solve", *inputs, "--solver", "greedy", "--out", str(folder / "base")])
    if res.exit_code != 0:
        raise RuntimeError(f"the baseline does not solve: {res.output}")
    return folder / "base" / "plan.json"


def run_campaign(n: int, seed: int, *, timeout_s: float = 60.0, max_rss_mib: float = 3072.0, only: list[int] | None = None, work: Path | None = None) -> list[Result]:
    own = work is None
    work = work or Path(tempfile.mkdtemp(prefix="maestro-fuzz-"))
    try:
        plan = base_plan(work)
        results = []
        for i in only if only is not None else range(n):
            folder = work / f"case-{i:05d}"
            case = make_case(i, seed, plan, folder)
            before = {str(p) for p in folder.rglob("*")}
            code, out, wall, rss = run_case(case, folder, timeout_s, max_as_gib=max(8.0, 2 * max_rss_mib / 1024))
            outcome, detail = classify(case, code, out, rss, max_rss_mib)
            if outcome == "ok":
                outcome, detail = check_outputs(case, folder, before)
            results.append(Result(i, case.kind, case.mutation, [_short(a, work) for a in case.args], code, outcome, detail, round(wall, 2), round(rss, 1)))
            shutil.rmtree(folder, ignore_errors=True)
        return results
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _short(arg: str, work: Path) -> str:
    return arg.replace(str(work), "$W")[:200]


def summarize(results: list[Result], seed: int) -> dict[str, Any]:
    outcomes = ["ok", "internal", "bad-code", "hang", "memory", "unsafe-output", "wrote-outside"]
    by_kind: dict[str, dict[str, int]] = {}
    codes: dict[str, int] = {}
    for r in results:
        row = by_kind.setdefault(r.kind, dict.fromkeys(outcomes, 0))
        row[r.outcome] += 1
        codes[str(r.code)] = codes.get(str(r.code), 0) + 1
    totals = {o: sum(row[o] for row in by_kind.values()) for o in outcomes}
    return {
        "seed": seed,
        "cases": len(results),
        "totals": totals,
        "exit_codes": dict(sorted(codes.items())),
        "by_kind": dict(sorted(by_kind.items())),
        "max_wall_s": max((r.wall_s for r in results), default=0.0),
        "max_rss_mib": max((r.max_rss_mib for r in results), default=0.0),
        "failures": [asdict(r) for r in results if r.outcome != "ok"],
    }


def markdown(doc: dict[str, Any]) -> str:
    t = doc["totals"]
    lines = [
        "# Fuzz campaign (benchmarks/fuzz.py)",
        "",
        f"{doc['cases']:,} hostile inputs (seed {doc['seed']}): {t['internal']} internal errors, {t['hang']} hangs, "
        f"{t['memory']} over the memory bound, {t['unsafe-output']} unsafe outputs, {t['wrote-outside']} writes outside --out, "
        f"{t['bad-code']} other exit codes. Slowest case {doc['max_wall_s']:.1f} s, largest peak RSS {doc['max_rss_mib']:.0f} MiB.",
        "",
        f"Exit codes: {', '.join(f'{k}: {v}' for k, v in doc['exit_codes'].items())}",
        "",
        "| input kind | ok | internal | hang | memory | unsafe output | wrote outside | other code |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, row in doc["by_kind"].items():
        lines.append(f"| {kind} | {row['ok']} | {row['internal']} | {row['hang']} | {row['memory']} | {row['unsafe-output']} | {row['wrote-outside']} | {row['bad-code']} |")
    if doc["failures"]:
        lines += ["", "## Failures (replay: python -m benchmarks.fuzz --seed S --only N)", ""]
        for f in doc["failures"][:100]:
            lines.append(f"- case {f['index']} [{f['kind']}] {f['outcome']}: {f['mutation']} -> {f['detail'][:200]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--max-rss-mib", type=float, default=3072.0)
    ap.add_argument("--only", type=str, default="", help="comma-separated case indexes to replay (prints their output)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    os.environ.setdefault("COLUMNS", "200")
    if os.environ.get("MAESTRO_BENCH_QUICK"):  # run_all --quick: a small campaign
        args.cases = min(args.cases, 8 * len(KINDS))
    if args.only:
        res = run_campaign(0, args.seed, timeout_s=args.timeout, max_rss_mib=args.max_rss_mib, only=[int(x) for x in args.only.split(",")])
        for r in res:
            print(json.dumps(asdict(r), indent=2))
        return 0
    t0 = time.monotonic()
    results = run_campaign(args.cases, args.seed, timeout_s=args.timeout, max_rss_mib=args.max_rss_mib)
    doc = summarize(results, args.seed)
    doc["total_wall_s"] = round(time.monotonic() - t0, 1)
    doc["command"] = f"python -m benchmarks.fuzz --cases {args.cases} --seed {args.seed} --timeout {args.timeout:g}"
    from maestro_plan import atomic

    atomic.write_text(args.out / "fuzz.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    atomic.write_text(args.out / "fuzz.md", markdown(doc))
    print(markdown(doc))
    bad = sum(v for k, v in doc["totals"].items() if k != "ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
