"""Reading a Hugging Face ``config.json``: the architecture, the weight precision and quantization
(hf_model.py turns them into a catalogue entry).

    architecture_from_config(cfg, file) -> Architecture      the architecture part alone

Tested on the real config.json files in tests/data/hf_configs/ (llama, qwen2, mixtral, qwen3_moe,
gemma2, phi3, deepseek_v3); mistral, qwen2_moe, qwen3, gemma, gemma3(_text) and deepseek_v2 use the
same keys and are mapped the same way. Multimodal configs whose language model sits under
``text_config`` are read from there. Keys that do not matter for memory or speed (token ids, rope scaling details,
dropout, ...) are ignored.

Where the family defaults below come from (a key absent from config.json takes the default of the
family's transformers configuration class):
- tie_word_embeddings: ``PretrainedConfig`` default False; GemmaConfig/Gemma2Config/Gemma3TextConfig
  default True (transformers src/transformers/models/gemma*/configuration_gemma*.py).
- Qwen2 / Qwen2-MoE put a bias on q, k and v (``Qwen2Attention``: ``q_proj = nn.Linear(..., bias=True)``)
  without an ``attention_bias`` key in config.json.
- Gemma-2 alternates sliding-window and global layers (``Gemma2DecoderLayer``:
  ``self.is_sliding = not bool(layer_idx % 2)``), so ceil(n/2) layers slide; Gemma-3 makes every
  ``sliding_window_pattern``-th layer global (default 6).
- Qwen2 uses the sliding window only when ``use_sliding_window`` is true, and then only on layers
  ``>= max_window_layers``; Mistral, Mixtral and Phi-3 apply ``sliding_window`` on every layer
  (vLLM PR #4380 "Phi-3 4k sliding window temp. fix").
- vLLM ``dtype="auto"`` serves FP32 checkpoints in FP16 ("The 'auto' option will use FP16
  precision for FP32 and FP16 models, and BF16 precision for BF16 models", vllm/config.py
  ModelConfig docstring), so a float32 config imports as fp16 (2 bytes per weight either way).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from maestro_plan.errors import InputError, Problem
from maestro_plan.load import safe
from maestro_plan.load.loader import parse_as
from maestro_plan.load.schema import Architecture, Quantization

MAX_CONFIG_BYTES = 8 * 1024 * 1024
"""A config.json is a few KB; anything this large is not one."""

WEIGHT_DTYPES = ("bf16", "fp16", "fp32", "fp8", "int8", "int4")

_TORCH_DTYPES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp16",  # vLLM dtype=auto serves fp32 checkpoints in fp16 (see module docstring)
    "float": "fp16",
}

MXFP4_BLOCK = 32
"""Values per shared scale in MXFP4 (OCP Microscaling Formats v1.0: block size 32, E8M0 scale)."""

_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "recurrent_gemma"}
_QKV_BIAS_FAMILIES = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"}
_ALL_LAYERS_SLIDE = {"mistral", "mixtral", "phi3", "starcoder2"}
_MLA_FAMILIES = {"deepseek_v2", "deepseek_v3", "kimi_k2"}

# config.json key -> Architecture field, for names that differ between families
_ALIASES = {
    "num_local_experts": "num_experts",  # Mixtral
    "n_routed_experts": "num_experts",  # DeepSeek V2/V3
}

_COPIED = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "attention_bias",
    "mlp_bias",
    "num_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "n_shared_experts",
    "shared_expert_intermediate_size",
    "first_k_dense_replace",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "num_nextn_predict_layers",
)

_REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")

_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    # transformers src/transformers/models/gemma3/configuration_gemma3.py Gemma3TextConfig.__init__
    # defaults: Gemma 3's published config.json files (e.g. google/gemma-3-27b-it) leave vocab_size,
    # max_position_embeddings and sliding_window_pattern out of text_config and rely on them.
    "gemma3_text": {
        "vocab_size": 262_208,
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131_072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
}
"""Keys a family's transformers configuration class fills in when config.json leaves them out."""


def with_family_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config with its family's transformers defaults under the keys it does not set."""
    defaults = _FAMILY_DEFAULTS.get(str(cfg.get("model_type", "")))
    return {**defaults, **cfg} if defaults else cfg


def read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InputError("file does not exist.", file=path, hint="pass the path of a Hugging Face config.json.")
    if path.is_dir():
        hint = "pass the config.json inside it" + (f": {path / 'config.json'}." if (path / "config.json").is_file() else ".")
        raise InputError("is a directory, a config.json file was expected.", file=path, hint=hint)
    size = path.stat().st_size
    if size == 0:
        raise InputError("file is empty.", file=path, hint="download the model's config.json again.")
    if size > MAX_CONFIG_BYTES:
        raise InputError(f"file is {size / 2**20:.1f} MiB; a config.json is a few KB.", file=path, hint="pass the config.json, not a weights file.")
    doc = safe.parse_json(safe.read_text(path, max_bytes=MAX_CONFIG_BYTES), path, hint="pass a Hugging Face config.json (JSON, not YAML or Python).")
    if not isinstance(doc, dict):
        raise InputError(f"must hold a JSON object at the top level, got {type(doc).__name__}.", file=path, hint="pass a Hugging Face config.json.")
    return doc


