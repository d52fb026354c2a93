"""The emitted manifests against their real consumers: a scheduler-like check over the inventory's
nodes, the real shell and Python compiler over every command line, and the wake path of a
warm-standby slot against fake vLLM servers that speak the sleep-mode endpoints."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from emit_testlib import cluster_nodes, expand_pods, fixture_inputs, fixture_plan, schedule

from maestro_plan.emit import wake_proxy
from maestro_plan.emit.common import check_plan_matches, gpu_product_label
from maestro_plan.emit.k8s import build_k8s
from maestro_plan.errors import InputError


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, dict[str, Any]]]:
    return build_k8s(fixture_plan(), fixture_inputs())


# ---- scheduling ---------------------------------------------------------------------------------


def test_every_pod_has_a_node_and_the_gpus_fit(objects) -> None:
    inputs = fixture_inputs()
    for cluster, files in objects.items():
        nodes = cluster_nodes(inputs, cluster)
        pods = expand_pods(files)
        for p in pods:
            assert any(n for n in nodes if n["gpus"] >= p["gpus"]), p["owner"]
        placed = schedule(pods, nodes)
        assert placed is not None, f"no placement of {cluster}'s pods on its inventory nodes"
        used: dict[str, int] = {}
        for i, n in placed.items():
            used[n] = used.get(n, 0) + pods[i]["gpus"]
        assert all(used[n["name"]] <= n["gpus"] for n in nodes if n["name"] in used)


def test_count_pool_keeps_the_planned_packing(objects) -> None:
    """Pods standing for planned nodes of a count pool land on distinct real nodes, each holding all
    the GPUs the plan gave that node; without the anti-affinity two of them could share a node."""
    inputs = fixture_inputs()
    pods = expand_pods(objects["eu-west"])
    placed = schedule(pods, cluster_nodes(inputs, "eu-west"))
    pool = [i for i, p in enumerate(pods) if "maestro-plan.dev/planned-node" in p["labels"]]
    assert len(pool) == 2 and len({placed[i] for i in pool}) == 2
    planned = sorted(sum(r.tp for r in fixture_plan().replicas if r.node == n) for n in ("l4-c-000", "l4-c-001"))
    assert sorted(pods[i]["gpus"] for i in pool) == planned
    # the check bites: on a one-node pool the two planned nodes' pods (2 + 2 GPUs <= 4) would fit by
    # GPUs alone; the anti-affinity refuses them, and without it they would share the node
    nodes = cluster_nodes(inputs, "eu-west")
    first = next(n for n in nodes if n["labels"].get("eks.amazonaws.com/nodegroup") == "l4-c")
    one_node = [n for n in nodes if n["labels"].get("eks.amazonaws.com/nodegroup") != "l4-c" or n is first]
    assert schedule(pods, one_node) is None
    assert schedule([{**p, "anti": []} for p in pods], one_node) is not None


def test_invented_hostnames_would_not_schedule(objects) -> None:
    """The old emitter pinned count-pool pods to `<pool>-000`: no real node has that name."""
    pods = expand_pods(objects["eu-west"])
    i = next(i for i, p in enumerate(pods) if "maestro-plan.dev/planned-node" in p["labels"])
    pods[i]["nodeSelector"] = {**pods[i]["nodeSelector"], "kubernetes.io/hostname": "l4-c-000"}
    assert schedule(pods, cluster_nodes(fixture_inputs(), "eu-west")) is None


def test_gpu_product_label_in_nvidia_smi_spelling_becomes_the_gfd_value() -> None:
    gpu = fixture_inputs().gpu_types["h100-sxm"]
    smi = gpu.model_copy(update={"product_labels": ["NVIDIA H100 80GB HBM3"]})
    assert gpu_product_label(smi) == "NVIDIA-H100-80GB-HBM3"
    with pytest.raises(InputError, match="label value"):
        gpu_product_label(gpu.model_copy(update={"product_labels": ["NVIDIA H100 (80GB) HBM3"]}))


# ---- shell and Python command lines --------------------------------------------------------------


def _commands(obj: Any):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "command" and isinstance(v, list):
                yield v
            else:
                yield from _commands(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _commands(v)


def _python_snippets(script: str) -> list[str]:
    words = shlex.split(script, comments=True)
    return [words[i + 2] for i, w in enumerate(words[:-2]) if w == "python3" and words[i + 1] == "-c"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_every_command_line_parses(objects) -> None:
    """bash -n over every `bash -c` script, compile() over every `python3 -c` snippet (alone or
    inside a script) and the ConfigMap'd wake proxy: a quoting bug fails here, not on a cluster."""
    scripts = snippets = 0
    for files in objects.values():
        for obj in files.values():
            for cmd in _commands(obj):
                if cmd[0] in ("/bin/bash", "bash", "/bin/sh", "sh") and cmd[1] == "-c":
                    res = subprocess.run(["bash", "-n", "-c", cmd[2]], capture_output=True, text=True, timeout=30)
                    assert res.returncode == 0, (res.stderr, cmd[2])
                    scripts += 1
                    for code in _python_snippets(cmd[2]):
                        compile(code, "<script snippet>", "exec")
                        snippets += 1
                elif cmd[0] == "python3" and cmd[1] == "-c":
                    compile(cmd[2], "<probe>", "exec")
                    snippets += 1
            if obj.get("kind") == "ConfigMap":
                for name, text in obj["data"].items():
                    compile(text, name, "exec")
    assert scripts >= 4 and snippets >= 8


