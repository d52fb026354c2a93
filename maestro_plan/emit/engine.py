"""The `vllm serve` command lines of a pod, and the shell script that runs several of them.

Everything that reaches a shell is (1) a SAFE_ID-checked plan string or a catalogue value, and
(2) shlex.quote'd where it is interpolated; tests parse every emitted script with `bash -n` and
compile every embedded Python snippet, so a quoting bug cannot ship.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import yaml

from maestro_plan.emit.common import HEALTH_PATH, Engine, engine_defaults
from maestro_plan.load.schema import Inputs, ModelSpec
from maestro_plan.plan.schema import Replica

VLLM_YAML = Path(__file__).resolve().parent.parent / "data" / "vllm.yaml"

SLEEP_LEVEL = 1
"""vLLM sleep level of a standby engine: level 1 offloads the weights to CPU (host DRAM) and drops
the KV cache, so waking costs weight bytes / host-to-GPU bandwidth, the cold start the plan priced
(docs/features/sleep_mode.md: "level=1 (default) offloads weights and discards KV cache")."""

DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
"""The env var that makes vLLM's API server expose /sleep, /wake_up and /is_sleeping (docs/features/
sleep_mode.md: "These endpoints are only available when passing VLLM_SERVER_DEV_MODE=1")."""


@functools.cache
def flag_table() -> dict[str, Any]:
    """`vllm serve` flag -> kind (int/float/str/bool) or list of choices, for the pinned version."""
    return dict(yaml.safe_load(VLLM_YAML.read_text(encoding="utf-8"))["flags"])


def check_flags(args: list[str]) -> None:
    """Raise ValueError when an argument list has a flag or a value the pinned vLLM would reject."""
    table = flag_table()
    i = 1  # args[0] is the model
    while i < len(args):
        flag = args[i]
        if flag not in table:
            raise ValueError(f"vllm serve has no flag {flag!r} in the pinned flag table")
        kind = table[flag]
        if kind == "bool":
            i += 1
            continue
        value = args[i + 1]
        if isinstance(kind, list) and value not in kind:
            raise ValueError(f"{flag} {value!r}: vLLM accepts {kind}")
        if kind in ("int", "float"):
            (int if kind == "int" else float)(value)
        i += 2


def kv_dtype_flag(spec: ModelSpec) -> str | None:
    """Catalogue kv_cache_dtype -> vLLM --kv-cache-dtype value (None: leave vLLM's 'auto').

    vLLM's choices (data/vllm.yaml flags) have no 'float16': 'auto' stores the KV cache in the
    activation dtype, which is fp16 for fp16 and fp32 checkpoints (vLLM serves fp32 as fp16) and
    bf16 for the others. So fp16 on fp16/fp32 weights is 'auto'; fp16 on bf16 activations cannot be
    asked of vLLM and is left to 'auto' (bf16): the same 2 bytes per element, so the planned KV pool
    (estimate/memory.py kv_dtype_bytes) is unchanged."""
    return {"auto": None, "bf16": "bfloat16", "fp16": None, "fp8": "fp8"}[spec.kv_cache_dtype]


def _max_model_len(r: Replica, spec: ModelSpec, standby: bool) -> int:
    if not standby:
        return r.max_model_len
    own = spec.max_model_len or spec.architecture.max_position_embeddings
    return min(r.max_model_len, own)


def engine_args(r: Replica, inputs: Inputs, port: int, *, model: str | None = None, dp: int = 1) -> list[str]:
    """The `vllm serve` arguments that realise one planned replica (model as positional argument:
    `--model` with `vllm serve` is deprecated and logs a warning since v0.11). With `model` set, the
    engine is a warm standby of that model on the swap slot `r`: started with --enable-sleep-mode,
    sized by the slot's memory fraction (vLLM fits the KV pool into what the model's weights leave)."""
    eng = engine_defaults()
    standby = model is not None
    name = model or r.model
    spec = inputs.models[name]
    args = [spec.hf_repo, "--served-model-name", name, "--port", str(port), "--tensor-parallel-size", str(r.tp)]
    if standby:
        args += ["--host", "127.0.0.1"]  # reached through the wake proxy of its pod only
    if dp > 1:  # identical replicas of one pod as DP ranks of one server (common.py _dp_groups)
        args += ["--data-parallel-size", str(dp)]
    if r.worker_nodes:
        args += ["--pipeline-parallel-size", str(1 + len(r.worker_nodes)), "--distributed-executor-backend", "ray"]
    # Co-located engines (solve/problem.py) run with their memory share of the GPU: the bytes they
    # were sized to / HBM. vLLM still checks it at start-up with --kv-cache-memory-bytes set
    # (vllm/v1/worker/utils.py request_memory: free memory >= ceil(total x utilization), called from
    # the worker's init_device), while the KV cache itself is then sized by --kv-cache-memory-bytes
    # alone (vllm/config/cache.py: "ignores gpu_memory_utilization"). The pod starts its engines one
    # after another (supervisor_script), so engine k finds HBM minus the engines before it free,
    # which holds its share because the shares on a GPU add up to at most gpu_memory_utilization.
    if r.memory_fraction > 0:
        args += ["--gpu-memory-utilization", repr(round(r.memory_fraction, 4))]
    args += ["--max-model-len", str(_max_model_len(r, spec, standby)), "--max-num-seqs", str(r.max_num_seqs)]
    if eng.kv_cache_memory_flag and r.kv_cache_bytes_per_gpu > 0 and not standby:
        args += [eng.kv_cache_memory_flag, str(r.kv_cache_bytes_per_gpu)]
    kvd = kv_dtype_flag(spec)
    if kvd:
        args += ["--kv-cache-dtype", kvd]
    args.append("--enable-prefix-caching" if r.prefix_caching else "--no-enable-prefix-caching")
    if standby:
        args.append("--enable-sleep-mode")
    check_flags(args)
    return args


def pod_engine_args(e: Engine, inputs: Inputs) -> list[str]:
    return engine_args(e.replica, inputs, e.listen_port, model=e.standby_model, dp=e.dp_size)


def _py(code: str) -> str:
    """`python3 -c <code>` as one shell word list (the code shlex.quote'd)."""
    return "python3 -c " + shlex.quote(code)


def health_check_code(port: int) -> str:
    return f"import urllib.request as u; u.urlopen('http://127.0.0.1:{int(port)}{HEALTH_PATH}', timeout=4)"


def sleep_code(port: int) -> str:
    return f"import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:{int(port)}/sleep?level={SLEEP_LEVEL}', method='POST'), timeout=600)"


def supervisor_script(inputs: Inputs, engines: list[Engine]) -> str:
    """Start the pod's `vllm serve` processes one after another (each only once the previous one
    answers /health, so that no two engines size their memory at the same time), standby engines
    first, each put to sleep (POST /sleep) once healthy so that it hands its GPU memory back before
    the next engine sizes its own; then wait: if any engine exits, stop the others and exit, so the
    pod restarts as a whole and a dead engine never hides behind a healthy one."""
    lines = ["set -uo pipefail", "pids=()"]
    for e in sorted(engines, key=lambda e: (e.standby_model is None, e.replica.id, e.model)):
        argv = " ".join(shlex.quote(a) for a in ["vllm", "serve", *pod_engine_args(e, inputs)])
        lines.append(f"# replica {', '.join(r.id for r in e.replicas)}" + (f", standby engine of {e.standby_model}" if e.standby_model else ""))
        env = f"CUDA_VISIBLE_DEVICES={shlex.quote(e.cuda_visible_devices)} " if e.cuda_visible_devices else ""
        if e.standby_model:
            env += f"{DEV_MODE_ENV}=1 "
        lines.append(f"{env}{argv} &")
        lines.append("pids+=($!)")
        lines.append(f'until {_py(health_check_code(e.listen_port))} 2>/dev/null; do kill -0 "${{pids[-1]}}" 2>/dev/null || exit 1; sleep 5; done')
        if e.standby_model:
            lines.append(f"{_py(sleep_code(e.listen_port))} || exit 1")
    lines += ["wait -n", "status=$?", 'kill "${pids[@]}" 2>/dev/null || true', "exit $status"]
    return "\n".join(lines) + "\n"
