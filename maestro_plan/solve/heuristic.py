"""Greedy first-fit-decreasing placement: the warm start for the exact backends and the baseline
the benchmarks compare against (`--solver greedy`).

1. Models most constrained first (fewest node pools that can serve them), then by provisioned
   load (rate x peak factor x (1 + headroom)), largest first (the "decreasing"); under goodput,
   models with interactive demand before the others. Each model first gets a replica in every
   failure domain it needs, then serves its demands (most constrained, largest first).
2. Each demand first fills spare capacity of replica groups already opened that it may use
   (nearest cluster first), then opens replicas one at a time, each time the option with the lowest
   price per useful req/s: price x GPUs / min(capacity, what is still unserved) - so a small
   remainder goes to a small GPU slice. An option is open only if its pool still has the GPUs, the
   node-shape cuts hold and the cluster's budget cap is not exceeded.
3. Interactive models that end up in fewer failure domains than required get their cheapest
   replica in each missing domain.
Under --objective goodput, demand that finds no capacity is shed instead of failing. Otherwise a
model that finds no room is moved to the front and the pass starts again (GREEDY_RETRIES times).

Returns replica counts per group; `complete` turns counts into a full assignment of the linear
model (GPUs, zones, change variables fixed; flows from the LP of `polish`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

from maestro_plan.plan.families import Family
from maestro_plan.solve.model import LinearModel, SolveResult
from maestro_plan.solve.patterns import first_fit_decreasing
from maestro_plan.solve.problem import MAX_ENGINES_PER_GPU, UNITS_PER_GPU, Candidate, Problem, pool_gpus_needed


class _State:
    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self.units = defaultdict(int)  # pool -> units used
        self.whole = defaultdict(int)  # pool -> GPUs of whole-GPU replicas
        self.sub: dict[int, list[int]] = defaultdict(list)  # pool -> bytes of co-located engines
        self.cut = defaultdict(int)  # (pool, t) -> GPUs used by items with tp >= t
        self.spend = defaultdict(float)  # cluster -> $/h
        self.n = defaultdict(int)  # group -> count
        self.budget = {c.name: c.budget_per_hour for c in prob.inputs.inventory.clusters}

    def gpus(self, pi: int, c: Candidate | None = None) -> int:
        """GPUs pool pi takes (with candidate c added): whole GPUs plus the first-fit-decreasing
        bins of its co-located engines, which place.py never exceeds (it keeps FFD unless the
        pattern packer does better), so a greedy plan always places."""
        whole = self.whole[pi] + (c.tp if c is not None and not c.shared else 0)
        sub = self.sub[pi] + ([c.mem_bytes] if c is not None and c.shared else [])
        return whole + (len(first_fit_decreasing(sub, self.prob.pools[pi].usable_bytes, MAX_ENGINES_PER_GPU)) if sub else 0)

    def _fits(self, pi: int, c: Candidate) -> bool:
        """c fits pool pi: cheaply where any packing that leaves no two bins jointly within one GPU
        does (bins <= 2 x total share + 1), else by the FFD count."""
        p = self.prob.pools[pi]
        whole = self.whole[pi] + (0 if c.shared else c.tp)
        sub = sum(self.sub[pi]) + (c.mem_bytes if c.shared else 0)
        if whole + (2 * sub / p.usable_bytes + 1 if sub else 0) <= p.gpus:
            return True
        return self.gpus(pi, c) <= p.gpus

    def can_add(self, gi: int) -> bool:
        prob = self.prob
        g = prob.groups[gi]
        c = prob.candidates[g.cand]
        p = prob.pools[g.pool]
        if self.n[gi] >= g.max_count:
            return False
        if not self._fits(g.pool, c):
            return False
        t = 2
        while t <= c.tp:
            if p.gpus_per_node % t and self.cut[(g.pool, t)] + c.tp > p.cut_capacity(t):
                return False
            t *= 2
        cap = self.budget.get(p.cluster)
        if cap is not None:
            extra = (self.gpus(g.pool, c) - self.gpus(g.pool)) * p.price_per_gpu_hour
            if self.spend[p.cluster] + extra > cap + 1e-9:
                return False
        return True

    def add(self, gi: int) -> None:
        prob = self.prob
        g = prob.groups[gi]
        c = prob.candidates[g.cand]
        p = prob.pools[g.pool]
        capped = self.budget.get(p.cluster) is not None  # spend is only read against budget caps
        before = self.gpus(g.pool) if capped else 0
        self.units[g.pool] += c.units
        if c.shared:
            self.sub[g.pool].append(c.mem_bytes)
        else:
            self.whole[g.pool] += c.tp
        if capped:
            self.spend[p.cluster] += (self.gpus(g.pool) - before) * p.price_per_gpu_hour
        t = 2
        while t <= c.tp:
            self.cut[(g.pool, t)] += c.tp
            t *= 2
        self.n[gi] += 1


GREEDY_RETRIES = 8
"""Restarts of the greedy pass, each with the model that found no room moved to the front (a
"squeaky wheel" retry: a small model must not take the last slices of a node that a big model
needs whole)."""


def greedy(prob: Problem) -> dict[int, int] | None:
    first: list[str] = []
    for _ in range(GREEDY_RETRIES + 1):
        counts, failed = _greedy_pass(prob, first)
        if failed is None:
            return counts
        if first and first[0] == failed:
            return None  # it fails even when served first
        first = [failed] + [m for m in first if m != failed]
    return None


def _greedy_pass(prob: Problem, first: list[str]) -> tuple[dict[int, int] | None, str | None]:
    """One pass; returns (counts, None) or (None, the model that found no room)."""
    st = _State(prob)
    h = prob.settings.headroom
    goodput = prob.settings.objective == "goodput"
    _start_from_current(prob, st)
    spare = defaultdict(float)  # group -> provisioned req/s still free
    covered: dict[str, set] = defaultdict(set)  # model -> failure domains with a replica
    for gi, cnt in st.n.items():
        spare[gi] = cnt * prob.groups[gi].capacity.rps
    for gi, cnt in st.n.items():
        if cnt > 0:
            covered[prob.candidates[prob.groups[gi].cand].model].add(prob.pools[prob.groups[gi].pool].failure_domain)
    groups_of: dict[str, list] = defaultdict(list)
    for g in prob.groups:
        groups_of[prob.candidates[g.cand].model].append(g)
    demands_of: dict[str, list] = defaultdict(list)
    model_load: dict[str, float] = defaultdict(float)
    for d in prob.demands:
        demands_of[d.model].append(d)
        model_load[d.model] += d.provisioned_rps(h)
    # models most constrained first (fewest pools that can serve them), then largest: a model
    # that only a few pools can take must not find them filled by models that had other options;
    # each model gets its failure domains, then its demand; under goodput interactive models first
    npools = {d.index: len({prob.groups[prob.arcs[ai].group].pool for ai in prob.arcs_of_demand.get(d.index, [])}) for d in prob.demands}
    mpools = {m: len({g.pool for g in gs}) for m, gs in groups_of.items()}
    interactive = {d.model for d in prob.demands if d.priority == "interactive"}
    models = sorted(set(demands_of) | set(prob.zones_required), key=lambda m: (goodput and m not in interactive, mpools.get(m, 0), -model_load[m], m))
    models = [m for m in first if m in models] + [m for m in models if m not in first]
    for m in models:
        _zone_cover(prob, st, m, groups_of[m], model_load[m], spare, covered)
        order = sorted(demands_of[m], key=lambda d: (goodput and d.priority != "interactive", npools[d.index], -d.provisioned_rps(h), d.key))
        for d in order:
            if not _serve(prob, st, d, spare, covered) and not goodput:
                return None, m
    failed = _spread_zones(prob, st, groups_of)
    if failed is not None:
        return None, failed
    return {gi: c for gi, c in sorted(st.n.items()) if c > 0}, None


def _start_from_current(prob: Problem, st: _State) -> None:
    """The plan in force's replicas (stability), where they still fit."""
    if not prob.current:
        return
    by_cp: dict[tuple[int, int], list[int]] = defaultdict(list)
    for g in prob.groups:
        by_cp[(g.cand, g.pool)].append(g.index)
    for key, cnt in sorted(prob.current.items()):
        gis = by_cp.get(key)
        if not gis:
            continue
        gi = max(gis, key=lambda i: (prob.classes[prob.groups[i].cls].is_all, -i))
        for _ in range(cnt):
            if st.can_add(gi):
                st.add(gi)


