"""The synth request (SynthSpec, checked like a CLI flag set) and the deterministic random source."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro_plan.errors import InputError


@dataclass(frozen=True)
class SynthSpec:
    gpus: int
    models: int
    clusters: int
    workflows: int
    seed: int = 0
    load: float = 0.5  # fraction of the fleet's GPUs the demand should need
    catalogue: Path | None = None  # model catalogue to derive from; None = embedded architectures

    def check(self) -> None:
        problems = []
        if not 1 <= self.clusters <= 64:
            problems.append(("--clusters", f"must be between 1 and 64, got {self.clusters}"))
        if self.gpus < self.clusters or self.gpus > 1_000_000:
            problems.append(("--gpus", f"must be at least the number of clusters ({self.clusters}) and at most 1,000,000, got {self.gpus}"))
        if not 1 <= self.models <= 5000:
            problems.append(("--models", f"must be between 1 and 5000, got {self.models}"))
        if not 1 <= self.workflows <= 1000:
            problems.append(("--workflows", f"must be between 1 and 1000, got {self.workflows}"))
        if not 0 < self.load <= 1:
            problems.append(("--load", f"must be in (0, 1], got {self.load}"))
        if problems:
            flag, msg = problems[0]
            raise InputError(f"{flag} {msg}.", field=flag, hint="; ".join(f"{f} {m}" for f, m in problems[1:]) or None)


class Rng:
    """Only random.Random.random() is used: its sequence is stable across Python versions."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(int(seed))

    def u(self) -> float:
        return self._r.random()

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self._r.random()

    def below(self, n: int) -> int:
        return min(n - 1, int(self._r.random() * n))

    def weighted(self, items: Sequence[Any], weights: Sequence[float]) -> Any:
        total = math.fsum(weights)
        x = self._r.random() * total
        acc = 0.0
        for it, w in zip(items, weights):
            acc += w
            if x < acc:
                return it
        return items[-1]

    def shuffled(self, items: Sequence[Any]) -> list[Any]:
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of an integer total in proportion to weights (ties by index)."""
    s = math.fsum(weights)
    raw = [total * w / s for w in weights]
    out = [int(math.floor(x)) for x in raw]
    rest = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def sig(x: float, digits: int = 4) -> float:
    """Round to significant digits (file-friendly, deterministic)."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def round_up_nice(ms: float) -> float:
    """Round a latency up to 2 significant digits (an SLO a person would write)."""
    if ms <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(ms))
    step = mag / 10 if ms / mag < 10 else mag
    return float(math.ceil(ms / step) * step)
