"""Commands about inputs: validate, models, gpus, schema."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated

import typer
from rich.table import Table

from maestro_plan.cli.common import InventoryOpt, JsonOpt, ModelsOpt, WorkloadsOpt, console, emit_json, guarded, print_table
from maestro_plan.errors import InputError
from maestro_plan.load.loader import default_paths, load_gpu_types, load_inputs, load_inventory, load_models
from maestro_plan.load.schema import Inputs
from maestro_plan.units import duration_text


def _tflops(v: float | None) -> str:
    """A spec-sheet TFLOP/s figure; 0 or none means the GPU has no such tensor-core format."""
    return "unsupported" if not v else f"{v:g}"


def summarize(inputs: Inputs) -> dict:
    inv = inputs.inventory
    gpus_by_cluster: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in inv.clusters:
        for p in c.node_pools:
            gpus_by_cluster[c.name][p.gpu_type] += p.node_count * p.gpus_per_node
    return {
        "inventory": inv.name,
        "clusters": {
            c.name: {
                "region": c.region,
                "zones": sorted({p.zone for p in c.node_pools}),
                "nodes": sum(p.node_count for p in c.node_pools),
                "gpus": dict(sorted(gpus_by_cluster[c.name].items())),
            }
            for c in inv.clusters
        },
        "total_gpus": sum(sum(v.values()) for v in gpus_by_cluster.values()),
        "sources": [s.name for s in inv.sources],
        "models": sorted(inputs.models),
        "workflows": {
            w.name: {
                "priority": w.priority.value,
                "roles": len(w.roles),
                "rate_per_s": w.total_rate_per_s,
                "slo_ms": w.slo.latency_ms,
                "slo_percentile": w.slo.percentile,
                "models": sorted({r.model for r in w.roles}),
            }
            for w in inputs.workflows
        },
    }


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def validate(inventory: InventoryOpt = None, models: ModelsOpt = None, workloads: WorkloadsOpt = None, json_out: JsonOpt = False) -> None:
        """Check the inputs and every reference between them; print a summary."""
        inputs = load_inputs(inventory, models, workloads)
        extra_checks = []
        try:  # the estimator adds physical checks (weights that fit no GPU at any TP)
            from maestro_plan.estimate.checks import physical_problems

            extra_checks = physical_problems(inputs)
        except ImportError:  # pragma: no cover - estimator always present in a release
            pass
        if extra_checks:
            raise InputError(problems=extra_checks)
        s = summarize(inputs)
        if json_out:
            emit_json({"ok": True, **s})
            return
        t = Table(title=f"inventory {s['inventory']}: {s['total_gpus']} GPUs")
        for col in ("cluster", "region", "zones", "nodes", "GPUs"):
            t.add_column(col)
        for name, c in s["clusters"].items():
            t.add_row(name, c["region"], ", ".join(c["zones"]), str(c["nodes"]), ", ".join(f"{n}×{g}" for g, n in c["gpus"].items()))
        print_table(t, drop=("region",), wrap=("zones", "GPUs"))
        t = Table(title=f"{len(s['workflows'])} workflows over {len(s['models'])} catalogued models")
        for col in ("workflow", "priority", "roles", "queries/s", "SLO", "models"):
            t.add_column(col)
        for name, w in s["workflows"].items():
            t.add_row(name, w["priority"], str(w["roles"]), f"{w['rate_per_s']:g}", f"p{w['slo_percentile']:g} {duration_text(w['slo_ms'])}", ", ".join(w["models"]))
        print_table(t, drop=("roles", "priority"), wrap=("models",))
        console.print("[green]inputs are valid[/]")
        console.print("next: maestro-plan solve --out out/plan1", soft_wrap=True)

    @app.command("models")
    @guarded
    def list_models(models: ModelsOpt = None, json_out: JsonOpt = False) -> None:
        """List the model catalogue with key figures."""
        path = models if models is not None else default_paths()["models"]
        mods, _ = load_models(path)
        rows = []
        for mid in sorted(mods):
            m = mods[mid]
            a = m.architecture
            rows.append(
                {
                    "id": mid,
                    "hf_repo": m.hf_repo,
                    "params_b": round(m.params_total / 1e9, 2) if m.params_total else None,
                    "layers": a.num_hidden_layers,
                    "hidden": a.hidden_size,
                    "heads": a.num_attention_heads,
                    "kv_heads": a.kv_heads,
                    "experts": f"{a.num_experts_per_tok}/{a.num_experts}" if a.is_moe else "",
                    "attention": "MLA" if a.is_mla else ("GQA" if a.kv_heads < a.num_attention_heads else "MHA"),
                    "dtype": m.weight_dtype,
                    "context": m.context_len,
                    "tp_degrees": m.tp_degrees,
                }
            )
        if json_out:
            emit_json(rows)
            return
        t = Table(title=f"{len(rows)} models")
        for col in ("id", "params (B)", "layers", "hidden", "heads/kv", "attention", "experts", "dtype", "context", "TP", "hf repo"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["id"], f"{r['params_b']}" if r["params_b"] else "?", str(r["layers"]), str(r["hidden"]), f"{r['heads']}/{r['kv_heads']}", r["attention"], r["experts"], r["dtype"], str(r["context"]), ",".join(map(str, r["tp_degrees"])), r["hf_repo"])
        print_table(t, drop=("hf repo", "hidden", "layers", "experts", "attention"))

    @app.command("gpus")
    @guarded
    def list_gpus(inventory: InventoryOpt = None, json_out: JsonOpt = False) -> None:
        """List GPU types (built-in table plus the inventory's additions) with spec-sheet figures."""
        extra = []
        if inventory is not None:
            inv, _ = load_inventory(inventory)
            extra = list(inv.gpu_types)
        table = load_gpu_types(extra)
        rows = [g.model_dump(mode="json", exclude={"sources"}) for g in sorted(table.values(), key=lambda g: g.id)]
        if json_out:
            emit_json(rows)
            return
        t = Table(title=f"{len(rows)} GPU types")
        for col in ("id", "name", "HBM GiB", "HBM TB/s", "BF16 TFLOP/s", "FP8 TFLOP/s", "link GB/s", "host GB/s", "$/GPU-h"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["id"], r["name"], f"{r['hbm_gib']:g}", f"{r['hbm_tbps']:g}", f"{r['bf16_tflops']:g}", _tflops(r["fp8_tflops"]), f"{r['interconnect_gbps']:g}", f"{r['host_to_gpu_gbps']:g}", f"{r['price_per_gpu_hour']:.2f}")
        print_table(t, drop=("name", "host GB/s", "link GB/s"))

    @app.command("schema")
    @guarded
    def schema(what: Annotated[str, typer.Argument(help="inventory | model | workflow | plan | scenario | capacity-table")]) -> None:
        """Print the JSON Schema of an input, of the plan, of a what-if scenario file or of a measured capacity table.

        Examples: examples/whatif/scenarios.yaml (scenario), examples/whatif/capacity-table.csv (capacity-table)."""
        if what not in SCHEMAS:
            raise InputError(f"unknown schema '{what}'.", hint=f"use one of: {', '.join(SCHEMAS)}.")
        print(json.dumps(SCHEMAS[what](), indent=2, sort_keys=True))


def _scenario_schema() -> dict:
    """A scenario file holds one scenario or a `scenarios:` list (whatif/scenario.py)."""
    from pydantic import TypeAdapter

    from maestro_plan.whatif.scenario import Scenario, ScenarioFile

    doc = TypeAdapter(Scenario | ScenarioFile).json_schema()
    doc["title"] = "maestro-plan what-if scenario file"
    doc["description"] = "One scenario, or several under 'scenarios:'. Edits are one-key mappings (- scale_demand: {...}). Example: examples/whatif/scenarios.yaml"
    return doc


def _capacity_table_schema() -> dict:
    """A measured capacity table: rows of CapacityRow (estimate/capacity.py), as CSV columns or YAML/JSON."""
    from pydantic import TypeAdapter

    from maestro_plan.estimate.capacity import CapacityRow

    doc = TypeAdapter(list[CapacityRow]).json_schema()
    doc["title"] = "maestro-plan measured capacity table (--capacity-table)"
    doc["description"] = ("Rows as a YAML/JSON list (or under 'rows:'), or a CSV whose header names the same columns. "
                          "Example: examples/whatif/capacity-table.csv")
    return doc


def _input_schemas() -> dict:
    from maestro_plan.load.schema import Inventory, ModelSpec, Workflow
    from maestro_plan.plan.schema import plan_json_schema

    return {"inventory": Inventory.model_json_schema, "model": ModelSpec.model_json_schema, "workflow": Workflow.model_json_schema, "plan": plan_json_schema}


SCHEMAS = {**_input_schemas(), "scenario": _scenario_schema, "capacity-table": _capacity_table_schema}
