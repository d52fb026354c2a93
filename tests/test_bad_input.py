"""Bad input never produces a traceback: every case below runs the CLI and expects exit code 2, a
message naming the offending file and field, and no 'Traceback'.

The valid baseline (a one-pool inventory, a Llama-3.2-1B-shaped model with its real config.json
numbers, a one-role workflow) is written to tmp_path by each test; each case breaks exactly one thing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maestro_plan.cli.main import app

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad"

INVENTORY = """\
name: tiny-fleet
clusters:
  - name: c1
    region: us-east-1
    node_pools:
      - name: p1
        zone: us-east-1a
        gpu_type: h100-sxm
        gpus_per_node: 8
        count: 2
        host_dram_gib: 2048
sources:
  - {name: users, region: us-east-1}
links:
  - {a: users, b: c1, latency_ms: 2}
"""

# meta-llama/Llama-3.2-1B config.json numbers
MODEL = """\
id: tiny-llama
hf_repo: meta-llama/Llama-3.2-1B-Instruct
architecture:
  model_type: llama
  num_hidden_layers: 16
  hidden_size: 2048
  num_attention_heads: 32
  num_key_value_heads: 8
  head_dim: 64
  intermediate_size: 8192
  vocab_size: 128256
  tie_word_embeddings: true
  max_position_embeddings: 131072
tp_degrees: [1, 2]
"""

WORKFLOW = """\
name: qa
priority: interactive
slo: {percentile: 95, latency_ms: 5000}
arrivals:
  - {source: users, rate_per_s: 2}
roles:
  - name: plan
    model: tiny-llama
    calls_per_query: 1
    input_tokens: {mean: 800, percentiles: {50: 700, 90: 1500}}
    output_tokens: {mean: 200}
  - name: answer
    model: tiny-llama
    calls_per_query: 2
    depends_on: [plan]
    input_tokens: {mean: 1200}
    output_tokens: {mean: 300}
