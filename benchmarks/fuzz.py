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

    python -m benchmarks.fuzz [--cases 1000] [--seed 0] [--timeout 60] [--only N]

Writes benchmarks/results/fuzz.json and fuzz.md (counts by kind and outcome, and every failure
with the command that replays it). tests/test_fuzz.py runs a fast slice (the same generator).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
TESTDATA = REPO / "tests" / "data"

# The baseline every case breaks: one pool of H100s, a Llama-3.2-1B-shaped model with its
# config.json numbers (huggingface.co/meta-llama/Llama-3.2-1B-Instruct), a two-role workflow.
INVENTORY = {
    "name": "fuzz-fleet",
    "clusters": [{"name": "c1", "region": "us-east-1", "node_pools": [
        {"name": "p1", "zone": "us-east-1a", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 2, "host_dram_gib": 2048}]}],
    "sources": [{"name": "users", "region": "us-east-1"}],
    "links": [{"a": "users", "b": "c1", "latency_ms": 2}],
}  # fmt: skip
MODEL = {
    "id": "tiny-llama", "hf_repo": "meta-llama/Llama-3.2-1B-Instruct", "tp_degrees": [1, 2],
    "architecture": {"model_type": "llama", "num_hidden_layers": 16, "hidden_size": 2048, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
                     "tie_word_embeddings": True, "max_position_embeddings": 131072},
}  # fmt: skip
WORKFLOW = {
    "name": "qa", "priority": "interactive", "slo": {"percentile": 95, "latency_ms": 5000},
    "arrivals": [{"source": "users", "rate_per_s": 2}],
    "roles": [{"name": "plan", "model": "tiny-llama", "calls_per_query": 1, "input_tokens": {"mean": 800, "percentiles": {50: 700, 90: 1500}},
               "output_tokens": {"mean": 200}},
              {"name": "answer", "model": "tiny-llama", "calls_per_query": 2, "depends_on": ["plan"], "input_tokens": {"mean": 1200},
               "output_tokens": {"mean": 300}}],
}  # fmt: skip
SCENARIO = {"scenarios": [{"name": "s1", "edits": [{"scale_demand": {"factor": 2.0}}, {"add_gpus": {"cluster": "c1", "gpu_type": "h100-sxm", "count": 8}}]}]}
CAPACITY = [{"model": "tiny-llama", "gpu": "h100-sxm", "tp": 1, "input_tokens": 1000, "output_tokens": 250, "max_rps": 20, "latency_ms": 900}]

BIG_INT = "1" * 5000
HOSTILE_NUMBERS = ["inf", "-inf", "nan", "1e400", "-1", "0", "-0", "1e12", "100000000000", "2147483648", "9" * 30, BIG_INT, "1e-320", "0.5"]
HOSTILE_VALUES: list[Any] = [None, True, "", "x" * 200_000, "\u00b2", "NVIDIA H100 80GB HBM3", "a\nb; rm -rf /", [], {}, [[[[]]]], -1, 0, 10**11, 1e300,
                             "Upper-Case", "../../etc", "0" * 64, {"a": 1}, 1.5]  # fmt: skip
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
OK_CODES = {0, 1, 2, 3}


@dataclass
class Case:
    index: int
    kind: str
    mutation: str
    args: list[str]
    outs: list[str] = field(default_factory=list)


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
# Mutations
# --------------------------------------------------------------------------------------------


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


def mutate_doc(rng: random.Random, doc: Any) -> tuple[Any, str]:
    """A structural mutation of a parsed document: one value replaced, removed or duplicated."""
    doc = copy.deepcopy(doc)
    path = rng.choice(_paths(doc)[1:] or [()])
    op = rng.choice(["value", "value", "number", "delete", "deep", "grow"])
    if op == "delete" and path:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
        return doc, f"delete {path}"
    if op == "deep":  # written as text: "[[[...1...]]]" is a flow sequence in YAML and an array in JSON
        n = rng.choice([70, 500, 3000, 100_000])
        return _set(doc, path, _Raw("[" * n + "1" + "]" * n)), f"deep {n} {path}"
    if op == "grow":
        return _set(doc, path, [copy.deepcopy(doc if not path else INVENTORY) for _ in range(rng.choice([2, 50]))]), f"grow {path}"
    if op == "number":
        text = rng.choice(HOSTILE_NUMBERS)
        return _set(doc, path, _Raw(text)), f"number {path}={text[:20]}"
    value = rng.choice(HOSTILE_VALUES)
    return _set(doc, path, value), f"value {path}={str(value)[:30]!r}"


