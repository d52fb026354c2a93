"""`maestro-plan import ...`: turn files users already have into inputs.

Subcommands: `import model` (a Hugging Face config.json -> catalogue entry) and `import inventory`
(nvidia-smi CSV or `kubectl get nodes -o json` -> inventory). Each registers itself below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maestro_plan.cli.common import err_console, guarded

import_app = typer.Typer(help="Import Hugging Face configs, nvidia-smi output or kubectl node lists.", no_args_is_help=True)


# --- import model -----------------------------------------------------------------------------


@import_app.command("model")
def import_model_cmd(
    config: Annotated[Path, typer.Argument(help="A Hugging Face config.json")],
    model_id: Annotated[str | None, typer.Option("--id", help="Catalogue id (default: the repo name in lower case)")] = None,
    hf_repo: Annotated[str | None, typer.Option("--hf-repo", help="ORG/NAME (default: the config's _name_or_path)")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="Weight precision: bf16, fp16, fp32, fp8, int8, int4 (default: from the config)")] = None,
    max_model_len: Annotated[int | None, typer.Option("--max-model-len", help="Context the engine is started with")] = None,
    tp_degrees: Annotated[str | None, typer.Option("--tp-degrees", help="Allowed TP degrees, e.g. 2,4,8 (default: those of 1,2,4,8 vLLM accepts)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write models/ID.yaml here instead of printing it")] = None,
) -> None:
    """Turn a Hugging Face config.json into a model catalogue entry (YAML)."""
    _import_model(config, model_id, hf_repo, dtype, max_model_len, tp_degrees, out)


@guarded
def _import_model(
    config: Path,
    model_id: str | None,
    hf_repo: str | None,
    dtype: str | None,
    max_model_len: int | None,
    tp_degrees: str | None,
    out: Path | None,
) -> None:
    import sys

    from maestro_plan.atomic import write_text
    from maestro_plan.cli.common import console
    from maestro_plan.errors import InputError
    from maestro_plan.load.importers.hf_model import import_hf_config, spec_to_yaml

    tps = None
    if tp_degrees is not None:
        try:
            tps = [int(x) for x in tp_degrees.replace(" ", "").split(",") if x]
        except ValueError:
            raise InputError(f"--tp-degrees {tp_degrees!r} is not a comma-separated list of integers.", field="--tp-degrees", hint="e.g. --tp-degrees 2,4,8.") from None
        if not tps or any(t <= 0 for t in tps):
            raise InputError(f"--tp-degrees {tp_degrees!r} must list positive integers.", field="--tp-degrees", hint="e.g. --tp-degrees 2,4,8.")
    if max_model_len is not None and max_model_len <= 0:
        raise InputError(f"--max-model-len {max_model_len} must be positive.", field="--max-model-len", hint="e.g. --max-model-len 32768.")
    spec = import_hf_config(config, model_id=model_id, hf_repo=hf_repo, weight_dtype=dtype, max_model_len=max_model_len, tp_degrees=tps)
    if hf_repo is None and "inferred from the file name" in spec.description:
        err_console.print(f"note: {config.name} has no '_name_or_path'; repository {spec.hf_repo} and id '{spec.id}' come from its file name (pass --hf-repo/--id to override).")
    text = spec_to_yaml(spec, header=f"{spec.hf_repo}: imported from {config.name} by maestro-plan import model.\nArchitecture numbers: {spec.source}")
    if out is None:
        sys.stdout.write(text)
        return
    if out.is_dir():
        raise InputError("is a directory.", file=out, field="--out", hint=f"name the file, e.g. --out {out / (spec.id + '.yaml')}.")
    write_text(out, text)
    console.print(f"wrote {out} (model '{spec.id}')")


@import_app.command("inventory")
@guarded
def import_inventory(
    nvidia_smi: Annotated[Path | None, typer.Option("--nvidia-smi", help="Output of `nvidia-smi --query-gpu=index,name,memory.total --format=csv` (several hosts may be concatenated)")] = None,
    kubectl: Annotated[Path | None, typer.Option("--kubectl", help="Output of `kubectl get nodes -o json` (GPU Feature Discovery labels)")] = None,
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster name in the inventory")] = "imported",
    region: Annotated[str | None, typer.Option("--region", help="Region (kubectl: default from topology.kubernetes.io/region)")] = None,
    zone: Annotated[str | None, typer.Option("--zone", help="Zone (kubectl: only for nodes without topology.kubernetes.io/zone)")] = None,
    host_dram_gib: Annotated[float | None, typer.Option("--host-dram-gib", help="Host memory per node, GiB (nvidia-smi does not report it)")] = None,
    gpu_types: Annotated[Path | None, typer.Option("--gpu-types", help="YAML with extra 'gpu_types:' for products not in the built-in table")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the inventory YAML here (default: print it)")] = None,
) -> None:
    """Turn nvidia-smi CSV or `kubectl get nodes -o json` into an inventory (identical nodes -> node pools)."""
    from maestro_plan.atomic import write_text
    from maestro_plan.errors import InputError
    from maestro_plan.load.importers.common import inventory_yaml, load_extra_gpu_types
    from maestro_plan.load.importers.kubectl import inventory_from_kubectl
    from maestro_plan.load.importers.nvidia_smi import inventory_from_nvidia_smi

    if (nvidia_smi is None) == (kubectl is None):
        raise InputError("give exactly one of --nvidia-smi FILE or --kubectl FILE.", field="--nvidia-smi/--kubectl", hint="e.g. maestro-plan import inventory --kubectl nodes.json --out inventories/mine.yaml")
    extra = load_extra_gpu_types(gpu_types) if gpu_types is not None else []
    if nvidia_smi is not None:
        inv = inventory_from_nvidia_smi(nvidia_smi, cluster=cluster, region=region, zone=zone, host_dram_gib=host_dram_gib, extra_gpu_types=extra)
    else:
        assert kubectl is not None
        inv = inventory_from_kubectl(kubectl, cluster=cluster, region=region, zone=zone, extra_gpu_types=extra)
    text = inventory_yaml(inv)
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.is_dir():
        raise InputError("is a directory; --out names the inventory file to write.", file=out, field="--out", hint="e.g. --out inventories/imported.yaml")
    write_text(out, text)
    pools = [p for c in inv.clusters for p in c.node_pools]
    gpus = sum(p.node_count * p.gpus_per_node for p in pools)
    err_console.print(f"wrote {out}: {len(pools)} node pools, {sum(p.node_count for p in pools)} nodes, {gpus} GPUs")


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
