"""Byte-identity guard: the small cases of benchmarks/plans_identical.py (the bundled inputs and the
100-GPU synthetic fleet, seed 0) must give exactly the plans recorded in
benchmarks/results/plans_identical.json. A change meant to change plans re-records the file
(`python -m benchmarks.plans_identical`) in its own commit, saying why."""

from __future__ import annotations

import json

from benchmarks import plans_identical as harness

SMALL = ["bundled", "100-s0"]


def test_small_cases_are_byte_identical_to_the_recorded_plans():
    recorded = json.loads(harness.RESULTS.read_text(encoding="utf-8"))["cases"]
    got = harness.run(SMALL)
    assert harness.differences(recorded, got) == []


def test_a_changed_plan_is_named():
    recorded = {"a": {"sha256": "0" * 64, "cost_per_hour": 1.0, "gap": 0.0}}
    got = {"a": {"sha256": "1" * 64, "cost_per_hour": 2.0, "gap": 0.1}, "b": {"sha256": "2" * 64, "cost_per_hour": 1.0, "gap": 0.0}}
    out = harness.differences(recorded, got)
    assert len(out) == 2 and out[0].startswith("a: plan differs") and out[1] == "b: no recorded reference"
