"""What-if scenarios without the solver: every edit on small inputs built in code, the purity of
apply, the scenario file format, and bad edits (unknown names with a hint, factors <= 0,
contradictions) caught before anything is solved (exit 2)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

# --------------------------------------------------------------------------------------------
# Small inputs, built in code (also used by test_whatif_sweep.py)
# --------------------------------------------------------------------------------------------
from _small_inputs import CONV_IN, CONV_OUT, MODELS  # noqa: E402 - shared with test_verify.py
from typer.testing import CliRunner

from maestro_plan.cli.main import app
from maestro_plan.errors import InputError
from maestro_plan.load.loader import load_gpu_types
from maestro_plan.load.schema import Inputs, Inventory, ModelSpec, Workflow
from maestro_plan.whatif import apply_scenario, load_scenarios, validate_scenario
from maestro_plan.whatif.apply import fleet_gpus, pool_price
from maestro_plan.whatif.scenario import Scenario, scenario_from_dict

# Qwen2.5-7B-Instruct config.json: https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json
QWEN7B = {
    "id": "qwen2.5-7b", "hf_repo": "Qwen/Qwen2.5-7B-Instruct", "max_model_len": 32768, "tp_degrees": [1, 2, 4],
    "architecture": {"model_type": "qwen2", "num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28,
                     "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064, "max_position_embeddings": 32768,
                     "attention_bias": True},
}  # fmt: skip


def inventory_doc() -> dict:
    """Two clusters; node shapes of AWS p5.48xlarge (8x H100, 2048 GiB) and g6.12xlarge (4x L4, 192 GiB)."""
    return {
        "name": "whatif-test",
        "clusters": [
            {"name": "us-east", "region": "us-east-1", "node_pools": [
                {"name": "h100-a", "zone": "us-east-1a", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
                {"name": "h100-b", "zone": "us-east-1b", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
                {"name": "l4-b", "zone": "us-east-1b", "gpu_type": "l4", "gpus_per_node": 4, "nodes": ["l4-b-x", "l4-b-y"],
                 "host_dram_gib": 192, "interconnect": "pcie"},
            ]},
            {"name": "eu-west", "region": "eu-west-1", "node_pools": [
                {"name": "h100-e", "zone": "eu-west-1a", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
                {"name": "h100-f", "zone": "eu-west-1b", "gpu_type": "h100-sxm", "gpus_per_node": 8, "count": 1, "host_dram_gib": 2048},
            ]},
        ],
        "sources": [{"name": "users-us-east", "region": "us-east-1"}, {"name": "users-eu-west", "region": "eu-west-1"}],
        "links": [  # round figures for the test (same-region 2 ms, transatlantic ~38 ms one way)
            {"a": "users-us-east", "b": "us-east", "latency_ms": 2}, {"a": "users-us-east", "b": "eu-west", "latency_ms": 38},
            {"a": "users-eu-west", "b": "eu-west", "latency_ms": 2}, {"a": "users-eu-west", "b": "us-east", "latency_ms": 38},
            {"a": "us-east", "b": "eu-west", "latency_ms": 38},
        ],
    }  # fmt: skip


WORKFLOWS = [
    {
        "name": "assist", "priority": "interactive", "slo": {"percentile": 95, "latency_ms": 30000},
        "arrivals": [{"source": "users-us-east", "rate_per_s": 2.0}, {"source": "users-eu-west", "rate_per_s": 1.0}],
        "roles": [
            {"name": "planner", "model": "llama-3.1-8b", "calls_per_query": 1, "input_tokens": CONV_IN, "output_tokens": CONV_OUT},
            {"name": "helper", "model": "llama-3.2-1b", "calls_per_query": 2, "depends_on": ["planner"], "input_tokens": CONV_IN,
             "output_tokens": CONV_OUT},
        ],
    },
    {
        "name": "digest", "priority": "batch", "slo": {"percentile": 99, "latency_ms": 600000},
        "arrivals": [{"source": "users-us-east", "rate_per_s": 0.5}],
        "roles": [{"name": "summarize", "model": "llama-3.1-8b", "calls_per_query": 1, "input_tokens": CONV_IN, "output_tokens": CONV_OUT}],
    },
]  # fmt: skip


def make_inputs() -> Inputs:
    return Inputs(
        inventory=Inventory.model_validate(inventory_doc()),
        gpu_types=load_gpu_types(),
        models={k: ModelSpec.model_validate(v) for k, v in MODELS.items()},
        workflows=sorted((Workflow.model_validate(copy.deepcopy(w)) for w in WORKFLOWS), key=lambda w: w.name),
    )


def write_inputs(folder: Path) -> list[str]:
    """The same inputs as files; returns the CLI flags that name them."""
    (folder / "models").mkdir(parents=True)
    (folder / "workloads").mkdir()
    (folder / "inventory.yaml").write_text(yaml.safe_dump(inventory_doc(), sort_keys=False))
    for k, v in MODELS.items():
        (folder / "models" / f"{k}.yaml").write_text(yaml.safe_dump(v, sort_keys=False))
    for w in WORKFLOWS:
        (folder / "workloads" / f"{w['name']}.yaml").write_text(yaml.safe_dump(w, sort_keys=False))
    return ["--inventory", str(folder / "inventory.yaml"), "--models", str(folder / "models"), "--workloads", str(folder / "workloads")]


def sc(*edits: dict, name: str = "t") -> Scenario:
    return scenario_from_dict({"name": name, "edits": list(edits)})


def rates(inputs: Inputs) -> dict[tuple[str, str], float]:
    return {(w.name, a.source): a.rate_per_s for w in inputs.workflows for a in w.arrivals}


def pools(inputs: Inputs) -> dict[str, tuple[str, int, int]]:
    return {p.name: (c.name, p.gpus_per_node, p.node_count) for c in inputs.inventory.clusters for p in c.node_pools}


# --------------------------------------------------------------------------------------------
# Each edit
# --------------------------------------------------------------------------------------------


def test_scale_demand_all_workflow_source_compose() -> None:
    base = make_inputs()
    before = rates(base)
    out = apply_scenario(base, sc({"scale_demand": {"factor": 2}}, {"scale_demand": {"factor": 1.5, "workflow": "assist"}},
                                  {"scale_demand": {"factor": 0.5, "source": "users-eu-west"}}))
    r = rates(out)
    assert r[("assist", "users-us-east")] == pytest.approx(2.0 * 2 * 1.5)
    assert r[("assist", "users-eu-west")] == pytest.approx(1.0 * 2 * 1.5 * 0.5)
    assert r[("digest", "users-us-east")] == pytest.approx(0.5 * 2)
    assert rates(base) == before  # the base is untouched (apply is pure)
    one = apply_scenario(base, sc({"scale_demand": {"factor": 3, "workflow": "digest", "source": "users-us-east"}}))
    assert rates(one)[("digest", "users-us-east")] == pytest.approx(1.5) and rates(one)[("assist", "users-us-east")] == 2.0


def test_remove_cluster_zone_pool_nodes() -> None:
    base = make_inputs()
    out = apply_scenario(base, sc({"remove": {"cluster": "eu-west"}}))
    assert [c.name for c in out.inventory.clusters] == ["us-east"]
    assert all("eu-west" not in (lk.a, lk.b) for lk in out.inventory.links)  # links to it go too
    assert len(base.inventory.clusters) == 2
    out = apply_scenario(base, sc({"remove": {"zone": "us-east-1b"}}))
    assert set(pools(out)) == {"h100-a", "h100-e", "h100-f"}
    out = apply_scenario(base, sc({"remove": {"node_pool": "h100-f"}}))
    assert "h100-f" not in pools(out) and "h100-e" in pools(out)
    out = apply_scenario(base, sc({"remove": {"nodes": ["l4-b-x", "h100-a-000"]}}))
    p = {q.name: q for c in out.inventory.clusters for q in c.node_pools}
    assert p["l4-b"].node_names == ["l4-b-y"] and "h100-a" not in p  # a pool left without nodes goes
    assert fleet_gpus(out) == {"h100-sxm": 24, "l4": 4}
    with pytest.raises(InputError, match="removes every node"):
        apply_scenario(base, sc({"remove": {"cluster": "eu-west"}}, {"remove": {"cluster": "us-east"}}))


def test_add_gpus_grows_a_pool_or_adds_one() -> None:
    base = make_inputs()
    out = apply_scenario(base, sc({"add_gpus": {"cluster": "us-east", "gpu_type": "h100-sxm", "count": 16}}))
    assert pools(out)["h100-a"] == ("us-east", 8, 3)  # first pool of the type grows by whole nodes
    out = apply_scenario(base, sc({"add_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 8}}))
    assert [q.node_names for c in out.inventory.clusters for q in c.node_pools if q.name == "l4-b"] == [
        ["l4-b-x", "l4-b-y", "l4-b-whatif-000", "l4-b-whatif-001"]
    ]
    # eu-west has no L4: a new pool, node shape copied from us-east's L4 pool, in the cluster's first zone
    out = apply_scenario(base, sc({"add_gpus": {"cluster": "eu-west", "gpu_type": "l4", "count": 12}}))
    newp = next(q for c in out.inventory.clusters if c.name == "eu-west" for q in c.node_pools if q.gpu_type == "l4")
    assert (newp.name, newp.gpus_per_node, newp.node_count, newp.host_dram_gib, newp.zone) == ("whatif-l4-eu-west", 4, 3, 192, "eu-west-1a")
    assert fleet_gpus(out)["l4"] == 20
    # a type the fleet has nowhere: the shape must be given
    with pytest.raises(InputError, match="no l40s node to copy"):
        apply_scenario(base, sc({"add_gpus": {"cluster": "eu-west", "gpu_type": "l40s", "count": 8}}))
    out = apply_scenario(base, sc({"add_gpus": {"cluster": "eu-west", "gpu_type": "l40s", "count": 16, "gpus_per_node": 8, "host_dram_gib": 1536,
                                                "zone": "eu-west-1c", "price_per_gpu_hour": 1.5}}))
    newp = next(q for c in out.inventory.clusters for q in c.node_pools if q.gpu_type == "l40s")
    assert (newp.node_count, newp.zone, pool_price(out, newp)) == (2, "eu-west-1c", 1.5)
    with pytest.raises(InputError, match="not a whole number of nodes") as e:
        apply_scenario(base, sc({"add_gpus": {"cluster": "us-east", "gpu_type": "h100-sxm", "count": 12}}))
    assert "multiple of 8" in e.value.render()


def test_remove_gpus_whole_nodes() -> None:
    base = make_inputs()
    out = apply_scenario(base, sc({"remove_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 4}}))
    assert [q.node_names for c in out.inventory.clusters for q in c.node_pools if q.name == "l4-b"] == [["l4-b-x"]]  # last node first
    out = apply_scenario(base, sc({"remove_gpus": {"cluster": "us-east", "gpu_type": "h100-sxm", "count": 8}}))
    assert "h100-b" not in pools(out) and pools(out)["h100-a"] == ("us-east", 8, 1)  # last pool first
    with pytest.raises(InputError, match="has 8 l4 GPUs; cannot remove 12"):
        apply_scenario(base, sc({"remove_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 12}}))
    with pytest.raises(InputError, match="not a whole number of nodes"):
        apply_scenario(base, sc({"remove_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 6}}))
    with pytest.raises(InputError, match="has no l4 GPUs to remove"):
        apply_scenario(base, sc({"remove_gpus": {"cluster": "eu-west", "gpu_type": "l4", "count": 4}}))


def test_price_absolute_factor_and_per_cluster() -> None:
    base = make_inputs()
    h100 = base.gpu_types["h100-sxm"].price_per_gpu_hour
    out = apply_scenario(base, sc({"price": {"gpu_type": "h100-sxm", "factor": 0.5}}))
    assert [pool_price(out, q) for c in out.inventory.clusters for q in c.node_pools if q.gpu_type == "h100-sxm"] == pytest.approx([h100 * 0.5] * 4)
    assert out.gpu_types["h100-sxm"].price_per_gpu_hour == pytest.approx(h100 * 0.5)
    assert base.gpu_types["h100-sxm"].price_per_gpu_hour == h100
    out = apply_scenario(base, sc({"price": {"gpu_type": "h100-sxm", "cluster": "eu-west", "price_per_gpu_hour": 3.0}}))
    prices = {q.name: pool_price(out, q) for c in out.inventory.clusters for q in c.node_pools}
    assert prices["h100-e"] == prices["h100-f"] == 3.0 and prices["h100-a"] == h100


def test_slo_edits() -> None:
    base = make_inputs()
    out = apply_scenario(base, sc({"slo": {"workflow": "assist", "latency_ms": 20000, "percentile": 99}}))
    w = {x.name: x for x in out.workflows}
    assert (w["assist"].slo.latency_ms, w["assist"].slo.percentile, w["digest"].slo.latency_ms) == (20000, 99, 600000)
    out = apply_scenario(base, sc({"slo": {"factor": 0.5}}))
    assert sorted(x.slo.latency_ms for x in out.workflows) == [15000, 300000]


def test_add_model_and_workflow() -> None:
    base = make_inputs()
    wf = {"name": "qa", "priority": "interactive", "slo": {"latency_ms": 20000}, "arrivals": [{"source": "users-eu-west", "rate_per_s": 1}],
          "roles": [{"name": "answer", "model": "qwen2.5-7b", "calls_per_query": 1, "input_tokens": CONV_IN, "output_tokens": CONV_OUT}]}
    out = apply_scenario(base, sc({"add_model": {"spec": QWEN7B}}, {"add_workflow": {"spec": wf}}, {"scale_demand": {"factor": 2, "workflow": "qa"}}))
    assert "qwen2.5-7b" in out.models and [w.name for w in out.workflows] == ["assist", "digest", "qa"]
    assert rates(out)[("qa", "users-eu-west")] == 2.0
    assert "qwen2.5-7b" not in base.models
    with pytest.raises(InputError, match="unknown model 'qwen2.5-7b'"):  # the workflow's model is not in the catalogue
        apply_scenario(base, sc({"add_workflow": {"spec": wf}}))
    with pytest.raises(InputError, match="model 'llama-3.1-8b' already exists"):
        apply_scenario(base, sc({"add_model": {"spec": MODELS["llama-3.1-8b"]}}))


# --------------------------------------------------------------------------------------------
# Bad edits: exit 2 before any solve
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message", "hint"),
    [
        ({"remove": {"cluster": "us-eats"}}, "cluster 'us-eats' is not in the base inputs", "did you mean 'us-east'"),
        ({"remove": {"zone": "eu-west-1z"}}, "zone 'eu-west-1z'", "did you mean 'eu-west-1"),
        ({"remove": {"nodes": ["l4-b-z"]}}, "node 'l4-b-z'", "did you mean 'l4-b-"),
        ({"scale_demand": {"factor": 2, "workflow": "asist"}}, "workflow 'asist'", "did you mean 'assist'"),
        ({"scale_demand": {"factor": 2, "source": "users-us-wset"}}, "source 'users-us-wset'", "did you mean 'users-"),
        ({"add_gpus": {"cluster": "eu-west", "gpu_type": "h100-sx", "count": 8}}, "GPU type 'h100-sx' is not known", "did you mean 'h100-sxm'"),
        ({"price": {"gpu_type": "l4", "cluster": "euwest", "factor": 2}}, "cluster 'euwest'", "did you mean 'eu-west'"),
        ({"slo": {"workflow": "digets", "factor": 2}}, "workflow 'digets'", "did you mean 'digest'"),
        ({"scale_demand": {"factor": 0}}, "greater than 0", None),
        ({"scale_demand": {"factor": -1.5, "workflow": "assist"}}, "greater than 0", None),
        ({"price": {"gpu_type": "l4", "factor": 2, "price_per_gpu_hour": 1}}, "exactly one of 'price_per_gpu_hour' or 'factor'", None),
        ({"remove": {"cluster": "us-east", "zone": "us-east-1a"}}, "exactly one of 'cluster'", None),
        ({"scale_demand": {"factor": 2, "workflow": "digest", "source": "users-eu-west"}}, "has no arrivals from source 'users-eu-west'", None),
        ({"explode": {"cluster": "us-east"}}, "does not match any of the expected tags", None),
    ],
)
def test_bad_edit_is_input_error(edit: dict, message: str, hint: str | None) -> None:
    base = make_inputs()
    with pytest.raises(InputError) as e:
        apply_scenario(base, sc(edit))
    text = e.value.render()
    assert message in text
    if hint:
        assert hint in text


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([{"scale_demand": {"factor": 2, "workflow": "assist"}}, {"scale_demand": {"factor": 3, "workflow": "assist"}}], "scaled twice"),
        ([{"add_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 4}}, {"remove_gpus": {"cluster": "us-east", "gpu_type": "l4", "count": 4}}],
         "added and removed"),
        ([{"price": {"gpu_type": "l4", "factor": 2}}, {"price": {"gpu_type": "l4", "cluster": "us-east", "price_per_gpu_hour": 1}}], "set twice"),
        ([{"slo": {"factor": 2}}, {"slo": {"workflow": "assist", "latency_ms": 1000}}], "SLO of assist is set twice"),
        ([{"remove": {"cluster": "eu-west"}}, {"add_gpus": {"cluster": "eu-west", "gpu_type": "l4", "count": 4}}], "which this scenario removes"),
        ([{"remove": {"cluster": "eu-west"}}, {"remove": {"node_pool": "h100-e"}}], "removes part of cluster 'eu-west'"),
        ([{"remove": {"zone": "us-east-1a"}}, {"remove": {"zone": "us-east-1a"}}], "removed twice"),
    ],
)
def test_contradictory_edits(edits: list[dict], message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_scenario(sc(*edits), make_inputs())


def test_all_problems_reported_together() -> None:
    with pytest.raises(InputError) as e:
        validate_scenario(sc({"remove": {"cluster": "nowhere"}}, {"scale_demand": {"factor": 2, "workflow": "nothing"}}), make_inputs(), origin="s.yaml")
    assert len(e.value.problems) == 2 and all(p.file == "s.yaml" for p in e.value.problems)
    assert e.value.problems[0].field == "edits[0].remove.cluster"


# --------------------------------------------------------------------------------------------
# Scenario files and the CLI
# --------------------------------------------------------------------------------------------


def test_scenario_file_with_file_references(tmp_path: Path) -> None:
    (tmp_path / "qwen.yaml").write_text(yaml.safe_dump(QWEN7B))
    (tmp_path / "s.yaml").write_text(
        "scenarios:\n"
        "  - name: bigger\n"
        "    edits:\n"
        "      - scale_demand: {factor: 2}\n"
        "      - {kind: remove, cluster: eu-west}\n"
        "  - name: new-model\n"
        "    edits:\n"
        "      - add_model: {file: qwen.yaml}\n"
    )
    scs = load_scenarios(tmp_path / "s.yaml")
    assert [s.name for s in scs] == ["bigger", "new-model"]
    assert scs[1].edits[0].spec["id"] == "qwen2.5-7b" and scs[1].edits[0].file is None  # inlined: self-contained
    assert "demand all x2; remove cluster eu-west" == scs[0].describe()
    out = apply_scenario(make_inputs(), scs[1])
    assert "qwen2.5-7b" in out.models
    (tmp_path / "bad.yaml").write_text("name: x\nedits:\n  - scale_demand: {factr: 2}\n")
    with pytest.raises(InputError, match="factr"):
        load_scenarios(tmp_path / "bad.yaml")


def test_cli_bad_edits_exit_2_before_any_solve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import maestro_plan.whatif.sweep as sweep

    def boom(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("solved although the edits are bad")

    monkeypatch.setattr(sweep, "solve_inputs", boom)
    flags = write_inputs(tmp_path)
    runner = CliRunner()
    for args, text in [
        (["--remove-cluster", "us-wset"], "did you mean"),
        (["--scale", "0"], "greater than 0"),
        (["--scale-workflow", "assist=-1"], "greater than 0"),
        (["--add-gpus", "eu-west:l4"], "CLUSTER:GPU_TYPE:COUNT"),
        (["--price", "h100-sxm=x0.5", "--price", "h100-sxm@us-east=2"], "set twice"),
        ([], "no scenario given"),
    ]:
        res = runner.invoke(app, ["whatif", *flags, *args])
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output.replace("\n", " "), (args, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["sweep", *flags, "--demand", "0:2:0.5", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "must be > 0" in res.output
    res = runner.invoke(app, ["sweep", *flags, "--fail", "region", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cluster, zone or node-pool" in res.output
    (tmp_path / "s.yaml").write_text("name: a\nedits: [{scale_demand: {factor: 2}}]\n")
    res = runner.invoke(app, ["sweep", *flags, "--demand", "1,2", "--scenarios", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "does not combine" in res.output
    res = runner.invoke(app, ["sweep", *flags, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no grid given" in res.output
    assert not (tmp_path / "o").exists()
