"""Independent verifier: re-check a plan against the inputs, constraint by constraint.

This module shares NO code with the solver (maestro_plan.solve). All memory, speed and demand
arithmetic goes through the estimator's public API (maestro_plan.estimate, the contract in
estimator-api.md); everything else (inventory lookups, routing sums, zones, cost) is computed
here from the inputs. The plan's own numbers (weights, KV, capacity, cost) are never trusted:
they are recomputed and compared.

Constraint families (the names explanations and the solver use):
    memory, compute, capacity, demand, routing, inventory, zones, budget, slo, consistency

A violation marked `input_mismatch` means the plan does not belong to these inputs (it names a
model, node, cluster, pool or GPU type the inputs do not have, or its input digests differ): the
CLI reports that as bad input (exit 2) rather than as a broken plan (exit 1).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from maestro_plan.load.loader import tp_allowed
from maestro_plan.load.schema import GpuType, Inputs, ModelSpec, NodePool
from maestro_plan.plan.families import VERIFIED
from maestro_plan.plan.schema import Plan, Replica
from maestro_plan.units import GIB
from maestro_plan.verify.percentile import check_slo

FAMILIES = tuple(str(f) for f in VERIFIED)  # the shared vocabulary (plan/families.py), in report order

# Tolerances. Rates and fractions are floats written by a solver: compare with a relative 1e-6.
REL_TOL = 1e-6
# Byte figures the plan copies from the estimator are ints; allow 0.1 % for rounding of derived
# figures (fractions written with a few decimals) before calling them inconsistent.
BYTES_REL_TOL = 1e-3
# Money: plans write dollars per hour; a cent of rounding is not a violation.
COST_ABS_TOL = 0.01
STANDBY_PREFIX = "standby:"


@dataclass(frozen=True)
class Violation:
    """One broken constraint: family, what it is about, what is wrong, and by how much."""

    constraint: str
    subject: str
    detail: str
    amount: float = 0.0
    unit: str = ""
    input_mismatch: bool = False

    def render(self) -> str:
        amt = f" (by {self.amount:.6g} {self.unit})".rstrip() if self.amount else ""
        amt = amt.replace(" )", ")")
        return f"[{self.constraint}] {self.subject}: {self.detail}{amt}"


@dataclass
class VerifyReport:
    ok: bool
    violations: list[Violation]
    checked: dict[str, int]

    @property
    def input_mismatch(self) -> bool:
        """True when the plan does not belong to the inputs (unknown names, other digests)."""
        return any(v.input_mismatch for v in self.violations)

    def by_constraint(self) -> dict[str, int]:
        out: dict[str, int] = {f: 0 for f in FAMILIES}
        for v in self.violations:
            out[v.constraint] = out.get(v.constraint, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "input_mismatch": self.input_mismatch,
            "checked": dict(sorted(self.checked.items())),
            "violations_by_constraint": self.by_constraint(),
            "violations": [asdict(v) for v in self.violations],
        }


# --------------------------------------------------------------------------------------------
# Input digests (what the plan says it was made from)
# --------------------------------------------------------------------------------------------


def _sha(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_digests(inputs: Inputs) -> dict[str, str]:
    """SHA-256 of the canonical JSON of each parsed input (file layout and comments do not count).

    The plan package may define the canonical digest (maestro_plan.plan.digest.input_digest); when
    it does, that definition wins so the solver and the verifier agree by construction.
    """
    try:  # the plan stage owns the definition when present (upstream of verify: allowed)
        from maestro_plan.plan.digest import input_digest  # type: ignore[import-not-found]

        d = input_digest(inputs)
        return {
            "inventory_sha256": d.inventory_sha256,
            "models_sha256": d.models_sha256,
            "workloads_sha256": d.workloads_sha256,
        }
    except ImportError:
        pass
    return {
        "inventory_sha256": _sha(inputs.inventory.model_dump(mode="json")),
        "models_sha256": _sha({k: m.model_dump(mode="json") for k, m in sorted(inputs.models.items())}),
        "workloads_sha256": _sha([w.model_dump(mode="json") for w in sorted(inputs.workflows, key=lambda w: w.name)]),
    }


# --------------------------------------------------------------------------------------------
# The verifier
# --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    cluster: str
    pool: NodePool
    gpu: GpuType
    price: float


@dataclass(frozen=True)
class _Class:
    """One request class of a (source, model) pair as the verifier recomputes it from the
    workloads (estimate.compute_demand's per-role classes; the pair itself when it has none)."""

    source: str
    model: str
    name: str
    rate_rps: float
    priority: str
    latency_budget_ms: float
    mix: Any
    peak_rate_rps: float


def _classes_of(d: Any) -> dict[str, _Class]:
    out = {c.name: _Class(d.source, d.model, c.name, float(c.rate_rps), c.priority, float(c.latency_budget_ms), c.mix, float(c.peak_rate_rps or 0.0)) for c in getattr(d, "classes", ()) or ()}
    if not out:
        out[""] = _Class(d.source, d.model, "", float(d.rate_rps), d.priority, float(d.latency_budget_ms), d.mix, float(getattr(d, "peak_rate_rps", 0.0) or 0.0))
    return out


@dataclass
class _Verifier:
    plan: Plan
    inputs: Inputs
    table: Any = None  # a measured capacity table (estimate.CapacityTable) the plan was made with
    violations: list[Violation] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    # ---- bookkeeping ----------------------------------------------------------------------
    def check(self, family: str, n: int = 1) -> None:
        self.checked[family] += n

    def fail(self, family: str, subject: str, detail: str, amount: float = 0.0, unit: str = "", *, mismatch: bool = False) -> None:
        self.violations.append(Violation(family, subject, detail, float(amount), unit, mismatch))

    # ---- lookups --------------------------------------------------------------------------
    def __post_init__(self) -> None:
        inv = self.inputs.inventory
        self.nodes: dict[str, _Node] = {}
        self.pools: dict[tuple[str, str], NodePool] = {}
        self.zones_all: set[tuple[str, str]] = set()
        for c in inv.clusters:
            for p in c.node_pools:
                self.pools[(c.name, p.name)] = p
                self.zones_all.add((c.name, p.zone))
                gpu = self.inputs.gpu_types.get(p.gpu_type)
                if gpu is None:  # the loader rejects this; keep the verifier total anyway
                    continue
                price = p.price_per_gpu_hour if p.price_per_gpu_hour is not None else gpu.price_per_gpu_hour
                for n in p.node_names:
                    self.nodes[n] = _Node(n, c.name, p, gpu, float(price))
        self.clusters = {c.name: c for c in inv.clusters}
        self.sources = {s.name for s in inv.sources}
        self.links: dict[frozenset[str], float] = {frozenset((lk.a, lk.b)): float(lk.latency_ms) for lk in inv.links}
        self.replicas: dict[str, Replica] = {}
        self.replica_ok: dict[str, bool] = {}  # replica refers to things that exist (safe to recompute)

    def net_ms(self, source: str, cluster: str) -> float | None:
        if source == cluster:
            return 0.0
        return self.links.get(frozenset((source, cluster)))

    # ---- run ------------------------------------------------------------------------------
    def run(self) -> VerifyReport:
        from maestro_plan import estimate as est

        self.est = est
        self.check_consistency()
        self.check_replicas_exist()
        self.check_memory_compute()
        scale = {r.workflow: r.slowdown_scale for r in self.plan.slo if r.slowdown_scale != 1.0}
        dm = est.compute_demand(self.inputs, percentile=self.plan.settings.length_percentile, slowdown_scale=scale)
        self.demand = {(d.source, d.model): d for d in dm.per_model}
        self.classes = {key: _classes_of(d) for key, d in self.demand.items()}
        self.check_demand()
        loads, mixes_in = self.check_routing()
        self.check_capacity_and_slo(loads, mixes_in)
        self.check_standby()
        self.check_zones()
        self.check_cost_and_budget()
        check_slo(self.plan, self.inputs, est, self.fail, self.check)
        checked = {f: int(self.checked.get(f, 0)) for f in FAMILIES}
        return VerifyReport(ok=not self.violations, violations=self.violations, checked=checked)

    # ---- consistency: the plan belongs to these inputs -------------------------------------
    def check_consistency(self) -> None:
        p, inp = self.plan, self.inputs
        self.check("consistency")
        if p.inputs.inventory_name != inp.inventory.name:
            self.fail("consistency", "inputs.inventory_name", f"plan was made for inventory '{p.inputs.inventory_name}', the inputs are inventory '{inp.inventory.name}'", mismatch=True)
        self.check("consistency")
        plan_models, have_models = set(p.inputs.models), set(inp.models)
        if plan_models != have_models:
            extra, missing = sorted(plan_models - have_models), sorted(have_models - plan_models)
            self.fail("consistency", "inputs.models", f"catalogue differs: plan has {extra or 'nothing'} the inputs lack, inputs have {missing or 'nothing'} the plan lacks", mismatch=True)
        self.check("consistency")
        plan_wf, have_wf = set(p.inputs.workflows), {w.name for w in inp.workflows}
        if plan_wf != have_wf:
            extra, missing = sorted(plan_wf - have_wf), sorted(have_wf - plan_wf)
            self.fail("consistency", "inputs.workflows", f"workflows differ: plan has {extra or 'nothing'} the inputs lack, inputs have {missing or 'nothing'} the plan lacks", mismatch=True)
        digests = input_digests(inp)
        for key, value in digests.items():
            self.check("consistency")
            have = getattr(p.inputs, key)
            if have != value:
                what = key.removesuffix("_sha256")
                self.fail("consistency", f"inputs.{key}", f"the {what} input differs from the one the plan was made from (digest {have[:12]} in the plan, {value[:12]} now); re-solve or pass the inputs the plan was made from", mismatch=True)
        seen: set[str] = set()
        for r in p.replicas:
            self.check("consistency")
            if r.id in seen:
                self.fail("consistency", r.id, "replica id is used twice")
            seen.add(r.id)
            self.replicas[r.id] = r

    # ---- replicas refer to real things ------------------------------------------------------
    def check_replicas_exist(self) -> None:
        for r in self.plan.replicas:
            ok = True
            self.check("inventory")
            if r.model not in self.inputs.models:
                self.fail("inventory", r.id, f"replica of unknown model '{r.model}'", mismatch=True)
                ok = False
            node = self.nodes.get(r.node)
            self.check("inventory")
            if r.cluster not in self.clusters:
                self.fail("inventory", r.id, f"unknown cluster '{r.cluster}'", mismatch=True)
                ok = False
            elif (r.cluster, r.node_pool) not in self.pools:
                self.fail("inventory", r.id, f"cluster '{r.cluster}' has no node pool '{r.node_pool}'", mismatch=True)
                ok = False
            self.check("inventory")
            if node is None:
                self.fail("inventory", r.id, f"unknown node '{r.node}' (the inventory has no such node)", mismatch=True)
                ok = False
            else:
                if node.cluster != r.cluster or node.pool.name != r.node_pool:
                    self.fail("inventory", r.id, f"node '{r.node}' is in {node.cluster}/{node.pool.name}, plan says {r.cluster}/{r.node_pool}", mismatch=True)
                    ok = False
                self.check("inventory")
                if r.gpu_type != node.pool.gpu_type:
                    self.fail("inventory", r.id, f"node '{r.node}' has GPU type '{node.pool.gpu_type}', plan says '{r.gpu_type}'", mismatch=True)
                    ok = False
                self.check("inventory")
                if r.zone != node.pool.zone:
                    self.fail("inventory", r.id, f"node '{r.node}' is in zone '{node.pool.zone}', plan says '{r.zone}'")
                n = node.pool.gpus_per_node
                self.check("inventory")
                bad = sorted(i for i in r.gpu_indices if i < 0 or i >= n)
                if bad:
                    self.fail("inventory", r.id, f"GPU indices {bad} out of range: node '{r.node}' has {n} GPUs (indices 0..{n - 1})", amount=max(bad) - (n - 1), unit="GPUs")
                    ok = False
            for w in getattr(r, "worker_nodes", None) or []:
                self.check("inventory")
                wn = self.nodes.get(w)
                if wn is None:
                    self.fail("inventory", r.id, f"unknown worker node '{w}' (the inventory has no such node)", mismatch=True)
                    ok = False
                elif wn.pool.gpu_type != r.gpu_type or wn.cluster != r.cluster:
                    self.fail("inventory", r.id, f"worker node '{w}' is {wn.cluster}/{wn.pool.gpu_type}, the replica is {r.cluster}/{r.gpu_type}: pipeline stages need the same GPU type in one cluster")
                    ok = False
                elif any(i < 0 or i >= wn.pool.gpus_per_node for i in r.gpu_indices):
                    self.fail("inventory", r.id, f"GPU indices {r.gpu_indices} out of range on worker node '{w}' ({wn.pool.gpus_per_node} GPUs)")
                    ok = False
                if w == r.node or (getattr(r, "worker_nodes", None) or []).count(w) > 1:
                    self.fail("inventory", r.id, f"node '{w}' appears twice among the replica's nodes")
                    ok = False
            self.check("inventory")
            if len(set(r.gpu_indices)) != len(r.gpu_indices):
                self.fail("inventory", r.id, f"GPU index listed twice in {r.gpu_indices}")
                ok = False
            # tensor parallelism: tp GPUs, inside one node (a replica names one node), allowed TP
            self.check("consistency")
            if r.tp != len(r.gpu_indices):
                self.fail("consistency", r.id, f"tp {r.tp} but {len(r.gpu_indices)} GPU indices {r.gpu_indices}", amount=abs(r.tp - len(r.gpu_indices)), unit="GPUs")
                ok = False
            m = self.inputs.models.get(r.model)
            if m is not None:
                a = m.architecture
                kv = 1 if a.is_mla else a.kv_heads
                self.check("consistency")
                if r.tp not in m.tp_degrees or not tp_allowed(a.num_attention_heads, kv, r.tp):
                    self.fail("consistency", r.id, f"TP {r.tp} is not allowed for model '{r.model}' (catalogue allows {m.tp_degrees})")
                    ok = False
            self.replica_ok[r.id] = ok

    def _model_gpu(self, r: Replica) -> tuple[ModelSpec, GpuType, _Node] | None:
        if not self.replica_ok.get(r.id):
            return None
        node = self.nodes[r.node]
        return self.inputs.models[r.model], node.gpu, node

    # ---- memory and compute per GPU and per engine ------------------------------------------
    def check_memory_compute(self) -> None:
        est = self.est
        util_default = float(est.VLLM.gpu_memory_utilization)
        util_of: dict[tuple[str, int], float] = {}  # per GPU: the largest memory utilization its engines may take (reserves)
        frac: dict[tuple[str, int], float] = defaultdict(float)
        share: dict[tuple[str, int], float] = defaultdict(float)
        engines: dict[tuple[str, int], list[str]] = defaultdict(list)
        held: dict[tuple[str, int], int] = defaultdict(int)  # bytes the engines need, recomputed
        usable: dict[tuple[str, int], int] = {}
        for r in self.plan.replicas:
            mg = self._model_gpu(r)
            if mg is None:
                continue
            model, gpu, node = mg
            util = float(est.engine_for(model, gpu).gpu_memory_utilization)
            for nd in _nodes_of(r):
                for i in r.gpu_indices:
                    util_of[(nd, i)] = max(util_of.get((nd, i), 0.0), util)
                    frac[(nd, i)] += r.memory_fraction
                    share[(nd, i)] += r.compute_share
                    engines[(nd, i)].append(r.id)
                    usable[(nd, i)] = max(usable.get((nd, i), 0), int(gpu.hbm_gib * GIB * util))  # as util_of: the largest its engines may take
            if r.memory_fraction <= 0:
                self.fail("memory", r.id, "memory fraction is 0: the engine has no memory at all", amount=1.0, unit="engine")
                continue
            mem = est.replica_memory(model, gpu, r.tp, gpu_memory_utilization=r.memory_fraction, kv_cache_bytes_per_gpu=r.kv_cache_bytes_per_gpu)
            # activation peak + non-torch memory (+ CUDA graphs where the estimator counts them apart)
            overhead = int(mem.activation_bytes_per_gpu) + int(mem.non_torch_bytes_per_gpu) + int(getattr(mem, "cuda_graph_bytes_per_gpu", 0))
            hbm = gpu.hbm_gib * GIB
            budget = r.memory_fraction * hbm
            stages = len(_nodes_of(r))
            # pipeline stages (worker_nodes) split the layers: each GPU holds 1/stages of its TP shard
            # (the estimator has no pipeline-parallel model; this is the verifier's approximation)
            weights = int(math.ceil(int(mem.weights_bytes_per_gpu) / stages))
            need = weights + overhead + int(r.kv_cache_bytes_per_gpu)
            for nd in _nodes_of(r):
                for i in r.gpu_indices:
                    held[(nd, i)] += need
            self.check("memory")
            if need > budget + REL_TOL * hbm:
                self.fail(
                    "memory", r.id,
                    f"weights {weights / GIB:.2f} + overhead {overhead / GIB:.2f} + KV {r.kv_cache_bytes_per_gpu / GIB:.2f} GiB per GPU exceed its fraction {r.memory_fraction:.4f} x {gpu.hbm_gib:g} GiB = {budget / GIB:.2f} GiB",
                    amount=(need - budget) / GIB, unit="GiB",
                )
            self.check("consistency")
            if not _close_int(r.weights_bytes_per_gpu, weights):
                self.fail("consistency", r.id, f"plan says weights {r.weights_bytes_per_gpu} bytes per GPU, recomputed {weights}", amount=(weights - r.weights_bytes_per_gpu) / GIB, unit="GiB")
            self.check("consistency")
            if not _close_int(r.overhead_bytes_per_gpu, overhead):
                self.fail("consistency", r.id, f"plan says overhead {r.overhead_bytes_per_gpu} bytes per GPU, recomputed {overhead}", amount=(overhead - r.overhead_bytes_per_gpu) / GIB, unit="GiB")
            kv_tok = int(est.kv_bytes_per_token_per_gpu(model, r.tp))
            self.check("memory")
            if kv_tok > 0:
                block = int(est.VLLM.block_size)
                holds = r.kv_cache_bytes_per_gpu // kv_tok
                if r.kv_tokens > holds + block:
                    self.fail("memory", r.id, f"plan says the KV pool holds {r.kv_tokens} tokens, but {r.kv_cache_bytes_per_gpu} bytes per GPU at {kv_tok} bytes per token per GPU hold {holds}", amount=r.kv_tokens - holds, unit="tokens")
            self.check("consistency")
            if r.max_model_len > model.context_len:
                self.fail("consistency", r.id, f"max_model_len {r.max_model_len} exceeds the model's context {model.context_len}", amount=r.max_model_len - model.context_len, unit="tokens")
        for key in sorted(frac):
            node, idx = key
            self.check("memory")
            util_cap = util_of.get(key, util_default)
            if frac[key] > util_cap + REL_TOL:
                self.fail("memory", f"{node} GPU {idx}", f"memory fractions of {len(engines[key])} engines ({', '.join(engines[key])}) add up to {frac[key]:.4f}, over the engines' gpu_memory_utilization {util_cap:g} (engine default or the GPU type's / model's reserves)", amount=frac[key] - util_cap, unit="of HBM")
            self.check("compute")
            if share[key] > 1.0 + REL_TOL:
                self.fail("compute", f"{node} GPU {idx}", f"compute shares of {len(engines[key])} engines ({', '.join(engines[key])}) add up to {share[key]:.4f} > 1", amount=share[key] - 1.0, unit="GPU")
        self._check_gpu_bytes(held, usable, engines)

    def _check_gpu_bytes(self, held: dict[tuple[str, int], int], usable: dict[tuple[str, int], int], engines: dict[tuple[str, int], list[str]]) -> None:
        """Per physical GPU: the bytes its engines need (weights + overhead + KV pool, each
        recomputed above from the catalogue) add up to at most the usable HBM, floor(HBM x
        gpu_memory_utilization) (co-located engines are sized against it)."""
        for key in sorted(held):
            node, idx = key
            self.check("memory")
            if held[key] > usable[key]:
                self.fail("memory", f"{node} GPU {idx}", f"{len(engines[key])} engine(s) ({', '.join(engines[key])}) need {held[key] / GIB:.3f} GiB, over the usable {usable[key] / GIB:.3f} GiB", amount=(held[key] - usable[key]) / GIB, unit="GiB")

    # ---- demand: the plan's demand equals the demand recomputed from the workloads ---------
    def check_demand(self) -> None:
        plan_d = {}
        for d in self.plan.demand:
            key = (d.source, d.model)
            self.check("demand")
            if key in plan_d:
                self.fail("demand", f"{d.source} -> {d.model}", "demand listed twice")
            plan_d[key] = d
            if d.model not in self.inputs.models:
                self.fail("demand", f"{d.source} -> {d.model}", f"demand for unknown model '{d.model}'", mismatch=True)
            elif d.source not in self.sources:
                self.fail("demand", f"{d.source} -> {d.model}", f"demand from unknown source '{d.source}'", mismatch=True)
        self.plan_demand = plan_d
        for key, want in sorted(self.demand.items()):
            subj = f"{key[0]} -> {key[1]}"
            self.check("demand")
            have = plan_d.get(key)
            if have is None:
                self.fail("demand", subj, f"the workloads ask {want.rate_rps:.6g} req/s of '{key[1]}' from '{key[0]}', the plan has no demand entry for it", amount=want.rate_rps, unit="req/s")
                continue
            if not _close(have.rate_rps, want.rate_rps):
                self.fail("demand", subj, f"plan's rate {have.rate_rps:.6g} req/s differs from the {want.rate_rps:.6g} req/s recomputed from the workloads", amount=want.rate_rps - have.rate_rps, unit="req/s")
            self.check("demand")
            if have.priority != want.priority:
                self.fail("demand", subj, f"plan's priority '{have.priority}' differs from the workloads' '{want.priority}'")
            self.check("demand")
            if not _close(have.latency_budget_ms, want.latency_budget_ms):
                self.fail("demand", subj, f"plan's per-call budget {have.latency_budget_ms:.6g} ms differs from the recomputed {want.latency_budget_ms:.6g} ms", amount=have.latency_budget_ms - want.latency_budget_ms, unit="ms")
            self.check("demand")
            if not (_close(have.mean_input_tokens, want.mix.mean_input) and _close(have.mean_output_tokens, want.mix.mean_output)):
                self.fail("demand", subj, f"plan's mean lengths {have.mean_input_tokens:.6g}/{have.mean_output_tokens:.6g} differ from the recomputed {want.mix.mean_input:.6g}/{want.mix.mean_output:.6g} tokens")
            self.check("demand")
            if not _close(have.served_rps + have.shed_rps, want.rate_rps):
                self.fail("demand", subj, f"served {have.served_rps:.6g} + shed {have.shed_rps:.6g} req/s != demand {want.rate_rps:.6g} req/s", amount=want.rate_rps - have.served_rps - have.shed_rps, unit="req/s")
            self.check("demand")
            if self.plan.settings.objective == "cost" and have.shed_rps > REL_TOL * max(1.0, want.rate_rps):
                self.fail("demand", subj, f"sheds {have.shed_rps:.6g} req/s under the cost objective, which must serve all demand", amount=have.shed_rps, unit="req/s")
        for key in sorted(set(plan_d) - set(self.demand)):
            self.check("demand")
            d = plan_d[key]
            if d.rate_rps > 0:
                self.fail("demand", f"{key[0]} -> {key[1]}", f"plan has demand {d.rate_rps:.6g} req/s the workloads do not ask for", amount=d.rate_rps, unit="req/s")

    # ---- routing ---------------------------------------------------------------------------
    def _route_items(self, rt: Any, subj: str) -> list[tuple[_Class, float]]:
        """The (class, rate) parts of a route: its request class, or, for a route of the whole
        pair (request_class ''), each class of the pair at its share of the pair's rate (a route
        of the whole pair carries the pair's mixture of classes)."""
        d = self.demand.get((rt.source, rt.model))
        if d is None:
            return []
        classes = self.classes[(rt.source, rt.model)]
        if rt.request_class:
            self.check("routing")
            if rt.request_class not in classes:
                self.fail("routing", subj, f"request class '{rt.request_class}' is not one of the pair's classes ({', '.join(sorted(c for c in classes if c)) or 'none'})", amount=rt.rate_rps, unit="req/s")
                return []
            return [(classes[rt.request_class], rt.rate_rps)]
        total = math.fsum(c.rate_rps for c in classes.values())
        return [(c, rt.rate_rps * c.rate_rps / total) for _, c in sorted(classes.items()) if total > 0 and c.rate_rps > 0]

    def check_routing(self) -> tuple[dict[str, float], dict[str, list[tuple[Any, float, float]]]]:
        """Returns the load per replica and, per replica, (request class, rate, network ms) routed to it."""
        standby = {f"{STANDBY_PREFIX}{s.model}@{s.node}": s for s in self.plan.standby}
        frac_sum: dict[tuple[str, str], float] = defaultdict(float)
        rate_sum: dict[tuple[str, str], float] = defaultdict(float)
        loads: dict[str, float] = defaultdict(float)
        routed: dict[str, list[tuple[Any, float, float]]] = defaultdict(list)
        self.standby_routes: list[tuple[Any, Any, float, list[tuple[_Class, float]]]] = []
        class_sum: dict[tuple[str, str, str], float] = defaultdict(float)
        for rt in self.plan.routes:
            key = (rt.source, rt.model)
            subj = f"{rt.source} -> {rt.model} -> {rt.replica}" + (f" [{rt.request_class}]" if rt.request_class else "")
            frac_sum[key] += rt.fraction
            rate_sum[key] += rt.rate_rps
            class_sum[(rt.source, rt.model, rt.request_class)] += rt.rate_rps
            d = self.demand.get(key)
            self.check("routing")
            if d is None:
                self.fail("routing", subj, "route for a (source, model) pair the workloads do not ask for", amount=rt.rate_rps, unit="req/s")
            elif not _close(rt.rate_rps, rt.fraction * d.rate_rps):
                self.fail("routing", subj, f"rate {rt.rate_rps:.6g} req/s is not fraction {rt.fraction:.6g} x demand {d.rate_rps:.6g} req/s", amount=rt.rate_rps - rt.fraction * d.rate_rps, unit="req/s")
            self.check("routing")
            target_cluster: str | None = None
            if rt.replica in self.replicas:
                r = self.replicas[rt.replica]
                if r.model != rt.model:
                    self.fail("routing", subj, f"routes '{rt.model}' traffic to a replica of '{r.model}'")
                    continue
                target_cluster = r.cluster
                loads[r.id] += rt.rate_rps
            elif rt.replica in standby:
                s = standby[rt.replica]
                if s.model != rt.model:
                    self.fail("routing", subj, f"routes '{rt.model}' traffic to standby of '{s.model}'")
                    continue
                target_cluster = s.cluster
            else:
                self.fail("routing", subj, f"routes to '{rt.replica}', which is neither a replica nor a standby of the plan")
                continue
            net = self.net_ms(rt.source, target_cluster)
            self.check("routing")
            if net is None:
                self.fail("routing", subj, f"no network link from source '{rt.source}' to cluster '{target_cluster}' in the inventory, so the latency is unknown")
                continue
            if not _close(rt.network_latency_ms, net, abs_tol=1e-6):
                self.fail("routing", subj, f"plan says network latency {rt.network_latency_ms:g} ms, the inventory link says {net:g} ms", amount=rt.network_latency_ms - net, unit="ms")
            if d is not None:
                parts = self._route_items(rt, subj)
                if rt.replica in self.replicas:
                    routed[rt.replica].extend((c, rate, net) for c, rate in parts)
                else:
                    self.standby_routes.append((rt, standby[rt.replica], net, parts))
        goodput = self.plan.settings.objective == "goodput"
        for key, d in sorted(self.demand.items()):
            subj = f"{key[0]} -> {key[1]}"
            if d.rate_rps <= 0:
                continue
            self.check("routing")
            pd = self.plan_demand.get(key)
            served = pd.served_rps if (goodput and pd is not None) else d.rate_rps
            want = served / d.rate_rps
            if not _close(frac_sum.get(key, 0.0), want, abs_tol=REL_TOL):
                what = f"served/demand = {want:.6g}" if goodput else "1"
                self.fail("routing", subj, f"route fractions add up to {frac_sum.get(key, 0.0):.6g}, not {what}", amount=frac_sum.get(key, 0.0) - want, unit="")
            self.check("routing")
            if pd is not None and not _close(rate_sum.get(key, 0.0), pd.served_rps, abs_tol=REL_TOL):
                self.fail("routing", subj, f"routed {rate_sum.get(key, 0.0):.6g} req/s but the plan says {pd.served_rps:.6g} req/s are served", amount=rate_sum.get(key, 0.0) - pd.served_rps, unit="req/s")
        self._check_class_sums(class_sum)
        for r in self.plan.replicas:
            self.check("consistency")
            if not _close(r.load_rps, loads.get(r.id, 0.0), abs_tol=1e-9):
                self.fail("consistency", r.id, f"plan says load {r.load_rps:.6g} req/s, routes send {loads.get(r.id, 0.0):.6g} req/s", amount=loads.get(r.id, 0.0) - r.load_rps, unit="req/s")
        return loads, routed

    def _check_class_sums(self, class_sum: dict[tuple[str, str, str], float]) -> None:
        """Routes of a request class carry that class's rate (cost: all of it; goodput: at most)."""
        goodput = self.plan.settings.objective == "goodput"
        for (src, model, name), rate in sorted(class_sum.items()):
            c = self.classes.get((src, model), {}).get(name) if name else None
            if c is None:
                continue
            self.check("routing")
            if rate > c.rate_rps * (1.0 + REL_TOL) + 1e-12 or (not goodput and not _close(rate, c.rate_rps, abs_tol=1e-9)):
                self.fail("routing", f"{src} -> {model} [{name}]", f"routes of this request class carry {rate:.6g} req/s, the class asks {c.rate_rps:.6g} req/s", amount=rate - c.rate_rps, unit="req/s")

    # ---- capacity per replica, latency per route --------------------------------------------
    def _mix(self, model: ModelSpec, routed: list[tuple[Any, float, float]], max_model_len: int) -> Any:
        """Request mix a replica serves: rate-weighted means, the largest KV reservation unit."""
        est = self.est
        total = math.fsum(rate for _, rate, _ in routed)
        if total <= 0:
            weights = [(d, 1.0) for d, _, _ in routed]
            total = float(len(routed))
        else:
            weights = [(d, rate) for d, rate, _ in routed]
        mean_in = math.fsum(d.mix.mean_input * w for d, w in weights) / total
        mean_out = math.fsum(d.mix.mean_output * w for d, w in weights) / total
        kv = max(d.mix.kv_tokens_per_request for d, _ in weights)
        return est.RequestMix(mean_input=mean_in, mean_output=mean_out, kv_tokens_per_request=kv, max_model_len=max_model_len)

    def _class_capacities(self, r: Replica, model: ModelSpec, gpu: GpuType, items: list[tuple[Any, float, float]], budget: float) -> dict[tuple[str, str, str], Any] | str:
        """Capacity of replica r for each request class routed to it, at the replica's engine
        budget and each class's own mix (KV unit capped at the replica's max_model_len); a
        message when the estimator refuses or a class cannot be served at all."""
        est = self.est
        out: dict[tuple[str, str, str], Any] = {}
        for c, _rate, _net in items:
            key = (c.source, c.model, c.name)
            if key in out:
                continue
            mix = est.RequestMix(mean_input=c.mix.mean_input, mean_output=c.mix.mean_output, kv_tokens_per_request=min(c.mix.kv_tokens_per_request, float(r.max_model_len)) if self.plan.settings.kv_reservation != "naive" else float(r.max_model_len), max_model_len=r.max_model_len)
            try:
                cap = est.replica_capacity(model, gpu, r.tp, mix, latency_budget_ms=budget, kv_pool_bytes_per_gpu=r.kv_cache_bytes_per_gpu, compute_share=r.compute_share, table=self.table)
            except ValueError as e:  # the estimator refuses the configuration itself
                return f"the estimator cannot evaluate this replica: {e}"
            if cap is None or cap.rps <= 0:
                what = f"class '{c.name}' of {c.source} -> {c.model}" if c.name else f"{c.source} -> {c.model}"
                return f"cannot serve {what} within a {budget:.6g} ms per-call budget at any load on {r.tp} x {gpu.id} with compute share {r.compute_share:g} and its KV pool"
            out[key] = cap
        return out

    def check_capacity_and_slo(self, loads: dict[str, float], routed: dict[str, list[tuple[Any, float, float]]]) -> None:
        """Additive load per replica: the sum over the request classes routed to it of provisioned
        rate / the replica's capacity for that class alone (its own mix, at the replica's engine
        budget: the tightest per-call budget minus round trip of what it serves) must be <= 1.
        Never a mean mix: with a measured table whose throughput is not monotone in length, the
        mean of two classes can fall in a faster cell than either."""
        h = self.plan.settings.headroom
        for r in self.plan.replicas:
            mg = self._model_gpu(r)
            if mg is None:
                continue
            model, gpu, node = mg
            items = routed.get(r.id, [])
            load = loads.get(r.id, 0.0)
            if not items:
                continue  # no traffic: nothing to serve (an idle replica costs money, not correctness)
            budget = min(d.latency_budget_ms - 2.0 * net for d, _, net in items)
            self.check("capacity")
            if budget <= 0:
                worst = min(items, key=lambda it: it[0].latency_budget_ms - 2.0 * it[2])
                self.fail("slo", r.id, f"the network round trip from '{worst[0].source}' ({2 * worst[2]:g} ms) alone exceeds the per-call budget {worst[0].latency_budget_ms:g} ms", amount=-budget, unit="ms")
                continue
            if r.compute_share <= 0:
                self.fail("capacity", r.id, f"has no compute share but serves {load:.6g} req/s", amount=load, unit="req/s")
                continue
            caps = self._class_capacities(r, model, gpu, items, budget)
            if isinstance(caps, str):
                self.fail("capacity", r.id, f"{caps}; it serves {load:.6g} req/s", amount=load, unit="req/s")
                continue
            # provisioned load of each routed share: rate x (1 + headroom), or its share of the
            # class's peak rate (arrival rate x peak_to_mean) where that is higher
            busy = served = 0.0
            for c, rate, _net in items:
                need = max(rate * (1.0 + h), c.peak_rate_rps * (rate / c.rate_rps if c.rate_rps > 0 else 0.0))
                busy += need / caps[(c.source, c.model, c.name)].rps
                served += rate / caps[(c.source, c.model, c.name)].rps
            eff = load / served if served > 0 else math.inf  # the replica's capacity at this class mix (harmonic)
            if busy > 1.0 + REL_TOL:
                self.fail("capacity", r.id, f"additive load {busy:.6g} > 1: the provisioned rate of each request class routed to it (load {load:.6g} req/s, headroom {h:g}, peaks) over its recomputed capacity for that class, summed over {len(caps)} class(es)", amount=(busy - 1.0) * eff, unit="req/s")
            self.check("consistency")
            if r.capacity_rps > eff * 1.02 + 1e-9:
                self.fail("consistency", r.id, f"plan claims capacity {r.capacity_rps:.6g} req/s, recomputed {eff:.6g} req/s for the classes routed to it", amount=r.capacity_rps - eff, unit="req/s")
            self._check_latency(r, model, gpu, items, load, list(caps.values()))

    def _check_latency(self, r: Replica, model: ModelSpec, gpu: GpuType, items: list[tuple[Any, float, float]], load: float, caps: list[Any]) -> None:
        """Sequences in flight (Little's law) and the per-call latency of every route."""
        est = self.est
        if all(c.source == "measured" for c in caps):
            # measured cells: at most their latency at any load up to their rate (checked above)
            lat = max(c.latency_ms for c in caps)
        else:
            lat = est.latency_at_load(model, gpu, r.tp, self._mix(model, items, r.max_model_len), load, compute_share=r.compute_share)
        self.check("capacity")
        in_flight = load * lat / 1000.0 if math.isfinite(lat) else math.inf
        if r.max_num_seqs + 1 < in_flight:
            self.fail("capacity", r.id, f"--max-num-seqs {r.max_num_seqs} admits fewer sequences than the {in_flight:.1f} in flight at {load:.6g} req/s x {lat:.6g} ms", amount=in_flight - r.max_num_seqs, unit="sequences")
        for d, _rate, net in items:
            self.check("slo")
            total = lat + 2.0 * net
            if not math.isfinite(total) or total > d.latency_budget_ms * (1.0 + REL_TOL):
                self.fail("slo", f"{d.source} -> {r.id}", f"per-call latency {lat:.6g} ms at {load:.6g} req/s + 2 x {net:g} ms network = {total:.6g} ms exceeds the budget {d.latency_budget_ms:.6g} ms", amount=(total - d.latency_budget_ms) if math.isfinite(total) else float("inf"), unit="ms")

    # ---- warm standby in host DRAM -----------------------------------------------------------
    def check_standby(self) -> None:
        est = self.est
        on_node: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for s in self.plan.standby:
            subj = f"standby {s.model}@{s.node}"
            self.check("inventory")
            node = self.nodes.get(s.node)
            model = self.inputs.models.get(s.model)
            if model is None:
                self.fail("inventory", subj, f"standby of unknown model '{s.model}'", mismatch=True)
            if node is None:
                self.fail("inventory", subj, f"unknown node '{s.node}'", mismatch=True)
            elif node.cluster != s.cluster:
                self.fail("inventory", subj, f"node '{s.node}' is in cluster '{node.cluster}', plan says '{s.cluster}'", mismatch=True)
            if model is None or node is None:
                continue
            wbytes = int(est.weight_bytes_total(model))
            on_node[s.node].append((s.model, wbytes))
            self.check("consistency")
            if not _close_int(s.host_dram_bytes, wbytes):
                self.fail("consistency", subj, f"plan says {s.host_dram_bytes} bytes of host DRAM, the weights are {wbytes} bytes", amount=(wbytes - s.host_dram_bytes) / GIB, unit="GiB")
            cold_ms = wbytes / (node.gpu.host_to_gpu_gbps * 1e9) * 1000.0
            self.check("consistency")
            if s.cold_start_ms < cold_ms * (1.0 - BYTES_REL_TOL):
                self.fail("consistency", subj, f"plan says cold start {s.cold_start_ms:.6g} ms, but copying {wbytes / GIB:.2f} GiB at {node.gpu.host_to_gpu_gbps:g} GB/s alone takes {cold_ms:.6g} ms", amount=cold_ms - s.cold_start_ms, unit="ms")
        for node_name, items in sorted(on_node.items()):
            node = self.nodes[node_name]
            cap = node.pool.host_dram_gib * GIB
            total = sum(b for _, b in items)
            self.check("memory")
            if total > cap:
                self.fail("memory", f"{node_name} host DRAM", f"standby weights of {', '.join(m for m, _ in items)} take {total / GIB:.2f} GiB, the node has {node.pool.host_dram_gib:g} GiB", amount=(total - cap) / GIB, unit="GiB")
        for rt, s, net, parts in self.standby_routes:
            for d, _rate in parts:
                self._check_standby_slo(rt, s, net, d)

    def _check_standby_slo(self, rt: Any, s: Any, net: float, d: _Class) -> None:
        est = self.est
        self.check("slo")
        if d.priority == "batch":
            return  # batch work may wait for a cold start
        node = self.nodes.get(s.node)
        model = self.inputs.models.get(s.model)
        if node is None or model is None:
            return
        cold_ms = max(s.cold_start_ms, int(est.weight_bytes_total(model)) / (node.gpu.host_to_gpu_gbps * 1e9) * 1000.0)
        if cold_ms + 2.0 * net > d.latency_budget_ms * (1.0 + REL_TOL):
            self.fail("slo", f"{rt.source} -> {rt.replica}", f"interactive traffic sent to a standby whose cold start {cold_ms:.6g} ms + 2 x {net:g} ms network exceeds the budget {d.latency_budget_ms:.6g} ms", amount=cold_ms + 2 * net - d.latency_budget_ms, unit="ms")

    # ---- failure domains ------------------------------------------------------------------
    def check_zones(self) -> None:
        need = self.plan.settings.min_zones_interactive
        possible = len(self.zones_all)
        interactive = sorted({m for (s, m), d in self.demand.items() if d.priority == "interactive" and d.rate_rps > 0})
        zones: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for r in self.plan.replicas:
            node = self.nodes.get(r.node)
            if node is not None:
                zones[r.model].add((node.cluster, node.pool.zone))
        for m in interactive:
            if not zones.get(m):
                continue  # no replica at all: routing/demand already say what is missing
            self.check("zones")
            want = min(need, possible)
            have = len(zones[m])
            if have < want:
                where = ", ".join(f"{c}/{z}" for c, z in sorted(zones[m]))
                self.fail("zones", m, f"interactive model has replicas in {have} failure domain(s) ({where}); at least {want} required", amount=want - have, unit="zones")

    # ---- cost, GPUs used, budget caps --------------------------------------------------------
    def check_cost_and_budget(self) -> None:
        used: set[str | tuple[str, int]] = set()
        used_by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        cost_by_cluster: dict[str, float] = defaultdict(float)
        for r in self.plan.replicas:
            for nd in _nodes_of(r):
                node = self.nodes.get(nd)
                if node is None:
                    continue
                for i in r.gpu_indices:
                    if not 0 <= i < node.pool.gpus_per_node or (nd, i) in used:
                        continue
                    used.add((nd, i))
                    used_by[node.cluster][node.pool.gpu_type] += 1
                    cost_by_cluster[node.cluster] += node.price
        cost = math.fsum(cost_by_cluster.values())
        self.check("consistency")
        if abs(cost - self.plan.cost_per_hour) > COST_ABS_TOL + REL_TOL * cost:
            self.fail("consistency", "cost_per_hour", f"plan says ${self.plan.cost_per_hour:.4f}/h, the GPUs it uses cost ${cost:.4f}/h", amount=self.plan.cost_per_hour - cost, unit="$/h")
        want = {c: {g: n for g, n in sorted(v.items()) if n} for c, v in sorted(used_by.items())}
        have = {c: {g: int(n) for g, n in sorted(v.items()) if n} for c, v in sorted(self.plan.gpus_used.items())}
        have = {c: v for c, v in have.items() if v}
        self.check("consistency")
        if want != have:
            self.fail("consistency", "gpus_used", f"plan says {have}, the replicas use {want}", amount=sum(sum(v.values()) for v in have.values()) - len(used), unit="GPUs")
        for name, c in sorted(self.clusters.items()):
            if c.budget_per_hour is None:
                continue
            self.check("budget")
            spend = cost_by_cluster.get(name, 0.0)
            if spend > c.budget_per_hour + REL_TOL * max(1.0, c.budget_per_hour):
                self.fail("budget", name, f"spends ${spend:.2f}/h, over the cluster's budget cap ${c.budget_per_hour:.2f}/h", amount=spend - c.budget_per_hour, unit="$/h")


def _nodes_of(r: Replica) -> list[str]:
    """The node of a replica, then its pipeline-stage worker nodes (if the plan has any)."""
    return [r.node, *(getattr(r, "worker_nodes", None) or [])]


def _close(a: float, b: float, *, rel_tol: float = REL_TOL, abs_tol: float = 1e-9) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=abs_tol)