def _zone_cover(prob: Problem, st: _State, m: str, groups: list, load: float, spare, covered) -> None:
    """Replicas of m in new failure domains until it spans what it must (cheapest per useful req/s)."""
    while len(covered[m]) < prob.zones_required.get(m, 0):
        best = None
        for g in groups:
            p = prob.pools[g.pool]
            if p.failure_domain in covered[m] or not st.can_add(g.index):
                continue
            c = prob.candidates[g.cand]
            useful = min(g.capacity.rps, max(load, 1e-9) / prob.zones_required[m])
            score = (not prob.classes[g.cls].is_all, p.price_per_gpu_hour * c.units / useful, g.key)
            if best is None or score < best[0]:
                best = (score, g.index)
        if best is None:
            return
        st.add(best[1])
        spare[best[1]] += prob.groups[best[1]].capacity.rps
        covered[m].add(prob.pools[prob.groups[best[1]].pool].failure_domain)


def _serve(prob: Problem, st: _State, d, spare, covered) -> bool:
    """Route demand d into spare capacity (nearest first), adding the cheapest replica per useful
    req/s while some is left (a new failure domain first while d's model lacks one); False when
    no replica can be added and part of d is unserved."""
    need = d.provisioned_rps(prob.settings.headroom)
    rem = 1.0
    arcs = sorted(prob.arcs_of_demand.get(d.index, []), key=lambda ai: (prob.arcs[ai].net_ms, prob.groups[prob.arcs[ai].group].key))
    for ai in arcs:
        gi = prob.arcs[ai].group
        if spare[gi] > 1e-12 and rem > 1e-12:
            take = min(rem, spare[gi] / (need * prob.arcs[ai].load))
            spare[gi] -= take * need * prob.arcs[ai].load
            rem -= take
    while rem > 1e-9:
        best = None
        want_zone = len(covered[d.model]) < prob.zones_required.get(d.model, 0)
        for ai in arcs:
            a = prob.arcs[ai]
            g = prob.groups[a.group]
            if not st.can_add(g.index):
                continue
            c = prob.candidates[g.cand]
            p = prob.pools[g.pool]
            useful = min(g.capacity.rps / a.load, rem * need)
            new_zone = 0 if (want_zone and p.failure_domain not in covered[d.model]) else 1
            score = (new_zone, p.price_per_gpu_hour * c.units / UNITS_PER_GPU / useful, a.net_ms, g.key)
            if best is None or score < best[0]:
                best = (score, g.index, a.load)
        if best is None:
            return False
        gi, load = best[1], best[2]
        st.add(gi)
        covered[d.model].add(prob.pools[prob.groups[gi].pool].failure_domain)
        spare[gi] += prob.groups[gi].capacity.rps
        # the new replica may also serve this demand's other arcs into the same group: just fill
        take = min(rem, spare[gi] / (need * load))
        spare[gi] -= take * need * load
        rem -= take
    return True


