"""`maestro-plan import model`: real config.json files -> catalogue entries, and bad input -> exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import InputError
from maestro_plan.load.importers.hf_config import architecture_from_config
from maestro_plan.load.importers.hf_model import allowed_tp, import_hf_config, slug, spec_to_yaml
from maestro_plan.load.loader import load_models
from maestro_plan.load.schema import ModelSpec

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "data" / "hf_configs"
MODELS = HERE.parent / "models"

# sample config -> (bundled id, hf repo)
ROUND_TRIP = {
    "llama-3.1-8b.json": ("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct"),
    "qwen2.5-7b.json": ("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct"),
    "mixtral-8x7b.json": ("mixtral-8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    "gemma-2-9b.json": ("gemma-2-9b", "google/gemma-2-9b-it"),
    "deepseek-v3.json": ("deepseek-v3", "deepseek-ai/DeepSeek-V3"),
    "qwen3-30b-a3b.json": ("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B"),
    "phi-3-mini.json": ("phi-3-mini", "microsoft/Phi-3-mini-4k-instruct"),
}

runner = CliRunner()


@pytest.fixture(scope="module")
def bundled() -> dict[str, ModelSpec]:
    return load_models(MODELS)[0]


def _cfg(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _write(tmp_path: Path, cfg: dict, name: str = "config.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return p


# --------------------------------------------------------------------------------------------
# Real configs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_import_gives_the_bundled_architecture(bundled: dict[str, ModelSpec], name: str) -> None:
    mid, repo = ROUND_TRIP[name]
    spec = import_hf_config(CONFIGS / name, model_id=mid, hf_repo=repo)
    assert spec.architecture == bundled[mid].architecture
    assert spec.weight_dtype == bundled[mid].weight_dtype
    assert spec.quantization == bundled[mid].quantization
    assert spec.hf_repo == bundled[mid].hf_repo and spec.source == bundled[mid].source
    assert set(bundled[mid].tp_degrees) <= set(spec.tp_degrees)  # the catalogue may narrow, never widen


def test_defaults_from_the_config() -> None:
    spec = import_hf_config(CONFIGS / "qwen2.5-7b.json")  # has _name_or_path
    assert spec.hf_repo == "Qwen/Qwen2.5-7B-Instruct" and spec.id == "qwen2.5-7b-instruct"
    assert spec.tp_degrees == [1, 2, 4]  # 28 heads do not split over 8
    assert spec.max_model_len is None and spec.context_len == 32768
    assert spec.architecture.attention_bias  # Qwen2 q/k/v bias though config.json has no key for it
    assert spec.architecture.sliding_window is None  # use_sliding_window: false


def test_deepseek_is_fp8_mla() -> None:
    spec = import_hf_config(CONFIGS / "deepseek-v3.json", hf_repo="deepseek-ai/DeepSeek-V3")
    a = spec.architecture
    assert (spec.weight_dtype, spec.quantization.method) == ("fp8", "fp8")
    assert a.num_experts == 256 and a.is_mla and a.head_dim is None
    assert spec.tp_degrees == [1, 2, 4, 8]  # 128 heads, one latent KV head, 128-wide blocks divide 18432 and 2048 / 8


def test_gemma_ties_embeddings_by_default_and_slides_every_other_layer() -> None:
    cfg = _cfg("gemma-2-9b.json")
    assert "tie_word_embeddings" not in cfg
    a = architecture_from_config(cfg, "gemma-2-9b.json")
    assert a.tie_word_embeddings and (a.sliding_window, a.sliding_window_layers) == (4096, 21)


def test_nested_text_config_of_a_multimodal_model(tmp_path: Path) -> None:
    # google/gemma-3-12b-it layout: the language model under text_config, dtype at the top
    cfg = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "_name_or_path": "google/gemma-3-12b-it",
        "torch_dtype": "bfloat16",
        "text_config": {
            "model_type": "gemma3_text", "head_dim": 256, "hidden_size": 3840, "intermediate_size": 15360,
            "max_position_embeddings": 131072, "num_attention_heads": 16, "num_hidden_layers": 48,
            "num_key_value_heads": 8, "sliding_window": 1024, "sliding_window_pattern": 6, "vocab_size": 262208,
        },
        "vision_config": {"hidden_size": 1152, "num_hidden_layers": 27},
    }  # fmt: skip
    spec = import_hf_config(_write(tmp_path, cfg))
    a = spec.architecture
    assert (a.model_type, a.num_hidden_layers, a.hidden_size, a.head_dim) == ("gemma3_text", 48, 3840, 256)
    assert (a.sliding_window, a.sliding_window_layers) == (1024, 40)  # every 6th layer is global
    assert a.tie_word_embeddings and spec.weight_dtype == "bf16" and spec.id == "gemma-3-12b-it"


@pytest.mark.parametrize(
    ("qc", "dtype", "method", "group"),
    [
        # Qwen/Qwen2.5-7B-Instruct-AWQ quantization_config
        ({"bits": 4, "group_size": 128, "modules_to_not_convert": None, "quant_method": "awq", "version": "gemm", "zero_point": True}, "int4", "awq", 128),
        ({"bits": 8, "group_size": -1, "desc_act": False, "quant_method": "gptq", "sym": True}, "int8", "gptq", None),
        ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}}}, "fp8", "compressed-tensors", None),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "int4", "bitsandbytes", None),
    ],
)  # fmt: skip
def test_quantized_checkpoints(tmp_path: Path, qc: dict, dtype: str, method: str, group: int | None) -> None:
    cfg = _cfg("qwen2.5-7b.json") | {"quantization_config": qc, "torch_dtype": "float16"}
    spec = import_hf_config(_write(tmp_path, cfg))
    assert (spec.weight_dtype, spec.quantization.method, spec.quantization.group_size) == (dtype, method, group)


def test_group_size_limits_tp_like_vllm(tmp_path: Path) -> None:
    # Qwen2.5-72B intermediate 29568 / TP is not a multiple of 128 for TP 2, 4, 8, which is why the
    # published -AWQ/-GPTQ-Int4 checkpoints pad it to 29696 (29696 / 8 = 29 x 128).
    awq = {"quantization_config": {"bits": 4, "group_size": 128, "quant_method": "awq"}}
    base = {"model_type": "qwen2", "num_hidden_layers": 80, "hidden_size": 8192, "num_attention_heads": 64,
            "num_key_value_heads": 8, "vocab_size": 152064, "max_position_embeddings": 32768,
            "_name_or_path": "Qwen/Qwen2.5-72B-Instruct-AWQ"}  # fmt: skip
    assert import_hf_config(_write(tmp_path, base | awq | {"intermediate_size": 29568}, "a.json")).tp_degrees == [1]
    assert import_hf_config(_write(tmp_path, base | awq | {"intermediate_size": 29696}, "b.json")).tp_degrees == [1, 2, 4, 8]
    assert import_hf_config(_write(tmp_path, base | {"intermediate_size": 29568}, "c.json")).tp_degrees == [1, 2, 4, 8]


def test_allowed_tp_heads_rule() -> None:
    a = architecture_from_config(_cfg("qwen3-30b-a3b.json"), "x")
    assert allowed_tp(a) == [1, 2, 4, 8]  # 4 KV heads are replicated at TP 8
    assert allowed_tp(a, (1, 2, 3, 6)) == [1, 2]


def test_checkpoint_bytes_from_an_index_beside_the_config(tmp_path: Path) -> None:
    _write(tmp_path, _cfg("llama-3.1-8b.json"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16060522496}, "weight_map": {}}))
    spec = import_hf_config(tmp_path / "config.json", hf_repo="meta-llama/Llama-3.1-8B-Instruct")
    assert spec.checkpoint_bytes == 16060522496


def test_hf_cache_layout_gives_the_repo(tmp_path: Path) -> None:
    snap = tmp_path / "models--mistralai--Mixtral-8x7B-Instruct-v0.1" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    spec = import_hf_config(_write(snap, _cfg("mixtral-8x7b.json")))
    assert spec.hf_repo == "mistralai/Mixtral-8x7B-Instruct-v0.1" and spec.id == "mixtral-8x7b-instruct-v0.1"


def test_slug() -> None:
    assert slug("Llama-3.1-8B-Instruct") == "llama-3.1-8b-instruct"
    assert slug("My Model__v2!") == "my-model-v2"
    assert len(slug("x" * 200)) == 63


def test_yaml_is_deterministic_and_loads_back(tmp_path: Path) -> None:
    spec = import_hf_config(CONFIGS / "gemma-2-9b.json", hf_repo="google/gemma-2-9b-it", max_model_len=8192)
    text = spec_to_yaml(spec)
    assert text == spec_to_yaml(import_hf_config(CONFIGS / "gemma-2-9b.json", hf_repo="google/gemma-2-9b-it", max_model_len=8192))
    assert ModelSpec.model_validate(yaml.safe_load(text)) == spec


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_prints_yaml() -> None:
    r = runner.invoke(app, ["import", "model", str(CONFIGS / "mixtral-8x7b.json"), "--hf-repo", "mistralai/Mixtral-8x7B-Instruct-v0.1", "--id", "mixtral-8x7b", "--max-model-len", "32768"])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.stdout)
    assert doc["id"] == "mixtral-8x7b" and doc["max_model_len"] == 32768
    assert doc["architecture"]["num_experts"] == 8 and doc["tp_degrees"] == [1, 2, 4, 8]


def test_cli_writes_a_catalogue_file(tmp_path: Path) -> None:
    out = tmp_path / "catalogue" / "qwen.yaml"
    r = runner.invoke(app, ["import", "model", str(CONFIGS / "qwen2.5-7b.json"), "--id", "qwen", "--dtype", "bf16", "--tp-degrees", "2,4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    models, _ = load_models(out.parent)
    assert models["qwen"].tp_degrees == [2, 4] and models["qwen"].architecture.num_hidden_layers == 28
    assert [p.name for p in out.parent.iterdir()] == ["qwen.yaml"]  # atomic write leaves no temp file


def _bad(args: list[str]) -> str:
    r = runner.invoke(app, ["import", "model", *args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    return r.output


def test_bad_missing_num_hidden_layers(tmp_path: Path) -> None:
    cfg = _cfg("llama-3.1-8b.json")
    del cfg["num_hidden_layers"]
    out = _bad([str(_write(tmp_path, cfg)), "--hf-repo", "a/b"])
    assert "num_hidden_layers" in out and "missing" in out


def test_bad_several_missing_keys_reported_together(tmp_path: Path) -> None:
    out = _bad([str(_write(tmp_path, {"model_type": "llama", "hidden_size": 4096})), "--hf-repo", "a/b"])
    for key in ("num_hidden_layers", "num_attention_heads", "vocab_size", "max_position_embeddings", "intermediate_size"):
        assert key in out


def test_bad_not_json(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text("model_type: llama\nhidden_size: 4096\n")
    out = _bad([str(p)])
    assert "not valid JSON" in out and "line 1" in out


def test_bad_directory(tmp_path: Path) -> None:
    _write(tmp_path, _cfg("llama-3.1-8b.json"))
    out = _bad([str(tmp_path)])
    assert "is a directory" in out and "config.json" in out


def test_bad_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text("")
    assert "empty" in _bad([str(p)])


def test_bad_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _bad([str(tmp_path / "nope.json")])


def test_bad_top_level_array(tmp_path: Path) -> None:
    assert "JSON object" in _bad([str(_write(tmp_path, [1, 2]))])  # type: ignore[arg-type]


def test_bad_negative_layers(tmp_path: Path) -> None:
    out = _bad([str(_write(tmp_path, _cfg("llama-3.1-8b.json") | {"num_hidden_layers": -2})), "--hf-repo", "a/b"])
    assert "num_hidden_layers" in out


def test_bad_heads_not_multiple_of_kv_heads(tmp_path: Path) -> None:
    out = _bad([str(_write(tmp_path, _cfg("llama-3.1-8b.json") | {"num_key_value_heads": 5})), "--hf-repo", "a/b"])
    assert "num_key_value_heads" in out


def test_bad_no_repo(tmp_path: Path) -> None:
    out = _bad([str(_write(tmp_path, _cfg("llama-3.1-8b.json")))])
    assert "hf_repo" in out and "--hf-repo" in out


def test_bad_repo_format() -> None:
    assert "--hf-repo" in _bad([str(CONFIGS / "llama-3.1-8b.json"), "--hf-repo", "just-a-name"])


def test_bad_dtype() -> None:
    assert "--dtype" in _bad([str(CONFIGS / "qwen2.5-7b.json"), "--dtype", "float8"])


def test_bad_dtype_contradicts_checkpoint() -> None:
    out = _bad([str(CONFIGS / "deepseek-v3.json"), "--hf-repo", "deepseek-ai/DeepSeek-V3", "--dtype", "bf16"])
    assert "quantization_config" in out


def test_bad_tp_degree() -> None:
    out = _bad([str(CONFIGS / "qwen2.5-7b.json"), "--tp-degrees", "4,8"])
    assert "--tp-degrees" in out and "TP 8" in out


def test_bad_tp_list() -> None:
    assert "--tp-degrees" in _bad([str(CONFIGS / "qwen2.5-7b.json"), "--tp-degrees", "two"])


def test_bad_max_model_len_beyond_positions() -> None:
    out = _bad([str(CONFIGS / "gemma-2-9b.json"), "--hf-repo", "google/gemma-2-9b-it", "--max-model-len", "32768"])
    assert "--max-model-len" in out and "8192" in out


def test_bad_unsupported_quant_method(tmp_path: Path) -> None:
    cfg = _cfg("qwen2.5-7b.json") | {"quantization_config": {"quant_method": "hqq"}}
    assert "quantization_config.quant_method" in _bad([str(_write(tmp_path, cfg))])


def test_bad_out_is_a_directory(tmp_path: Path) -> None:
    out = _bad([str(CONFIGS / "qwen2.5-7b.json"), "--out", str(tmp_path)])
    assert "--out" in out and "directory" in out


def test_import_function_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        import_hf_config(_write(tmp_path, {"model_type": "llama"}), hf_repo="a/b")
    assert all(p.file and p.file.endswith("config.json") for p in e.value.problems)


@pytest.mark.parametrize(("key", "value"), [("num_hidden_layers", True), ("hidden_size", "4096"), ("vocab_size", 128256.5), ("attention_bias", "yes")])
def test_bad_value_types(tmp_path: Path, key: str, value: object) -> None:
    out = _bad([str(_write(tmp_path, _cfg("llama-3.1-8b.json") | {key: value})), "--hf-repo", "a/b"])
    assert key in out and json.dumps(value) in out


def test_bad_id() -> None:
    out = _bad([str(CONFIGS / "qwen2.5-7b.json"), "--id", "Qwen_7B"])
    assert "field 'id'" in out and "lower-case" in out


def test_gpt_oss_mxfp4_experts_only_and_repo_from_file_name() -> None:
    """openai/gpt-oss-20b: MXFP4 experts (4-bit + one 8-bit scale per 32), bf16 elsewhere; the config has
    no _name_or_path, so the repository comes from the file name ORG--NAME.json and the import says so."""
    from maestro_plan.estimate.memory import param_count, weight_bytes_total

    spec = import_hf_config(CONFIGS / "openai--gpt-oss-20b.json")
    assert (spec.id, spec.hf_repo, spec.weight_dtype) == ("gpt-oss-20b", "openai/gpt-oss-20b", "int4")
    assert spec.quantization.method == "mxfp4" and spec.quantization.group_size == 32
    a = spec.architecture
    assert (a.num_experts, a.num_experts_per_tok, a.sliding_window, a.sliding_window_layers) == (32, 4, 128, 12)
    assert "inferred from the file name" in spec.description
    # model card: 20.9B parameters; checkpoint on the Hub: 13.8 GB of safetensors
    assert param_count(spec) / 1e9 == pytest.approx(20.9, abs=0.05)
    assert weight_bytes_total(spec) / 1e9 == pytest.approx(13.8, abs=0.2)


def test_gemma3_nested_text_config_takes_transformers_defaults() -> None:
    spec = import_hf_config(CONFIGS / "google--gemma-3-27b-it.json")
    a = spec.architecture
    assert spec.hf_repo == "google/gemma-3-27b-it" and spec.weight_dtype == "bf16"
    assert (a.num_hidden_layers, a.hidden_size, a.vocab_size, a.max_position_embeddings) == (62, 5376, 262_208, 131_072)
    assert a.tie_word_embeddings and (a.sliding_window, a.sliding_window_layers) == (1024, 62 - 62 // 6)


def test_config_without_name_or_path_or_telling_file_name_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text((CONFIGS / "openai--gpt-oss-20b.json").read_text())
    with pytest.raises(InputError, match="file name") as e:
        import_hf_config(cfg)
    assert "--hf-repo" in str(e.value)
    assert import_hf_config(cfg, hf_repo="openai/gpt-oss-20b").id == "gpt-oss-20b"


def test_cli_says_when_the_repo_comes_from_the_file_name() -> None:
    r = runner.invoke(app, ["import", "model", str(CONFIGS / "openai--gpt-oss-20b.json")])
    assert r.exit_code == 0, r.output
    assert "come from its file name" in r.output and "hf_repo: openai/gpt-oss-20b" in r.output