def _close_int(a: int, b: int) -> bool:
    return abs(int(a) - int(b)) <= BYTES_REL_TOL * max(abs(int(a)), abs(int(b)), 1)


def verify_plan(plan: Plan, inputs: Inputs, *, capacity_table: Any = None) -> VerifyReport:
    """Re-check every constraint of `plan` against `inputs`; never raises on a bad plan.

    `capacity_table`: the measured capacity table (estimate.load_capacity_table) the plan was made
    with, if any: capacities and latencies of the cells it covers come from it, as the estimator's
    public replica_capacity reads it. A plan made with a table (settings.capacity_table_sha256)
    checked without it, or with another one, is an input mismatch.

    Returns a VerifyReport: ok, the violations (family, subject, detail, amount), and how many
    checks of each family ran.
    """
    v = _Verifier(plan, inputs, capacity_table)
    want = getattr(plan.settings, "capacity_table_sha256", None)
    got = _table_sha(capacity_table) if capacity_table is not None else None
    if want != got:
        if want is None:
            v.fail("consistency", "capacity table", "the plan was made from the estimator's capacities, but a measured capacity table was given", mismatch=True)
        elif got is None:
            v.fail("consistency", "capacity table", f"the plan was made with a measured capacity table (sha256 {want[:12]}...); pass it with --capacity-table", mismatch=True)
        else:
            v.fail("consistency", "capacity table", f"the plan was made with another capacity table (sha256 {want[:12]}..., this one {got[:12]}...)", mismatch=True)
        v.check("consistency")
        return VerifyReport(ok=False, violations=v.violations, checked={f: int(v.checked.get(f, 0)) for f in FAMILIES})
    return v.run()


def _table_sha(table: Any) -> str:
    """SHA-256 of the table's rows as canonical JSON (plan.schema Settings.capacity_table_sha256)."""
    rows = [r.model_dump() for r in table.rows]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def summarize(violations: Iterable[Violation]) -> str:
    vs = list(violations)
    if not vs:
        return "plan verified: no violations"
    fams: dict[str, int] = defaultdict(int)
    for v in vs:
        fams[v.constraint] += 1
    return f"{len(vs)} violation(s): " + ", ".join(f"{k} {n}" for k, n in sorted(fams.items()))
