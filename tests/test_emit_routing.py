"""routing.json: valid against its JSON Schema, weights equal the plan's flows, failover nearest first,
standby cold starts, and every per-role objective name resolves to an emitted InferenceObjective."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import jsonschema
import pytest
from emit_testlib import fixture_inputs, fixture_plan

from maestro_plan.emit.gateway import build_gateway
from maestro_plan.emit.routing import build_routing, emit_routing

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "maestro_plan" / "data" / "routing.schema.json").read_text())


@pytest.fixture(scope="module")
def table() -> dict:
    return build_routing(fixture_plan(), fixture_inputs())


def test_routing_json_matches_its_schema(table, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    emit_routing(fixture_plan(), fixture_inputs(), tmp_path)
    doc = json.loads((tmp_path / "routing.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc == json.loads(json.dumps(table))


def test_schema_rejects_a_broken_table(table) -> None:
    bad = json.loads(json.dumps(table))
    bad["routes"][0]["replicas"][0]["weight"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(bad)
    bad = json.loads(json.dumps(table))
    bad["routes"][0]["priority"] = "urgent"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(bad)


def test_weights_are_the_plans_flows(table) -> None:
    plan = fixture_plan()
    want = defaultdict(dict)
    for rt in plan.routes:
        want[(rt.source, rt.model)][rt.replica] = rt.fraction
    assert len(table["routes"]) == len(plan.demand)
    for e in table["routes"]:
        got = {r["replica"]: r["weight"] for r in e["replicas"]}
        got.update({f"standby:{e['model']}@{s['node']}": s["weight"] for s in e["standby"] if s["weight"] > 0})
        assert got == pytest.approx(want[(e["source"], e["model"])])
        total = sum(r["weight"] for r in e["replicas"]) + sum(s["weight"] for s in e["standby"])
        assert total == pytest.approx(1.0 - e["shed_rps"] / e["demand_rps"])
        for r in e["replicas"]:
            assert r["endpoint"] == f"http://{r['service']}.maestro-serving.svc.cluster.local:8000"


def test_failover_is_nearest_cluster_with_spare_capacity(table) -> None:
    e = next(x for x in table["routes"] if x["source"] == "users-eu-west" and x["model"] == "llama-3.1-8b")
    # eu-west 8B replicas: capacity 3.2 + 1.0 (the idle L4 one), load 3.0 -> 1.2 spare, 3 ms; us-east 0.6 spare, 40 ms
    assert [(f["cluster"], f["spare_rps"], f["network_latency_ms"]) for f in e["failover"]] == [("eu-west", pytest.approx(1.2), 3.0), ("us-east", pytest.approx(0.6), 40.0)]
    lat = [f["network_latency_ms"] for x in table["routes"] for f in x["failover"]]
    assert all(s > 0 for x in table["routes"] for s in (f["spare_rps"] for f in x["failover"]))
    for x in table["routes"]:
        ls = [f["network_latency_ms"] for f in x["failover"]]
        assert ls == sorted(ls)
    assert lat


def test_standby_carries_cold_start(table) -> None:
    e = next(x for x in table["routes"] if x["source"] == "users-eu-west" and x["model"] == "llama-3.2-1b")
    s = next(s for s in fixture_plan().standby if s.model == "llama-3.2-1b")
    assert e["standby"] == [
        {"cluster": "eu-west", "node": "h100-e-002", "service": "vllm-llama-3-2-1b-eu-west-standby",
         "endpoint": "http://vllm-llama-3-2-1b-eu-west-standby.maestro-serving.svc.cluster.local:8000", "weight": 0.1, "rate_rps": 0.2, "cold_start_ms": s.cold_start_ms}
    ]
    # a source with no standby route still learns of the standby as a last resort
    e = next(x for x in table["routes"] if x["source"] == "users-us-east" and x["model"] == "llama-3.2-1b")
    assert [s["weight"] for s in e["standby"]] == [0.0]


def test_priority_per_workflow_and_role_resolves_to_objectives(table) -> None:
    objectives = {
        o["metadata"]["name"]
        for files in build_gateway(fixture_plan(), fixture_inputs()).values()
        for o in files.values()
        if o["kind"] == "InferenceObjective"
    }
    wf = {w["workflow"]: w for w in table["workflows"]}
    assert wf["nightly-summaries"]["priority"] == "batch" and wf["coding-agent"]["priority"] == "interactive"
    for w in table["workflows"]:
        for r in w["roles"]:
            assert r["priority"] == w["priority"]
            assert r["objective"] in objectives, r
    assert table["priority_classes"]["interactive"]["objective_priority"] > 0 > table["priority_classes"]["batch"]["objective_priority"]