def _plan_with_replica_id(rid: str):
    plan = fixture_plan()
    old = plan.replicas[0].id
    reps = [r.model_copy(update={"id": rid}) if r.id == old else r for r in plan.replicas]
    routes = [rt.model_copy(update={"replica": rid}) if rt.replica == old else rt for rt in plan.routes]
    return plan.model_copy(update={"replicas": reps, "routes": routes})


@pytest.mark.parametrize("rid", ["x\ntouch /tmp/pwned", "a b", "x;rm -rf /", "$(id)", "x'y", "`id`", ""])
def test_plan_ids_that_would_reach_a_shell_are_refused(rid: str) -> None:
    plan = _plan_with_replica_id(rid)
    with pytest.raises(InputError, match="safe identifier"):
        check_plan_matches(plan, fixture_inputs())
    with pytest.raises(InputError):
        build_k8s(plan, fixture_inputs())


def test_cli_refuses_a_plan_with_a_newline_in_a_replica_id(tmp_path) -> None:
    from emit_testlib import INPUT_ARGS
    from typer.testing import CliRunner

    from maestro_plan.cli.main import app

    plan = json.loads(fixture_plan().model_dump_json())
    plan["replicas"][0]["id"] += "\nrm -rf /"
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(plan))
    res = CliRunner().invoke(app, ["emit", str(bad), "--out", str(tmp_path / "out"), "--format", "k8s", *INPUT_ARGS])
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "out").exists()


# ---- the wake path -------------------------------------------------------------------------------


class FakeVllm:
    """An engine that speaks vLLM's sleep-mode API: 503 on completions while asleep."""

    def __init__(self, name: str) -> None:
        self.name, self.sleeping, self.calls = name, True, []
        fake = self

        class H(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"is_sleeping": fake.sleeping} if self.path == "/is_sleeping" else {})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                fake.calls.append(self.path)
                if self.path.startswith("/sleep"):
                    fake.sleeping = True
                    return self._reply(200, {})
                if self.path == "/wake_up":
                    fake.sleeping = False
                    return self._reply(200, {})
                if fake.sleeping:
                    return self._reply(503, {"error": "model is sleeping"})
                return self._reply(200, {"model": fake.name, "choices": [{"text": "ok"}]})

            def log_message(self, *a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _post(port: int, path: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wake_proxy_wakes_the_requested_engine_and_sleeps_the_other() -> None:
    a, b = FakeVllm("a"), FakeVllm("b")
    pa, pb = _free_port(), _free_port()
    servers = wake_proxy.serve({pa: a.port, pb: b.port}, host="127.0.0.1")
    try:
        assert _post(pa, "/v1/completions") == (200, {"model": "a", "choices": [{"text": "ok"}]})
        assert a.calls == ["/wake_up", "/v1/completions"] and not a.sleeping and b.sleeping
        assert _post(pb, "/v1/completions")[1]["model"] == "b"
        assert a.calls[-1] == "/sleep?level=1" and a.sleeping and not b.sleeping
        assert _post(pb, "/v1/completions")[1]["model"] == "b" and b.calls.count("/wake_up") == 1  # already awake
    finally:
        for s in servers:
            s.shutdown()
        a.server.shutdown()
        b.server.shutdown()


# ---- engine flags --------------------------------------------------------------------------------


def test_every_catalogue_flag_combination_is_accepted_by_the_pinned_vllm() -> None:
    """Every bundled model x TP degree x KV dtype x prefix caching x standby engine gives a command
    line whose flags and values are all in the pinned vLLM's flag table (data/vllm.yaml `flags`)."""
    from pathlib import Path

    from maestro_plan.emit.engine import check_flags, engine_args, flag_table
    from maestro_plan.load.loader import load_models

    models, _ = load_models(Path(__file__).resolve().parent.parent / "models")
    base = fixture_plan().replicas[0]
    inputs = fixture_inputs()
    seen_kv: set[str] = set()
    n = 0
    for spec in models.values():
        for kv in ("auto", "bf16", "fp16", "fp8"):
            m = spec.model_copy(update={"kv_cache_dtype": kv})
            ins = inputs.model_copy(update={"models": {**inputs.models, spec.id: m}})
            for tp in spec.tp_degrees:
                for prefix in (False, True):
                    r = base.model_copy(update={"model": spec.id, "tp": tp, "prefix_caching": prefix, "gpu_indices": list(range(tp))})
                    for standby in (None, spec.id):
                        args = engine_args(r, ins, 8000, model=standby)
                        check_flags(args)
                        if "--kv-cache-dtype" in args:
                            seen_kv.add(args[args.index("--kv-cache-dtype") + 1])
                        n += 1
    assert n > 200 and seen_kv <= set(flag_table()["--kv-cache-dtype"]) and "float16" not in seen_kv
    with pytest.raises(ValueError, match="accepts"):
        check_flags(["m", "--kv-cache-dtype", "float16"])
    with pytest.raises(ValueError, match="no flag"):
        check_flags(["m", "--kv-cache-type", "fp8"])
