"""The solve's tuning constants in one place, each with the reason it has its value.

Shares are of --time-limit, read as a deterministic work budget (CP-SAT deterministic time units,
HiGHS simplex iterations and branch-and-bound nodes), never as wall-clock seconds: a plan must not
depend on the machine's load. Figures quoted are from benchmarks/solver_scale.py on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SolveBudget:
    cpsat_share: float = 0.4
    """CP-SAT's deterministic work budget, x --time-limit, without column generation (greedy, LP
    and the per-model decomposition are bounded work that takes most of the rest)."""

    cpsat_share_after_cg: float = 0.05
    """CP-SAT after column generation, which took most of the budget already."""

    cpsat_share_large: float = 0.2
    """Above max_integer_variables: CP-SAT's presolve alone overshoots its deterministic
    limit there (37.7 units for a budget of 20.4 on synth 10,000 GPUs / 100 models)."""

    colgen_max_integer_variables: int = 100_000
    """Column generation runs up to this many integer variables; above, it is not measured (synth
    10,000 GPUs has 23,348)."""

    cpsat_after_cg_max_integer_variables: int = 2000
    """CP-SAT runs after column generation only up to this many integer variables: on the bundled
    fleet (986) it improves the start ($498.54/h -> $497.24/h); on synth 1,000 GPUs (3,569-5,118
    integer variables, four seeds) and 10,000 GPUs (23,348) it did not, and spent 1.5-2 s and 14 s
    (its presolve overshoots a small work budget), time column generation uses better."""

    lns_min_gap: float = 0.005
    """The neighbourhood search (lns.py) runs only while column generation's start is further than
    this from its bound: it can gain at most the gap (synth 1,000 GPUs seed 1: 0.37 %, 5.6 s spent,
    nothing found)."""

    lns_pairs_max_gain: float = 0.01
    """After the columns' neighbourhood, the pairs of clusters run only while the gap is above
    lns_min_gap, column generation stayed within its work budget, and the columns' neighbourhood
    gained less than this: a large gain there means conflicting columns, where the pairs' sub-MIPs
    are slowest (synth 1,000 GPUs seed 8: 6.8 s for 1.3 % more)."""

    lp_bound_max_s: float = 120.0
    """HiGHS' wall-clock limit for the LP bound: a safety net far above the LP's time (a few
    seconds for synth 10,000 GPUs), so that the bound in plan.json does not depend on load."""

    cg_rounds: int = 12
    """colgen.py: at most this many master LP -> block rounds after the first (LP-dual) round:
    on the twelve synth 1,000-GPU benchmark seeds 12 rounds end within 8.7 s at the gaps of
    README's table; 16 rounds took up to 10.6 s for the same gaps; at 8, seed 2 hit the cap with
    3 % of its work budget spent"""

    cg_block_max_nodes: int = 500
    """colgen.py: branch-and-bound nodes per block (its dual bound still counts)"""

    cg_block_max_nodes_large: int = 50
    """colgen.py: above max_integer_variables: blocks of 1,000-2,000 variables, where
    500 nodes took 84 s for the 100 blocks of synth 10,000 GPUs at the LP's prices, 50 nodes 36
    s"""

    cg_node_work: int = 10
    """colgen.py: a branch-and-bound node counted as this many simplex iterations of work"""

    cg_share: float = 0.4
    """colgen.py: share of --time-limit the rounds may spend (the integer masters, the residual
    passes and the neighbourhood search (lns.py) take most of the rest; synth 1,000 GPUs, seeds
    0-7: 5.0-8.0 s of 10)"""

    cg_share_large: float = 0.17
    """colgen.py: above max_integer_variables, where a work unit takes longer (bigger
    blocks): synth 10,000 GPUs took 54 s of 60 at 0.17 (11 rounds, then 17 s of integer masters
    and residual passes), 51-56 s at 0.2, 56-58 s at 0.25"""

    cg_iterations_per_s: int = 25000
    """colgen.py: HiGHS work units (simplex iterations + cg_node_work per node) per second and
    worker on the benchmark machine (2 cores; synth 1,000 GPUs seed 0, round 0: 79,099 units in
    1.44 s on 2 workers)"""

    master_max_nodes: int = 50
    """colgen.py: deterministic branch-and-bound limit of the integer master: its root takes
    most of its time (synth 1,000 GPUs seed 6: 1.1 s at 50 nodes, 1.7-2.1 s at 500, three
    solves), and the neighbourhood search improves its pick better than more nodes do"""

    master_wall_cap_s: float = 120.0
    """colgen.py: wall-clock safety net of the master problems (master_max_nodes stops the
    integer master first). Safety nets are set far above what they guard (here 1-2 s idle) so that
    they do not fire on a loaded machine either: with five engineers' jobs on 2 cores a solve got
    1/8 of a core, and 20 s caps fired on synth 1,000 GPUs (seeds 0 and 3, another plan)"""

    residual_passes: int = 2
    """colgen.py: above max_integer_variables: re-plan each model against what the
    picked plan leaves, then pick again (synth 10,000 GPUs: $27,852/h; lns.py's columns step
    instead: $28,103/h, 9 s more)"""

    lns_max_nodes: int = 1
    """lns.py: root node only: on synth 1,000 GPUs seeds 0-3 every improvement came from HiGHS'
    root heuristics; 10 or 50 nodes found the same plans, later"""

    lns_passes: int = 1
    """lns.py: a second pass from the improved plan gained only on synth 1,000 GPUs seed 3
    ($1,628.84/h -> $1,626.54/h, of seeds 0-3) and took 2.6-3.0 s more"""

    lns_wall_cap_s: float = 120.0
    """lns.py: wall-clock safety net of a sub-MIP (its node limit stops it first: a root took
    0.1-4.3 s on synth 1,000 GPUs); if it fires the plan's notes say so"""

    lns_column_nodes: int = 50
    """lns.py: the sub-MIP over the columns' groups: synth 1,000 GPUs seed 8, $1,186.49/h ->
    $1,129.50/h in 1.9 s at 50 nodes ($1,125.73/h in 4.8 s at 500)"""

    lns_max_clusters: int = 4
    """lns.py: above, the pairs (6 at 4 clusters) would take longer than the rest of the solve"""

    block_wall_cap_s: float = 120.0
    """decompose.py: wall-clock safety net of a per-model block (block_max_nodes stops it first;
    if this fires the plan's notes say so)"""

    block_max_nodes: int = 2000
    """decompose.py: deterministic work limit per block (its dual bound still counts)"""

    max_integer_variables: int = 20000
    """decompose.py: above this many integer variables the neighbourhood search (lns.py) does not
    run, CP-SAT gets cpsat_share_large, and column generation's blocks get cg_block_max_nodes_large
    and its rounds cg_share_large (bigger blocks, slower work units)"""

    repair_attempts: int = 4
    """decompose.py: sequential repairs, each with the model that found no room moved first"""

    cpsat_workers: int = 1
    """cpsat.py: one worker without interleaving is the setting measured to give the same plan
    and the same deterministic time on an idle and a loaded machine (see cpsat.py)"""

    cpsat_wall_cap_factor: float = 100.0
    """cpsat.py: CP-SAT's wall-clock safety cap = this x its deterministic budget +
    cpsat_wall_cap_s: one worker on a machine shared by five busy processes took 10 s of wall
    clock for 0.43 deterministic units (synth 100 GPUs seed 0), and 34 s was not enough on seed 3;
    the cap must not fire there"""

    cpsat_wall_cap_s: float = 60.0
    """cpsat.py: see cpsat_wall_cap_factor"""

    explain_max_nodes: int = 20000
    """explain.py: branch-and-bound nodes of the elastic model that says what falls short (its
    wall-clock limit was max(5 s, --time-limit), which under load gave different explanations of
    the same infeasible scenario in two processes: tests/test_whatif_sweep.py's local/Ray parity)"""

    backend_nodes_per_s: float = 5.0
    """backends.py, --solver highs|cbc: their final solve stops after this many branch-and-bound
    nodes per second of --time-limit (a deterministic count: the same plan on any load), with
    backend_wall_cap_factor x --time-limit as a far wall-clock safety net that notes itself in the
    plan. HiGHS on the bundled fleet, load average 4 on 2 cores: its root node alone took 19.4 s,
    49 more nodes 7.5 s (about 13 nodes/s idle); the root node is not divisible, so a small
    --time-limit still pays for it (the CLI's deadline, deadline.py, cuts it and says so)"""

    backend_wall_cap_factor: float = 10.0
    """backends.py: the safety cap is this x --time-limit + backend_wall_cap_s; see
    backend_nodes_per_s. Far above the node limit's time, so that it does not fire on a loaded
    machine (the root node, which no node limit divides, took 19.4 s there)"""

    backend_wall_cap_s: float = 60.0
    """backends.py: see backend_wall_cap_factor"""

    deadline_reserve_share: float = 0.35
    """maestro_plan/deadline.py: share of --time-limit the solve's stages leave for what follows
    them in `solve` (routing, placement, the SLO check's simulation, verify, emit). Bundled fleet,
    --time-limit 10, idle: the simulation is sized to about 10 % of the limit (slo/loop.py), verify
    took 0.6 s and emit 2.4 s (benchmarks/results/time_limit.md)"""

    explain_wall_cap_s: float = 120.0
    """explain.py: wall-clock safety net of the elastic model (explain_max_nodes stops it first)"""


BUDGET = SolveBudget()
