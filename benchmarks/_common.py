"""Helpers shared by the benchmark harnesses (not a harness itself: run_all skips '_' modules)."""

from __future__ import annotations

import os
from pathlib import Path


def pin_cores(cores: int) -> list[int]:
    """Pin this process to its first `cores` CPUs (0: do not pin), so that figures mean the same on
    larger machines; returns the CPUs now in use ([] where the platform cannot pin)."""
    if hasattr(os, "sched_setaffinity") and cores > 0:
        avail = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, avail[:cores])
        return sorted(os.sched_getaffinity(0))
    return []


def write_results(results: Path, files: dict[str, str]) -> None:
    """Write each named text into `results` through a temporary file and a rename (a reader never
    sees a half-written result)."""
    results.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = results / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(results / name)