def _spread_zones(prob: Problem, st: _State, groups_of: dict[str, list]) -> str | None:
    """Cheapest replicas in missing failure domains; the first model that finds none (or None)."""
    for m, need_z in sorted(prob.zones_required.items()):
        have = {prob.pools[prob.groups[gi].pool].failure_domain for gi, c in st.n.items() if c > 0 and prob.candidates[prob.groups[gi].cand].model == m}
        while len(have) < need_z:
            best = None
            for g in groups_of[m]:
                if prob.pools[g.pool].failure_domain in have or not st.can_add(g.index):
                    continue
                c = prob.candidates[g.cand]
                p = prob.pools[g.pool]
                score = (p.price_per_gpu_hour * c.units, g.key)
                if best is None or score < best[0]:
                    best = (score, g.index)
            if best is None:
                return m
            st.add(best[1])
            have.add(prob.pools[prob.groups[best[1]].pool].failure_domain)
    return None


def fixed_values(prob: Problem, counts: dict[int, int], slots: dict[int, int] | None = None, holds: dict[int, int] | None = None) -> dict[int, float]:
    """Values of every integer variable implied by replica counts (and standby choices)."""
    v = prob.v
    out: dict[int, float] = {}
    for gi, vi in v.n.items():
        out[vi] = float(counts.get(gi, 0))
    slots = slots or {}
    holds = holds or {}
    for ti, vi in v.slot.items():
        out[vi] = float(slots.get(ti, 0))
    for oi, vi in v.hold.items():
        out[vi] = float(holds.get(oi, 0))
    need = pool_gpus_needed(prob, counts, slots)
    for pi, vi in v.gpus.items():
        out[vi] = float(need.get(pi, 0))
    present: dict[tuple[str, tuple[str, str]], bool] = defaultdict(bool)
    for gi, c in counts.items():
        if c > 0:
            g = prob.groups[gi]
            present[(prob.candidates[g.cand].model, prob.pools[g.pool].failure_domain)] = True
    for key, vi in v.zone.items():
        out[vi] = 1.0 if present[key] else 0.0
    tot: dict[tuple[int, int], int] = defaultdict(int)
    for gi, c in counts.items():
        g = prob.groups[gi]
        tot[(g.cand, g.pool)] += c
    for key, vi in v.dplus.items():
        diff = tot.get(key, 0) - prob.current.get(key, 0)
        out[vi] = float(max(diff, 0))
        out[v.dminus[key]] = float(max(-diff, 0))
    return out


def polish(prob: Problem, fixed: dict[int, float], *, time_limit: float = 30.0) -> SolveResult:
    """With every integer variable fixed, the flows are an LP: solve it exactly (HiGHS), with the
    objectives that still matter (served demand under goodput, then network latency)."""
    from maestro_plan.solve.milp import solve_highs

    lm = _fixed_lp(prob, fixed)
    lm.rows = prob.lm.rows
    return solve_highs(lm, time_limit=time_limit, seed=prob.settings.seed, relax=True)


