"""The typed candidate table the solver works on, and the linear model built from it.

Symmetry is exploited by counting, not by naming: the integer decision is how many replicas of a
*candidate* (model, GPU type, TP, GPU slice) serve a *service class* in a *node pool*; which node
and which GPU indices each replica gets is decided afterwards by `place.py`. A fleet of thousands
of identical GPUs therefore adds bounds, not variables.

Objects (all frozen, all indexed by position; keys are human-readable and sorted):

- Pool: one node pool (identical nodes, one GPU type, one zone) of one cluster.
- DemandRow: one request class of a (source, model) pair of the demand model (estimate.compute_demand).
- Candidate: a replica configuration. `units` is its size in 1/UNITS_PER_GPU of a GPU: tp x 8 for
  whole GPUs, or 4, 2, 1 for a half, quarter, eighth of one GPU (co-located small models; tp 1 only).
  A slice of fraction f gets f x gpu_memory_utilization x HBM (vLLM's per-instance
  --gpu-memory-utilization, so co-located engines add up to the engine default) and compute share f.
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

from dataclasses import dataclass, field
from typing import Any

from maestro_plan.estimate import CapacityResult, RequestMix
from maestro_plan.solve.model import LinearModel

UNITS_PER_GPU = 8
"""Slice granularity: 1/8 of a GPU (slices of 1/2, 1/4, 1/8 and whole GPUs, all powers of two, so
that first-fit decreasing packs any feasible multiset exactly; see place.py)."""

SLICE_UNITS = (8, 4, 2, 1)

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

    @property
    def gpus(self) -> float:
        return self.units / UNITS_PER_GPU

    @property
    def whole_gpus(self) -> bool:
        return self.units >= UNITS_PER_GPU


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
    colocation: bool = True  # GPU slices of 1/2, 1/4, 1/8 for small models (False: whole GPUs only)
    service_classes: bool = True  # per-demand classes besides the envelope class `all`
    lp_bound: bool = True
    capacity_table: Any = None  # estimate.CapacityTable
    capacity_table_path: str = ""
    # workflow -> factor (< 1 tightens) on its per-call slowdown budget; set by maestro_plan.slo's loop
    slo_slowdown_scale: tuple[tuple[str, float], ...] = ()
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
