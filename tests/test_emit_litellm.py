"""The LiteLLM config loads in LiteLLM's own Router, with one weighted deployment per model and cluster
whose weights follow the plan's flows (LiteLLM's simple-shuffle picks by the first deployment's field)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from emit_testlib import fixture_inputs, fixture_plan

from maestro_plan.emit.litellm import emit_litellm

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price map at import
litellm = pytest.importorskip("litellm", reason="litellm is a test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("litellm")
    emit_litellm(fixture_plan(), fixture_inputs(), out)
    return out


def _planned_rates(source: str | None = None) -> dict[str, dict[str, float]]:
    plan = fixture_plan()
    cluster = {r.id: r.cluster for r in plan.replicas} | {f"standby:{s.model}@{s.node}": s.cluster for s in plan.standby}
    rates: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rt in plan.routes:
        if source is None or rt.source == source:
            rates[rt.model][cluster[rt.replica]] += rt.rate_rps
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
    assert all("weight" in d["litellm_params"] for d in deployments), "LiteLLM reads the weight field only if the first deployment has it"
    rates = _planned_rates(source)
    groups: dict[str, dict[str, int]] = defaultdict(dict)
    for d in deployments:
        cluster = d["model_info"]["cluster"]
        assert d["litellm_params"]["api_base"].startswith(f"http://vllm-{d['model_name'].replace('.', '-')}-{cluster}.")
        groups[d["model_name"]][cluster] = d["litellm_params"]["weight"]
    assert set(groups) == set(rates)
    for model, weights in groups.items():
        total_w = sum(weights.values())
        total_r = sum(rates[model].values())
        for cluster, w in weights.items():
            assert w / total_w == pytest.approx(rates[model].get(cluster, 0.0) / total_r, abs=2e-3), (model, cluster)


def test_rpm_tpm_follow_capacity(written: Path) -> None:
    plan = fixture_plan()
    cap = defaultdict(float)
    for r in plan.replicas:
        cap[(r.model, r.cluster)] += r.capacity_rps
    cfg = yaml.safe_load((written / "routing/litellm.yaml").read_text())
    for d in cfg["model_list"]:
        c = cap[(d["model_name"], d["model_info"]["cluster"])]
        if c == 0:  # warm standby only: no planned capacity to limit
            assert "rpm" not in d["litellm_params"] and d["model_info"]["cluster"] == "eu-west"
            continue
        assert d["litellm_params"]["rpm"] == int(c * 60)
        assert d["litellm_params"]["tpm"] > d["litellm_params"]["rpm"]


def test_router_picks_by_weight(written: Path) -> None:
    """LiteLLM's own deployment choice over many picks follows the weights (seeded)."""
    import random

    router, _ = _router(written / "routing/litellm-by-source/users-eu-west.yaml")
    random.seed(7)
    picks = defaultdict(int)
    for _ in range(2000):
        d = router.get_available_deployment(model="llama-3.1-70b")
        picks[d["model_info"]["cluster"]] += 1
    # planned: 0.7 rps to eu-west, 0.3 rps to us-east
    assert picks["eu-west"] / 2000 == pytest.approx(0.7, abs=0.05)
