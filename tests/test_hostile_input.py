"""Every hostile input of issue 18 is refused with exit 2 and a message that names the problem (and
the bound, for sizes), never an internal error, a hang or an unsafe output.

Inputs: the one-pool baseline of test_bad_input.py, each case breaking one thing. Commands run in
process (typer's CliRunner); the solve behind the plan-reading cases is the greedy heuristic on
that baseline (a fraction of a second).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from test_bad_input import INVENTORY, MODEL, _write
from typer.testing import CliRunner

from maestro_plan import atomic
from maestro_plan.cli.main import app

REPO = Path(__file__).resolve().parent.parent

BIG = "1" * 5000  # past Python's 4,300-digit int-string limit


def _run(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def _inputs(p: dict[str, Path]) -> list[str]:
    return ["--inventory", str(p["inventory"]), "--models", str(p["models"]), "--workloads", str(p["workloads"])]


def _refused(args: list[str], *needles: str) -> str:
    code, out = _run(args)
    assert code == 2, out
    assert "internal error" not in out and "Traceback" not in out, out
    low = out.lower()
    for n in needles:
        assert n.lower() in low, (n, out)
    return out


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    tmp = tmp_path_factory.mktemp("planned")
    p = _write(tmp)
    code, out = _run(["solve", *_inputs(p), "--solver", "greedy", "--no-emit", "--out", tmp / "out"])
    assert code == 0, out
    return p, tmp / "out" / "plan.json"


def _validate(tmp: Path, inventory: str = INVENTORY, model: str = MODEL, model_name: str = "tiny-llama.yaml") -> list[str]:
    p = _write(tmp, inventory=inventory)
    (p["models"] / "tiny-llama.yaml").unlink()
    (p["models"] / model_name).write_text(model)
    return ["validate", *_inputs(p)]


# ---- numbers ---------------------------------------------------------------------------------


def test_5000_digit_integer_in_yaml(tmp_path: Path) -> None:
    _refused(_validate(tmp_path, inventory=INVENTORY.replace("count: 2", f"count: {BIG}")), "fleet.yaml", "digits")


def test_5000_digit_integer_in_json(tmp_path: Path) -> None:
    model = json.dumps({"id": "tiny-llama"})[:-1] + f', "max_model_len": {BIG}}}'
    _refused(_validate(tmp_path, model=model, model_name="tiny-llama.json"), "tiny-llama.json", "digits")


def test_5000_digit_integer_in_plan(planned: tuple[dict[str, Path], Path], tmp_path: Path) -> None:
    p, plan = planned
    bad = tmp_path / "plan.json"
    bad.write_text(plan.read_text().replace('"schema_version"', f'"x": {BIG}, "schema_version"', 1))
    _refused(["verify", bad, *_inputs(p)], "plan.json", "digits")


def test_5000_digit_integer_in_hf_config(tmp_path: Path, repo: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text((repo / "tests/data/hf_configs/llama-3.1-8b.json").read_text().replace('"num_hidden_layers": 32', f'"num_hidden_layers": {BIG}'))
    _refused(["import", "model", cfg, "--hf-repo", "meta-llama/Llama-3.1-8B", "--out", tmp_path / "m.yaml"], "config.json", "digits")


def _kubectl(repo: Path, tmp: Path, edit) -> Path:  # noqa: ANN001 - a function of the parsed document
    doc = json.loads((repo / "tests/data/kubectl/eks-us-east-1-nodes.json").read_text())
    text = edit(doc) if callable(edit) else edit
    f = tmp / "nodes.json"
    f.write_text(text if isinstance(text, str) else json.dumps(doc))
    return f


def _import_kubectl(f: Path, tmp: Path) -> list[str]:
    return ["import", "inventory", "--kubectl", f, "--cluster", "c1", "--out", tmp / "inv.yaml"]


def test_5000_digit_integer_and_1e400_in_kubectl_json(tmp_path: Path, repo: Path) -> None:
    text = (repo / "tests/data/kubectl/eks-us-east-1-nodes.json").read_text()
    for bad, needle in ((f'"kind": {BIG}, "kind"', "digits"), ('"kind": 1e400, "kind"', "out of range")):
        f = tmp_path / "nodes.json"
        f.write_text(text.replace('"kind"', bad, 1))
        _refused(_import_kubectl(f, tmp_path), "nodes.json", needle)


def test_kubectl_item_whose_status_is_a_string(tmp_path: Path, repo: Path) -> None:
    def edit(doc: dict) -> None:
        doc["items"][0]["status"] = "Ready"

    _refused(_import_kubectl(_kubectl(repo, tmp_path, edit), tmp_path), "items[0]", "must be mappings")


def test_schema_version_with_a_superscript_digit(planned: tuple[dict[str, Path], Path], tmp_path: Path) -> None:
    p, plan = planned
    doc = json.loads(plan.read_text())
    doc["schema_version"] = "\u00b2.0"
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(doc))
    _refused(["summary", bad, *_inputs(p)], "schema_version")


# ---- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, needle",
    [
        ("? [a, b]\n: 1\n", "plain keys"),
        ("name: !!int abc\n", "not a valid int"),
        ("name: !!bool maybe\n", "not a valid bool"),
        ("name: !!float x1\n", "not a valid float"),
        ("name: !!timestamp yesterday\n", "not a valid timestamp"),
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "deeper than 64"),
        ("a: .inf\n", "non-finite"),
        ("a: &x [1]\nb: *x\nc: [" + ", ".join(["*x"] * 10) + "]\n", None),  # aliases themselves are fine
    ],
)
def test_yaml_structure(tmp_path: Path, text: str, needle: str | None) -> None:
    args = _validate(tmp_path, inventory=text)
    if needle is None:
        code, out = _run(args)
        assert code == 2 and "internal error" not in out  # a valid document, just not an inventory
    else:
        _refused(args, "fleet.yaml", needle)


def test_100000_deep_json_in_plan_log_and_kubectl(planned: tuple[dict[str, Path], Path], tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    p, _ = planned
    plan = tmp_path / "plan.json"
    plan.write_text(deep)
    _refused(["verify", plan, *_inputs(p)], "deeper than")
    kub = tmp_path / "nodes.json"
    kub.write_text(deep)
    _refused(_import_kubectl(kub, tmp_path), "deeper than")
    log = tmp_path / "calls.jsonl"  # a real log with one hostile line: that line is reported, the rest fitted
    log.write_text((REPO / "tests/data/logs/openai_usage.jsonl").read_text() + "{\"a\": " + deep + "}\n")
    code, out = _run(["fit", log, "--out", tmp_path / "w.yaml", "--model", "llama-3.2-1b", "--strict"])
    assert code == 2 and "internal error" not in out, out
    assert "deeper than" in out, out


def test_csv_field_over_the_csv_limit(tmp_path: Path) -> None:
    log = tmp_path / "calls.csv"
    log.write_text("model,input,output\ntiny-llama,\"" + "x" * 200_000 + "\",y\n")
    _refused(["fit", log, "--out", tmp_path / "w.yaml", "--model", "llama-3.2-1b"], "calls.csv", "131,072")


def test_capacity_table_csv_field_over_the_limit(tmp_path: Path) -> None:
    p = _write(tmp_path)
    table = tmp_path / "cap.csv"
    table.write_text("model,gpu,tp,input_tokens,output_tokens,max_rps,latency_ms\n\"" + "x" * 200_000 + "\",1,1,1,1,1,1\n")
    _refused(["solve", *_inputs(p), "--capacity-table", table, "--out", tmp_path / "o"], "cap.csv", "131,072")


# ---- sizes that drive work -------------------------------------------------------------------


def test_node_pool_count_1e11(tmp_path: Path) -> None:
    _refused(_validate(tmp_path, inventory=INVENTORY.replace("count: 2", "count: 100000000000")), "count", "100000")


def test_fleet_over_max_gpus(tmp_path: Path) -> None:
    _refused(_validate(tmp_path, inventory=INVENTORY.replace("count: 2", "count: 20000")), "160,000 GPUs", "100,000")


def test_num_hidden_layers_1e9(tmp_path: Path) -> None:
    _refused(_validate(tmp_path, model=MODEL.replace("num_hidden_layers: 16", "num_hidden_layers: 1000000000")), "num_hidden_layers", "1000")


def test_whatif_add_gpus_8e10(tmp_path: Path) -> None:
    p = _write(tmp_path)
    _refused(["whatif", *_inputs(p), "--add-gpus", "c1:h100-sxm:80000000000", "--solver", "greedy"], "100000")


@pytest.mark.parametrize("grid, needle", [("1:1e12:1", "at most 10,000"), ("0:inf:1", "finite"), ("nan:1:1", "finite")])
def test_sweep_grids_checked_before_they_are_built(tmp_path: Path, grid: str, needle: str) -> None:
    p = _write(tmp_path)
    _refused(["sweep", *_inputs(p), "--demand", grid, "--out", tmp_path / "s"], "--demand", needle)


def test_sweep_workflow_with_an_uppercase_name(tmp_path: Path) -> None:
    p = _write(tmp_path)
    _refused(["sweep", *_inputs(p), "--demand", "1,2", "--workflow", "QA", "--out", tmp_path / "s"])


def test_simulate_rate_scale_1e9(planned: tuple[dict[str, Path], Path]) -> None:
    p, plan = planned
    _refused(["simulate", plan, *_inputs(p), "--rate-scale", "1e9"], "arrivals", "5,000,000")


# ---- numeric flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, needle",
    [("--seed", "2147483648", "2,147,483,647"), ("--time-limit", "inf", "finite"), ("--change-weight", "inf", "finite"), ("--headroom", "nan", "")],
)
def test_solve_numeric_flags(tmp_path: Path, flag: str, value: str, needle: str) -> None:
    p = _write(tmp_path)
    _refused(["solve", *_inputs(p), "--solver", "greedy", flag, value, "--out", tmp_path / "o"], flag, needle)
    assert not (tmp_path / "o").exists()


# ---- outputs ---------------------------------------------------------------------------------


def test_out_naming_an_existing_file(tmp_path: Path) -> None:
    p = _write(tmp_path)
    f = tmp_path / "taken"
    f.write_text("mine")
    _refused(["solve", *_inputs(p), "--solver", "greedy", "--out", f], "--out", "existing file")
    assert f.read_text() == "mine"


@pytest.mark.parametrize("err, needle", [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full"), (errno.EXDEV, "file systems")])
def test_write_errors_are_exit_2_with_their_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, needle: str) -> None:
    p = _write(tmp_path)

    def fail(*a: object, **k: object) -> None:
        raise OSError(err, "simulated", str(tmp_path / "o"))

    monkeypatch.setattr(atomic, "_swap", fail)
    out = _refused(["solve", *_inputs(p), "--solver", "greedy", "--out", tmp_path / "o"], needle)
    assert "exit 1" not in out and not (tmp_path / "o").exists()


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    model = '{"id": "tiny-llama", "id": "other"}'
    _refused(_validate(tmp_path, model=model, model_name="tiny-llama.json"), "tiny-llama.json", "duplicate key 'id'")


def test_yaml_alias_bomb_is_refused_after_a_bounded_walk(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    _refused(_validate(tmp_path, inventory="\n".join(lines) + "\n"), "fleet.yaml", "1,000,000 values")


def test_long_string_is_refused(tmp_path: Path) -> None:
    _refused(_validate(tmp_path, inventory=INVENTORY.replace("name: tiny-fleet", "name: " + "x" * (2**20 + 1))), "fleet.yaml", "characters")