def _fixed_lp(prob: Problem, fixed: dict[int, float]) -> LinearModel:
    """The model's variables, continuous, those in `fixed` pinned to their values, with the
    objectives after cost (rows left to the caller)."""
    lm = LinearModel()
    for i, var in enumerate(prob.lm.vars):
        lo, hi = (fixed[i], fixed[i]) if i in fixed else (var.lb, var.ub)
        lm.vars.append(replace(var, lb=lo, ub=hi, integer=False))
    lm.objectives = [o for o in prob.lm.objectives if o.name != "cost"]
    return lm


def complete(prob: Problem, counts: dict[int, int] | None, *, time_limit: float = 30.0, slots: dict[int, int] | None = None, holds: dict[int, int] | None = None) -> list[float] | None:
    """A full point of the linear model from replica counts and swap slots (None if they cannot
    carry the demand)."""
    if counts is None:
        return None
    fixed = fixed_values(prob, counts, slots, holds)
    res = polish(prob, fixed, time_limit=time_limit)
    if res.values is None or res.status not in ("optimal", "feasible"):
        return None
    return res.values


HINT_SLACKS = (1e-3, 1e-5, 1e-7)
"""Relative capacity kept free in the CP-SAT hint (largest that the replica counts allow), so that
rounding its flows to 1/720720 steps and CP-SAT's conservative rounding of the capacity rows cannot
push a row over."""


def _tight_flows(prob: Problem, fixed: dict[int, float], slack: float) -> list[float] | None:
    from maestro_plan.solve.milp import solve_highs

    lm = _fixed_lp(prob, fixed)
    for r in prob.lm.rows:
        if r.family == Family.CAPACITY and r.key[0] in ("group", "slot"):  # a group's or a swap slot's capacity
            coef = [c * (1.0 - slack) if (i in fixed and c < 0) else c for i, c in zip(r.idx, r.coef)]
            lm.row(r.name, r.family, list(zip(r.idx, coef)), lo=r.lo, hi=r.hi)
        else:
            lm.rows.append(r)
    res = solve_highs(lm, time_limit=30.0, seed=prob.settings.seed, relax=True)
    return list(res.values) if res.values is not None else None


def cpsat_hint(prob: Problem, values: list[float] | None) -> list[float] | None:
    """A point that is feasible in CP-SAT's integer space too: the same integer decisions, flows
    re-solved with capacities shrunk by a small slack, rounded down to whole steps, and each
    demand's missing steps given to the arcs whose replica groups have the most room left. None
    when no such point is found (the float point is then the hint, and CP-SAT repairs it)."""
    from maestro_plan.solve.problem import ROUTE_RESOLUTION

    if values is None:
        return None
    v = prob.v
    fixed = {i: values[i] for i, var in enumerate(prob.lm.vars) if var.integer}
    R = ROUTE_RESOLUTION
    h = prob.settings.headroom
    for slack in HINT_SLACKS:
        x = _tight_flows(prob, fixed, slack)
        if x is None:
            continue
        room: dict[int, float] = {}
        for g in prob.groups:
            n = fixed.get(v.n[g.index], 0.0)
            room[g.index] = n * g.capacity.rps * (1.0 - 1e-6)
        steps: dict[int, int] = {}
        for a in prob.arcs:
            vi = v.flow[a.index]
            steps[vi] = math.floor(max(0.0, x[vi]) * R + 1e-9)
            d = prob.demands[a.demand]
            room[a.group] -= steps[vi] / R * d.rate_rps * d.provision_factor * (1 + h) * a.load
        for a in prob.standby_arcs:
            vi = v.sflow[a.index]
            steps[vi] = math.floor(max(0.0, x[vi]) * R + 1e-9)
        ok = True
        if prob.settings.objective == "cost":
            for d in prob.demands:
                arcs = prob.arcs_of_demand.get(d.index, [])
                sids = [v.sflow[ai] for ai in prob.sarcs_of_demand.get(d.index, [])]
                short = R - sum(steps[v.flow[ai]] for ai in arcs) - sum(steps[vi] for vi in sids)
                per_step = d.provisioned_rps(h) / R
                for ai in sorted(arcs, key=lambda ai: (-room[prob.arcs[ai].group], ai)):
                    if short <= 0:
                        break
                    g, unit = prob.arcs[ai].group, per_step * prob.arcs[ai].load
                    k = min(short, int(room[g] // unit)) if unit > 0 else short
                    if k > 0:
                        steps[v.flow[ai]] += k
                        room[g] -= k * unit
                        short -= k
                if short > 0:
                    ok = False
                    break
        if not ok:
            continue
        for vi, st in steps.items():
            x[vi] = st / R
        return x
    return None
