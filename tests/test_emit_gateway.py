"""Gateway API Inference Extension stack: custom resources valid against the pinned CRDs' OpenAPI
schemas, core objects against Kubernetes' (kubernetes-validate), every reference resolves to an
emitted object, pools select the pods that serve their model on the port those pods listen on,
objectives carry the class priority."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
from emit_testlib import CRD_FILES, KUBERNETES_VERSION, fixture_inputs, fixture_plan, validate_custom

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
            kinds.append(obj["kind"])
            if (obj["apiVersion"], obj["kind"]) not in CRD_FILES:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
                continue
            validate_custom(obj)
            if obj["kind"] == "InferencePool":  # the CRD's CEL rule, checked by hand
                nums = [p["number"] for p in obj["spec"]["targetPorts"]]
                assert len(nums) == len(set(nums))
                assert obj["spec"]["endpointPickerRef"].get("port")
    assert kinds.count("InferencePool") == 6 and kinds.count("InferenceObjective") == 8  # 3 models x 2 clusters interactive + 8B batch in both
    assert kinds.count("Gateway") == 2 and kinds.count("HTTPRoute") == 8  # a route per pool + one per standby model (eu-west)
    assert kinds.count("Deployment") == kinds.count("ServiceAccount") == kinds.count("Role") == kinds.count("RoleBinding") == 6


def _index(files: dict) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in files.values() if o["kind"] != "Kustomization"}


def test_every_reference_is_an_emitted_object(gateway) -> None:
    """Pools -> EPP Service (port), EPP Deployment -> ServiceAccount + ConfigMap, RoleBinding -> Role +
    ServiceAccount, HTTPRoute -> Gateway + InferencePool / standby Service, objectives -> pool."""
    k8s = build_k8s(fixture_plan(), fixture_inputs())
    for cluster, files in gateway.items():
        idx = _index(files) | _index(k8s[cluster])
        for (kind, _name), o in idx.items():
            if kind == "InferencePool":
                ref = o["spec"]["endpointPickerRef"]
                svc = idx[("Service", ref["name"])]
                assert ref["port"]["number"] in {p["port"] for p in svc["spec"]["ports"]}
                epp = [d for (k, _), d in idx.items() if k == "Deployment" and all(d["spec"]["template"]["metadata"]["labels"].get(a) == b for a, b in svc["spec"]["selector"].items())]
                assert len(epp) == 1 and o["metadata"]["name"] in epp[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            elif kind == "Deployment" and o["spec"]["template"]["spec"].get("serviceAccountName"):
                spec = o["spec"]["template"]["spec"]
                assert ("ServiceAccount", spec["serviceAccountName"]) in idx
                assert all(("ConfigMap", v["configMap"]["name"]) in idx for v in spec["volumes"] if "configMap" in v)
            elif kind == "RoleBinding":
                assert ("Role", o["roleRef"]["name"]) in idx and all(("ServiceAccount", s["name"]) in idx for s in o["subjects"])
            elif kind == "HTTPRoute":
                assert all(("Gateway", p["name"]) in idx for p in o["spec"]["parentRefs"])
                for rule in o["spec"]["rules"]:
                    for b in rule["backendRefs"]:
                        assert (b["kind"], b["name"]) in idx, b
            elif kind == "InferenceObjective":
                assert ("InferencePool", o["spec"]["poolRef"]["name"]) in idx


def test_routes_serve_the_urls_litellm_uses(gateway) -> None:
    from maestro_plan.emit.litellm import build_litellm

    prefixes = {c: {r["spec"]["rules"][0]["matches"][0]["path"]["value"] for r in files.values() if r["kind"] == "HTTPRoute"} for c, files in gateway.items()}
    bases = {c.name: c.external_base_url for c in fixture_inputs().inventory.clusters}
    for d in build_litellm(fixture_plan(), fixture_inputs())["model_list"]:
        c, url = d["model_info"]["cluster"], d["litellm_params"]["api_base"]
        path = url.removeprefix(bases[c]).removesuffix("v1")
        assert path in prefixes[c], (c, url)


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
                pods.append((tpl["metadata"]["labels"], {p["containerPort"] for c in tpl["spec"]["containers"] for p in c.get("ports", [])}))
            elif o["kind"] == "LeaderWorkerSet":
                tpl = o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
                pods.append((tpl["metadata"]["labels"], {p["containerPort"] for p in tpl["spec"]["containers"][0]["ports"]}))
        for o in files.values():
            if o["kind"] != "InferencePool":
                continue
            sel = o["spec"]["selector"]["matchLabels"]
            matched = [ports for labels, ports in pods if all(labels.get(k) == v for k, v in sel.items())]
            model = o["metadata"]["labels"]["maestro-plan.dev/model"]
            has_replicas = any(r.model == model and r.cluster == cluster and not r.swap_models for r in fixture_plan().replicas)
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
