"""Kubernetes manifests: schema-valid (kubernetes-validate, pinned version; CRDs via jsonschema), the
vLLM command line equals the plan, placement and labels are right, Kustomize builds each folder."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from emit_testlib import KUBERNETES_VERSION, fixture_inputs, fixture_plan, validate_custom
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_plan.emit.common import (
    check_plan_matches,
    dns_label,
    group_replicas,
    is_label_value,
    label_value,
    model_ports,
    plan_ports,
)
from maestro_plan.emit.engine import pod_engine_args
from maestro_plan.emit.k8s import build_k8s, emit_k8s
from maestro_plan.emit.placement import count_pool_nodes
from maestro_plan.errors import InputError
from maestro_plan.estimate.engine import VLLM

LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, dict[str, Any]]]:
    return build_k8s(fixture_plan(), fixture_inputs())


def _all(objects):
    for cluster, files in objects.items():
        for name, obj in files.items():
            yield cluster, name, obj


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "LeaderWorkerSet":
        t = obj["spec"]["leaderWorkerTemplate"]
        return [t["leaderTemplate"], t["workerTemplate"]]
    if obj["kind"] in ("Deployment", "DaemonSet"):
        return [obj["spec"]["template"]]
    return []


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_core_objects_pass_kubernetes_schema(objects) -> None:
    kinds = defaultdict(int)
    for _, _name, obj in _all(objects):
        kinds[obj["kind"]] += 1
        if obj["kind"] == "Kustomization":
            continue
        if obj["kind"] == "LeaderWorkerSet":
            validate_custom(obj)
            for tpl in _pod_templates(obj):  # the CRD inlines core/v1 PodTemplateSpec
                kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": tpl}, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert kinds == {"Namespace": 2, "Kustomization": 2, "Deployment": 8, "LeaderWorkerSet": 1, "ConfigMap": 1, "Service": 8}


def test_schema_validation_catches_a_bad_manifest(objects) -> None:
    dep = yaml.safe_load(yaml.safe_dump(objects["us-east"]["deployment-vllm-llama-3-1-8b-h100-a-000.yaml"]))
    dep["spec"]["template"]["spec"]["containers"][0]["gpuCount"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBERNETES_VERSION, strict=True)
    lws = yaml.safe_load(yaml.safe_dump(objects["eu-west"]["leaderworkerset-vllm-llama-3-1-70b-h100-e-000.yaml"]))
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_custom(lws)


def test_labels_and_names_are_valid(objects) -> None:
    for _, _, obj in _all(objects):
        meta = obj.get("metadata", {})
        if "name" in meta:
            assert len(meta["name"]) <= 63 and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", meta["name"]), meta["name"]
        maps = [meta.get("labels", {})] + [t.get("metadata", {}).get("labels", {}) for t in _pod_templates(obj)]
        if obj["kind"] == "Service":
            maps.append(obj["spec"]["selector"])
        for labels in maps:
            for k, v in labels.items():
                assert LABEL_KEY.match(k) and len(k.split("/")[-1]) <= 63, k
                assert is_label_value(v), (k, v)


def test_name_helpers_follow_kubernetes_rules() -> None:
    long = "a" * 80 + ".x"
    assert len(dns_label("vllm", long)) <= 63 and dns_label("vllm", long) != dns_label("vllm", "a" * 80 + ".y")
    assert dns_label("9lives") == "x-9lives"
    assert label_value("coding-agent/coder") == "coding-agent-coder"
    assert is_label_value(label_value("-" + "b" * 90 + "_"))
    ports = model_ports(["m1", "m2", "m3"])
    assert len(set(ports.values())) == 3 and all(8000 <= p < 9000 for p in ports.values())
    assert ports == model_ports(["m3", "m2", "m1", "m2"]) and model_ports(["m1"])["m1"] == ports["m1"]


def test_command_line_realises_each_replica(objects) -> None:
    """Every replica appears in exactly one workload, with the plan's numbers on its command line."""
    plan, inputs = fixture_plan(), fixture_inputs()
    reps = {r.id: r for r in plan.replicas}
    seen: dict[str, int] = defaultdict(int)
    for w in group_replicas(plan, count_pool_nodes(inputs)):
        for rid in w.replica_ids:
            seen[rid] += 1
        for e in w.engines:
            r = e.replica
            args = pod_engine_args(e, inputs)
            if e.standby_model:  # a sleeping engine of a swap slot: sized by the slot, started with sleep mode
                assert args[0] == inputs.models[e.standby_model].hf_repo and _flag(args, "--served-model-name") == e.standby_model
                assert "--enable-sleep-mode" in args and _flag(args, "--host") == "127.0.0.1" and int(_flag(args, "--port")) == e.listen_port
                assert float(_flag(args, "--gpu-memory-utilization")) == pytest.approx(r.memory_fraction, abs=1e-4)
                continue
            assert "--enable-sleep-mode" not in args
            assert args[0] == inputs.models[r.model].hf_repo
            assert _flag(args, "--served-model-name") == r.model
            assert int(_flag(args, "--tensor-parallel-size")) == r.tp
            assert float(_flag(args, "--gpu-memory-utilization")) == pytest.approx(r.memory_fraction, abs=1e-4)
            assert int(_flag(args, "--max-model-len")) == r.max_model_len
            assert int(_flag(args, "--max-num-seqs")) == r.max_num_seqs
            assert int(_flag(args, VLLM.kv_cache_memory_flag)) == r.kv_cache_bytes_per_gpu
            assert ("--enable-prefix-caching" in args) == r.prefix_caching
            assert int(_flag(args, "--port")) == e.port
    assert seen == {rid: 1 for rid in reps}


