"""Helpers shared by the benchmark harnesses (not a harness itself: run_all skips '_' modules)."""

from __future__ import annotations

import os


def pin_cores(cores: int) -> list[int]:
    """Pin this process to its first `cores` CPUs (0: do not pin), so that figures mean the same on
    larger machines; returns the CPUs now in use ([] where the platform cannot pin)."""
    if hasattr(os, "sched_setaffinity") and cores > 0:
        avail = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, avail[:cores])
        return sorted(os.sched_getaffinity(0))
    return []
