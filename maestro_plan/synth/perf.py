"""Estimator answers cached per fleet configuration, and the fluid LP that sizes synth's rates."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from maestro_plan.load.schema import GpuType, Inventory, ModelSpec
from maestro_plan.synth.models import fitting_configs, smallest_tp
from maestro_plan.synth.tables import HEADROOM, Dist


class Perf:
    """Cached estimator answers for the fleet's (cluster, GPU type, TP) configurations."""

    def __init__(self, inv: Inventory, models: dict[str, ModelSpec], gpu_types: dict[str, GpuType]) -> None:
        from maestro_plan import estimate as est

        self.est = est
        self.gpu_types = gpu_types
        self.models = models
        self.configs = {m: fitting_configs(spec, inv, gpu_types) for m, spec in models.items()}
        gpus: dict[tuple[str, str], int] = defaultdict(int)
        width: dict[tuple[str, str], int] = defaultdict(int)
        for c in inv.clusters:
            for p in c.node_pools:
                gpus[(c.name, p.gpu_type)] += p.node_count * p.gpus_per_node
                width[(c.name, p.gpu_type)] = max(width[(c.name, p.gpu_type)], p.gpus_per_node)
        self.gpus = dict(sorted(gpus.items()))
        self.width = dict(width)
        clusters = {c.name for c in inv.clusters}
        self.net: dict[tuple[str, str], float] = {}
        for lk in inv.links:
            for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
                if b in clusters and a not in clusters:
                    self.net[(a, b)] = lk.latency_ms
        self.min_net: dict[str, float] = {}
        for (src, _), ms in self.net.items():
            self.min_net[src] = min(self.min_net.get(src, math.inf), ms)
        self._tp: dict[tuple[str, str, int], int | None] = {}
        self._cap: dict[Any, float | None] = {}

    def unloaded_ms(self, model: str, din: Dist, dout: Dist) -> float:
        est = self.est
        m = self.models[model]
        mix = est.RequestMix(mean_input=din.mean, mean_output=dout.mean, kv_tokens_per_request=din.p99 + dout.p99, max_model_len=m.context_len)
        return min(est.latency_at_load(m, self.gpu_types[t], tp, mix, 1e-6) for t, tp in self.configs[model])

    def rps_per_gpu(self, d: Any) -> dict[tuple[str, str], float]:
        """Requests/s one GPU serves for this demand, per (cluster, GPU type) able to: replica
        capacity / TP at the demand's mix and its per-call budget less the round trip to that
        cluster (the smallest TP that fits, as the fleet's nodes allow)."""
        out: dict[tuple[str, str], float] = {}
        m = self.models[d.model]
        for (c, t), _ in self.gpus.items():
            budget = d.latency_budget_ms - 2.0 * self.net.get((d.source, c), math.inf)
            if budget <= 0:
                continue
            tk = (d.model, t, self.width[(c, t)])
            if tk not in self._tp:
                self._tp[tk] = smallest_tp(m, self.gpu_types[t], self.width[(c, t)])
            tp = self._tp[tk]
            if tp is None:
                continue
            key = (d.model, t, tp, d.mix, round(budget, 6))
            if key not in self._cap:
                r = self.est.replica_capacity(m, self.gpu_types[t], tp, d.mix, latency_budget_ms=budget)
                self._cap[key] = r.rps if r is not None and r.rps > 0 else None
            rps = self._cap[key]
            if rps:
                out[(c, t)] = rps / tp
        return out

    def max_scale(self, demands: Sequence[Any], load: float) -> float:
        """Largest factor s such that s x the demand (provisioned with HEADROOM, or at its peak
        rate where higher) fits on at most `load` of the GPUs of every (cluster, GPU type), each
        demand on GPUs within reach of its per-call budget: a fluid linear program (GLOP,
        OR-Tools). Every GPU type keeps 1 - load of its GPUs spare in that relaxation, which
        leaves an integer plan (whole replicas, zone spread) room to exist."""
        from ortools.linear_solver import pywraplp

        lp = pywraplp.Solver.CreateSolver("GLOP")
        scale = lp.NumVar(0.0, lp.infinity(), "s")
        per_pool: dict[tuple[str, str], list[Any]] = defaultdict(list)
        total: list[Any] = []
        for i, d in enumerate(demands):
            rpg = self.rps_per_gpu(d)
            want = max(d.rate_rps * (1.0 + HEADROOM), getattr(d, "peak_rate_rps", 0.0) or 0.0)
            if not rpg or want <= 0:
                continue
            terms = []
            for (c, t), r in sorted(rpg.items()):
                x = lp.NumVar(0.0, lp.infinity(), f"x{i}.{c}.{t}")
                per_pool[(c, t)].append(x)
                total.append(x)
                terms.append(r * x)
            lp.Add(lp.Sum(terms) >= want * scale)
        for key, xs in sorted(per_pool.items()):
            lp.Add(lp.Sum(xs) <= load * self.gpus[key])
        lp.Maximize(scale)
        status = lp.Solve()
        if status != pywraplp.Solver.OPTIMAL or not math.isfinite(scale.solution_value()) or scale.solution_value() <= 0:
            return 1.0
        return float(scale.solution_value())
