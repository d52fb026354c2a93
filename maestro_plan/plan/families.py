"""The one vocabulary of constraint families, shared by the solver's rows, its explanations of
infeasibility, plan.json's `binding` list and the verifier's report.

A neutral module (no solving code): the verifier may import it and stay independent of the solver.
`Family` is a `StrEnum`, so a member is its name wherever a string is expected (plan.json,
reports) and plans written before the enum read the same.
"""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    CONSISTENCY = "consistency"  # the plan agrees with itself (verifier only)
    INVENTORY = "inventory"  # GPUs per pool, node-shape cuts
    MEMORY = "memory"  # weights + KV + overhead fit the GPU share; standby weights fit host DRAM
    COMPUTE = "compute"  # compute shares on one GPU add up to at most 1
    CAPACITY = "capacity"  # provisioned load within replica capacity
    DEMAND = "demand"  # every demand served (cost) or shed explicitly (goodput)
    ROUTING = "routing"  # routes reach existing replicas over existing links (verifier only)
    SLO = "slo"  # per-call latency budgets
    ZONES = "zones"  # interactive models spread over failure domains
    BUDGET = "budget"  # $/h caps per cluster
    STANDBY = "standby"  # swap slots for rarely used models (solver rows)
    CHANGE = "change"  # replicas added / removed against the plan in force (solver rows)


VERIFIED = (
    Family.CONSISTENCY,
    Family.INVENTORY,
    Family.MEMORY,
    Family.COMPUTE,
    Family.CAPACITY,
    Family.DEMAND,
    Family.ROUTING,
    Family.SLO,
    Family.ZONES,
    Family.BUDGET,
)
"""The families the verifier checks, in its report order."""
