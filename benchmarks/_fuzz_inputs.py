"""Inputs of the fuzz campaign (benchmarks/fuzz.py): the baseline documents, the mutations and one
builder per input kind. Case i of seed s depends on random.Random(f"{s}:{i}") alone."""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
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


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


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
    op = rng.choice(["value", "value", "number", "delete", "deep", "grow", "scale", "scale"])
    if op == "scale":  # an in-range but extreme edit of a number, to reach the solver and emitters
        nums = [q for q in _paths(doc) if q and isinstance(_get(doc, q), int | float) and not isinstance(_get(doc, q), bool)]
        if nums:
            q = rng.choice(nums)
            factor = rng.choice([0, 1e-6, 0.5, 3, 1000, 1e5])
            v = _get(doc, q)
            new = type(v)(v * factor) if isinstance(v, int) else v * factor
            return _set(doc, q, new), f"scale {q} x{factor:g}"
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


def _placeholders(doc: Any, raws: list[str], *, str_keys: bool) -> Any:
    """`doc` with every _Raw replaced by a placeholder string '@@RAWi@@' (its text kept in `raws`)."""
    if isinstance(doc, _Raw):
        raws.append(str(doc))
        return f"@@RAW{len(raws) - 1}@@"
    if isinstance(doc, dict):
        return {(str(k) if str_keys else k): _placeholders(v, raws, str_keys=str_keys) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_placeholders(v, raws, str_keys=str_keys) for v in doc]
    return doc


def dump_json(doc: Any) -> str:
    raws: list[str] = []
    text = json.dumps(_placeholders(doc, raws, str_keys=True), allow_nan=True)
    for i, r in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(r, r))
    return text


def dump_yaml(doc: Any) -> str:
    raws: list[str] = []
    text = yaml.safe_dump(_placeholders(doc, raws, str_keys=False), sort_keys=False, width=10**9)
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
    kind = KINDS[index % len(KINDS)] if index < len(KINDS) * 2 else rng.choice(KINDS + CAMPAIGN_KINDS)
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
        "solve": ["solve", *inputs, "--solver", rng.choice(["greedy", "cpsat", "highs"]), "--time-limit", "2", "--out", str(out)],
        "simulate": ["simulate", str(base_plan), *inputs, "--duration", "30"],
        "sweep": ["sweep", *inputs, "--demand", "1,2", "--base", str(base_plan), "--solver", "greedy", "--jobs", "1", "--no-plot", "--out", str(out)],
        "whatif": ["whatif", *inputs, "--base", str(base_plan), "--solver", "greedy", "--out", str(out)],
        "estimate": ["estimate", "--model", "tiny-llama", "--gpu", "h100-sxm", "--models", inputs[3]],
        "demand": ["demand", *inputs],
        "synth": ["synth", "--gpus", "16", "--models", "2", "--out", str(out)],
    }[cmd]
    return Case(index, f"flag-{cmd}", f"{flag}={value[:24]}", [*base, flag, value], [str(out)])


def _gpu_label_case(rng: random.Random, index: int, base_plan: Path, folder: Path) -> Case:
    """An inventory whose GPU type names its product only in nvidia-smi spelling (spaces): what
    `import inventory --nvidia-smi` users write; the emitted nodeSelector must still be valid."""
    import yaml as _yaml

    gpus = _yaml.safe_load((REPO / "maestro_plan" / "data" / "gpus.yaml").read_text())["gpu_types"]
    h100 = next(g for g in gpus if g["id"] == "h100-sxm")
    label = rng.choice(["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3 ", "H100/80GB", "a" * 70])
    inventory = {**INVENTORY, "gpu_types": [{**h100, "product_labels": [label]}]}
    inputs = _write_inputs(folder, inventory=inventory)
    out = folder / "out"
    return Case(index, "gpu-label", f"product_labels=[{label[:30]!r}]", ["solve", *inputs, "--solver", "greedy", "--out", str(out)], [str(out)])


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
    "gpu-label": _gpu_label_case,
}
KINDS = list(BUILDERS)
CAMPAIGN_KINDS: list[str] = []  # kinds run by the full campaign only (case index >= 2 x KINDS), none now