"""


def _write(tmp: Path, inventory: str = INVENTORY, model: str = MODEL, workflow: str = WORKFLOW) -> dict[str, Path]:
    (tmp / "models").mkdir()
    (tmp / "workloads").mkdir()
    paths = {"inventory": tmp / "fleet.yaml", "models": tmp / "models", "workloads": tmp / "workloads"}
    paths["inventory"].write_text(inventory)
    (tmp / "models" / "tiny-llama.yaml").write_text(model)
    (tmp / "workloads" / "qa.yaml").write_text(workflow)
    return paths


def _validate_args(p: dict[str, Path]) -> list[str]:
    return ["validate", "--inventory", str(p["inventory"]), "--models", str(p["models"]), "--workloads", str(p["workloads"])]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_baseline_is_valid(tmp_path: Path) -> None:
    """The cases below break a baseline that validates; otherwise they would prove nothing."""
    code, out = _run(_validate_args(_write(tmp_path)))
    assert code == 0, out
    assert "inputs are valid" in out


# Each case: (id, how to build the inputs and args from tmp_path, substrings the message must hold).
Case = tuple[str, Callable[[Path], list[str]], list[str]]


def _inv(text: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _validate_args(_write(tmp, inventory=text))


def _mod(text: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _validate_args(_write(tmp, model=text))


def _wf(text: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _validate_args(_write(tmp, workflow=text))


def _second_model(tmp: Path) -> list[str]:
    p = _write(tmp)
    (p["models"] / "copy.yaml").write_text(MODEL)
    return _validate_args(p)


def _json_model(tmp: Path) -> list[str]:
    p = _write(tmp)
    (p["models"] / "tiny-llama.yaml").unlink()
    (p["models"] / "tiny-llama.json").write_text('{"id": "tiny-llama", "hf_repo": "meta-llama/Llama-3.2-1B",}')
    return _validate_args(p)


def _empty_model(tmp: Path) -> list[str]:
    p = _write(tmp)
    (p["models"] / "tiny-llama.yaml").write_text("")
    return _validate_args(p)


def _missing_inventory(tmp: Path) -> list[str]:
    p = _write(tmp)
    p["inventory"] = tmp / "no-such-fleet.yaml"
    return _validate_args(p)


def _empty_folder(tmp: Path) -> list[str]:
    p = _write(tmp)
    (tmp / "empty").mkdir()
    p["workloads"] = tmp / "empty"
    return _validate_args(p)


def _bad_file(name: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        p = _write(tmp)
        p["inventory"] = BAD / name
        return _validate_args(p)

    return build


def _import(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["import", "inventory", *[a.replace("{tmp}", str(tmp)) for a in args]]


SMI = str(DATA / "nvidia-smi" / "p5-h100-node.csv")
LOC = ["--region", "us-east-1", "--zone", "us-east-1a", "--host-dram-gib", "2048"]

CASES: list[Case] = [
    # ---- file-level problems -----------------------------------------------------------------
    ("malformed-yaml", _inv(INVENTORY.replace("  - name: c1\n", "  - name: [c1\n")), ["fleet.yaml", "not valid YAML", "line"]),
    ("malformed-json", _json_model, ["tiny-llama.json", "not valid JSON", "line 1"]),
    ("missing-file", _missing_inventory, ["no-such-fleet.yaml", "does not exist"]),
    ("empty-file", _empty_model, ["tiny-llama.yaml", "empty"]),
    ("empty-folder", _empty_folder, ["empty", "no .yaml"]),
    ("directory-as-file", _import("--nvidia-smi", "{tmp}", *LOC), ["is a directory"]),
    ("not-utf8", _bad_file("not-utf8.yaml"), ["not-utf8.yaml", "not UTF-8"]),
    ("duplicate-yaml-key", _bad_file("duplicate-keys.yaml"), ["duplicate-keys.yaml", "duplicate key 'region'"]),
    ("top-level-list", _inv("- name: c1\n- name: c2\n"), ["fleet.yaml", "must be a mapping"]),
    # ---- schema problems ---------------------------------------------------------------------
    ("wrong-type", _inv(INVENTORY.replace("gpus_per_node: 8", "gpus_per_node: eight")), ["fleet.yaml", "clusters[0].node_pools[0].gpus_per_node"]),
    ("unknown-field-did-you-mean", _inv(INVENTORY.replace("gpus_per_node: 8", "gpus_per_nod: 8")), ["clusters[0].node_pools[0].gpus_per_nod", "did you mean 'gpus_per_node'"]),
    ("negative-size", _inv(INVENTORY.replace("host_dram_gib: 2048", "host_dram_gib: -64")), ["clusters[0].node_pools[0].host_dram_gib", "greater than 0"]),
    ("zero-count", _inv(INVENTORY.replace("count: 2", "count: 0")), ["clusters[0].node_pools[0].count"]),
    ("huge-number", _mod(MODEL.replace("hidden_size: 2048", "hidden_size: 20480000000000000")), ["tiny-llama.yaml", "architecture.hidden_size"]),
    ("missing-required", _wf(WORKFLOW.replace("slo: {percentile: 95, latency_ms: 5000}\n", "")), ["qa.yaml", "'slo'", "required"]),
    ("invalid-name", _inv(INVENTORY.replace("  - name: c1\n", "  - name: US_East\n")), ["clusters[0].name", "lower-case"]),
    ("rate-zero", _wf(WORKFLOW.replace("rate_per_s: 2", "rate_per_s: 0")), ["qa.yaml", "arrivals[0].rate_per_s"]),
    ("rate-negative", _wf(WORKFLOW.replace("rate_per_s: 2", "rate_per_s: -3.5")), ["qa.yaml", "arrivals[0].rate_per_s"]),
    ("decreasing-percentiles", _wf(WORKFLOW.replace("{50: 700, 90: 1500}", "{50: 1500, 90: 700}")), ["qa.yaml", "roles[0].input_tokens", "must not decrease"]),
    ("context-too-long", _mod(MODEL + "max_model_len: 262144\n"), ["tiny-llama.yaml", "max_model_len"]),
    ("moe-half-configured", _mod(MODEL.replace("  vocab_size", "  num_experts: 8\n  vocab_size")), ["tiny-llama.yaml", "architecture", "num_experts_per_tok"]),
    ("duplicate-role-names", _wf(WORKFLOW.replace("name: answer", "name: plan").replace("depends_on: [plan]", "depends_on: []")), ["qa.yaml", "role names repeat"]),
    # ---- cross-references --------------------------------------------------------------------
    ("unknown-gpu-type", _inv(INVENTORY.replace("gpu_type: h100-sxm", "gpu_type: h100-sxmm")), ["clusters[0].node_pools[0].gpu_type", "did you mean 'h100-sxm'"]),
    ("unknown-model-in-role", _wf(WORKFLOW.replace("model: tiny-llama\n    calls_per_query: 2", "model: tiny-lama\n    calls_per_query: 2")), ["qa.yaml", "roles[1].model", "did you mean 'tiny-llama'"]),
    ("unknown-source", _wf(WORKFLOW.replace("source: users", "source: userz")), ["qa.yaml", "arrivals[0].source", "did you mean 'users'"]),
    ("unknown-dependency", _wf(WORKFLOW.replace("depends_on: [plan]", "depends_on: [planner]")), ["qa.yaml", "roles[1].depends_on[0]", "did you mean 'plan'"]),
    ("dag-cycle", _wf(WORKFLOW.replace("    calls_per_query: 1\n", "    calls_per_query: 1\n    depends_on: [answer]\n")), ["qa.yaml", "cycle", "depends_on"]),
    ("tp-not-dividing-heads", _mod(MODEL.replace("tp_degrees: [1, 2]", "tp_degrees: [1, 3]")), ["tiny-llama.yaml", "tp_degrees[1]", "heads"]),
    ("tp-above-gpus-per-node", _mod(MODEL.replace("tp_degrees: [1, 2]", "tp_degrees: [16]")), ["tiny-llama.yaml", "tp_degrees", "no node of the fleet has more than 8 GPUs"]),
    ("duplicate-pool-names", _inv(INVENTORY.replace("sources:", "      - {name: p1, zone: us-east-1b, gpu_type: h100-sxm, gpus_per_node: 8, count: 1, host_dram_gib: 2048}\nsources:")), ["fleet.yaml", "clusters[0].node_pools[1].name", "used twice"]),
    ("duplicate-model-ids", _second_model, ["copy.yaml", "defined twice", "id"]),
    ("link-to-unknown-place", _inv(INVENTORY.replace("b: c1", "b: c9")), ["fleet.yaml", "links[0].b", "did you mean 'c1'"]),
    # ---- importers ---------------------------------------------------------------------------
    ("import-unknown-gpu", _import("--nvidia-smi", str(BAD / "nvidia-smi-unknown-gpu.csv"), *LOC), ["nvidia-smi-unknown-gpu.csv", "line 2", "NVIDIA GeForce RTX 4090", "--gpu-types"]),
    ("import-ragged-csv", _import("--nvidia-smi", str(BAD / "nvidia-smi-ragged.csv"), *LOC), ["nvidia-smi-ragged.csv", "line 3"]),
    ("import-bad-memory", _import("--nvidia-smi", str(BAD / "nvidia-smi-bad-memory.csv"), *LOC), ["nvidia-smi-bad-memory.csv", "memory.total", "[N/A]"]),
    ("import-missing-region", _import("--nvidia-smi", SMI, "--zone", "us-east-1a"), ["p5-h100-node.csv", "--region", "--host-dram-gib"]),
    ("import-both-sources", _import("--nvidia-smi", SMI, "--kubectl", SMI), ["--nvidia-smi", "--kubectl", "exactly one"]),
    ("import-zero-dram", _import("--nvidia-smi", SMI, "--region", "us-east-1", "--zone", "us-east-1a", "--host-dram-gib", "0"), ["--host-dram-gib"]),
    ("import-pods-not-nodes", _import("--kubectl", str(BAD / "kubectl-pods.json")), ["kubectl-pods.json", "items[0].kind", "not a Node"]),
    ("import-mig", _import("--kubectl", str(BAD / "kubectl-mig.json")), ["kubectl-mig.json", "items[0]", "MIG"]),
    ("import-mixed-regions", _import("--kubectl", str(BAD / "kubectl-mixed-regions.json")), ["kubectl-mixed-regions.json", "us-east-1", "us-west-2", "--region"]),
    ("import-memory-mismatch", _import("--kubectl", str(BAD / "kubectl-memory-mismatch.json")), ["kubectl-memory-mismatch.json", "nvidia.com/gpu.memory", "40960", "a100-80gb"]),
    ("import-no-product-label", _import("--kubectl", str(BAD / "kubectl-no-product.json")), ["kubectl-no-product.json", "items[0].metadata.labels", "nvidia.com/gpu.product"]),
    ("import-kubectl-malformed", _import("--kubectl", str(BAD / "nvidia-smi-ragged.csv")), ["nvidia-smi-ragged.csv"]),
]


@pytest.mark.parametrize(("build", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, build: Callable[[Path], list[str]], expected: list[str]) -> None:
    code, out = _run(build(tmp_path))
    assert "Traceback" not in out, out
    assert code == 2, out
    assert out.startswith("error:"), out
    for text in expected:
        assert text in out, f"{text!r} missing from:\n{out}"


def test_case_ids_are_distinct_and_many() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 20
