"""What-if scenarios: typed edits of the inputs, a scenario file format, validation before any solve.

A scenario is a named list of edits applied, in order, to the same base inputs. Each edit class
owns its `validate(ctx, j)` (checks against the base names and earlier edits, collected in a
`Check`) and its `apply(inputs, origin, where)` (the editing functions of `apply.py`); adding an
edit kind is one class here. Every edit is checked against the base inputs *before* anything is solved: an unknown
cluster, zone, node, node pool, source, workflow, model or GPU type is an InputError (exit 2) with
the closest valid name as a hint; so are scale factors <= 0 and contradictory edits.

Scenario file (YAML or JSON), one scenario or several::

    scenarios:
      - name: demand-x2-no-us-west
        description: demand doubles while us-west is down
        edits:
          - scale_demand: {factor: 2.0}                          # all arrivals
          - scale_demand: {factor: 1.5, workflow: coding-agent}  # one workflow (and/or `source:`)
          - remove: {cluster: us-west}                           # or {zone: ...}, {node_pool: ...}, {nodes: [...]}
          - add_gpus: {cluster: eu-west, gpu_type: l40s, count: 64}
          - remove_gpus: {cluster: us-east, gpu_type: a10g, count: 8}
          - price: {gpu_type: h100-sxm, factor: 0.7}             # or price_per_gpu_hour: 2.5; optional cluster:
          - slo: {workflow: coding-agent, latency_ms: 20000}     # or factor: 0.8; no workflow = all
          - add_model: {file: my-model.yaml}                     # or spec: {...a models/*.yaml document...}
          - add_workflow: {file: my-workflow.yaml}               # or spec: {...a workloads/*.yaml document...}

An edit is written as a one-key mapping (`- scale_demand: {...}`) or with an explicit
`kind:` field (`- {kind: scale_demand, factor: 2}`). Relative `file:` paths are read from the
scenario file's folder.

Composition rules (documented so a user can predict the result):
- Demand scales compose by multiplication when their selectors differ (all x2, then coding-agent
  x1.5 gives coding-agent x3); the same selector (workflow, source) given twice is contradictory.
- `add_gpus` grows an existing pool of that GPU type in the cluster (whole nodes of the pool's
  size; in `zone:` when given) or, when there is none or `pool:` names a new one, adds a pool whose
  node shape (GPUs per node, host DRAM, interconnect, labels) is copied from a pool of the same GPU
  type elsewhere in the fleet, unless `gpus_per_node` and `host_dram_gib` are given.
- `remove_gpus` removes whole nodes of that type from the cluster, last pool and last node first;
  the count must be reachable exactly.
- `price` sets a per-pool price override (absolute, or factor x the price in force).
Contradictory: the same target edited twice (price, SLO, scale), adding and removing GPUs of one
type in one cluster, editing a cluster or zone that the scenario also removes, removing the same
thing twice, adding a model or workflow whose id already exists.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maestro_plan.errors import Collector, InputError, unknown_name_hint
from maestro_plan.load.loader import check_models, check_workflows, parse_as, read_document
from maestro_plan.load.schema import MAX_GPUS, Inputs, ModelSpec, Name, NonNegFloat, PosFloat, PosInt, Workflow

ScaleFactor = Annotated[float, Field(gt=0, allow_inf_nan=False, lt=1e6, description="Multiplier, > 0")]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def validate(self, ctx: Check, j: int) -> None:
        """Check this edit (number `j` of its scenario) against the base inputs; problems go to ctx."""

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:  # pragma: no cover - overridden
        raise NotImplementedError


class ScaleDemand(_Edit):
    """Multiply arrival rates: all of them, one workflow's, one source's, or one workflow from one source."""

    kind: Literal["scale_demand"] = "scale_demand"
    factor: ScaleFactor
    workflow: Name | None = None
    source: Name | None = None

    def describe(self) -> str:
        sel = "/".join(x for x in (self.workflow, self.source) if x) or "all"
        return f"demand {sel} x{self.factor:g}"

    def validate(self, ctx: Check, j: int) -> None:
        bad = False
        if self.workflow is not None:
            bad |= ctx.unknown("workflow", self.workflow, ctx.workflows, "workflows", j, self.kind, "workflow")
        if self.source is not None:
            bad |= ctx.unknown("source", self.source, ctx.names.sources, "sources", j, self.kind, "source")
        if not bad and self.workflow and self.source and (self.workflow, self.source) not in ctx.arrivals:
            ctx.add(f"workflow '{self.workflow}' has no arrivals from source '{self.source}', so there is nothing to scale.", j, self.kind,
                    hint=f"sources of '{self.workflow}': {', '.join(sorted(s for w, s in ctx.arrivals if w == self.workflow))}.")
        key = (self.workflow, self.source)
        if key in ctx.scale_sel:
            ctx.add(f"demand of {self.describe().split(' x')[0].removeprefix('demand ')} is scaled twice (edits {ctx.scale_sel[key]} and {j}).", j, self.kind,
                    hint="give one factor per workflow/source selector (different selectors multiply).")
        ctx.scale_sel[key] = j

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import scale_demand

        return scale_demand(inputs, self)


class Remove(_Edit):
    """A failure: remove a cluster, a zone (every pool in it), a node pool, or named nodes."""

    kind: Literal["remove"] = "remove"
    cluster: Name | None = None
    zone: Name | None = None
    node_pool: Name | None = None
    nodes: list[Name] | None = None

    @model_validator(mode="after")
    def _one(self) -> Remove:
        given = [k for k in ("cluster", "zone", "node_pool", "nodes") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'cluster', 'zone', 'node_pool' or 'nodes'")
        if self.nodes is not None and not self.nodes:
            raise ValueError("'nodes' is empty; name at least one node")
        return self

    def target(self) -> tuple[str, str]:
        for k in ("cluster", "zone", "node_pool"):
            v = getattr(self, k)
            if v is not None:
                return k, v
        return "nodes", ",".join(self.nodes or [])

    def describe(self) -> str:
        k, v = self.target()
        return f"remove {k.replace('_', ' ')} {v}"

    def validate(self, ctx: Check, j: int) -> None:
        k, v = self.target()
        if self.cluster is not None:
            if not ctx.unknown("cluster", self.cluster, ctx.names.clusters, "clusters", j, self.kind, "cluster"):
                ctx.removed_clusters.add(self.cluster)
        elif self.zone is not None:
            if not ctx.unknown("zone", self.zone, ctx.names.zones, "zones", j, self.kind, "zone"):
                ctx.removed_zones.add(self.zone)
        elif self.node_pool is not None:
            ctx.unknown("node_pool", self.node_pool, ctx.names.pools, "node pools", j, self.kind, "node_pool")
        else:
            for ni, n in enumerate(self.nodes or []):
                if n not in ctx.names.nodes:
                    ctx.add(f"node '{n}' is not in the base inputs.", j, self.kind, f"nodes[{ni}]", hint=unknown_name_hint(n, ctx.names.nodes, "nodes"))
                elif ("node", n) in ctx.removed:
                    ctx.add(f"node '{n}' is removed twice.", j, self.kind, f"nodes[{ni}]", hint="name it once.")
                ctx.removed[("node", n)] = j
            return
        if (k, v) in ctx.removed:
            ctx.add(f"{k.replace('_', ' ')} '{v}' is removed twice (edits {ctx.removed[(k, v)]} and {j}).", j, self.kind, k, hint="remove it once.")
        ctx.removed[(k, v)] = j

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import remove

        return remove(inputs, self, origin, where)


class AddGpus(_Edit):
    """Add `count` GPUs of `gpu_type` in `cluster`: grow a pool of that type, or add a new pool."""

    kind: Literal["add_gpus"] = "add_gpus"
    cluster: Name
    gpu_type: Name
    count: Annotated[int, Field(gt=0, le=MAX_GPUS)] = Field(description="GPUs to add (whole nodes: a multiple of GPUs per node)")
    zone: Name | None = None
    pool: Name | None = Field(None, description="Name of the pool to grow or create")
    gpus_per_node: Annotated[int, Field(gt=0, le=64)] | None = None
    host_dram_gib: PosFloat | None = None
    interconnect: Literal["nvlink", "pcie", "xgmi"] | None = None
    price_per_gpu_hour: NonNegFloat | None = None

    def describe(self) -> str:
        return f"+{self.count} {self.gpu_type} in {self.cluster}"

    def validate(self, ctx: Check, j: int) -> None:
        """Known cluster and GPU type; one add_gpus or remove_gpus per (cluster, GPU type)."""
        if ctx.unknown("cluster", self.cluster, ctx.names.clusters, "clusters", j, self.kind, "cluster") or ctx.gpu_type(self, j):
            return
        if isinstance(self, RemoveGpus) and self.gpu_type not in ctx.names.types_in[self.cluster]:
            ctx.add(f"cluster '{self.cluster}' has no {self.gpu_type} GPUs to remove.", j, self.kind, "gpu_type",
                    hint=f"GPU types in {self.cluster}: {', '.join(sorted(ctx.names.types_in[self.cluster]))}.")
        key = (self.cluster, self.gpu_type)
        if key in ctx.gpu_sel:
            other_kind, other_j = ctx.gpu_sel[key]
            what = "added and removed" if other_kind != self.kind else ("added" if self.kind == "add_gpus" else "removed")
            ctx.add(f"{self.gpu_type} GPUs in {self.cluster} are {what} by two edits ({other_j} and {j}).", j, self.kind,
                    hint="give one add_gpus or remove_gpus per cluster and GPU type, with the net count.")
        ctx.gpu_sel[key] = (self.kind, j)

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import add_gpus

        return add_gpus(inputs, self, origin, where)


class RemoveGpus(_Edit):
    """Remove `count` GPUs of `gpu_type` from `cluster` (whole nodes, last pool and last node first)."""

    kind: Literal["remove_gpus"] = "remove_gpus"
    cluster: Name
    gpu_type: Name
    count: PosInt

    def describe(self) -> str:
        return f"-{self.count} {self.gpu_type} in {self.cluster}"

    validate = AddGpus.validate

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import remove_gpus

        return remove_gpus(inputs, self, origin, where)


class SetPrice(_Edit):
    """Change the price of a GPU type (everywhere, or in one cluster): absolute or by a factor."""

    kind: Literal["price"] = "price"
    gpu_type: Name
    cluster: Name | None = None
    price_per_gpu_hour: NonNegFloat | None = None
    factor: ScaleFactor | None = None

    @model_validator(mode="after")
    def _one(self) -> SetPrice:
        if (self.price_per_gpu_hour is None) == (self.factor is None):
            raise ValueError("give exactly one of 'price_per_gpu_hour' or 'factor'")
        return self

    def describe(self) -> str:
        where = f" in {self.cluster}" if self.cluster else ""
        what = f"x{self.factor:g}" if self.factor is not None else f"${self.price_per_gpu_hour:g}/GPU-h"
        return f"price {self.gpu_type}{where} {what}"

    def validate(self, ctx: Check, j: int) -> None:
        if ctx.gpu_type(self, j):
            return
        if self.cluster is not None and ctx.unknown("cluster", self.cluster, ctx.names.clusters, "clusters", j, self.kind, "cluster"):
            return
        for (t, c), jj in ctx.price_sel.items():
            if t == self.gpu_type and (c is None or self.cluster is None or c == self.cluster):
                ctx.add(f"the price of {self.gpu_type}{' in ' + self.cluster if self.cluster else ''} is set twice (edits {jj} and {j}).", j, self.kind,
                        hint="give one price edit per GPU type and cluster.")
                break
        ctx.price_sel[(self.gpu_type, self.cluster)] = j

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import set_price

        return set_price(inputs, self)


class SetSlo(_Edit):
    """Change the end-to-end SLO of one workflow (or all): absolute latency or by a factor."""

    kind: Literal["slo"] = "slo"
    workflow: Name | None = None
    latency_ms: PosFloat | None = None
    factor: ScaleFactor | None = None
    percentile: Annotated[float, Field(gt=0, le=100)] | None = None

    @model_validator(mode="after")
    def _one(self) -> SetSlo:
        if self.latency_ms is None and self.factor is None and self.percentile is None:
            raise ValueError("give 'latency_ms' or 'factor' (and/or 'percentile')")
        if self.latency_ms is not None and self.factor is not None:
            raise ValueError("give 'latency_ms' or 'factor', not both")
        return self

    def describe(self) -> str:
        parts = []
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:g} ms")
        if self.factor is not None:
            parts.append(f"x{self.factor:g}")
        if self.percentile is not None:
            parts.append(f"p{self.percentile:g}")
        return f"slo {self.workflow or 'all'} {' '.join(parts)}"

    def validate(self, ctx: Check, j: int) -> None:
        if self.workflow is not None and ctx.unknown("workflow", self.workflow, ctx.workflows, "workflows", j, self.kind, "workflow"):
            return
        for w, jj in ctx.slo_sel.items():
            if w is None or self.workflow is None or w == self.workflow:
                ctx.add(f"the SLO of {self.workflow or 'every workflow'} is set twice (edits {jj} and {j}).", j, self.kind, hint="give one SLO edit per workflow.")
                break
        ctx.slo_sel[self.workflow] = j

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        from maestro_plan.whatif.apply import set_slo

        return set_slo(inputs, self)


class AddModel(_Edit):
    """Add a catalogue entry (a models/*.yaml document, from a file or inline)."""

    kind: Literal["add_model"] = "add_model"
    file: str | None = None
    spec: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> AddModel:
        if (self.file is None) == (self.spec is None):
            raise ValueError("give exactly one of 'file' or 'spec'")
        return self

    def describe(self) -> str:
        return f"add model {self.file or (self.spec or {}).get('id', '?')}"

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        """(Checked with the other additions, before any edit: see validate_scenario.)"""
        m = parse_as(ModelSpec, self.spec, origin, f"{where}.spec")
        return inputs.model_copy(update={"models": {**inputs.models, m.id: m}})


class AddWorkflow(_Edit):
    """Add a workflow (a workloads/*.yaml document, from a file or inline)."""

    kind: Literal["add_workflow"] = "add_workflow"
    file: str | None = None
    spec: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> AddWorkflow:
        if (self.file is None) == (self.spec is None):
            raise ValueError("give exactly one of 'file' or 'spec'")
        return self

    def describe(self) -> str:
        return f"add workflow {self.file or (self.spec or {}).get('name', '?')}"

    def apply(self, inputs: Inputs, origin: str, where: str) -> Inputs:
        """(Checked with the other additions, before any edit: see validate_scenario.)"""
        w = parse_as(Workflow, self.spec, origin, f"{where}.spec")
        return inputs.model_copy(update={"workflows": sorted([*inputs.workflows, w], key=lambda x: x.name)})


Edit = Annotated[
    ScaleDemand | Remove | AddGpus | RemoveGpus | SetPrice | SetSlo | AddModel | AddWorkflow,
    Field(discriminator="kind"),
]
EDIT_KINDS = ("scale_demand", "remove", "add_gpus", "remove_gpus", "price", "slo", "add_model", "add_workflow")


def _normalise_edit(item: Any) -> Any:
    """`{scale_demand: {factor: 2}}` -> `{kind: scale_demand, factor: 2}`; other shapes pass through."""
    if isinstance(item, dict) and "kind" not in item and len(item) == 1:
        (key, body), = item.items()
        if isinstance(body, dict):
            return {"kind": key, **body}
        if key == "scale_demand" and isinstance(body, (int, float)):
            return {"kind": key, "factor": body}
    return item


class Scenario(BaseModel):
    """A named list of edits against the base inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    edits: list[Edit] = Field(default_factory=list)
    value: float | str | None = Field(None, description="The swept value this scenario stands for (sweeps set it)")
    group: str = Field("", description="In a grid of several axes: the other axes' scenario names (rows of one group share them)")

    @model_validator(mode="before")
    @classmethod
    def _edits_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("edits"), list):
            data = {**data, "edits": [_normalise_edit(e) for e in data["edits"]]}
        return data

    def describe(self) -> str:
        return "; ".join(e.describe() for e in self.edits) or "base (no edits)"


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: list[Scenario] = Field(min_length=1)


BASE = Scenario(name="base", description="the inputs as given")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read a scenario file (one scenario, or several under `scenarios:`); resolve edit files.

    `file:` paths of add_model / add_workflow are read here (relative to the scenario file) and
    replaced by their inline `spec`, so a Scenario is self-contained (and picklable for sweeps).
    """
    p = Path(path)
    doc = read_document(p)
    if isinstance(doc, dict) and "scenarios" in doc:
        scenarios = parse_as(ScenarioFile, doc, p).scenarios
        prefix = "scenarios"
    else:
        scenarios = [parse_as(Scenario, doc, p)]
        prefix = ""
    names = [s.name for s in scenarios]
    col = Collector()
    for i, n in enumerate(names):
        if names.index(n) != i:
            col.add(f"scenario name '{n}' is used twice.", file=p, field=f"{prefix}[{i}].name" if prefix else "name", hint="give each scenario a unique name.")
    col.raise_if_any()
    return [resolve_files(s, p.parent, p) for s in scenarios]


def resolve_files(scenario: Scenario, base_dir: Path, origin: str | Path = "") -> Scenario:
    """Replace `file:` references of add_model / add_workflow edits by the documents they hold."""
    edits: list[Any] = []
    changed = False
    for e in scenario.edits:
        if isinstance(e, (AddModel, AddWorkflow)) and e.file is not None:
            f = Path(e.file)
            if not f.is_absolute():
                f = base_dir / f
            doc = read_document(f)
            if not isinstance(doc, dict):
                raise InputError("must hold a mapping (one model or workflow document).", file=f)
            if isinstance(e, AddWorkflow) and "workflows" in doc:
                wfs = doc["workflows"]
                if not isinstance(wfs, list) or len(wfs) != 1:
                    raise InputError("add_workflow reads one workflow; this file holds a list.", file=f, hint="put one workflow per file.")
                doc = wfs[0]
            if isinstance(e, AddModel) and set(doc) == {"models"}:
                ms = doc["models"]
                if not isinstance(ms, list) or len(ms) != 1:
                    raise InputError("add_model reads one model; this file holds a list.", file=f, hint="put one model per file.")
                doc = ms[0]
            edits.append(e.model_copy(update={"spec": doc, "file": None}))
            changed = True
        else:
            edits.append(e)
    return scenario.model_copy(update={"edits": edits}) if changed else scenario


def scenario_from_dict(doc: dict[str, Any], origin: str = "scenario") -> Scenario:
    """Build a Scenario from a mapping (flags, tests); problems -> InputError naming `origin`."""
    return parse_as(Scenario, doc, origin)


# --------------------------------------------------------------------------------------------
# Validation against the base inputs (before any solve)
# --------------------------------------------------------------------------------------------


class _Names:
    """Every name an edit may refer to, from the base inputs."""

    def __init__(self, inputs: Inputs) -> None:
        inv = inputs.inventory
        self.clusters = {c.name for c in inv.clusters}
        self.zones: dict[str, set[str]] = {}  # zone -> clusters
        self.pools: dict[str, str] = {}  # pool -> cluster
        self.nodes: dict[str, str] = {}  # node -> cluster
        self.types_in: dict[str, set[str]] = {c.name: set() for c in inv.clusters}
        for c in inv.clusters:
            for p in c.node_pools:
                self.zones.setdefault(p.zone, set()).add(c.name)
                self.pools[p.name] = c.name
                self.types_in[c.name].add(p.gpu_type)
                for n in p.node_names:
                    self.nodes[n] = c.name
        self.sources = {s.name for s in inv.sources}
        self.workflows = {w.name for w in inputs.workflows}
        self.arrivals = {(w.name, a.source) for w in inputs.workflows for a in w.arrivals}
        self.models = set(inputs.models)
        self.gpu_types = set(inputs.gpu_types)


def _field(prefix: str, j: int, kind: str, name: str | None = None) -> str:
    head = f"{prefix}edits[{j}].{kind}"
    return f"{head}.{name}" if name else head


class Check:
    """What an edit's validate() checks against: the base names (plus what the scenario adds), the
    problems found so far, and what earlier edits of the scenario already select (contradictions)."""

    def __init__(self, names: _Names, col: Collector, origin: str, prefix: str, workflows: set[str], arrivals: set[tuple[str, str]]) -> None:
        self.names, self.col, self.file, self.prefix = names, col, origin, prefix
        self.workflows, self.arrivals = workflows, arrivals
        self.removed: dict[tuple[str, str], int] = {}
        self.removed_clusters: set[str] = set()
        self.removed_zones: set[str] = set()
        self.scale_sel: dict[tuple[str | None, str | None], int] = {}
        self.price_sel: dict[tuple[str, str | None], int] = {}
        self.slo_sel: dict[str | None, int] = {}
        self.gpu_sel: dict[tuple[str, str], tuple[str, int]] = {}

    def field(self, j: int, kind: str, name: str | None = None) -> str:
        return _field(self.prefix, j, kind, name)

    def add(self, message: str, j: int, kind: str, name: str | None = None, hint: str | None = None) -> None:
        self.col.add(message, file=self.file, field=self.field(j, kind, name), hint=hint)

    def unknown(self, kind: str, value: str, choices: set[str] | dict, what: str, j: int, edit_kind: str, fld: str) -> bool:
        """Report `value` when it is not among `choices`; True when it was unknown."""
        if value in choices:
            return False
        self.add(f"{kind} '{value}' is not in the base inputs.", j, edit_kind, fld, hint=unknown_name_hint(value, choices, what))
        return True

    def gpu_type(self, e: Any, j: int) -> bool:
        """Report an unknown GPU type; True when it was unknown."""
        if e.gpu_type in self.names.gpu_types:
            return False
        self.add(f"GPU type '{e.gpu_type}' is not known.", j, e.kind, "gpu_type", hint=unknown_name_hint(e.gpu_type, self.names.gpu_types, "GPU types"))
        return True


def validate_scenario(scenario: Scenario, inputs: Inputs, *, origin: str | Path = "scenario", prefix: str = "") -> None:
    """Check every edit of `scenario` against `inputs`; raise one InputError listing all problems.

    `origin` names where the scenario came from (a file, or the command-line flags) for messages;
    `prefix` is the field path of the scenario inside that file (e.g. 'scenarios[2].').
    """
    names = _Names(inputs)
    col = Collector()
    f = str(origin)
    workflows, arrivals = _check_additions(scenario, inputs, names, col, f, prefix)
    ctx = Check(names, col, f, prefix, workflows, arrivals)
    for j, e in enumerate(scenario.edits):
        e.validate(ctx, j)  # each edit owns its checks
    _check_overlaps(scenario, ctx)
    col.raise_if_any()


def _check_additions(scenario: Scenario, inputs: Inputs, names: _Names, col: Collector, f: str, prefix: str) -> tuple[set[str], set[tuple[str, str]]]:
    """First pass: the models and workflows the scenario adds (so later edits may name them).
    Returns the workflow names and (workflow, source) arrivals the edits may then refer to."""
    added_models: dict[str, int] = {}
    added_workflows: dict[str, int] = {}

    new_models: dict[str, ModelSpec] = {}
    new_workflows: list[Workflow] = []
    for j, e in enumerate(scenario.edits):
        if isinstance(e, AddModel) and e.spec is not None:
            try:
                m = parse_as(ModelSpec, e.spec, f, _field(prefix, j, "add_model", "spec"))
            except InputError as err:
                col.problems.extend(err.problems)
                continue
            if m.id in names.models or m.id in added_models:
                col.add(f"model '{m.id}' already exists.", file=f, field=_field(prefix, j, "add_model", "spec.id"), hint="give the added model a new id.")
            added_models[m.id] = j
            new_models[m.id] = m
        elif isinstance(e, AddWorkflow) and e.spec is not None:
            try:
                doc = e.spec
                w = parse_as(Workflow, doc, f, _field(prefix, j, "add_workflow", "spec"))
            except InputError as err:
                col.problems.extend(err.problems)
                continue
            if w.name in names.workflows or w.name in added_workflows:
                col.add(f"workflow '{w.name}' already exists.", file=f, field=_field(prefix, j, "add_workflow", "spec.name"), hint="give the added workflow a new name.")
            added_workflows[w.name] = j
            new_workflows.append(w)
        elif isinstance(e, (AddModel, AddWorkflow)):
            col.add("the file reference was not resolved.", file=f, field=_field(prefix, j, e.kind, "file"), hint="read the scenario with load_scenarios(), which inlines the file.")
    all_models = {**inputs.models, **new_models}
    if new_models:
        check_models(new_models, {m: Path(f) for m in new_models}, inputs.inventory, col)
    if new_workflows:
        check_workflows(new_workflows, {w.name: Path(f) for w in new_workflows}, all_models, inputs.inventory, col)
    return names.workflows | set(added_workflows), names.arrivals | {(w.name, a.source) for w in new_workflows for a in w.arrivals}


def _check_overlaps(scenario: Scenario, ctx: Check) -> None:
    """Last pass: edits that touch what the same scenario removes."""
    names, col, f, prefix = ctx.names, ctx.col, ctx.file, ctx.prefix
    removed_clusters, removed_zones = ctx.removed_clusters, ctx.removed_zones
    for j, e in enumerate(scenario.edits):
        cluster = getattr(e, "cluster", None) if not isinstance(e, Remove) else None
        if cluster in removed_clusters:
            col.add(f"edit {j} ({e.describe()}) changes cluster '{cluster}', which this scenario removes.", file=f, field=_field(prefix, j, e.kind, "cluster"),
                    hint="drop one of the two edits.")
        if isinstance(e, AddGpus) and e.zone is not None and e.zone in removed_zones:
            col.add(f"edit {j} adds GPUs in zone '{e.zone}', which this scenario removes.", file=f, field=_field(prefix, j, e.kind, "zone"), hint="drop one of the two edits.")
        if isinstance(e, Remove):
            inside: str | None = None
            if e.node_pool is not None and names.pools.get(e.node_pool) in removed_clusters:
                inside = names.pools[e.node_pool]
            if e.nodes and any(names.nodes.get(n) in removed_clusters for n in e.nodes):
                inside = next(names.nodes[n] for n in e.nodes if names.nodes.get(n) in removed_clusters)
            if e.zone is not None and names.zones.get(e.zone, set()) and names.zones[e.zone] <= removed_clusters:
                inside = sorted(names.zones[e.zone])[0]
            if inside:
                col.add(f"edit {j} ({e.describe()}) removes part of cluster '{inside}', which this scenario removes entirely.", file=f, field=_field(prefix, j, e.kind),
                        hint="drop the narrower edit.")


def edit_summary(scenario: Scenario) -> str:
    return scenario.describe()


def check_factor(value: float, what: str, origin: str) -> float:
    """Scale factors from flags: finite and > 0, else InputError (exit 2)."""
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"scale factor {value:g} must be a finite number > 0.", file=origin, field=what, hint="use e.g. 0.5 to halve or 2 to double.")
    return value
