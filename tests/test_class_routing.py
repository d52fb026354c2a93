"""Per-class routing in the real consumers (emit/classes.py), on Melange's published example: the plan
puts three of the four request classes of one (source, model) pair on the A100 replicas only, and the
fourth (in100-out25) on the A10Gs and the A100s. LiteLLM's own Router sends a class alias only to the
class's replicas and falls back to the model's group when they are down; callers that only know the
model name still reach every replica; the Gateway objects validate against the pinned CRDs, every
reference resolves, a class's pool selects exactly the pods serving it, and the header rules send a
class's requests there; labels and names are valid Kubernetes values."""

from __future__ import annotations

import json
import os
import re
import socket

import kubernetes_validate
import pytest
from emit_testlib import CRD_FILES, KUBERNETES_VERSION, FakeOpenAI, validate_custom
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import melange as M
from maestro_plan.emit.classes import CLASS_HEADER, class_label_key, class_slug, class_split, litellm_alias
from maestro_plan.emit.common import is_label_value
from maestro_plan.emit.gateway import build_gateway
from maestro_plan.emit.k8s import build_k8s
from maestro_plan.emit.litellm import build_litellm
from maestro_plan.emit.routing import build_routing

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm", reason="litellm is a test extra: pip install -e '.[test]'")

A100_ONLY = {f"melange/{M.bucket_name(i, j)}" for i, j in ((0, 0), (0, 1), (1, 1))}
SHARED = "melange/in100-out25"
BASE = "https://llm.c1.example.com"


@pytest.fixture(scope="module")
def melange(tmp_path_factory: pytest.TempPathFactory):
    plan, inputs, _ = M.solve_plan(tmp_path_factory.mktemp("melange"), "geometric", 0.2)
    return plan, inputs


