"""Turn a Hugging Face ``config.json`` into a model catalogue entry (:class:`ModelSpec`); the
config itself is read by hf_config.py.

    import_hf_config(path, *, model_id, hf_repo, weight_dtype, max_model_len, tp_degrees) -> ModelSpec
    allowed_tp(arch) -> list[int]                            TP degrees vLLM accepts
    spec_to_yaml(spec, header) -> str                        a catalogue file's text (deterministic)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.errors import InputError
from maestro_plan.load import safe
from maestro_plan.load.importers.hf_config import (
    WEIGHT_DTYPES,
    architecture_from_config,
    is_int,
    language_config,
    read_config,
    read_quantization,
    read_torch_dtype,
)
from maestro_plan.load.loader import parse_as, tp_allowed
from maestro_plan.load.schema import Architecture, ModelSpec, Quantization

CANDIDATE_TP = (1, 2, 4, 8)
"""TP degrees considered when none are given: one node of up to 8 GPUs."""


_REPO_RE = re.compile(r"^[\w.\-]+/[\w.\-]+$")


def repo_from_file_name(path: Path) -> str | None:
    """ORG/NAME from a file or folder named ORG--NAME (the Hugging Face cache's spelling), e.g.
    openai--gpt-oss-20b.json or openai--gpt-oss-20b/config.json."""
    for name in (path.stem, path.parent.name):
        org, sep, rest = name.partition("--")
        if sep and org and rest and _REPO_RE.match(f"{org}/{rest}"):
            return f"{org}/{rest}"
    return None


def _repo_from(doc: dict[str, Any], path: Path) -> str | None:
    name = doc.get("_name_or_path")
    if isinstance(name, str) and _REPO_RE.match(name) and not name.startswith("."):
        return name
    # Hugging Face cache layout: .../models--ORG--NAME/snapshots/<sha>/config.json
    for part in path.resolve().parts:
        if part.startswith("models--") and part.count("--") >= 2:
            org, _, rest = part.removeprefix("models--").partition("--")
            candidate = f"{org}/{rest}"
            if _REPO_RE.match(candidate):
                return candidate
    return None


def slug(text: str) -> str:
    """A catalogue id from a repo or model name: lower-case DNS-1123 style, at most 63 chars."""
    s = re.sub(r"[^a-z0-9.\-]+", "-", text.lower())
    s = re.sub(r"-{2,}", "-", s).strip("-.")
    return s[:63].rstrip("-.") or "model"


def _split_sizes(arch: Architecture) -> list[int]:
    """Matrix dimensions split by TP (column outputs / row inputs) that a quantized kernel needs aligned."""
    sizes = [arch.intermediate_size]
    if arch.moe_intermediate_size:
        sizes.append(arch.moe_intermediate_size)
    return sizes


def allowed_tp(arch: Architecture, candidates: tuple[int, ...] = CANDIDATE_TP, align: int | None = None) -> list[int]:
    """TP degrees vLLM accepts for this architecture.

    Heads: attention heads split evenly, KV heads split or replicate evenly (vLLM
    ``ModelConfig.verify_with_parallel_config`` and ``QKVParallelLinear``); MLA keeps one latent KV
    head. Group-quantized weights (AWQ/GPTQ, compressed-tensors int): the row-parallel input
    (intermediate / TP) must be a multiple of the group size, else vLLM stops with "The input size
    is not aligned with the quantized weight shape". FP8 block scales: intermediate / TP must be a
    multiple of the block width ("weight_block_size"). ``align`` is that group or block size.
    """
    kv = 1 if arch.is_mla else arch.kv_heads
    out = []
    for tp in candidates:
        if not tp_allowed(arch.num_attention_heads, kv, tp):
            continue
        if any(s % tp for s in _split_sizes(arch)):
            continue
        if align and any((s // tp) % align for s in _split_sizes(arch)):
            continue
        out.append(tp)
    return out


def _checkpoint_bytes(config_path: Path) -> int | None:
    """metadata.total_size of a model.safetensors.index.json lying beside config.json, if any."""
    index = config_path.parent / "model.safetensors.index.json"
    if not index.is_file():
        return None
    try:
        doc = safe.json_loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("is not valid JSON.", file=index, hint="download it again, or remove it (it is only used for checkpoint_bytes).") from None
    total = doc.get("metadata", {}).get("total_size") if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) else None
    return int(total) if is_int(total) and total > 0 else None


def _weight_dtype(
    weight_dtype: str | None, implied: str | None, quant: Quantization, cfg: dict[str, Any], path: Path, prefix: str
) -> tuple[str, Quantization]:
    """The weight precision (--dtype, else what quantization_config or torch_dtype say) and the
    quantization it implies; --dtype must agree with a quantized checkpoint."""
    if weight_dtype is not None:
        if weight_dtype not in WEIGHT_DTYPES:
            raise InputError(f"--dtype {weight_dtype!r} is not a weight precision.", field="--dtype", hint=f"use one of {', '.join(WEIGHT_DTYPES)}.")
        dtype = weight_dtype
        if implied is not None and implied != dtype:
            raise InputError(
                f"--dtype {dtype} contradicts the checkpoint, whose quantization_config gives {implied} weights.",
                file=path,
                field=prefix + "quantization_config",
                hint="leave --dtype out to use the checkpoint's precision.",
            )
        if implied is None and dtype == "fp8":
            quant = Quantization(method="fp8")  # vLLM --quantization fp8: weights quantized at load
        elif implied is None and dtype in ("int4", "int8"):
            raise InputError(
                f"--dtype {dtype} needs a quantized checkpoint (AWQ, GPTQ, ...), but this config has no quantization_config.",
                file=path,
                field="--dtype",
                hint="import the config.json of the quantized checkpoint instead.",
            )
    else:
        dtype = implied or read_torch_dtype(cfg, path, prefix)
    return dtype, quant


def _tp_degrees(arch: Architecture, tp_degrees: list[int] | None, align: int | None, path: Path, prefix: str) -> list[int]:
    """--tp-degrees if vLLM accepts every one of them for this architecture, else those of CANDIDATE_TP it accepts."""
    if tp_degrees is None:
        tps = allowed_tp(arch, align=align)
        if not tps:
            raise InputError(
                f"no TP degree of {', '.join(map(str, CANDIDATE_TP))} splits {arch.num_attention_heads} attention heads, {arch.kv_heads} KV heads and intermediate size {arch.intermediate_size} evenly.",
                file=path,
                field=prefix + "num_attention_heads",
                hint="pass --tp-degrees with the degrees you serve it at.",
            )
    else:
        tps = sorted(set(tp_degrees))
        bad = [tp for tp in tps if tp not in allowed_tp(arch, tuple(tps), align)]
        if bad:
            raise InputError(
                f"TP {', '.join(map(str, bad))} does not split this model: {arch.num_attention_heads} attention heads, {arch.kv_heads} KV heads, intermediate size {arch.intermediate_size}.",
                field="--tp-degrees",
                hint=f"allowed among 1, 2, 4, 8: {', '.join(map(str, allowed_tp(arch, align=align))) or 'none'}.",
            )
    return tps


# Over 60 lines with its signature and docstring (16 lines); the body is the import's steps in order, each a call or one check.
def import_hf_config(
    path: Path,
    *,
    model_id: str | None = None,
    hf_repo: str | None = None,
    weight_dtype: str | None = None,
    max_model_len: int | None = None,
    tp_degrees: list[int] | None = None,
) -> ModelSpec:
    """Read a Hugging Face config.json and return the catalogue entry for it.

    ``hf_repo`` defaults to the config's ``_name_or_path`` or the Hugging Face cache folder it lies
    in; ``model_id`` to the repo name in lower case; ``weight_dtype`` to what ``quantization_config``
    or ``torch_dtype`` say; ``tp_degrees`` to those of 1, 2, 4, 8 that vLLM accepts. Every problem is
    an :class:`InputError` naming the file and the config key.
    """
    path = Path(path)
    doc = read_config(path)
    cfg, prefix = language_config(doc)
    arch = architecture_from_config(cfg, path, prefix)

    implied, quant, align = read_quantization(cfg, path, prefix)
    dtype, quant = _weight_dtype(weight_dtype, implied, quant, cfg, path, prefix)

    repo = hf_repo or _repo_from(doc, path)
    from_name = None
    if repo is None:
        repo = from_name = repo_from_file_name(path)
    if repo is None:
        raise InputError(
            "does not say which Hugging Face repository it belongs to (no '_name_or_path'), and its file name does not either.",
            file=path,
            field="hf_repo",
            hint="pass --hf-repo ORG/NAME (e.g. --hf-repo openai/gpt-oss-20b), or name the file ORG--NAME.json (e.g. openai--gpt-oss-20b.json).",
        )
    if not _REPO_RE.match(repo):
        raise InputError(f"--hf-repo {repo!r} is not of the form ORG/NAME.", field="--hf-repo", hint="e.g. --hf-repo Qwen/Qwen2.5-7B-Instruct.")
    mid = model_id or slug(repo.split("/", 1)[1])

    tps = _tp_degrees(arch, tp_degrees, align, path, prefix)

    spec: dict[str, Any] = {
        "id": mid,
        "hf_repo": repo,
        "description": f"Imported from {path.name} with maestro-plan import model."
        + (f" The config has no '_name_or_path': repository {repo} (and id) inferred from the file name {path.name}." if from_name else ""),
        "architecture": arch.model_dump(exclude_none=True, exclude_defaults=False),
        "weight_dtype": dtype,
        "quantization": quant.model_dump(exclude_none=True),
        "kv_cache_dtype": "auto",
        "tp_degrees": tps,
        "source": f"https://huggingface.co/{repo}/blob/main/config.json",
    }
    if max_model_len is not None:
        if max_model_len > arch.max_position_embeddings:
            raise InputError(
                f"--max-model-len {max_model_len} exceeds the model's max_position_embeddings {arch.max_position_embeddings}.",
                file=path,
                field="--max-model-len",
                hint=f"use at most {arch.max_position_embeddings}, or import a config with rope scaling that extends the context.",
            )
        spec["max_model_len"] = max_model_len
    ckpt = _checkpoint_bytes(path)
    if ckpt is not None:
        spec["checkpoint_bytes"] = ckpt
    return parse_as(ModelSpec, spec, path)


class _CatalogueDumper(yaml.SafeDumper):
    """Block style, with short lists of numbers in flow style ([1, 2, 4, 8])."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_CatalogueDumper.add_representer(list, _represent_list)


def spec_to_yaml(spec: ModelSpec, header: str | None = None) -> str:
    """The text of models/<id>.yaml for ``spec``: schema field order, defaults left out."""
    data = spec.model_dump(mode="json", exclude_none=True)
    arch_defaults = {k: f.default for k, f in Architecture.model_fields.items() if f.default is not None}
    data["architecture"] = {k: v for k, v in data["architecture"].items() if arch_defaults.get(k, object()) != v or k == "tie_word_embeddings"}
    if data.get("quantization") == {"method": "none"}:
        data.pop("quantization")
    body = yaml.dump(data, Dumper=_CatalogueDumper, sort_keys=False, allow_unicode=True, width=100)
    if header:
        lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        return lines + body
    return body