def language_config(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The part of the config that describes the language model, and its field-path prefix."""
    if "num_hidden_layers" not in doc:
        for key in ("text_config", "language_config", "llm_config"):
            sub = doc.get(key)
            if isinstance(sub, dict) and ("num_hidden_layers" in sub or str(sub.get("model_type", "")) in _FAMILY_DEFAULTS):
                merged = dict(sub)
                for k in ("quantization_config", "torch_dtype", "dtype", "_name_or_path"):
                    if k not in merged and k in doc:
                        merged[k] = doc[k]
                return merged, key + "."
    return doc, ""


# --------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _sliding(cfg: dict[str, Any], model_type: str, layers: Any) -> tuple[int | None, int | None]:
    """(sliding_window, number of layers that use it), or (None, None) when no layer slides."""
    window = cfg.get("sliding_window")
    if not is_int(window) or window <= 0:
        return None, None
    n = layers if is_int(layers) and layers > 0 else None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        count = sum(1 for t in layer_types if t == "sliding_attention")
        return (window, count) if count else (None, None)
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if not cfg.get("use_sliding_window", False):
            return None, None
        start = cfg.get("max_window_layers")
        if n is not None and is_int(start):
            count = max(0, n - start)
            return (window, count) if count else (None, None)
        return window, n
    if model_type == "gemma2":
        return window, (math.ceil(n / 2) if n is not None else None)
    if model_type.startswith("gemma3"):
        pattern = cfg.get("sliding_window_pattern", cfg.get("_sliding_window_pattern", 6))
        if n is not None and is_int(pattern) and pattern > 0:
            return window, n - n // pattern
        return window, None
    # mistral, mixtral, phi3 and by default: the window applies to every layer
    return window, n


def _check_required(cfg: dict[str, Any], file: str | Path, prefix: str) -> None:
    """Every key the architecture needs is there (under one of its names); else one problem per key."""
    missing = [k for k in _REQUIRED if k not in cfg]
    if "max_position_embeddings" not in cfg and not any(k in cfg for k in ("n_positions", "max_sequence_length", "seq_length")):
        missing.append("max_position_embeddings")
    if "intermediate_size" not in cfg and "moe_intermediate_size" not in cfg and "ffn_dim" not in cfg:
        missing.append("intermediate_size")
    if missing:
        raise InputError(
            problems=[
                Problem(
                    "is required in a Hugging Face config.json but missing.",
                    str(file),
                    prefix + k,
                    "pass the model's own config.json, unedited (it holds every architecture number).",
                )
                for k in missing
            ]
        )


def architecture_from_config(cfg: dict[str, Any], file: str | Path, prefix: str = "") -> Architecture:
    """Map a config.json dictionary onto :class:`Architecture`; errors name file and config key."""
    cfg = with_family_defaults(cfg)
    _check_required(cfg, file, prefix)
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        archs = cfg.get("architectures")
        if isinstance(archs, list) and archs and isinstance(archs[0], str):
            model_type = re.sub(r"For(CausalLM|ConditionalGeneration)$", "", archs[0]).lower()
        else:
            raise InputError(
                "is required (or 'architectures') to know the model family, but missing.",
                file=file,
                field=prefix + "model_type",
                hint="pass the model's own config.json, unedited.",
            )
    arch: dict[str, Any] = {"model_type": model_type}
    wrong: list[Problem] = []
    for key, value in cfg.items():
        target = _ALIASES.get(key, key)
        if target in _COPIED and value is not None and target not in arch:
            if target in ("attention_bias", "mlp_bias") and not isinstance(value, bool):
                wrong.append(Problem(f"must be true or false, got {json.dumps(value, default=str)}.", str(file), prefix + key, "use the value from the model's own config.json."))
            elif target not in ("attention_bias", "mlp_bias") and not is_int(value):
                wrong.append(Problem(f"must be a whole number, got {json.dumps(value, default=str)}.", str(file), prefix + key, "use the value from the model's own config.json."))
            arch[target] = value
    if wrong:
        raise InputError(problems=wrong)
    if "max_position_embeddings" not in arch:
        for alt in ("n_positions", "max_sequence_length", "seq_length"):
            if cfg.get(alt) is not None:
                arch["max_position_embeddings"] = cfg[alt]
                break
    if "intermediate_size" not in arch:
        arch["intermediate_size"] = cfg.get("moe_intermediate_size", cfg.get("ffn_dim"))
    if model_type in _MLA_FAMILIES or arch.get("kv_lora_rank") is not None:
        arch.pop("head_dim", None)  # MLA: per-head sizes are qk_nope/qk_rope/v_head_dim
    tie = cfg.get("tie_word_embeddings")
    arch["tie_word_embeddings"] = tie if isinstance(tie, bool) else model_type in _TIED_BY_DEFAULT
    if model_type in _QKV_BIAS_FAMILIES and "attention_bias" not in cfg:
        arch["attention_bias"] = True
    if model_type == "qwen2_moe" and cfg.get("shared_expert_intermediate_size"):
        arch.setdefault("n_shared_experts", 1)
    window, count = _sliding(cfg, model_type, arch.get("num_hidden_layers"))
    if window is not None:
        arch["sliding_window"] = window
        if count is not None:
            arch["sliding_window_layers"] = count
    return parse_as(Architecture, arch, file, prefix.rstrip("."))


# --------------------------------------------------------------------------------------------
# Weights: dtype and quantization
# --------------------------------------------------------------------------------------------


def read_quantization(cfg: dict[str, Any], file: Path, prefix: str) -> tuple[str | None, Quantization, int | None]:
    """(weight dtype implied by quantization_config or None, Quantization record, TP alignment).

    The alignment is the number of weights along the intermediate dimension that share one scale
    (group size, or FP8 block width): each TP shard must hold whole groups.
    """
    qc = cfg.get("quantization_config")
    if qc is None:
        return None, Quantization(), None
    field = prefix + "quantization_config"
    if not isinstance(qc, dict):
        raise InputError(f"must be an object, got {type(qc).__name__}.", file=file, field=field)
    method = str(qc.get("quant_method", "")).lower()
    bits = qc.get("bits", qc.get("w_bit"))
    group = qc.get("group_size", qc.get("q_group_size"))
    group_size = group if is_int(group) and group > 0 else None  # -1 (GPTQ) = one scale per channel
    if method == "fp8":
        # DeepSeek-V3 style block scales ("weight_block_size": [128, 128]) or per-tensor scales
        block = qc.get("weight_block_size")
        align = block[0] if isinstance(block, list) and block and is_int(block[0]) and block[0] > 0 else None
        return "fp8", Quantization(method="fp8"), align
    if method in ("awq", "gptq"):
        if bits not in (4, 8):
            raise InputError(
                f"{method} with {bits!r} bits is not supported.",
                file=file,
                field=field + ".bits",
                hint="4- and 8-bit AWQ/GPTQ checkpoints are supported; or pass --dtype.",
            )
        return ("int4" if bits == 4 else "int8"), Quantization(method=method, group_size=group_size), group_size  # type: ignore[arg-type]
    if method == "mxfp4":
        # OCP Microscaling FP4 (gpt-oss): 4-bit E2M1 values with one 8-bit E8M0 scale per block of 32,
        # on the MoE experts only (quantization_config.modules_to_not_convert keeps attention,
        # router, embeddings and lm_head in bf16). vLLM pads the experts' intermediate size itself,
        # so the blocks set no TP alignment.
        return "int4", Quantization(method="mxfp4", group_size=MXFP4_BLOCK), None
    if method == "bitsandbytes":
        if qc.get("load_in_4bit"):
            return "int4", Quantization(method="bitsandbytes"), None
        return "int8", Quantization(method="bitsandbytes"), None
    if method == "compressed-tensors":
        return _compressed_tensors(qc, file, field)
    raise InputError(
        f"quant_method {qc.get('quant_method')!r} is not supported.",
        file=file,
        field=field + ".quant_method",
        hint="supported: fp8, awq, gptq, bitsandbytes, compressed-tensors.",
    )


def _compressed_tensors(qc: dict[str, Any], file: Path, field: str) -> tuple[str, Quantization, int | None]:
    """llm-compressor checkpoints: read the weights scheme of the first config group."""
    groups = qc.get("config_groups")
    weights = None
    if isinstance(groups, dict):
        for g in groups.values():
            if isinstance(g, dict) and isinstance(g.get("weights"), dict):
                weights = g["weights"]
                break
    if weights is None:
        raise InputError("has no config_groups.*.weights scheme.", file=file, field=field + ".config_groups", hint="pass --dtype with the weight precision.")
    bits = weights.get("num_bits")
    kind = str(weights.get("type", "int")).lower()
    group = weights.get("group_size")
    group_size = group if is_int(group) and group > 0 else None
    if kind == "float" and bits == 8:
        return "fp8", Quantization(method="compressed-tensors"), None
    if kind == "int" and bits in (4, 8):
        return ("int4" if bits == 4 else "int8"), Quantization(method="compressed-tensors", group_size=group_size), group_size
    raise InputError(f"weights of type {kind!r} with {bits!r} bits are not supported.", file=file, field=field + ".config_groups", hint="pass --dtype with the weight precision.")


def read_torch_dtype(cfg: dict[str, Any], file: Path, prefix: str) -> str:
    raw = cfg.get("torch_dtype", cfg.get("dtype"))
    if raw is None:
        return "bf16"  # transformers >= 4.x writes torch_dtype; absent in a few old configs
    key = str(raw).removeprefix("torch.").lower()
    if key not in _TORCH_DTYPES:
        raise InputError(
            f"torch_dtype {raw!r} is not a weight precision maestro-plan knows.",
            file=file,
            field=prefix + "torch_dtype",
            hint=f"pass --dtype with one of {', '.join(WEIGHT_DTYPES)}.",
        )
    return _TORCH_DTYPES[key]