def _class_replicas(plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rt in plan.routes:
        if rt.rate_rps > 0:
            out.setdefault(rt.request_class, set()).add(rt.replica)
    return out


def _pods(k8s_files: dict) -> list[tuple[dict, set[str]]]:
    """(pod labels, replica ids) of every Deployment."""
    out = []
    for o in k8s_files.values():
        if o["kind"] == "Deployment":
            tpl = o["spec"]["template"]["metadata"]
            out.append((tpl["labels"], set(tpl["annotations"]["maestro-plan.dev/replicas"].split(","))))
    return out


def _selected(pods, selector: dict) -> set[str]:
    return {rid for labels, reps in pods for rid in reps if all(labels.get(k) == v for k, v in selector.items())}


def test_the_fixture_splits_classes(melange) -> None:
    plan, _ = melange
    reps = _class_replicas(plan)
    assert len(reps[SHARED]) > len(reps["melange/in25-out25"])  # the premise: A10Gs serve one class only
    split = class_split(plan)
    assert split.split[("llama-2-7b", "c1")] == A100_ONLY == split.aliased["llama-2-7b"]


def test_class_services_and_pools_select_exactly_the_class_replicas(melange) -> None:
    plan, inputs = melange
    reps = _class_replicas(plan)
    k8s = build_k8s(plan, inputs)["c1"]
    gw = build_gateway(plan, inputs)["c1"]
    pods = _pods(k8s)
    model_reps = {r.id for r in plan.replicas}
    services = {o["metadata"]["name"]: o for o in k8s.values() if o["kind"] == "Service"}
    pools = {o["metadata"]["name"]: o for o in gw.values() if o["kind"] == "InferencePool"}
    assert _selected(pods, services["vllm-llama-2-7b-c1"]["spec"]["selector"]) == model_reps  # unchanged for model-only callers
    assert _selected(pods, pools["pool-llama-2-7b"]["spec"]["selector"]["matchLabels"]) == model_reps
    class_svcs = [s for s in services.values() if "maestro-plan.dev/request-class" in s["metadata"]["annotations"]]
    assert {s["metadata"]["annotations"]["maestro-plan.dev/request-class"] for s in class_svcs} == A100_ONLY
    for s in class_svcs:
        name = s["metadata"]["annotations"]["maestro-plan.dev/request-class"]
        assert _selected(pods, s["spec"]["selector"]) == reps[name]
    for name in A100_ONLY:
        (pool,) = [p for p in pools.values() if class_label_key(name) in p["spec"]["selector"]["matchLabels"]]
        assert _selected(pods, pool["spec"]["selector"]["matchLabels"]) == reps[name]
    slot_pools = [p for p in pools if re.fullmatch(r"pool-llama-2-7b-s\d+", p)]  # second engines of the model in a pod (emit/common.py engine_slots)
    assert len(pools) == 1 + len(A100_ONLY) + len(slot_pools)


def test_gateway_objects_validate_and_references_resolve(melange) -> None:
    plan, inputs = melange
    gw = build_gateway(plan, inputs)["c1"]
    k8s = build_k8s(plan, inputs)["c1"]
    idx = {(o["kind"], o["metadata"]["name"]): o for o in list(gw.values()) + list(k8s.values()) if o["kind"] != "Kustomization"}
    for (kind, _), o in idx.items():
        if (o["apiVersion"], kind) in CRD_FILES:
            validate_custom(o)
        else:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
        if kind == "InferencePool":
            ref = o["spec"]["endpointPickerRef"]
            svc = idx[("Service", ref["name"])]
            epp = [d for (k, _), d in idx.items() if k == "Deployment" and all(d["spec"]["template"]["metadata"]["labels"].get(a) == b for a, b in svc["spec"]["selector"].items())]
            assert len(epp) == 1 and o["metadata"]["name"] in epp[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            assert ("ServiceAccount", epp[0]["spec"]["template"]["spec"]["serviceAccountName"]) in idx
        elif kind == "HTTPRoute":
            for rule in o["spec"]["rules"]:
                assert all((b["kind"], b["name"]) in idx for b in rule["backendRefs"])
        elif kind == "InferenceObjective":
            assert ("InferencePool", o["spec"]["poolRef"]["name"]) in idx
    # routing.json: each split class's role names an alias, a header and an objective that exist
    doc = build_routing(plan, inputs)
    roles = {r["request_class"]: r for w in doc["workflows"] for r in w["roles"]}
    assert {c for c, r in roles.items() if "class_routing" in r} == A100_ONLY
    groups = {d["model_name"] for d in build_litellm(plan, inputs)["model_list"]}
    for name in A100_ONLY:
        cr = roles[name]["class_routing"]
        assert cr["litellm_model"] == litellm_alias("llama-2-7b", name) in groups
        assert cr["header"] == {CLASS_HEADER: name}
        assert ("InferenceObjective", cr["objective"]) in idx


def _label_ok(key: str, value: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return (len(name) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name) is not None
            and len(prefix) <= 253 and is_label_value(value))


def test_labels_and_selectors_are_valid(melange) -> None:
    plan, inputs = melange
    objs = list(build_k8s(plan, inputs)["c1"].values()) + list(build_gateway(plan, inputs)["c1"].values())
    seen = 0
    for o in (o for o in objs if o["kind"] != "Kustomization"):
        spec, sel = o.get("spec", {}), o.get("spec", {}).get("selector", {})
        for labels in (o["metadata"].get("labels", {}), spec.get("template", {}).get("metadata", {}).get("labels", {}),
                       sel.get("matchLabels", sel if o["kind"] == "Service" else {})):
            for k, v in labels.items():
                assert _label_ok(k, v), (k, v)
                seen += k.startswith("class.")
    assert seen >= 3 * len(A100_ONLY)


@given(st.text(min_size=1, max_size=300))
def test_class_slug_is_a_dns_label_and_keeps_classes_apart(name: str) -> None:
    slug = class_slug(name)
    assert len(slug) <= 40 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", slug)
    assert class_slug(name + "x") != slug and _label_ok(class_label_key(name), "serving")


def _dead() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _host(api_base: str) -> str:
    return api_base.split("//", 1)[1].split(".", 1)[0]


@pytest.mark.parametrize("down", [False, True])
def test_litellm_sends_a_class_only_to_its_replicas_and_falls_back(melange, down: bool) -> None:
    """In-cluster config: each alias deployment is a class Service, whose pods serve exactly the class;
    with the class Services down, the alias is served by the model's group (fallbacks)."""
    plan, inputs = melange
    cfg = build_litellm(plan, inputs, "users")
    services = {_host(d["litellm_params"]["api_base"]) for d in cfg["model_list"]}
    fakes = {s: FakeOpenAI(s, CLASS_HEADER) for s in services}
    dead = _dead()
    for d in cfg["model_list"]:
        s = _host(d["litellm_params"]["api_base"])
        d["litellm_params"].update(api_base=dead if down and d["model_name"] != "llama-2-7b" else fakes[s].base, api_key="none")
    router = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    k8s = build_k8s(plan, inputs)["c1"]
    selector = {o["metadata"]["name"]: o["spec"]["selector"] for o in k8s.values() if o["kind"] == "Service"}
    pods, reps = _pods(k8s), _class_replicas(plan)
    try:
        for name in sorted(A100_ONLY) + ["llama-2-7b"]:
            model = "llama-2-7b" if name == "llama-2-7b" else litellm_alias("llama-2-7b", name)
            for _ in range(5):
                served_by = router.completion(model=model, messages=[{"role": "user", "content": "hi"}]).choices[0].message.content
                if down or name == "llama-2-7b":
                    assert re.fullmatch(r"vllm-llama-2-7b-c1(-s\d+)?", served_by)  # the model's Service, or one of an engine slot
                else:
                    assert _selected(pods, selector[served_by]) == reps[name]
    finally:
        for f in fakes.values():
            f.server.shutdown()


def _gateway_pick(routes: list[dict], path: str, headers: dict[str, str]) -> str:
    """The Gateway API's choice among the emitted HTTPRoutes: matching path prefix and headers, the
    longest prefix first, then the most header matches (HTTPRoute spec, rule precedence)."""
    best = None
    for r in routes:
        for rule in r["spec"]["rules"]:
            for m in rule["matches"]:
                if path.startswith(m["path"]["value"]) and all(headers.get(h["name"]) == h["value"] for h in m.get("headers", [])):
                    key = (len(m["path"]["value"]), len(m.get("headers", [])))
                    if best is None or key > best[0]:
                        best = (key, rule["backendRefs"][0]["name"])
    assert best is not None, path
    return best[1]


def test_through_the_gateway_the_header_picks_the_class_pool(melange) -> None:
    """All-sources config with the cluster behind its Gateway: alias deployments send the class header
    (LiteLLM extra_headers, observed at the fake Gateway); the emitted routes send a request with it to
    the class's pool and one without it to the model's pool."""
    plan, inputs = melange
    c1 = inputs.inventory.clusters[0].model_copy(update={"external_base_url": BASE})
    inputs = inputs.model_copy(update={"inventory": inputs.inventory.model_copy(update={"clusters": [c1]})})
    cfg = build_litellm(plan, inputs)
    gateway = FakeOpenAI("gateway", CLASS_HEADER)
    for d in cfg["model_list"]:
        assert d["litellm_params"]["api_base"] == f"{BASE}/models/llama-2-7b/v1"
        d["litellm_params"].update(api_base=gateway.base, api_key="none")
    router = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    try:
        for name in sorted(A100_ONLY):
            router.completion(model=litellm_alias("llama-2-7b", name), messages=[{"role": "user", "content": "hi"}])
        router.completion(model="llama-2-7b", messages=[{"role": "user", "content": "hi"}])
    finally:
        gateway.server.shutdown()
    assert gateway.seen == [*sorted(A100_ONLY), None]
    gw = build_gateway(plan, inputs)["c1"]
    routes = [o for o in gw.values() if o["kind"] == "HTTPRoute"]
    pools = {o["metadata"]["name"]: o for o in gw.values() if o["kind"] == "InferencePool"}
    pods, reps = _pods(build_k8s(plan, inputs)["c1"]), _class_replicas(plan)
    path = "/models/llama-2-7b/v1/chat/completions"
    for header in gateway.seen:
        pool = pools[_gateway_pick(routes, path, {CLASS_HEADER: header} if header else {})]
        got = _selected(pods, pool["spec"]["selector"]["matchLabels"])
        assert got == (reps[header] if header else {r.id for r in plan.replicas})


def test_no_split_no_new_objects(melange) -> None:
    """A plan whose classes all go where their pair goes gets no class objects (the emit fixture's
    goldens check the bytes; here the Melange plan with every route moved onto the A100s)."""
    plan, inputs = melange
    a100 = sorted(r.id for r in plan.replicas if r.gpu_type == "a100-80gb")
    by_class: dict[str, float] = {}
    for rt in plan.routes:
        by_class[rt.request_class] = by_class.get(rt.request_class, 0.0) + rt.rate_rps
    total = sum(by_class.values())
    routes = [plan.routes[0].model_copy(update={"replica": rid, "request_class": c, "rate_rps": r / len(a100), "fraction": r / len(a100) / total})
              for c, r in sorted(by_class.items()) for rid in a100]
    flat = plan.model_copy(update={"routes": routes, "replicas": [r for r in plan.replicas if r.id in a100]})
    split = class_split(flat)
    assert not any(split.split.values()) and not any(split.aliased.values())
    assert "class.maestro-plan.dev" not in json.dumps(build_k8s(flat, inputs)) + json.dumps(build_gateway(flat, inputs))
    assert "class_routing" not in json.dumps(build_routing(flat, inputs))
    pools = [o["metadata"]["name"] for o in build_gateway(flat, inputs)["c1"].values() if o["kind"] == "InferencePool"]
    assert [p for p in pools if not re.fullmatch(r"pool-llama-2-7b-s\d+", p)] == ["pool-llama-2-7b"]  # besides engine-slot pools
    assert all("@" not in d["model_name"] for d in build_litellm(flat, inputs)["model_list"])


def _spread_plan():
    """The emit fixture with the 8B pair of users-eu-west split by class across clusters only: the
    coder class half over eu-west's two serving replicas, half over us-east's three (each all of the
    model's there), the summarize class all in eu-west (pair: 2/3 eu-west). users-us-east's classes go where its pair goes."""
    from emit_testlib import fixture_plan

    plan = fixture_plan()
    us = sorted(r.id for r in plan.replicas if r.model == "llama-3.1-8b" and r.cluster == "us-east")
    eu = sorted(r.id for r in plan.replicas if r.model == "llama-3.1-8b" and r.cluster == "eu-west" and not r.swap_models)
    keep = [rt for rt in plan.routes if rt.model != "llama-3.1-8b"]
    tpl = next(rt for rt in plan.routes if rt.model == "llama-3.1-8b")
    new = []
    for src, cls, where in (("users-eu-west", "coding-agent/coder", [(e, 0.75) for e in eu] + [(u, 0.5) for u in us]),
                            ("users-eu-west", "nightly-summaries/summarize", [(e, 0.75) for e in eu]),
                            ("users-us-east", "coding-agent/coder", [(u, 1.0) for u in us]),
                            ("users-us-east", "nightly-summaries/summarize", [(u, 1.0) for u in us])):
        total = 4.5 if src == "users-eu-west" else 6.0
        new += [tpl.model_copy(update={"source": src, "request_class": cls, "replica": rid, "rate_rps": r, "fraction": r / total}) for rid, r in where]
    return plan.model_copy(update={"routes": sorted(keep + new, key=lambda r: (r.source, r.model, r.replica, r.request_class))})


def test_classes_spread_over_clusters_get_their_own_weights() -> None:
    """A class split only across clusters (each cluster's replicas all serve it) gets a LiteLLM group
    with its own weights and no per-class Kubernetes objects; LiteLLM's own picks follow them."""
    import random

    from emit_testlib import fixture_inputs

    plan, inputs = _spread_plan(), fixture_inputs()
    split = class_split(plan)
    assert not split.split and split.aliased == {"llama-3.1-8b": {"coding-agent/coder", "nightly-summaries/summarize"}}
    assert "class.maestro-plan.dev" not in json.dumps(build_k8s(plan, inputs))
    cfg = build_litellm(plan, inputs, "users-eu-west")
    assert not any("extra_headers" in d["litellm_params"] for d in cfg["model_list"])
    router = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    random.seed(11)
    for model, eu_share in (("llama-3.1-8b", 3.0 / 4.5), (litellm_alias("llama-3.1-8b", "coding-agent/coder"), 0.5),
                            (litellm_alias("llama-3.1-8b", "nightly-summaries/summarize"), 1.0)):
        picks = [router.get_available_deployment(model=model, messages=[{"role": "user", "content": "hi"}])["model_info"]["cluster"] for _ in range(1000)]
        assert picks.count("eu-west") / 1000 == pytest.approx(eu_share, abs=0.05), model
    assert {litellm_alias("llama-3.1-8b", "coding-agent/coder"): ["llama-3.1-8b"]} in cfg["router_settings"]["fallbacks"]
