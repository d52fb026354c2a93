"""The typed candidate table the solver works on, and the linear model built from it.

Symmetry is exploited by counting, not by naming: the integer decision is how many replicas of a
*candidate* (model, GPU type, TP, GPU slice) serve a *service class* in a *node pool*; which node
and which GPU indices each replica gets is decided afterwards by `place.py`. A fleet of thousands
of identical GPUs therefore adds bounds, not variables.

Objects (all frozen, all indexed by position; keys are human-readable and sorted):

- Pool: one node pool (identical nodes, one GPU type, one zone) of one cluster.
- DemandRow: one request class of a (source, model) pair of the demand model (estimate.compute_demand).
- Candidate: a replica configuration. Whole GPUs: tp x UNITS_PER_GPU units, memory fraction
  gpu_memory_utilization, compute share 1. Co-located (tp 1, `shared`): an engine sized to its need
  in bytes, `mem_bytes` = weights + activation + non-torch + CUDA-graph reserves + the KV of its
  planned concurrency at the length percentile (at least one max_model_len request), never below
  MIN_SHARE of the usable HBM U = gpu_memory_utilization x HBM; its share s = mem_bytes / U is both
  its memory share (--gpu-memory-utilization s x util, --kv-cache-memory-bytes exact) and its
  compute share (interference model: engines on one GPU time-share it in proportion to s, and each
  one's capacity is today's estimator at compute share s). Per GPU: sum of mem_bytes <= U, hence
  sum of shares <= 1 and, with s >= MIN_SHARE, at most MAX_ENGINES_PER_GPU engines.
  `units` = floor(s x UNITS_PER_GPU): the aggregate coefficient of the inventory rows (a valid
  relaxation of the byte packing; place.py packs the bytes exactly).
- ServiceClass: what a replica group promises: an engine latency budget (the per-call budget
  minus the network round trip). Class `all` of a (model, cluster) runs at the tightest budget of
  every reachable demand, so it may serve all of them; looser classes serve only the demands whose
  budget they meet and exist where they buy capacity. A class is a budget, not a mix: each demand
  row is one request class (role) with its own mix, and a replica's load is summed over them.
- Group: (candidate, pool, class) with a reference capacity (the smallest of its arcs') -> one
  integer variable.
- Arc: (demand, group) with the capacity for that demand's class -> one continuous routing
  variable (fraction of that demand).
- SlotType / StandbyOption / StandbyArc: warm standby (see formulate.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from maestro_plan.estimate import CapacityResult, RequestMix
from maestro_plan.solve.model import LinearModel

UNITS_PER_GPU = 65536
"""Resolution of the per-pool aggregate rows: a co-located engine of share s counts floor(65536 s)
units there (rounded down, so the rows stay a relaxation of the byte-exact packing: any byte-feasible
set of engines on a GPU has sum floor(65536 s) <= 65536). 1/65536 of usable HBM is 1.1 MiB on an
H100 (0.92 x 79.65 GiB), so rounding loses at most that per engine; a power of two so that whole GPUs
and the swap slots' 1/2, 1/4, 1/8 slices are exact."""

MAX_ENGINES_PER_GPU = 8
"""Engines (vLLM processes) sharing one GPU at most: today's limit (eight 1/8 slices), kept because
what bytes do not model (per-process scheduling and context-switch overhead) is unmeasured here; see
the design note in patterns.py."""

MIN_SHARE_UNITS = UNITS_PER_GPU // MAX_ENGINES_PER_GPU
"""An engine holds at least 1/MAX_ENGINES_PER_GPU of the usable HBM (the rest beyond its need goes to
its KV cache), so the memory rows alone enforce MAX_ENGINES_PER_GPU."""

