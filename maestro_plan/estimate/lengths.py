"""How one role's token lengths are drawn from its TokenDist: one definition for the simulator
(maestro_plan.simulate.traffic) and the percentile latency model (maestro_plan.estimate.latency).

- mean only: every call has the mean (the distribution says nothing more);
- mean and percentiles: a lognormal with that mean whose quantile at the highest given percentile
  below 100 matches (two numbers, two parameters; right-skewed like measured LLM lengths, e.g. the
  Azure 2023 traces in ../shared/data/azure-llm-2023: conv context mean 1155, p50 1020, p99 4142);
  when no lognormal fits (a percentile below the mean), the piecewise-linear quantile function of
  TokenDist.quantile is sampled instead;
- a histogram (without percentiles): a bin drawn by count, uniform inside the bin;
- clipped to `max` when given, at least 1 token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from maestro_plan.load.schema import TokenDist


@dataclass(frozen=True)
class LengthModel:
    """How one TokenDist is sampled (see the module docstring)."""

    kind: Literal["constant", "lognormal", "quantile", "histogram"]
    mean: float
    mu: float = 0.0
    sigma: float = 0.0
    q_pct: tuple[float, ...] = ()
    q_val: tuple[float, ...] = ()
    edges: tuple[float, ...] = ()
    probs: tuple[float, ...] = ()
    cap: float = math.inf

    @staticmethod
    def of(d: TokenDist) -> LengthModel:
        cap = float(d.max) if d.max is not None else math.inf
        if d.histogram is not None and not d.percentiles:
            c = np.asarray(d.histogram.counts, dtype=float)
            return LengthModel("histogram", d.mean_tokens(), edges=tuple(d.histogram.edges), probs=tuple((c / c.sum()).tolist()), cap=cap)
        m = d.mean_tokens()
        below = [p for p in d.percentiles if p < 100]
        if not d.percentiles:
            return LengthModel("constant", m, cap=cap)
        if d.mean is not None and below:
            p = max(below)
            q = float(d.percentiles[p])
            z = NormalDist().inv_cdf(p / 100.0)
            r = math.log(q / m) if q > 0 and m > 0 else -1.0
            disc = z * z - 2.0 * r
            if r > 0 and disc >= 0 and z > 0:
                sigma = z - math.sqrt(disc)
                return LengthModel("lognormal", m, mu=math.log(m) - sigma * sigma / 2.0, sigma=sigma, cap=cap)
        points = {float(k): float(v) for k, v in d.percentiles.items()}
        if d.mean is not None and 50.0 not in points:
            points.setdefault(50.0, float(d.mean))
        if d.max is not None:
            points[100.0] = max(float(d.max), max(points.values(), default=0.0))
        keys = sorted(points)
        return LengthModel("quantile", m, q_pct=tuple(keys), q_val=tuple(points[k] for k in keys), cap=cap)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "constant":
            x = np.full(n, self.mean)
        elif self.kind == "lognormal":
            x = rng.lognormal(self.mu, self.sigma, n)
        elif self.kind == "quantile":
            x = np.interp(rng.random(n) * 100.0, self.q_pct, self.q_val)
        else:
            e = np.asarray(self.edges)
            b = rng.choice(len(self.probs), size=n, p=np.asarray(self.probs))
            x = e[b] + (e[b + 1] - e[b]) * rng.random(n)
        x = np.minimum(x, self.cap)
        return np.maximum(np.rint(x), 1).astype(np.int64)
