"""Read input files into typed objects; turn every problem into an InputError (exit 2).

Public API:
    read_document(path) -> object                parse one YAML/JSON file (safe loader)
    load_gpu_types(extra) -> dict[str, GpuType]   built-in table + inventory additions/overrides
    load_inventory(path) -> (Inventory, path)
    load_models(path) -> dict[str, ModelSpec]
    load_workflows(path) -> list[Workflow]
    load_inputs(inventory, models, workloads) -> Inputs   all three, cross-checked
    default_paths() -> dict[str, Path]            the bundled folders
"""

from __future__ import annotations

import math
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from maestro_plan.errors import Collector, InputError, Problem, suggest, unknown_name_hint
from maestro_plan.load import safe
from maestro_plan.load.schema import MAX_GPUS, GpuType, Inputs, Inventory, ModelSpec, Workflow, WorkloadFile

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = safe.MAX_FILE_BYTES

T = TypeVar("T", bound=BaseModel)


def default_paths() -> dict[str, Path]:
    """Bundled input folders: ./inventories etc. in the working directory, else the checkout's."""
    out = {}
    for key in ("inventory", "models", "workloads"):
        folder = "inventories" if key == "inventory" else key
        here = Path.cwd() / folder
        out[key] = here if here.exists() else REPO_ROOT / folder
    return out


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def read_document(path: str | Path) -> Any:
    """Parse one YAML or JSON file through the limited reading layer (maestro_plan.load.safe)."""
    return safe.read_document(path)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid field names at a location inside a pydantic model (for 'did you mean' hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        ann = fields[part].annotation
        current = _inner_model(ann)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        m = _inner_model(arg)
        if m is not None:
            return m
    return None


def validation_problems(err: ValidationError, model: type[BaseModel], file: str | Path, prefix: str = "") -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        field = (prefix + "." if prefix and loc else prefix) + _loc(loc)
        kind = e["type"]
        hint = None
        if kind == "extra_forbidden":
            valid = _model_fields(model, loc)
            close = suggest(str(loc[-1]), valid) if valid else None
            msg = "is not a known field."
            hint = f"did you mean '{close}'?" if close else (f"valid fields here: {', '.join(valid)}." if valid else "remove it.")
        elif kind == "missing":
            msg = "is required but missing."
            hint = "add it."
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
            msg += "."
            if kind in ("greater_than", "greater_than_equal"):
                hint = "use a positive value."
            elif kind == "string_pattern_mismatch":
                hint = "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (at most 63 characters)."
            elif kind == "less_than":
                hint = "use a realistic value."
        problems.append(Problem(msg, str(file), field or None, hint))
    return problems


def parse_as(model: type[T], doc: Any, file: str | Path, prefix: str = "") -> T:
    if not isinstance(doc, dict):
        raise InputError(f"must be a mapping (key: value pairs) at the top level, got {type(doc).__name__}.", file=file, field=prefix or None)
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise InputError(problems=validation_problems(e, model, file, prefix)) from None


def _files_in(path: Path, what: str) -> list[Path]:
    if not path.exists():
        raise InputError(f"{what} path does not exist.", file=path, hint=f"pass --{what} with an existing file or folder.")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise InputError("folder has no .yaml, .yml or .json files.", file=path, hint=f"put {what} files in it or name another folder.")
    return files


# --------------------------------------------------------------------------------------------
# Loading each input
# --------------------------------------------------------------------------------------------


def builtin_gpu_types() -> dict[str, GpuType]:
    path = DATA_DIR / "gpus.yaml"
    doc = read_document(path)
    items = doc.get("gpu_types") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError("built-in GPU table must hold a 'gpu_types' list.", file=path)
    out: dict[str, GpuType] = {}
    for i, item in enumerate(items):
        g = parse_as(GpuType, item, path, f"gpu_types[{i}]")
        out[g.id] = g
    return out


def load_gpu_types(extra: list[GpuType] | None = None) -> dict[str, GpuType]:
    table = builtin_gpu_types()
    for g in extra or []:
        table[g.id] = g
    return table


def load_inventory(path: str | Path) -> tuple[Inventory, Path]:
    p = Path(path)
    files = _files_in(p, "inventory")
    if len(files) > 1:
        raise InputError(
            f"folder holds {len(files)} inventory files ({', '.join(f.name for f in files)}); one fleet is planned at a time.",
            file=p,
            hint="pass --inventory with one of these files.",
        )
    f = files[0]
    return parse_as(Inventory, read_document(f), f), f


def load_models(path: str | Path) -> tuple[dict[str, ModelSpec], dict[str, Path]]:
    out: dict[str, ModelSpec] = {}
    where: dict[str, Path] = {}
    col = Collector()
    for f in _files_in(Path(path), "models"):
        try:
            doc = read_document(f)
            docs = doc.get("models") if isinstance(doc, dict) and set(doc) == {"models"} else [doc]
            if not isinstance(docs, list):
                raise InputError("'models' must be a list of model entries.", file=f, field="models")
            for i, d in enumerate(docs):
                m = parse_as(ModelSpec, d, f, f"models[{i}]" if len(docs) > 1 or "models" in doc else "")
                if m.id in out:
                    col.add(f"model id '{m.id}' is defined twice (also in {where[m.id]}).", file=f, field="id", hint="give each model a unique id.")
                out[m.id] = m
                where[m.id] = f
        except InputError as e:
            col.problems.extend(e.problems)
    col.raise_if_any()
    return out, where


def load_workflows(path: str | Path) -> tuple[list[Workflow], dict[str, Path]]:
    out: list[Workflow] = []
    where: dict[str, Path] = {}
    col = Collector()
    for f in _files_in(Path(path), "workloads"):
        try:
            doc = read_document(f)
            if isinstance(doc, dict) and "workflows" in doc:
                wf = parse_as(WorkloadFile, doc, f).workflows
            else:
                wf = [parse_as(Workflow, doc, f)]
            for w in wf:
                if w.name in where:
                    col.add(f"workflow '{w.name}' is defined twice (also in {where[w.name]}).", file=f, field="name", hint="give each workflow a unique name.")
                where[w.name] = f
                out.append(w)
        except InputError as e:
            col.problems.extend(e.problems)
    col.raise_if_any()
    return out, where


# --------------------------------------------------------------------------------------------
# Cross-references
# --------------------------------------------------------------------------------------------


def tp_allowed(arch_heads: int, kv_heads: int, tp: int) -> bool:
    """vLLM's rule: attention heads split evenly; KV heads split evenly or are replicated evenly."""
    return arch_heads % tp == 0 and (kv_heads % tp == 0 or tp % kv_heads == 0)


def check_inventory(inv: Inventory, gpus: dict[str, GpuType], file: Path, col: Collector) -> None:
    seen: dict[str, str] = {}

    def unique(kind: str, name: str, field: str) -> None:
        if name in seen:
            col.add(f"{kind} name '{name}' is used twice (also as {seen[name]}).", file=file, field=field, hint="names of clusters, node pools, nodes and sources must be unique across the inventory.")
        else:
            seen[name] = f"{kind} {field}"

    for ci, c in enumerate(inv.clusters):
        unique("cluster", c.name, f"clusters[{ci}].name")
        for pi, pool in enumerate(c.node_pools):
            unique("node pool", pool.name, f"clusters[{ci}].node_pools[{pi}].name")
            if pool.gpu_type not in gpus:
                col.add(
                    f"node pool '{pool.name}' names unknown GPU type '{pool.gpu_type}'.",
                    file=file,
                    field=f"clusters[{ci}].node_pools[{pi}].gpu_type",
                    hint=unknown_name_hint(pool.gpu_type, gpus, "GPU types") + " Or add it under 'gpu_types'.",
                )
            if pool.nodes:
                for ni, n in enumerate(pool.nodes):
                    unique("node", n, f"clusters[{ci}].node_pools[{pi}].nodes[{ni}]")
    check_fleet_size(inv, file, col)
    clusters = {c.name for c in inv.clusters}
    sources = set()
    for si, s in enumerate(inv.sources):
        unique("source", s.name, f"sources[{si}].name")
        sources.add(s.name)
    places = clusters | sources
    pairs = set()
    for li, link in enumerate(inv.links):
        for end in ("a", "b"):
            name = getattr(link, end)
            if name not in places:
                col.add(f"link names unknown place '{name}'.", file=file, field=f"links[{li}].{end}", hint=unknown_name_hint(name, places, "clusters and sources"))
        if link.a == link.b:
            col.add("link joins a place to itself.", file=file, field=f"links[{li}]", hint="latency inside a cluster is taken as 0; remove the link.")
        key = frozenset((link.a, link.b))
        if key in pairs:
            col.add(f"link between '{link.a}' and '{link.b}' is given twice.", file=file, field=f"links[{li}]", hint="keep one.")
        pairs.add(key)
        if link.a in sources and link.b in sources:
            col.add("link joins two sources; links go between clusters, or from a source to a cluster.", file=file, field=f"links[{li}]")
    for si, s in enumerate(inv.sources):
        if not any(frozenset((s.name, c)) in pairs for c in clusters):
            col.add(f"source '{s.name}' has no link to any cluster, so its latency is unknown.", file=file, field=f"sources[{si}]", hint=f"add a link {{a: {s.name}, b: <cluster>, latency_ms: ...}}.")


def check_fleet_size(inv: Inventory, file: str | Path, col: Collector) -> None:
    """The fleet's GPUs within MAX_GPUS, checked before any node names or solver variables exist."""
    total = sum(p.node_count * p.gpus_per_node for c in inv.clusters for p in c.node_pools)
    if total > MAX_GPUS:
        col.add(
            f"the inventory holds {total:,} GPUs; maestro-plan plans fleets of at most {MAX_GPUS:,} GPUs.",
            file=file, field="clusters", hint="check the node counts (count is nodes, not GPUs), or split the fleet into several inventories.",
        )


def check_models(models: dict[str, ModelSpec], where: dict[str, Path], inv: Inventory | None, col: Collector, used: set[str] | None = None) -> None:
    """Per-model checks. The fleet-size check applies to `used` models only (None: all): a catalogue
    model no workflow calls is not planned, so a fleet too small for it is no error."""
    max_gpus = max((p.gpus_per_node for c in inv.clusters for p in c.node_pools), default=None) if inv else None
    for mid, m in models.items():
        a = m.architecture
        heads = a.num_attention_heads
        kv = 1 if a.is_mla else a.kv_heads
        for ti, tp in enumerate(m.tp_degrees):
            if not tp_allowed(heads, kv, tp):
                col.add(
                    f"model '{mid}' allows TP {tp}, but {heads} attention heads / {kv} KV heads do not split over {tp} GPUs.",
                    file=where.get(mid),
                    field=f"tp_degrees[{ti}]",
                    hint="vLLM needs heads % TP == 0 and (kv_heads % TP == 0 or TP % kv_heads == 0); remove this degree.",
                )
        if max_gpus is not None and min(m.tp_degrees) > max_gpus and (used is None or mid in used):
            col.add(
                f"model '{mid}' needs at least TP {min(m.tp_degrees)}, but no node of the fleet has more than {max_gpus} GPUs.",
                file=where.get(mid),
                field="tp_degrees",
                hint=f"add nodes of at least {min(m.tp_degrees)} GPUs to the inventory, or serve the workflows that call it with a smaller model "
                "(its tp_degrees are the ones its weights need).",
            )


def check_workflows(workflows: list[Workflow], where: dict[str, Path], models: dict[str, ModelSpec], inv: Inventory | None, col: Collector) -> None:
    sources = {s.name for s in inv.sources} if inv else None
    for w in workflows:
        f = where.get(w.name)
        roles = {r.name for r in w.roles}
        graph: dict[str, set[str]] = {}
        for ri, r in enumerate(w.roles):
            if r.model not in models:
                col.add(f"role '{r.name}' calls unknown model '{r.model}'.", file=f, field=f"roles[{ri}].model", hint=unknown_name_hint(r.model, models, "models"))
            for di, d in enumerate(r.depends_on):
                if d not in roles:
                    col.add(f"role '{r.name}' depends on unknown role '{d}'.", file=f, field=f"roles[{ri}].depends_on[{di}]", hint=unknown_name_hint(d, roles, "roles of this workflow"))
            graph[r.name] = {d for d in r.depends_on if d in roles}
            for side in ("input_tokens", "output_tokens"):
                dist = getattr(r, side)
                if r.model in models and dist.quantile(50) > models[r.model].context_len:
                    col.add(
                        f"role '{r.name}' has median {side.replace('_', ' ')} {dist.quantile(50):g}, beyond model '{r.model}' context of {models[r.model].context_len}.",
                        file=f,
                        field=f"roles[{ri}].{side}",
                        hint="check the units (tokens, not characters) or pick a model with a longer context.",
                    )
        try:
            tuple(TopologicalSorter(graph).static_order())
        except CycleError as e:
            cycle = " -> ".join(e.args[1])
            col.add(f"workflow '{w.name}' has a cycle in its role dependencies: {cycle}.", file=f, field="roles[].depends_on", hint="a workflow is a DAG: unroll loops into calls_per_query instead.")
        if sources is not None:
            for ai, a in enumerate(w.arrivals):
                if a.source not in sources:
                    col.add(f"arrivals name unknown source '{a.source}'.", file=f, field=f"arrivals[{ai}].source", hint=unknown_name_hint(a.source, sources, "sources of the inventory") + " Or add it to the inventory's 'sources'.")
        if not math.isfinite(w.total_rate_per_s):
            col.add("total arrival rate is not finite.", file=f, field="arrivals")


def load_inputs(inventory: str | Path | None = None, models: str | Path | None = None, workloads: str | Path | None = None) -> Inputs:
    """Load all three inputs and cross-check every reference. All problems are reported together."""
    d = default_paths()
    inv_path = Path(inventory) if inventory is not None else d["inventory"]
    mod_path = Path(models) if models is not None else d["models"]
    wl_path = Path(workloads) if workloads is not None else d["workloads"]
    col = Collector()
    inv = inv_file = mods = wfs = None
    mod_where: dict[str, Path] = {}
    wf_where: dict[str, Path] = {}
    for step in ("inventory", "models", "workloads"):
        try:
            if step == "inventory":
                inv, inv_file = load_inventory(inv_path)
            elif step == "models":
                mods, mod_where = load_models(mod_path)
            else:
                wfs, wf_where = load_workflows(wl_path)
        except InputError as e:
            col.problems.extend(e.problems)
    col.raise_if_any()
    assert inv is not None and mods is not None and wfs is not None and inv_file is not None
    gpus = load_gpu_types(list(inv.gpu_types))
    check_inventory(inv, gpus, inv_file, col)
    check_models(mods, mod_where, inv, col, used={r.model for w in wfs for r in w.roles})
    check_workflows(wfs, wf_where, mods, inv, col)
    col.raise_if_any()
    return Inputs(
        inventory=inv,
        gpu_types=gpus,
        models=mods,
        workflows=sorted(wfs, key=lambda w: w.name),
        paths={"inventory": str(inv_file), "models": str(mod_path), "workloads": str(wl_path)},
    )
