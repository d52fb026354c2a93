"""Units shared by every package (one definition each), and numbers for people: durations in ms,
s, min or h; rates and amounts without float noise.

    duration_text(1_200_000) -> "20 min"      duration_text(850) -> "850 ms"
    amount_text(-8.9e-16, "req/s") -> "0 req/s"   amount_text(0.02381, "req/s") -> "0.0238 req/s"
"""

from __future__ import annotations

import math

GIB = 2**30  # bytes per GiB (binary gibibyte: what nvidia-smi, vLLM and Kubernetes "Gi" count)

NOISE = 1e-9
"""Magnitudes below this (relative to 1) are float noise from the solvers (route fractions are
1/720720 steps, ~1.4e-6), printed as 0."""


def _num(x: float, digits: int = 3) -> str:
    """x with `digits` significant digits, no exponent, no trailing zeros ('1,250', '0.0238')."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    mag = math.floor(math.log10(abs(x)))
    places = max(0, digits - 1 - mag)
    text = f"{round(x, places):,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration_text(ms: float | None) -> str:
    """A latency or SLO in the unit a person reads it in: ms below 1 s, s below 1 min, min below 2 h, then h."""
    if ms is None:
        return "?"
    if abs(ms) < NOISE:
        return "0 ms"
    for unit, size, limit in (("ms", 1.0, 1_000.0), ("s", 1e3, 60_000.0), ("min", 60_000.0, 7_200_000.0)):
        if abs(ms) < limit:
            return f"{_num(ms / size)} {unit}"
    return f"{_num(ms / 3_600_000.0)} h"


def amount_text(value: float, unit: str = "") -> str:
    """A slack, rate or amount: float noise as 0, three significant digits otherwise."""
    v = 0.0 if abs(value) < NOISE else value
    return f"{_num(v)} {unit}".strip()


__all__ = ["GIB", "amount_text", "duration_text"]