SLICE_UNITS = (UNITS_PER_GPU, UNITS_PER_GPU // 2, UNITS_PER_GPU // 4, UNITS_PER_GPU // 8)
"""Swap slots (warm standby) stay power-of-two slices of a GPU."""


@dataclass(frozen=True)
class Dff:
    """A dual feasible function f (Fekete and Schepers 2001): any set of item sizes that fits one
    bin (sum <= 1) maps to values summing to <= 1, so GPUs >= whole GPUs + sum f(share) holds for
    every byte-feasible packing (formulate._add_dff_rows). kind "eps": u^(eps), x > 1 - eps -> 1,
    eps <= x <= 1 - eps -> x, x < eps -> 0; kind "k": u^(k), x if (k + 1) x is an integer, else
    floor((k + 1) x) / k."""

    kind: str
    value: Fraction

    @property
    def name(self) -> str:
        return f"dff-{self.kind}{self.value.numerator}" + (f"/{self.value.denominator}" if self.value.denominator != 1 else "")

    def units(self, x: Fraction) -> int:
        """UNITS_PER_GPU x f(x), rounded down (exact comparisons on the exact share)."""
        if self.kind == "eps":
            if x > 1 - self.value:
                return UNITS_PER_GPU
            return x.numerator * UNITS_PER_GPU // x.denominator if x >= self.value else 0
        k = int(self.value)
        if ((k + 1) * x).denominator == 1:
            return x.numerator * UNITS_PER_GPU // x.denominator
        return ((k + 1) * x.numerator // x.denominator) * UNITS_PER_GPU // k

    def binds(self, x: Fraction) -> bool:
        """f counts x above its face value (a row with no such item is implied by the main row)."""
        return self.units(x) > x.numerator * UNITS_PER_GPU // x.denominator


DFFS = (
    Dff("eps", Fraction(1, 8)), Dff("eps", Fraction(1, 4)), Dff("eps", Fraction(1, 3)), Dff("eps", Fraction(1, 2)),
    Dff("k", Fraction(2)), Dff("k", Fraction(3)),
)
"""The DFF rows per pool: u^(eps) for eps = 1/2 gives engines over half a GPU one each, 1/8 is the
smallest share an engine holds (MIN_SHARE_UNITS); u^(2) counts engines of 1/3 to 2/3 as halves (five
of 0.4 need 3 GPUs, the main row says 2), u^(3) those of 1/4 to 1/2 as thirds."""


def aggregate_gpus(units: int, whole_units: int, sub: list[tuple[Fraction, int]]) -> int:
    """GPUs a pool needs at least by its inventory rows (formulate.add_inventory): all units
    (`units`), and for every DFFS row the whole-GPU units plus f(share) of the sub-GPU items
    (`sub`: exact share, count)."""
    need = -(-units // UNITS_PER_GPU)
    for f in DFFS if sub else ():
        row = whole_units + sum(f.units(x) * k for x, k in sub)
        need = max(need, -(-row // UNITS_PER_GPU))
    return need


def units_of_share(share: float) -> int:
    """Aggregate units of a co-located engine of share s (rounded down; 1e-9 absorbs the float
    round trip of s = bytes / U so that the plan's compute_share maps back to the same units)."""
    return int(math.floor(share * UNITS_PER_GPU + 1e-9))

ROUTE_RESOLUTION = 720720
"""CP-SAT steps per unit of a routing fraction: lcm(1..16), so a demand splits exactly into up to 16
equal parts; 1.4e-6 of a demand per step."""


@dataclass(frozen=True)
class Pool:
    index: int
    key: str  # "<cluster>/<pool>"
    cluster: str
    name: str
    zone: str
    region: str
    gpu_type: str
    gpus_per_node: int
    node_count: int
    node_names: tuple[str, ...]
    price_per_gpu_hour: float
    host_dram_bytes: int
    usable_bytes: int = 0  # usable HBM per GPU: floor(HBM x gpu_memory_utilization), what co-located engines share

    def slice_share(self, units: int) -> Fraction:
        """Exact share of the usable HBM of a slice of `units` (swap slots): floor(U units / R) / U bytes."""
        return Fraction(self.usable_bytes * units // UNITS_PER_GPU, self.usable_bytes)

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.node_count

    @property
    def units(self) -> int:
        return self.gpus * UNITS_PER_GPU

    @property
    def failure_domain(self) -> tuple[str, str]:
        return (self.cluster, self.zone)

    @property
    def cut_sizes(self) -> tuple[int, ...]:
        """Powers of two t >= 2 that do not divide the node size: TP >= t groups then cannot use
        every GPU of a node, and the inventory needs a node-shape cut for them."""
        out = []
        t = 2
        while t <= self.gpus_per_node:
            if self.gpus_per_node % t:
                out.append(t)
            t *= 2
        return tuple(out)

    def cut_capacity(self, t: int) -> int:
        """GPUs that groups of TP >= t (powers of two) can use at most: floor(node size / t) x t per node."""
        return self.node_count * (self.gpus_per_node // t) * t


@dataclass(frozen=True)
class DemandRow:
    index: int
    key: str  # "<source>/<model>"
    source: str
    model: str
    rate_rps: float
    priority: str
    budget_ms: float
    mix: RequestMix
    roles: tuple[str, ...]
    shared_prefix: bool
    peak_rps: float
    provision_factor: float  # >= 1: provisioned load = rate x factor x (1 + headroom)
    cls: str = ""  # request class (estimate.DemandClass name, "workflow/role"); "" = the whole pair

    def provisioned_rps(self, headroom: float) -> float:
        """The load replicas are sized for: rate x provision_factor x (1 + headroom)."""
        return self.rate_rps * self.provision_factor * (1.0 + headroom)


@dataclass(frozen=True)
class Candidate:
    index: int
    key: str
    model: str
    gpu_type: str
    tp: int
    units: int
    compute_share: float
    memory_fraction: float
    weights_bytes_per_gpu: int
    overhead_bytes_per_gpu: int
    kv_pool_bytes_per_gpu: int
    kv_bytes_per_token_per_gpu: int
    max_model_len: int
    mem_bytes: int = 0  # co-located engines: bytes it holds on its GPU (0: whole GPUs)
    usable_bytes: int = 0  # co-located engines: the GPU's usable HBM U its share is measured against

    @property
    def share_exact(self) -> Fraction:
        """Co-located engines: mem_bytes / usable_bytes exactly (the DFF rows compare it)."""
        return Fraction(self.mem_bytes, self.usable_bytes)

    @property
    def shared(self) -> bool:
        """A co-located engine (byte-packed onto a GPU with others), not whole GPUs."""
        return self.mem_bytes > 0

    @property
    def gpus(self) -> float:
        return self.units / UNITS_PER_GPU

    @property
    def whole_gpus(self) -> bool:
        return not self.shared


@dataclass(frozen=True)
class ServiceClass:
    index: int
    key: str
    model: str
    cluster: str
    mix: RequestMix
    budget_ms: float  # engine budget (network round trip already removed)
    demands: tuple[int, ...]  # demand rows this class may serve
    is_all: bool


@dataclass(frozen=True)
class Group:
    index: int
    key: str
    cand: int
    pool: int
    cls: int
    capacity: CapacityResult
    max_count: int


@dataclass(frozen=True)
class Arc:
    """Demand -> group. `capacity`: one replica of the group serving only this demand's class (its
    mix, at the group's class budget); `load` = group reference capacity / that, so the capacity
    row sum_a x_a provisioned_a load_a <= cap_g n_g is sum_a (routed / capacity of its class) <= n_g
    (additive load across the classes a replica serves)."""

    index: int
    demand: int
    group: int
    net_ms: float
    capacity: CapacityResult | None = None
    load: float = 1.0


@dataclass(frozen=True)
class SlotType:
    """A swap slot: `units` of one GPU (or tp GPUs) of a pool where sleeping engines take turns."""

    index: int
    key: str
    pool: int
    tp: int
    units: int
    memory_fraction: float
    compute_share: float


@dataclass(frozen=True)
class StandbyOption:
    index: int
    key: str
    slot: int
    model: str
    weight_bytes: int  # whole model in host DRAM
    cold_start_ms: float
    weights_bytes_per_gpu: int
    overhead_bytes_per_gpu: int
    kv_pool_bytes_per_gpu: int  # with the other sleeping engines' residual memory removed
    max_model_len: int


@dataclass(frozen=True)
class StandbyArc:
    index: int
    demand: int
    option: int
    net_ms: float
    capacity: CapacityResult
    busy_s_per_request: float  # 1 / capacity + cold start (every request may need a swap)


@dataclass
class Vars:
    """Indices of the LinearModel's variables, by object."""

    n: dict[int, int] = field(default_factory=dict)  # group -> count
    gpus: dict[int, int] = field(default_factory=dict)  # pool -> GPUs used
    flow: dict[int, int] = field(default_factory=dict)  # arc -> fraction
    zone: dict[tuple[str, tuple[str, str]], int] = field(default_factory=dict)  # (model, domain) -> binary
    dplus: dict[tuple[int, int], int] = field(default_factory=dict)  # (cand, pool) -> replicas added
    dminus: dict[tuple[int, int], int] = field(default_factory=dict)
    slot: dict[int, int] = field(default_factory=dict)  # slot type -> binary
    hold: dict[int, int] = field(default_factory=dict)  # standby option -> binary
    sflow: dict[int, int] = field(default_factory=dict)  # standby arc -> fraction


@dataclass
class SolveSettings:
    """Everything that steers a solve (the CLI flags), recorded in the plan."""

    objective: str = "cost"  # cost | goodput
    solver: str = "cpsat"  # cpsat | highs | cbc | greedy
    time_limit_s: float = 60.0
    seed: int = 0
    headroom: float = 0.2
    kv_reservation: str = "predicted"  # predicted | naive
    length_percentile: float = 99.0
    min_zones_interactive: int = 2
    change_weight: float = 0.0
    workers: int = 2
    standby: bool = True
    colocation: bool = True  # co-located engines sized in bytes for tp-1 models (False: whole GPUs only)
    service_classes: bool = True  # per-demand classes besides the envelope class `all`
    lp_bound: bool = True
    capacity_table: Any = None  # estimate.CapacityTable
    capacity_table_path: str = ""
    # workflow -> factor (< 1 tightens) on its per-call slowdown budget; set by maestro_plan.slo's loop
    slo_slowdown_scale: tuple[tuple[str, float], ...] = ()
    # model -> factor (> 1) on its provisioned load; set by maestro_plan.slo's loop where the latency
    # model finds that model's replicas overloaded at their planned load (slo/loop.py DERATE)
    slo_derate: tuple[tuple[str, float], ...] = ()
    slo_budget_rule: str = "percentile"  # estimate.demand.BUDGET_RULES ("mean": the pre-percentile split, for comparisons)


@dataclass
class Problem:
    settings: SolveSettings
    pools: list[Pool]
    demands: list[DemandRow]
    candidates: list[Candidate]
    classes: list[ServiceClass]
    groups: list[Group]
    arcs: list[Arc]
    slot_types: list[SlotType]
    standby_options: list[StandbyOption]
    standby_arcs: list[StandbyArc]
    net: dict[tuple[str, str], float]  # (source, cluster) -> one-way ms, direct links only
    zones_required: dict[str, int]  # interactive model -> failure domains required
    current: dict[tuple[int, int], int]  # (cand, pool) -> replicas in the plan in force
    notes: list[str]
    stats: dict[str, int]
    lm: LinearModel = field(default_factory=LinearModel)
    v: Vars = field(default_factory=Vars)
    arcs_of_group: dict[int, list[int]] = field(default_factory=dict)
    arcs_of_demand: dict[int, list[int]] = field(default_factory=dict)
    sarcs_of_demand: dict[int, list[int]] = field(default_factory=dict)
    demand_model: Any = None  # estimate.DemandModel
    inputs: Any = None  # load.schema.Inputs


def pool_usage(prob: Problem, counts: dict[int, int], slots: dict[int, int] | None = None) -> dict[int, tuple[int, int, list[tuple[Fraction, int]]]]:
    """Per pool: (units, whole-GPU units, [(exact share, count)] of sub-GPU items) of replica
    counts per group and swap slots per slot type: what the inventory rows count."""
    out: dict[int, tuple[int, int, list[tuple[Fraction, int]]]] = {}

    def add(pi: int, units: int, whole: bool, share: Fraction | None, k: int) -> None:
        u, w, sub = out.get(pi, (0, 0, []))
        if not whole and share is not None:
            sub.append((share, k))
        out[pi] = (u + units * k, w + (units * k if whole else 0), sub)

    for gi, n in counts.items():
        if n > 0:
            g = prob.groups[gi]
            c = prob.candidates[g.cand]
            add(g.pool, c.units, not c.shared, c.share_exact if c.shared else None, n)
    for ti, k in (slots or {}).items():
        if k > 0:
            t = prob.slot_types[ti]
            whole = t.units >= UNITS_PER_GPU
            add(t.pool, t.units, whole, None if whole else prob.pools[t.pool].slice_share(t.units), k)
    return out


def pool_gpus_needed(prob: Problem, counts: dict[int, int], slots: dict[int, int] | None = None) -> dict[int, int]:
    """Per pool: the fewest GPUs its inventory rows allow for these counts (aggregate_gpus)."""
    return {pi: aggregate_gpus(u, w, sub) for pi, (u, w, sub) in pool_usage(prob, counts, slots).items()}