def test_placement_and_gpu_requests(objects) -> None:
    plan, inputs = fixture_plan(), fixture_inputs()
    by_name = {w.name: w for w in group_replicas(plan, count_pool_nodes(inputs))}
    for _cluster, _name, obj in _all(objects):
        if obj["kind"] != "Deployment":
            continue
        w = by_name[obj["metadata"]["name"]]
        spec = obj["spec"]["template"]["spec"]
        sel = spec["nodeSelector"]
        if w.pinned:  # a node the inventory names: pinned by its real hostname
            assert sel["kubernetes.io/hostname"] == w.node
        else:  # a node of a count pool: the pool's labels, never an invented hostname
            assert "kubernetes.io/hostname" not in sel and sel["eks.amazonaws.com/nodegroup"] == "l4-c"
            assert sel["topology.kubernetes.io/zone"] == w.zone and sel["nvidia.com/gpu.count"] == "4"
            assert spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
        assert sel["nvidia.com/gpu.product"] == inputs.gpu_types[w.gpu_type].product_labels[0]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
        c = spec["containers"][0]
        assert c["image"] == VLLM.image
        assert int(c["resources"]["limits"]["nvidia.com/gpu"]) == w.gpus_per_pod
        assert obj["spec"]["replicas"] == w.count
        assert c["readinessProbe"] and c["livenessProbe"] and "cpu" in c["resources"]["requests"] and "memory" in c["resources"]["requests"]
        served = spec["containers"][-1]  # the wake proxy owns the ports of a swap slot
        assert {p["containerPort"] for p in served["ports"]} == {e.port for e in w.engines}
        shm = next(v for v in spec["volumes"] if v["name"] == "shm")["emptyDir"]
        assert shm == {"medium": "Memory", "sizeLimit": "2Gi" if w.gpus_per_pod == 1 else "15Gi"}
    # the two identical exclusive 8B replicas on h100-a-000 are one Deployment with 2 pods of 1 GPU
    dep = objects["us-east"]["deployment-vllm-llama-3-1-8b-h100-a-000.yaml"]
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # the count pool's node l4-c-000 holds two identical planned replicas: one pod with both, on 2
    # GPUs, as ONE vLLM server with two data-parallel ranks behind the model's port (common.py _dp_groups)
    (packed,) = [o for n, o in objects["eu-west"].items() if n.startswith("deployment-") and n.endswith("-l4-c-000.yaml")]
    assert packed["spec"]["replicas"] == 1 and packed["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    args = packed["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--data-parallel-size") + 1] == "2" and args.count("--port") == 1


def test_hf_token_is_required_for_gated_models(objects) -> None:
    inputs = fixture_inputs()
    for _, _, obj in _all(objects):
        for tpl in _pod_templates(obj):
            for c in tpl["spec"]["containers"]:
                for env in c.get("env", []):
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert env["name"] == "HF_TOKEN" and ref["name"] == "hf-token"
                    assert all(inputs.models[m].gated for m in inputs.models)  # the fixture's models are all Llama (gated)
                    assert "optional" not in ref


def test_colocated_engines_share_one_pod_and_fit_the_gpu(objects) -> None:
    plan, inputs = fixture_plan(), fixture_inputs()
    shared = [w for w in group_replicas(plan, count_pool_nodes(inputs)) if w.colocated and w.pinned and not w.has_standby]
    assert len(shared) == 1
    w = shared[0]
    assert w.models == ["llama-3.1-8b", "llama-3.2-1b"] and w.gpus_per_pod == 1
    assert sum(e.replica.memory_fraction for e in w.engines) <= 1.0
    script = objects["us-east"][f"deployment-{w.name}.yaml"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert script.count("vllm serve") == 2 and script.count("CUDA_VISIBLE_DEVICES=0 ") == 2
    labels = objects["us-east"][f"deployment-{w.name}.yaml"]["spec"]["template"]["metadata"]["labels"]
    assert labels["model.maestro-plan.dev/llama-3.1-8b"] == labels["model.maestro-plan.dev/llama-3.2-1b"] == "serving"


def test_multi_node_replica_is_a_leaderworkerset(objects) -> None:
    lws = objects["eu-west"]["leaderworkerset-vllm-llama-3-1-70b-h100-e-000.yaml"]
    t = lws["spec"]["leaderWorkerTemplate"]
    assert t["size"] == 2
    leader = t["leaderTemplate"]["spec"]
    assert leader["nodeSelector"]["kubernetes.io/hostname"] == "h100-e-000"
    assert "--pipeline-parallel-size 2" in leader["containers"][0]["command"][2]
    worker_nodes = t["workerTemplate"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert worker_nodes == ["h100-e-001"]


def test_services_and_standby(objects) -> None:
    plan = fixture_plan()
    ports = plan_ports(plan)
    for cluster in ("us-east", "eu-west"):
        models = {r.model for r in plan.replicas if r.cluster == cluster and not r.swap_models}
        standby = {s.model for s in plan.standby if s.cluster == cluster}
        svcs = defaultdict(dict)
        for o in objects[cluster].values():
            if o["kind"] == "Service":
                role = "standby" if o["metadata"]["name"].endswith("-standby") else "serving"
                svcs[role][o["metadata"]["annotations"]["maestro-plan.dev/model"]] = o
        assert set(svcs["serving"]) == models and set(svcs.get("standby", {})) == standby
        for role, by_model in svcs.items():
            for m, svc in by_model.items():
                assert svc["spec"]["selector"] == {f"model.maestro-plan.dev/{m}": role}
                assert svc["spec"]["ports"][0]["targetPort"] == ports[m]
                # some pod of the cluster carries the selected label and exposes the target port
                pods = [t for o in objects[cluster].values() for t in _pod_templates(o) if t["metadata"]["labels"].get(f"model.maestro-plan.dev/{m}") == role]
                assert any(ports[m] in {p["containerPort"] for c in t["spec"]["containers"] for p in c.get("ports", [])} for t in pods), (m, role)
    svc = objects["eu-west"]["service-vllm-llama-3-2-1b-eu-west-standby.yaml"]
    sb = next(s for s in plan.standby if s.model == "llama-3.2-1b")
    assert float(svc["metadata"]["annotations"]["maestro-plan.dev/standby-cold-start-ms"]) == pytest.approx(sb.cold_start_ms)


def test_standby_engines_sleep_and_have_a_wake_path(objects) -> None:
    """vLLM's documented sleep mode: --enable-sleep-mode + VLLM_SERVER_DEV_MODE=1, POST /sleep after the
    start, and the wake proxy sidecar (POST /wake_up on demand) on the standby models' ports."""
    dep = objects["eu-west"]["deployment-vllm-shared-h100-e-002.yaml"]
    spec = dep["spec"]["template"]["spec"]
    script = spec["containers"][0]["command"][2]
    for m in ("llama-3.1-8b", "llama-3.2-1b"):
        line = next(x for x in script.splitlines() if f"--served-model-name {m}" in x)
        assert "VLLM_SERVER_DEV_MODE=1 " in line and line.rstrip().endswith("--enable-sleep-mode &")
    assert script.count("/sleep?level=1") == 2
    proxy = spec["containers"][1]
    assert proxy["name"] == "wake-proxy" and proxy["command"][:2] == ["python3", "/opt/maestro/wake_proxy.py"]
    cm = objects["eu-west"]["configmap-wake-proxy.yaml"]
    assert "/wake_up" in cm["data"]["wake_proxy.py"]
    assert {"name": "wake-proxy", "configMap": {"name": cm["metadata"]["name"]}} in spec["volumes"]
    mem = int(spec["containers"][0]["resources"]["requests"]["memory"].removesuffix("Gi"))
    assert mem * 2**30 >= sum(s.host_dram_bytes for s in fixture_plan().standby)  # the sleeping weights live in host DRAM


def test_kustomization_lists_every_file(tmp_path: Path) -> None:
    emit_k8s(fixture_plan(), fixture_inputs(), tmp_path)
    for folder in sorted((tmp_path / "manifests").iterdir()):
        k = yaml.safe_load((folder / "kustomization.yaml").read_text())
        files = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
        assert k["resources"] == files


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_each_cluster(tmp_path: Path) -> None:
    emit_k8s(fixture_plan(), fixture_inputs(), tmp_path)
    for folder in sorted((tmp_path / "manifests").iterdir()):
        res = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        docs = [d for d in yaml.safe_load_all(res.stdout) if d]
        k = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert len(docs) == len(k["resources"])
        assert all(d["metadata"].get("namespace", "maestro-serving") == "maestro-serving" for d in docs)



@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_name_helpers_always_give_valid_names(a: str, b: str) -> None:
    n = dns_label("vllm", a, b)
    assert len(n) <= 63 and re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", n)
    assert is_label_value(label_value(a + b))


def _plan_with(**changes):
    plan = fixture_plan()
    reps = [r.model_copy(update=changes) if i == 0 else r for i, r in enumerate(plan.replicas)]
    return plan.model_copy(update={"replicas": reps})


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"gpu_indices": [8]}, "has 8 GPUs"),
        ({"gpu_type": "a100-80gb"}, "has 'h100-sxm'"),
        ({"zone": "us-east-1c"}, "zone"),
        ({"worker_nodes": ["l4-b-000"]}, "spans node 'l4-b-000'"),
        ({"tp": 2}, "distinct GPU indices"),
    ],
)
def test_plan_that_does_not_match_inputs_is_rejected(changes, words) -> None:
    with pytest.raises(InputError) as e:
        check_plan_matches(_plan_with(**changes), fixture_inputs())
    assert words in str(e.value)


def test_fixture_plan_matches_its_inputs() -> None:
    check_plan_matches(fixture_plan(), fixture_inputs())
