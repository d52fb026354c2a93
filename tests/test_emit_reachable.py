"""Every planned engine of every emitted pod receives traffic through the real consumers.

A pod may hold several engines of ONE model (a count pool's node is one pod; co-located engines share
a pod). Identical ones run as one vLLM server with data-parallel ranks behind the model's port;
differing ones listen on the model's port + k*PORT_SPAN and get a Service, an InferencePool and
LiteLLM deployments of their own (emit/common.py _dp_groups, engine_slots). Checked on the bundled
demo (solved here with the greedy solver), the emit fixture (a count-pool node with two identical
replicas) and the Melange plan (co-located engines of one model with different KV budgets)."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from emit_testlib import (
    CRD_FILES,
    KUBERNETES_VERSION,
    cluster_nodes,
    expand_pods,
    fixture_inputs,
    fixture_plan,
    schedule,
    validate_custom,
)
from typer.testing import CliRunner

from benchmarks import melange as M
from maestro_plan.cli.main import app
from maestro_plan.emit.classes import class_split, slot_class_warnings
from maestro_plan.emit.common import plan_ports, plan_workloads
from maestro_plan.emit.gateway import build_gateway
from maestro_plan.emit.k8s import build_k8s
from maestro_plan.emit.litellm import build_litellm
from maestro_plan.emit.report import render_markdown, report_blocks, summary_data
from maestro_plan.load.loader import load_inputs
from maestro_plan.plan.io import read_plan

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm", reason="litellm is a test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module", params=["bundled", "fixture", "melange"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bundled_paths: dict[str, Path]):
    if request.param == "fixture":
        return fixture_plan(), fixture_inputs()
    if request.param == "melange":
        plan, inputs, _ = M.solve_plan(tmp_path_factory.mktemp("melange"), "geometric", 0.2)
        return plan, inputs
    out = tmp_path_factory.mktemp("bundled")
    r = CliRunner().invoke(app, ["solve", "--solver", "greedy", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return read_plan(out / "plan.json"), load_inputs(bundled_paths["inventory"], bundled_paths["models"], bundled_paths["workloads"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pods(files: dict[str, Any]) -> list[tuple[str, dict[str, str], set[int], list[dict[str, Any]]]]:
    """(Deployment, pod labels, ports its containers listen on, its engines annotation)."""
    out = []
    for name, o in files.items():
        if o["kind"] == "Deployment" and "maestro-plan.dev/engines" in o["spec"]["template"]["metadata"].get("annotations", {}):
            tpl = o["spec"]["template"]
            listening = {p["containerPort"] for c in tpl["spec"]["containers"] for p in c.get("ports", [])}
            out.append((name, tpl["metadata"]["labels"], listening, json.loads(tpl["metadata"]["annotations"]["maestro-plan.dev/engines"])))
    return out


def test_every_engine_is_behind_a_service_and_a_pool_that_only_reach_listening_pods(case) -> None:
    plan, inputs = case
    k8s, gw = build_k8s(plan, inputs), build_gateway(plan, inputs)
    for cluster, files in k8s.items():
        pods = _pods(files)
        services = [o for o in files.values() if o["kind"] == "Service"]
        pools = [o for o in gw.get(cluster, {}).values() if o["kind"] == "InferencePool"]
        for name, labels, _listening, engines in pods:
            for e in engines:
                assert any(_selects(s["spec"]["selector"], labels) and s["spec"]["ports"][0]["targetPort"] == e["port"] for s in services), (cluster, name, e)
                if not e["standby"]:
                    assert any(_selects(p["spec"]["selector"]["matchLabels"], labels) and {"number": e["port"]} in p["spec"]["targetPorts"]
                               for p in pools), (cluster, name, e)
        # and no Service or pool points at a port some selected pod does not listen on
        for s in services:
            for name, labels, listening, _ in pods:
                if _selects(s["spec"]["selector"], labels):
                    assert s["spec"]["ports"][0]["targetPort"] in listening, (s["metadata"]["name"], name)
        for p in pools:
            for name, labels, listening, _ in pods:
                if _selects(p["spec"]["selector"]["matchLabels"], labels):
                    assert all(t["number"] in listening for t in p["spec"]["targetPorts"]), (p["metadata"]["name"], name)


def test_every_replica_is_one_engine_or_one_dp_rank(case) -> None:
    """Each planned replica is realised by exactly one engine process (or one DP rank of one), and
    two engines of one model in a pod never share a port nor run identical command lines."""
    plan, inputs = case
    ports = plan_ports(plan)
    seen: list[str] = []
    for w in plan_workloads(plan, inputs):
        serving = [e for e in w.engines if not e.standby_model]
        seen += [r.id for e in serving for r in e.replicas] if w.count == 1 else list(w.replica_ids)
        assert len({e.listen_port for e in w.engines}) == len(w.engines), w.name
        for e in serving:
            if e.dp_size > 1:
                assert e.cuda_visible_devices is not None and len(e.cuda_visible_devices.split(",")) == e.dp_size * e.replica.tp
                assert len(set(e.cuda_visible_devices.split(","))) == e.dp_size * e.replica.tp  # each rank its own GPUs
            assert (e.port - ports[e.model]) % 1000 == 0
    assert sorted(seen) == sorted(r.id for r in plan.replicas if not r.swap_models)


def test_dp_servers_and_scripts_are_well_formed(case) -> None:
    plan, inputs = case
    for files in build_k8s(plan, inputs).values():
        for o in files.values():
            if o["kind"] != "Deployment":
                continue
            c = o["spec"]["template"]["spec"]["containers"][0]
            engines = json.loads(o["spec"]["template"]["metadata"]["annotations"].get("maestro-plan.dev/engines", "[]"))
            if c["command"][:2] == ["/bin/bash", "-c"]:
                script = c["command"][2]
                subprocess.run(["bash", "-n", "-c", script], check=True)
                lines = [shlex.split(x) for x in script.splitlines() if " vllm serve " in f" {x} "]
            else:
                lines = [["vllm", "serve", *c["args"]]]
            for e in engines:
                if e.get("data_parallel_size"):
                    (argv,) = [a for a in lines if a[a.index("--port") + 1] == str(e["port"])]
                    assert argv[argv.index("--data-parallel-size") + 1] == str(e["data_parallel_size"])


def test_litellm_spreads_over_every_engine_slot_by_the_planned_rates(case) -> None:
    """Router configs that reach a cluster by its Services (in-cluster) list one deployment per engine
    slot's Service, weighted by the planned requests/s of the replicas behind it; LiteLLM's own
    picks (1000, seeded) follow the weights, so no slot's engines sit idle."""
    plan, inputs = case
    n_slot = 0
    for source in [None, *sorted({rt.source for rt in plan.routes})]:
        cfg = build_litellm(plan, inputs, source=source)
        slot_deps = [d for d in cfg["model_list"] if re.search(r"/s\d+$", d["model_info"]["id"])]
        n_slot += len(slot_deps)
        for d in slot_deps:
            assert re.search(r"-s\d+\.", d["litellm_params"]["api_base"])
            assert d["litellm_params"]["weight"] > 0 or d["model_info"]["planned_rps"] == 0
        router = litellm.Router(model_list=[{**d, "litellm_params": {**d["litellm_params"], "api_key": "none"}} for d in cfg["model_list"]],
                                **cfg["router_settings"])
        random.seed(7)
        for model in sorted({d["model_name"] for d in slot_deps}):
            deps = [d for d in cfg["model_list"] if d["model_name"] == model and d["litellm_params"].get("order") == 1]
            total, rps = sum(d["litellm_params"]["weight"] for d in deps), sum(d["model_info"]["planned_rps"] for d in deps)
            picks = [router.get_available_deployment(model=model, messages=[{"role": "user", "content": "hi"}])["model_info"]["id"] for _ in range(1000)]
            for d in deps:
                share = d["litellm_params"]["weight"] / total
                assert share == pytest.approx(d["model_info"]["planned_rps"] / rps, abs=0.01), d["model_info"]["id"]
                assert picks.count(d["model_info"]["id"]) / 1000 == pytest.approx(share, abs=0.05), d["model_info"]["id"]
    # the emit fixture's same-model engines are identical (one DP server); the others have slots
    assert (n_slot == 0) == (plan is fixture_plan())


