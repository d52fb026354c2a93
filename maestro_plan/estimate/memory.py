"""Memory of one replica: weights and KV cache per GPU under tensor parallelism, and vLLM's KV pool.

Weights are counted tensor by tensor from the architecture (names as in a Hugging Face
config.json), with the sharding vLLM applies under TP:

- attention q/k/v (column-parallel) and o (row-parallel) split over TP; with GQA, when TP exceeds
  the KV heads, each GPU holds one replicated KV head (vLLM QKVParallelLinear);
- DeepSeek MLA: q_a_proj and kv_a_proj_with_mqa are replicated, q_b_proj / kv_b_proj / o_proj split;
- dense MLP split; MoE experts split along their intermediate dimension (FusedMoE without expert
  parallelism), shared experts split, the router replicated;
- vocabulary embedding and LM head split over TP after padding the vocabulary to a multiple of 64
  (VocabParallelEmbedding / ParallelLMHead); norms and row-parallel biases replicated.

Quantized checkpoints keep embeddings, LM head, norms and routers in bf16; their linear layers
hold fp8 (1 byte) with fp32 scales per 128x128 block (DeepSeek-V3 weight_scale_inv) or per output
channel, int8 with per-channel fp32 scales, or int4 (0.5 byte) with an fp16 scale and a packed
4-bit zero point per group of `group_size` input rows (AWQ/GPTQ, group 128; GPTQ adds an int32
g_idx per input row). fp32 checkpoints are served in 16-bit (vLLM's dtype "auto").

KV cache per token: 2 x layers x KV heads per GPU x head_dim x KV dtype bytes; MLA stores
(kv_lora_rank + qk_rope_head_dim) per layer and vLLM does not split it over TP (every GPU holds the
whole latent). Sliding-window layers hold at most `sliding_window` tokens of a sequence: the
per-token figure counts every layer (what one more token of a short sequence costs), and
`kv_bytes_per_sequence` caps the sliding-window layers at the window for long sequences; the KV
pool is converted to tokens with the per-token figure (conservative for long Gemma-2 contexts).

Inputs that override the count and the engine defaults: a model's `weight_bytes` (measured) or
`checkpoint_bytes` (the checkpoint's total size, for quantized checkpoints) sets the loaded weight
size, split over TP as the count splits it (loaded_weight_bytes); `reserves` on a GPU type and on
a model override vLLM's gpu_memory_utilization, activation, non-torch and CUDA-graph figures
(engine_for: model over GPU type over maestro_plan/data/vllm.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from maestro_plan.estimate.engine import VLLM, EngineDefaults
from maestro_plan.load.schema import Architecture, GpuType, ModelSpec
from maestro_plan.units import GIB

DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
"""Bytes per stored parameter of a quantized/unquantized linear layer."""

KV_DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1}

NON_GATED_MLP = frozenset({"bloom", "gpt2", "gpt_neox", "falcon", "opt", "gptj", "gpt_bigcode", "starcoder2", "mpt", "phi"})
"""Families whose MLP is up -> act -> down (2 matrices) instead of gate/up/down (3)."""

LAYERNORM_WITH_BIAS = NON_GATED_MLP
"""Families with LayerNorm (weight and bias) instead of RMSNorm (weight only)."""

NO_O_PROJ_BIAS = frozenset({"qwen2", "qwen2_moe"})
"""Families whose attention bias covers q/k/v only (Qwen2: qkv bias, o_proj without)."""


@dataclass(frozen=True)
class _Tensor:
    name: str
    params: int  # parameters held (per GPU when built for a TP degree)
    quantized: bool  # stored in the model's quantized dtype (linear weights inside blocks)
    out_features: int = 0  # shape of a linear weight, for scale bytes
    in_features: int = 0
    fixed_bytes_per_param: float | None = None  # e.g. fp32 router bias


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _split(n: int, tp: int) -> int:
    return _ceil_div(n, tp)


def _kv_heads_per_gpu(kv_heads: int, tp: int) -> int:
    """KV heads one GPU holds: kv/TP, or 1 replicated head when TP > kv heads (vLLM)."""
    return max(1, kv_heads // tp) if tp <= kv_heads else 1


def _is_quantized(model: ModelSpec) -> bool:
    return model.weight_dtype in ("fp8", "int8", "int4")


def _quantizes(model: ModelSpec, tensor: _Tensor) -> bool:
    """MXFP4 checkpoints (gpt-oss) quantize the MoE experts only (modules_to_not_convert: attention,
    router, embeddings, lm_head stay bf16); other methods every linear layer."""
    return model.quantization.method != "mxfp4" or tensor.name.startswith("experts.")


def _norm_params(a: Architecture, width: int) -> int:
    return width * (2 if a.model_type in LAYERNORM_WITH_BIAS else 1)


def _tensors(model: ModelSpec, tp: int, *, per_gpu: bool, include_mtp: bool = False, engine: EngineDefaults = VLLM) -> list[_Tensor]:
    """Every weight tensor group of the model, sized for one GPU of a TP group (per_gpu) or whole."""
    a = model.architecture
    t = tp if per_gpu else 1
    out: list[_Tensor] = []
    hidden = a.hidden_size
    layers = a.num_hidden_layers + ((a.num_nextn_predict_layers or 0) if include_mtp else 0)

    def lin(name: str, out_f: int, in_f: int, *, bias: bool = False, bias_replicated_full: int = 0, quant: bool = True, count: int = 1) -> None:
        out.append(_Tensor(name, count * out_f * in_f, quant, out_f, in_f))
        if bias:
            out.append(_Tensor(name + ".bias", count * (bias_replicated_full or out_f), False))

    # embeddings and head
    vocab = a.vocab_size
    if per_gpu:
        vocab = _split(_ceil_div(vocab, engine.vocab_padding) * engine.vocab_padding, t)
    out.append(_Tensor("embed_tokens", vocab * hidden, False))
    if not a.tie_word_embeddings:
        out.append(_Tensor("lm_head", vocab * hidden, False))
    out.append(_Tensor("norm", _norm_params(a, hidden), False))
    if a.model_type == "bloom":
        out.append(_Tensor("word_embeddings_layernorm", 2 * hidden, False))

    heads = _split(a.num_attention_heads, t)
    norms_per_layer = 4 if a.model_type in ("gemma2", "gemma3") else 2

    for layer in range(layers):
        out.append(_Tensor("layer_norms", norms_per_layer * _norm_params(a, hidden), False))
        # ---- attention
        if a.is_mla:
            assert a.kv_lora_rank and a.qk_rope_head_dim and a.qk_nope_head_dim and a.v_head_dim
            qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim
            if a.q_lora_rank:
                lin("q_a_proj", a.q_lora_rank, hidden)  # replicated
                out.append(_Tensor("q_a_layernorm", a.q_lora_rank, False))
                lin("q_b_proj", heads * qk_head, a.q_lora_rank)
            else:
                lin("q_proj", heads * qk_head, hidden)
            lin("kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, hidden)  # replicated
            out.append(_Tensor("kv_a_layernorm", a.kv_lora_rank, False))
            lin("kv_b_proj", heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank)
            lin("o_proj", hidden, heads * a.v_head_dim)
        else:
            hd = a.head_size
            kvh = _kv_heads_per_gpu(a.kv_heads, t) if per_gpu else a.kv_heads
            b = a.attention_bias
            lin("q_proj", heads * hd, hidden, bias=b)
            lin("k_proj", kvh * hd, hidden, bias=b)
            lin("v_proj", kvh * hd, hidden, bias=b)
            lin("o_proj", hidden, heads * hd, bias=b and a.model_type not in NO_O_PROJ_BIAS, bias_replicated_full=hidden)
            if a.model_type in ("qwen3", "qwen3_moe", "gemma3"):
                out.append(_Tensor("qk_norm", 2 * hd, False))
        # ---- MLP or experts
        dense_layer = not a.is_moe or (a.first_k_dense_replace is not None and layer < a.first_k_dense_replace)
        gated = a.model_type not in NON_GATED_MLP
        if dense_layer:
            inter = _split(a.intermediate_size, t)
            if gated:
                lin("gate_up_proj", inter, hidden, bias=a.mlp_bias, count=2)
            else:
                lin("up_proj", inter, hidden, bias=a.mlp_bias)
            lin("down_proj", hidden, inter, bias=a.mlp_bias, bias_replicated_full=hidden)
        else:
            assert a.num_experts is not None
            e_inter = _split(a.moe_intermediate_size or a.intermediate_size, t)
            lin("experts.gate_up", e_inter, hidden, count=2 * a.num_experts)
            lin("experts.down", hidden, e_inter, count=a.num_experts)
            lin("router", a.num_experts, hidden, quant=False)  # replicated, kept in 16-bit
            if a.is_mla:  # DeepSeek-V3 noaux_tc routing bias (fp32)
                out.append(_Tensor("router.e_score_correction_bias", a.num_experts, False, fixed_bytes_per_param=4.0))
            shared = 0
            if a.n_shared_experts:
                shared = a.n_shared_experts * (a.moe_intermediate_size or a.intermediate_size)
            elif a.shared_expert_intermediate_size:
                shared = a.shared_expert_intermediate_size
                lin("shared_expert_gate", 1, hidden, quant=False)
            if shared:
                s_inter = _split(shared, t)
                lin("shared_experts.gate_up", s_inter, hidden, count=2)
                lin("shared_experts.down", hidden, s_inter)
        if a.is_mla and include_mtp and layer >= a.num_hidden_layers:
            # DeepSeek-V3 MTP module: enorm, hnorm, eh_proj (2h -> h), shared_head norm
            # the checkpoint's MTP layer also carries its own copy of the embedding and head
            out.append(_Tensor("mtp.norms", 3 * hidden, False))
            lin("mtp.eh_proj", hidden, 2 * hidden, quant=False)
            out.append(_Tensor("mtp.embed_and_head", 2 * vocab * hidden, False))
    return out


def _scale_bytes(model: ModelSpec, tensor: _Tensor) -> float:
    """Bytes of quantization scales (and zero points) of one quantized linear tensor group."""
    if not tensor.quantized or not _is_quantized(model) or not tensor.out_features or not _quantizes(model, tensor):
        return 0.0
    count = tensor.params // (tensor.out_features * tensor.in_features)
    o, i = tensor.out_features, tensor.in_features
    q = model.quantization
    if model.weight_dtype == "fp8":
        if q.group_size:  # block-wise fp32 scales (DeepSeek-V3: weight_block_size [128, 128])
            return count * _ceil_div(o, q.group_size) * _ceil_div(i, q.group_size) * 4.0
        return count * o * 4.0  # per output channel
    if model.weight_dtype == "int8":
        return count * o * 4.0
    if q.method == "mxfp4":  # one 8-bit E8M0 scale per block of group_size (32) values, no zero point
        return count * o * _ceil_div(i, q.group_size or 32) * 1.0
    # int4: per group of g input rows, an fp16 scale, plus a packed 4-bit zero point (AWQ/GPTQ)
    g = q.group_size or 128
    groups = _ceil_div(i, g) * o
    per_group = 2.0 if q.method == "compressed-tensors" else 2.5
    extra = i * 4.0 if q.method == "gptq" else 0.0
    return count * (groups * per_group + extra)


def _bytes(model: ModelSpec, tensors: list[_Tensor], *, as_stored: bool) -> int:
    wd = model.weight_dtype
    if wd == "fp32" and not as_stored:
        wd = "bf16"  # vLLM dtype "auto" serves fp32 checkpoints in 16-bit
    q_bytes = DTYPE_BYTES[wd]
    plain = 4.0 if (wd == "fp32") else 2.0
    total = 0.0
    for t in tensors:
        if t.fixed_bytes_per_param is not None:
            total += t.params * t.fixed_bytes_per_param
        elif t.quantized and _is_quantized(model) and _quantizes(model, t):
            total += t.params * q_bytes + _scale_bytes(model, t)
        else:
            total += t.params * (q_bytes if not _is_quantized(model) else plain)
    return int(math.ceil(total))


def param_count(model: ModelSpec, *, include_mtp: bool = False) -> int:
    """Parameters of the checkpoint as counted from the architecture (no scales)."""
    return sum(t.params for t in _tensors(model, 1, per_gpu=False, include_mtp=include_mtp))


def active_param_count(model: ModelSpec) -> int:
    """Parameters one token touches (MoE: top-k routed experts plus shared ones)."""
    a = model.architecture
    total = 0
    for t in _tensors(model, 1, per_gpu=False):
        if t.name.startswith("experts.") and a.num_experts and a.num_experts_per_tok:
            total += t.params * a.num_experts_per_tok // a.num_experts
        elif t.name == "embed_tokens":
            continue  # a lookup, not a matmul
        else:
            total += t.params
    if a.tie_word_embeddings:
        total += a.vocab_size * a.hidden_size  # the tied head is a matmul
    return total


def weight_bytes_total(model: ModelSpec, *, as_stored: bool = False, include_mtp: bool = False) -> int:
    """Bytes of all weights (scales included). as_stored: as in the checkpoint files (fp32 stays 4
    bytes); include_mtp: DeepSeek-V3's multi-token-prediction layer, in the checkpoint but not loaded
    by vLLM unless speculative decoding is on."""
    return _bytes(model, _tensors(model, 1, per_gpu=False, include_mtp=include_mtp), as_stored=as_stored)


_PER_GPU_CACHE: dict[tuple[int, int, int], tuple[ModelSpec, EngineDefaults, int]] = {}


def loaded_weight_bytes(model: ModelSpec) -> int:
    """Bytes of weights the engine loads, whole model: the model's measured `weight_bytes`; else
    its `checkpoint_bytes` less what vLLM does not load (the checkpoint scaled by the architecture
    count loaded / as stored with the MTP layer: 1 for plain bf16 checkpoints, DeepSeek-V3's MTP
    layer removed); else the architecture count (weight_bytes_total)."""
    if model.weight_bytes is not None:
        return int(model.weight_bytes)
    counted = weight_bytes_total(model)
    if model.checkpoint_bytes is None:
        return counted
    stored = weight_bytes_total(model, as_stored=True, include_mtp=True)
    return int(math.ceil(model.checkpoint_bytes * counted / stored)) if stored > 0 else int(model.checkpoint_bytes)


def weights_bytes_per_gpu(model: ModelSpec, tp: int, *, engine: EngineDefaults = VLLM) -> int:
    """Bytes of weights one GPU of a TP group holds (sharded parts / TP + replicated parts), scaled
    to the loaded size when the model gives one (loaded_weight_bytes: a measured size or its
    checkpoint's, e.g. quantized checkpoints the architecture count cannot size exactly).
    Cached per (model object, TP, engine object): models are frozen."""
    _check_tp(tp)
    key = (id(model), tp, id(engine))
    hit = _PER_GPU_CACHE.get(key)
    if hit is not None and hit[0] is model and hit[1] is engine:
        return hit[2]
    value = _bytes(model, _tensors(model, tp, per_gpu=True, engine=engine), as_stored=False)
    if model.weight_bytes is not None or model.checkpoint_bytes is not None:
        counted = weight_bytes_total(model)
        loaded = loaded_weight_bytes(model)
        if counted > 0 and loaded != counted:
            value = int(math.ceil(value * loaded / counted))
    _PER_GPU_CACHE[key] = (model, engine, value)
    return value


_ENGINE_CACHE: dict[tuple[int, int, int], tuple[ModelSpec, GpuType, EngineDefaults, EngineDefaults]] = {}


def engine_for(model: ModelSpec, gpu: GpuType, engine: EngineDefaults = VLLM) -> EngineDefaults:
    """`engine` with the GPU type's and then the model's memory reserves applied (schema
    EngineReserves: gpu_memory_utilization, activation, non-torch and CUDA-graph bytes); the
    engine itself when neither sets any. Cached per (model, GPU, engine) object."""
    layers = [r for r in (getattr(gpu, "reserves", None), getattr(model, "reserves", None)) if r is not None]
    if not layers:
        return engine
    key = (id(model), id(gpu), id(engine))
    hit = _ENGINE_CACHE.get(key)
    if hit is not None and hit[0] is model and hit[1] is gpu and hit[2] is engine:
        return hit[3]
    upd: dict[str, float | int] = {}
    for r in layers:
        if r.gpu_memory_utilization is not None:
            upd["gpu_memory_utilization"] = float(r.gpu_memory_utilization)
        if r.activation_bytes is not None:
            upd["activation_bytes_dense"] = upd["activation_bytes_moe"] = int(r.activation_bytes)
        for f in ("non_torch_bytes_tp1", "non_torch_bytes_tp_multi", "cuda_graph_bytes"):
            if getattr(r, f) is not None:
                upd[f] = int(getattr(r, f))
    out = replace(engine, **upd)
    _ENGINE_CACHE[key] = (model, gpu, engine, out)
    return out


def kv_dtype_bytes(model: ModelSpec) -> int:
    if model.kv_cache_dtype == "auto":
        return 2  # the activation dtype: bf16/fp16 (quantized and fp32 checkpoints too)
    return KV_DTYPE_BYTES[model.kv_cache_dtype]


def _kv_per_layer_per_token(model: ModelSpec, tp: int) -> int:
    a = model.architecture
    b = kv_dtype_bytes(model)
    if a.is_mla:
        assert a.kv_lora_rank and a.qk_rope_head_dim
        return (a.kv_lora_rank + a.qk_rope_head_dim) * b  # not split over TP in vLLM
    return 2 * _kv_heads_per_gpu(a.kv_heads, tp) * a.head_size * b


def sliding_layers(model: ModelSpec) -> int:
    a = model.architecture
    if a.sliding_window is None:
        return 0
    return a.num_hidden_layers if a.sliding_window_layers is None else a.sliding_window_layers


def kv_bytes_per_token_per_gpu(model: ModelSpec, tp: int) -> int:
    """KV bytes one more token costs on one GPU, all layers (sliding-window layers included)."""
    _check_tp(tp)
    return model.architecture.num_hidden_layers * _kv_per_layer_per_token(model, tp)


def kv_bytes_per_sequence(model: ModelSpec, tp: int, tokens: float) -> float:
    """KV bytes per GPU of one sequence of `tokens` tokens; sliding-window layers hold at most the window."""
    per_layer = _kv_per_layer_per_token(model, tp)
    n_swa = sliding_layers(model)
    full = model.architecture.num_hidden_layers - n_swa
    window = model.architecture.sliding_window or 0
    return per_layer * (full * tokens + n_swa * min(tokens, window))


def kv_bytes_read_per_token(model: ModelSpec, tp: int, context: float) -> float:
    """KV bytes a decode step reads for one sequence holding `context` tokens (per GPU)."""
    return kv_bytes_per_sequence(model, tp, context)


def _check_tp(tp: int) -> None:
    if not isinstance(tp, int) or tp < 1:
        raise ValueError(f"TP degree must be a positive integer, got {tp!r}")


@dataclass(frozen=True)
class MemoryBreakdown:
    """How vLLM divides one GPU of a replica (all byte figures per GPU)."""

    budget_bytes_per_gpu: int  # gpu_memory_utilization x HBM bytes
    weights_bytes_per_gpu: int
    activation_bytes_per_gpu: int
    non_torch_bytes_per_gpu: int  # CUDA context, NCCL buffers (and CUDA graphs, see cuda_graph_bytes_per_gpu)
    kv_bytes_per_token_per_gpu: int
    kv_pool_bytes_per_gpu: int  # what is left for KV (or the explicit KV budget if given)
    max_kv_tokens: int  # tokens of KV the whole replica holds (block-rounded)
    fits: bool  # the pool holds at least one block (and one max_model_len request when given)
    cuda_graph_bytes_per_gpu: int = 0
    hbm_bytes_per_gpu: int = 0
    gpu_memory_utilization: float = 0.0
    tp: int = 1
    max_model_len: int | None = None
    shortfall_bytes_per_gpu: int = 0  # how much more memory one GPU would need to fit (0 when it fits)
    fits_max_model_len: bool = False  # the pool holds one request of max_model_len (the model's context
    # length when not given): vLLM refuses to start otherwise

    @property
    def max_concurrency_at_max_len(self) -> float:
        """vLLM's 'Maximum concurrency for N tokens per request' line."""
        if not self.max_model_len:
            return 0.0
        return self.max_kv_tokens / self.max_model_len


def hbm_bytes(gpu: GpuType) -> int:
    return int(gpu.hbm_gib * GIB)


def replica_memory(
    model: ModelSpec,
    gpu: GpuType,
    tp: int,
    *,
    gpu_memory_utilization: float | None = None,
    kv_cache_bytes_per_gpu: int | None = None,
    engine: EngineDefaults = VLLM,
    max_model_len: int | None = None,
) -> MemoryBreakdown:
    """vLLM's memory accounting for one replica of `model` on `tp` GPUs of type `gpu`.

    KV pool per GPU = gpu_memory_utilization x HBM - weights - activation peak - non-torch memory -
    CUDA-graph memory (counted at start-up since vLLM v0.21.0), or `kv_cache_bytes_per_gpu` when
    given (--kv-cache-memory-bytes, which ignores gpu_memory_utilization). KV tokens = pool / KV
    bytes per token per GPU, rounded down to whole blocks (vllm/v1/core/kv_cache_utils.py).

    `fits`: the pool holds at least one block, or one request of `max_model_len` when that is given.
    `fits_max_model_len`: the pool holds one request of `max_model_len` (default: the model's
    context length), the condition under which vLLM starts at all with that --max-model-len.
    """
    _check_tp(tp)
    engine = engine_for(model, gpu, engine)
    util = engine.gpu_memory_utilization if gpu_memory_utilization is None else gpu_memory_utilization
    if not 0 < util <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {util}")
    hbm = hbm_bytes(gpu)
    budget = int(hbm * util)
    weights = weights_bytes_per_gpu(model, tp, engine=engine)
    act = engine.activation_bytes(model.architecture.is_moe)
    non_torch = engine.non_torch_bytes(tp)
    graphs = engine.cuda_graph_bytes
    kv_tok = kv_bytes_per_token_per_gpu(model, tp)
    if kv_cache_bytes_per_gpu is not None:
        pool = int(kv_cache_bytes_per_gpu)
        needed = weights + act + non_torch + graphs + pool
        short = max(0, needed - hbm)
    else:
        pool = budget - weights - act - non_torch - graphs
        short = max(0, -pool)
    blocks = max(0, pool) // (kv_tok * engine.block_size) if kv_tok else 0
    tokens = int(blocks * engine.block_size)
    need_tokens = engine.block_size
    if max_model_len:
        need_tokens = _ceil_div(max_model_len, engine.block_size) * engine.block_size
    fits = pool > 0 and tokens >= need_tokens and short == 0
    if pool > 0 and tokens < need_tokens and short == 0:
        short = int((need_tokens - tokens) * kv_tok)
    full_len = _ceil_div(max_model_len or model.context_len, engine.block_size) * engine.block_size
    fits_full = pool > 0 and short == 0 and tokens >= full_len
    return MemoryBreakdown(
        budget_bytes_per_gpu=budget,
        weights_bytes_per_gpu=weights,
        activation_bytes_per_gpu=act,
        non_torch_bytes_per_gpu=non_torch,
        kv_bytes_per_token_per_gpu=kv_tok,
        kv_pool_bytes_per_gpu=pool,
        max_kv_tokens=tokens,
        fits=fits,
        cuda_graph_bytes_per_gpu=graphs,
        hbm_bytes_per_gpu=hbm,
        gpu_memory_utilization=util,
        tp=tp,
        max_model_len=max_model_len,
        shortfall_bytes_per_gpu=short,
        fits_max_model_len=fits_full,
    )


def kv_tokens_in(model: ModelSpec, tp: int, pool_bytes_per_gpu: int, *, engine: EngineDefaults = VLLM) -> int:
    """Block-rounded KV tokens a pool of `pool_bytes_per_gpu` holds."""
    kv_tok = kv_bytes_per_token_per_gpu(model, tp)
    return int(max(0, pool_bytes_per_gpu) // (kv_tok * engine.block_size) * engine.block_size)
