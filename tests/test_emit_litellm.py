"""The LiteLLM config in LiteLLM's own Router (the pinned version): weights follow the plan's flows,
failover tiers follow routing.json, and with one cluster's backends down every request is served by
the others (local fake OpenAI-compatible backends on 127.0.0.1)."""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from emit_testlib import FakeOpenAI, fixture_inputs, fixture_plan

from maestro_plan.emit.litellm import build_litellm, emit_litellm
from maestro_plan.emit.routing import build_routing

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price map at import
litellm = pytest.importorskip("litellm", reason="litellm is a test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("litellm")
    emit_litellm(fixture_plan(), fixture_inputs(), out)
    return out


def _planned_rates(source: str | None = None) -> dict[str, dict[tuple[str, str], float]]:
    plan = fixture_plan()
    where = {r.id: (r.cluster, "serving") for r in plan.replicas} | {f"standby:{s.model}@{s.node}": (s.cluster, "standby") for s in plan.standby}
    rates: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for rt in plan.routes:
        if source is None or rt.source == source:
            rates[rt.model][where[rt.replica]] += rt.rate_rps
    return rates


def _router(path: Path):
    cfg = yaml.safe_load(path.read_text())
    return litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"]), cfg


@pytest.mark.parametrize("source", [None, "users-us-east", "users-eu-west"])
def test_router_loads_and_weights_match_plan(written: Path, source: str | None) -> None:
    path = written / ("routing/litellm.yaml" if source is None else f"routing/litellm-by-source/{source}.yaml")
    router, cfg = _router(path)
    deployments = router.get_model_list()
    assert len(deployments) == len(cfg["model_list"]) > 0
    rates = _planned_rates(source)
    groups: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for d in deployments:
        p, info = d["litellm_params"], d["model_info"]
        assert "rpm" not in p and "tpm" not in p, "rpm/tpm do not act under simple-shuffle"
        assert p["timeout"] > 0 and info["max_input_tokens"] > 0
        if p.get("order") == 1:
            groups[d["model_name"]][(info["cluster"], info["kind"])] = p["weight"]
    assert set(groups) == set(rates)
    for model, weights in groups.items():
        total_w, total_r = sum(weights.values()), sum(rates[model].values())
        for key, w in weights.items():
            assert w / total_w == pytest.approx(rates[model].get(key, 0.0) / total_r, abs=2e-3), (model, key)


def test_failover_tier_is_routing_json_failover(written: Path) -> None:
    table = build_routing(fixture_plan(), fixture_inputs())
    for source in ("users-us-east", "users-eu-west"):
        cfg = build_litellm(fixture_plan(), fixture_inputs(), source)
        for e in (e for e in table["routes"] if e["source"] == source):
            planned = {r["cluster"] for r in e["replicas"]}
            tiers = {(d["model_info"]["cluster"], d["model_info"]["kind"]): d["litellm_params"].get("order")
                     for d in cfg["model_list"] if d["model_name"] == e["model"]}
            for f in e["failover"]:
                assert tiers[(f["cluster"], "serving")] == (1 if f["cluster"] in planned else 2)


def test_addresses_are_in_cluster_only_inside_the_home_cluster() -> None:
    cfg = build_litellm(fixture_plan(), fixture_inputs(), "users-eu-west")
    for d in cfg["model_list"]:
        base = d["litellm_params"]["api_base"]
        if d["model_info"]["cluster"] == "eu-west":
            assert ".svc.cluster.local:8000/v1" in base
        else:
            assert base.startswith("https://llm.us-east.example.com/models/") and "cluster.local" not in base
    assert all("cluster.local" not in d["litellm_params"]["api_base"] for d in build_litellm(fixture_plan(), fixture_inputs())["model_list"])


def test_router_picks_by_weight(written: Path) -> None:
    """LiteLLM's own deployment choice over many picks follows the weights (seeded)."""
    import random

    router, _ = _router(written / "routing/litellm-by-source/users-eu-west.yaml")
    random.seed(7)
    picks = defaultdict(int)
    for _ in range(2000):
        d = router.get_available_deployment(model="llama-3.1-70b", messages=[{"role": "user", "content": "hi"}])
        picks[d["model_info"]["cluster"]] += 1
    # planned: 0.7 rps to eu-west, 0.3 rps to us-east
    assert picks["eu-west"] / 2000 == pytest.approx(0.7, abs=0.05)


def _dead_base() -> str:
    with socket.socket() as s:  # a port nothing listens on: connection refused, as from a cluster that is down
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize(("source", "down"), [("users-eu-west", "eu-west"), ("users-us-east", "us-east")])
def test_one_cluster_down_serves_everything_from_the_others(source: str, down: str) -> None:
    cfg = build_litellm(fixture_plan(), fixture_inputs(), source)
    up = {c: FakeOpenAI(c) for c in ("us-east", "eu-west") if c != down}
    dead = _dead_base()
    for d in cfg["model_list"]:  # the test's "DNS": every address of a cluster resolves to its fake backend
        c = d["model_info"]["cluster"]
        d["litellm_params"]["api_base"] = dead if c == down else up[c].base
        d["litellm_params"]["api_key"] = "none"
    router = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    models = sorted({d["model_name"] for d in cfg["model_list"] if not d["model_name"].endswith("-standby")})
    ok = 0
    try:
        for i in range(100):
            resp = router.completion(model=models[i % len(models)], messages=[{"role": "user", "content": "hi"}])
            ok += resp.choices[0].message.content != down
    finally:
        for f in up.values():
            f.server.shutdown()
    assert ok == 100 and sum(f.served for f in up.values()) == 100


def test_priority_classes_order_litellms_queue() -> None:
    """routing.json gives each class a LiteLLM priority; LiteLLM's scheduler, with no free deployment,
    lets the interactive request out of the queue before a batch request queued earlier, and the
    Router serves a request sent with the emitted priority (the scheduler path) from a fake backend."""
    import asyncio

    from litellm.scheduler import FlowItem, Scheduler

    table = build_routing(fixture_plan(), fixture_inputs())
    prio = {k: v["litellm_priority"] for k, v in table["priority_classes"].items()}
    assert prio["interactive"] < prio["batch"]

    async def order() -> list[str]:
        s = Scheduler()
        await s.add_request(FlowItem(priority=prio["batch"], request_id="batch-1", model_name="m"))
        await s.add_request(FlowItem(priority=prio["interactive"], request_id="chat-1", model_name="m"))
        out = []
        for _ in range(2):
            for rid in ("batch-1", "chat-1"):
                if rid not in out and await s.poll(id=rid, model_name="m", health_deployments=[]):
                    out.append(rid)
                    break
        return out

    assert asyncio.run(order()) == ["chat-1", "batch-1"]
    cfg = build_litellm(fixture_plan(), fixture_inputs(), "users-us-east")
    fake = FakeOpenAI("us-east")
    for d in cfg["model_list"]:
        d["litellm_params"].update(api_base=fake.base, api_key="none")
    router = litellm.Router(model_list=cfg["model_list"], **cfg["router_settings"])
    try:
        resp = asyncio.run(router.acompletion(model="llama-3.1-8b", messages=[{"role": "user", "content": "hi"}], priority=prio["batch"]))
    finally:
        fake.server.shutdown()
    assert resp.choices[0].message.content == "us-east"