def test_objects_validate_and_pods_schedule(case) -> None:
    """The new objects (DP servers, slot Services, slot pools, weighted HTTPRoutes) pass Kubernetes
    1.33's schemas and the pinned CRDs, and the pods still fit the inventory's nodes."""
    plan, inputs = case
    k8s, gw = build_k8s(plan, inputs), build_gateway(plan, inputs)
    for files in [*k8s.values(), *gw.values()]:
        for obj in files.values():
            if (obj["apiVersion"], obj["kind"]) in CRD_FILES:
                validate_custom(obj)
            elif obj["kind"] != "Kustomization":
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    for cluster, files in k8s.items():
        assert schedule(expand_pods(files), cluster_nodes(inputs, cluster)) is not None, cluster


def test_class_traffic_reaches_each_planned_engine_or_the_report_names_it(case) -> None:
    """A split request class's Service reaches the engines on its target port; any engine planned for
    the class that it cannot reach (an engine slot k >= 1) is named in the report's warnings."""
    plan, inputs = case
    split, k8s = class_split(plan), build_k8s(plan, inputs)
    warnings = "\n".join(slot_class_warnings(plan, inputs))
    for w in plan_workloads(plan, inputs):
        files = k8s[w.cluster]
        if w.multi_node:
            labels = files[f"leaderworkerset-{w.name}.yaml"]["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]
        else:
            labels = files[f"deployment-{w.name}.yaml"]["spec"]["template"]["metadata"]["labels"]
        for e in w.engines:
            for r in e.replicas if not e.standby_model else []:
                for name in sorted(split.serves.get(r.id, set()) & split.split.get((e.model, w.cluster), set())):
                    reached = any(o["kind"] == "Service" and o["metadata"]["annotations"].get("maestro-plan.dev/request-class") == name
                                  and _selects(o["spec"]["selector"], labels) and o["spec"]["ports"][0]["targetPort"] == e.port for o in files.values())
                    assert reached or f"replica {r.id} " in warnings, (r.id, name)
    if warnings:
        assert "Deployment warnings" in render_markdown(report_blocks(plan, inputs, summary_data(plan, inputs), False))