class _Raw(str):
    """A number literal written verbatim (5000 digits, 1e400, nan) into the YAML/JSON text."""


def dump_json(doc: Any) -> str:
    raws: list[str] = []

    def enc(o: Any) -> Any:
        if isinstance(o, _Raw):
            raws.append(str(o))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(o, dict):
            return {str(k): enc(v) for k, v in o.items()}
        if isinstance(o, list):
            return [enc(v) for v in o]
        return o

    text = json.dumps(enc(doc), allow_nan=True)
    for i, r in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(r, r))
    return text


def dump_yaml(doc: Any) -> str:
    raws: list[str] = []

    def enc(o: Any) -> Any:
        if isinstance(o, _Raw):
            raws.append(str(o))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(o, dict):
            return {k: enc(v) for k, v in o.items()}
        if isinstance(o, list):
            return [enc(v) for v in o]
        return o

    text = yaml.safe_dump(enc(doc), sort_keys=False, width=10**9)
    for i, r in enumerate(raws):
        text = text.replace(f"'@@RAW{i}@@'", {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(r, r))
    return text


TEXT_MUTATIONS = ["truncate", "bytes", "bom", "latin1", "tag-int", "tag-bool", "complex-key", "alias-bomb", "deep-text", "dup-key", "empty", "huge-line"]


def mutate_text(rng: random.Random, text: str) -> tuple[bytes, str]:
    """A textual mutation: broken syntax, encodings, YAML tags and bombs."""
    op = rng.choice(TEXT_MUTATIONS)
    b = text.encode()
    if op == "truncate":
        return b[: rng.randrange(max(len(b), 1))], op
    if op == "bytes":
        i = rng.randrange(max(len(b), 1))
        return b[:i] + bytes(rng.randrange(256) for _ in range(8)) + b[i:], op
    if op == "bom":
        return b"\xef\xbb\xbf" + b, op
    if op == "latin1":
        return text.replace("a", "\u00e9", 1).encode("latin-1", "replace"), op
    if op == "tag-int":
        return re.sub(r": (\w+)", r": !!int \1x", text, count=1).encode(), op
    if op == "tag-bool":
        return re.sub(r": (\w+)", r": !!bool \1", text, count=1).encode(), op
    if op == "complex-key":
        return ("? [a, b]\n: 1\n" + text).encode(), op
    if op == "alias-bomb":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
        return ("\n".join(lines) + "\n").encode(), op
    if op == "deep-text":
        n = rng.choice([3000, 100_000])
        return ("[" * n + "]" * n).encode(), op
    if op == "dup-key":
        first = text.splitlines()[0] if text.strip() else "a: 1"
        return (first + "\n" + text).encode(), op
    if op == "empty":
        return b"", op
    return (text + "\n# " + "y" * 300_000 + "\n").encode(), op


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def _write_inputs(folder: Path, inventory: Any = INVENTORY, model: Any = MODEL, workflow: Any = WORKFLOW) -> list[str]:
    for sub in ("models", "workloads"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for path, doc in ((folder / "fleet.yaml", inventory), (folder / "models" / "tiny-llama.yaml", model), (folder / "workloads" / "qa.yaml", workflow)):
        if isinstance(doc, bytes):
            path.write_bytes(doc)
        else:
            path.write_text(dump_yaml(doc))
    return ["--inventory", str(folder / "fleet.yaml"), "--models", str(folder / "models"), "--workloads", str(folder / "workloads")]


def _hostile_bytes(rng: random.Random, doc: Any, as_json: bool = False) -> tuple[bytes, str]:
    if rng.random() < 0.5:
        d, what = mutate_doc(rng, doc)
        return (dump_json(d) if as_json else dump_yaml(d)).encode(), what
    return mutate_text(rng, dump_json(doc) if as_json else dump_yaml(doc))


def make_case(index: int, seed: int, base_plan: Path, folder: Path) -> Case:
    rng = random.Random(f"{seed}:{index}")
    kind = KINDS[index % len(KINDS)] if index < len(KINDS) * 4 else rng.choice(KINDS)
    folder.mkdir(parents=True, exist_ok=True)
    return BUILDERS[kind](rng, index, base_plan, folder)


def _inputs_case(which: str) -> Any:
    def build(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
        docs = {"inventory": INVENTORY, "model": MODEL, "workload": WORKFLOW}
        data, what = _hostile_bytes(rng, docs[which])
        inputs = _write_inputs(folder, **{("workflow" if which == "workload" else which): data})
        cmd = rng.choice(["validate", "validate", "demand", "solve"])
        args = [cmd, *inputs]
        outs = []
        if cmd == "solve":
            args += ["--solver", "greedy", "--out", str(folder / "out")]
            outs.append(str(folder / "out"))
        return Case(index, which, what, args, outs)

    return build


def _model_json(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    inputs = _write_inputs(folder)
    (folder / "models" / "tiny-llama.yaml").unlink()
    data, what = _hostile_bytes(rng, MODEL, as_json=True)
    (folder / "models" / "tiny-llama.json").write_bytes(data)
    return Case(index, "model-json", what, ["validate", *inputs])


def _log_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    fmt = rng.choice(["csv", "jsonl", "parquet"])
    out = folder / "fitted.yaml"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = rng.choice([0, 1, 5])
        col = rng.choice([[rng.choice([-1, 0, 10**15, 2**62]) for _ in range(n)], [float(rng.choice(["nan", "inf", "1e300"])) for _ in range(n)], ["x" * rng.choice([1, 200_000])] * n])
        pq.write_table(pa.table({"model": ["llama-3.2-1b"] * n, "prompt_tokens": col, "completion_tokens": col}), folder / "calls.parquet")
        log, what = folder / "calls.parquet", f"parquet {str(col[:1])[:30]}"
    elif fmt == "csv":
        text = (TESTDATA / "logs" / "chatdev_head.csv").read_text()
        data, what = mutate_text(rng, text) if rng.random() < 0.5 else (_csv_cell(rng, text), "csv cell")
        log = folder / "calls.csv"
        log.write_bytes(data)
    else:
        lines = (TESTDATA / "logs" / "openai_usage.jsonl").read_text().splitlines()
        i = rng.randrange(len(lines))
        doc, what = mutate_doc(rng, json.loads(lines[i]))
        lines[i] = dump_json(doc) if rng.random() < 0.7 else mutate_text(rng, lines[i])[0].decode("utf-8", "replace")
        log = folder / "calls.jsonl"
        log.write_text("\n".join(lines) + "\n")
    args = ["fit", str(log), "--out", str(out), "--model", "llama-3.2-1b"] + (["--strict"] if rng.random() < 0.3 else [])
    return Case(index, f"log-{fmt}", what, args, [str(out)])


def _csv_cell(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    i = rng.randrange(1, len(lines))
    cells = lines[i].split(",")
    j = rng.randrange(len(cells))
    cells[j] = rng.choice(['"' + "x" * 200_000 + '"', BIG_INT, "1e400", "nan", "-5", '"unclosed', "\u00b2"])
    lines[i] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


def _scenario_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    inputs = _write_inputs(folder)
    data, what = _hostile_bytes(rng, SCENARIO)
    (folder / "scenario.yaml").write_bytes(data)
    out = folder / "out"
    return Case(index, "scenario", what, ["whatif", *inputs, "--scenario", str(folder / "scenario.yaml"), "--base", str(base_plan), "--solver", "greedy", "--out", str(out)], [str(out)])


def _capacity_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    inputs = _write_inputs(folder)
    if rng.random() < 0.5:
        data, what = _hostile_bytes(rng, CAPACITY)
        table = folder / "capacity.yaml"
    else:
        header = ",".join(CAPACITY[0])
        row = ",".join(str(v) for v in CAPACITY[0].values())
        data, what = _csv_cell(rng, header + "\n" + row + "\n" + row), "csv cell"
        table = folder / "capacity.csv"
    table.write_bytes(data)
    out = folder / "out"
    return Case(index, "capacity", what, ["solve", *inputs, "--capacity-table", str(table), "--solver", "greedy", "--out", str(out)], [str(out)])


def _plan_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    inputs = _write_inputs(folder)
    data, what = _hostile_bytes(rng, json.loads(base_plan.read_text()), as_json=True)
    plan = folder / "plan.json"
    plan.write_bytes(data)
    cmd = rng.choice(["verify", "summary", "diff", "emit", "simulate", "rollout", "solve-current"])
    outs: list[str] = []
    if cmd == "diff":
        args = ["diff", str(base_plan), str(plan)]
    elif cmd == "rollout":
        args = ["rollout", str(base_plan), str(plan), "--inventory", inputs[1]]
    elif cmd == "emit":
        args = ["emit", str(plan), *inputs, "--out", str(folder / "out"), "--quiet"]
        outs.append(str(folder / "out"))
    elif cmd == "simulate":
        args = ["simulate", str(plan), *inputs, "--duration", "30"]
    elif cmd == "solve-current":
        args = ["solve", *inputs, "--current", str(plan), "--solver", "greedy", "--out", str(folder / "out")]
        outs.append(str(folder / "out"))
    else:
        args = [cmd, str(plan), *inputs]
    return Case(index, "plan", f"{cmd}: {what}", args, outs)


def _kubectl_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    doc = json.loads((TESTDATA / "kubectl" / "eks-us-east-1-nodes.json").read_text())
    data, what = _hostile_bytes(rng, doc, as_json=True)
    f = folder / "nodes.json"
    f.write_bytes(data)
    out = folder / "inv.yaml"
    return Case(index, "kubectl", what, ["import", "inventory", "--kubectl", str(f), "--cluster", "c1", "--out", str(out)], [str(out)])


def _smi_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    text = (TESTDATA / "nvidia-smi" / "p5-h100-node.csv").read_text()
    data, what = mutate_text(rng, text) if rng.random() < 0.5 else (_csv_cell(rng, text), "csv cell")
    f = folder / "smi.csv"
    f.write_bytes(data)
    out = folder / "inv.yaml"
    return Case(index, "nvidia-smi", what, ["import", "inventory", "--nvidia-smi", str(f), "--cluster", "c1", "--zone", "z1", "--region", "r1", "--out", str(out)], [str(out)])


def _hf_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    doc = json.loads((TESTDATA / "hf_configs" / "llama-3.1-8b.json").read_text())
    data, what = _hostile_bytes(rng, doc, as_json=True)
    f = folder / "config.json"
    f.write_bytes(data)
    out = folder / "model.yaml"
    return Case(index, "hf-config", what, ["import", "model", str(f), "--hf-repo", "meta-llama/Llama-3.1-8B", "--out", str(out)], [str(out)])


FLAG_COMMANDS: list[tuple[str, list[str]]] = [
    ("solve", ["--time-limit", "--seed", "--headroom", "--percentile", "--min-zones", "--change-weight", "--workers"]),
    ("simulate", ["--duration", "--seed", "--rate-scale", "--warmup", "--drain"]),
    ("sweep", ["--demand", "--time-limit", "--seed", "--jobs", "--change-weight"]),
    ("whatif", ["--scale", "--time-limit", "--seed", "--add-gpus", "--price", "--slo"]),
    ("estimate", ["--batch", "--context", "--prompt", "--output", "--gpu-memory-utilization", "--tp"]),
    ("demand", ["--percentile"]),
    ("synth", ["--gpus", "--models", "--clusters", "--workflows", "--seed", "--load"]),
]


def _flag_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    inputs = _write_inputs(folder)
    cmd, flags = rng.choice(FLAG_COMMANDS)
    flag = rng.choice(flags)
    value = rng.choice(HOSTILE_NUMBERS)
    if flag == "--demand":
        value = rng.choice(["1:1e12:1", "0:inf:1", "nan:1:1", "1:2:0", "-1,2", value, f"1:{value}:1"])
    elif flag == "--add-gpus":
        value = f"c1:h100-sxm:{value}"
    elif flag in ("--price", "--slo"):
        value = f"{'h100-sxm' if flag == '--price' else 'qa'}={rng.choice(['x', ''])}{value}"
    out = folder / "out"
    base = {
        "solve": ["solve", *inputs, "--solver", "greedy", "--out", str(out)],
        "simulate": ["simulate", str(base_plan), *inputs, "--duration", "30"],
        "sweep": ["sweep", *inputs, "--demand", "1,2", "--base", str(base_plan), "--solver", "greedy", "--jobs", "1", "--no-plot", "--out", str(out)],
        "whatif": ["whatif", *inputs, "--base", str(base_plan), "--solver", "greedy", "--out", str(out)],
        "estimate": ["estimate", "--model", "tiny-llama", "--gpu", "h100-sxm", "--models", inputs[3]],
        "demand": ["demand", *inputs],
        "synth": ["synth", "--gpus", "16", "--models", "2", "--out", str(out)],
    }[cmd]
    return Case(index, f"flag-{cmd}", f"{flag}={value[:24]}", [*base, flag, value], [str(out)])


BUILDERS = {
    "inventory": _inputs_case("inventory"),
    "model": _inputs_case("model"),
    "workload": _inputs_case("workload"),
    "model-json": _model_json,
    "log": _log_case,
    "scenario": _scenario_case,
    "capacity": _capacity_case,
    "plan": _plan_case,
    "kubectl": _kubectl_case,
    "nvidia-smi": _smi_case,
    "hf-config": _hf_case,
    "flag": _flag_case,
}
KINDS = list(BUILDERS)


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
