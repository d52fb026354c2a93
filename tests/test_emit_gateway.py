"""Gateway API Inference Extension objects: valid against the CRDs' own OpenAPI schemas, pools select
the pods that serve their model on the port those pods listen on, objectives carry the class priority."""

from __future__ import annotations

import jsonschema
import pytest
from emit_testlib import fixture_inputs, fixture_plan, validate_custom

from maestro_plan.emit.common import OBJECTIVE_PRIORITY
from maestro_plan.emit.gateway import build_gateway
from maestro_plan.emit.k8s import build_k8s


@pytest.fixture(scope="module")
def gateway() -> dict:
    return build_gateway(fixture_plan(), fixture_inputs())


def test_objects_validate_against_crds(gateway) -> None:
    kinds = []
    for files in gateway.values():
        for obj in files.values():
            if obj["kind"] == "Kustomization":
                continue
            validate_custom(obj)
            kinds.append(obj["kind"])
            if obj["kind"] == "InferencePool":  # the CRD's CEL rule, checked by hand
                nums = [p["number"] for p in obj["spec"]["targetPorts"]]
                assert len(nums) == len(set(nums))
                assert obj["spec"]["endpointPickerRef"].get("port")
    assert kinds.count("InferencePool") == 6 and kinds.count("InferenceObjective") == 8  # 3 models x 2 clusters interactive + 8B batch in both


def test_crd_check_rejects_wrong_objects(gateway) -> None:
    pool = dict(gateway["us-east"]["inferencepool-pool-llama-3-1-8b.yaml"])
    bad = {**pool, "spec": {**pool["spec"], "targetPortNumber": 8000}}  # a pre-v1 field
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(bad)
    obj = gateway["us-east"]["inferenceobjective-pool-llama-3-1-8b-batch.yaml"]
    bad = {**obj, "spec": {**obj["spec"], "criticality": "Critical"}}  # the removed InferenceModel field
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(bad)


def test_pools_select_serving_pods_on_their_port(gateway) -> None:
    k8s = build_k8s(fixture_plan(), fixture_inputs())
    for cluster, files in gateway.items():
        pods = []
        for o in k8s[cluster].values():
            if o["kind"] == "Deployment":
                tpl = o["spec"]["template"]
                pods.append((tpl["metadata"]["labels"], {p["containerPort"] for p in tpl["spec"]["containers"][0]["ports"]}))
            elif o["kind"] == "LeaderWorkerSet":
                tpl = o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
                pods.append((tpl["metadata"]["labels"], {p["containerPort"] for p in tpl["spec"]["containers"][0]["ports"]}))
        for o in files.values():
            if o["kind"] != "InferencePool":
                continue
            sel = o["spec"]["selector"]["matchLabels"]
            matched = [ports for labels, ports in pods if all(labels.get(k) == v for k, v in sel.items())]
            model = o["metadata"]["labels"]["maestro-plan.dev/model"]
            has_replicas = any(r.model == model and r.cluster == cluster for r in fixture_plan().replicas)
            assert bool(matched) == has_replicas, (cluster, model)
            for ports in matched:
                assert o["spec"]["targetPorts"][0]["number"] in ports


def test_objectives_carry_class_priority(gateway) -> None:
    for files in gateway.values():
        for o in files.values():
            if o["kind"] == "InferenceObjective":
                prio = o["metadata"]["labels"]["maestro-plan.dev/priority"]
                assert o["spec"]["priority"] == OBJECTIVE_PRIORITY[prio]
                assert o["spec"]["poolRef"]["group"] == "inference.networking.k8s.io"
                assert o["spec"]["poolRef"]["name"] in {x["metadata"]["name"] for x in files.values() if x["kind"] == "InferencePool"}
