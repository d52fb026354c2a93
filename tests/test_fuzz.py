"""The fast slice of the fuzz campaign (benchmarks/fuzz.py): the first cases of seed 0, at least two
of every input kind and flag family, each run in a forked child with a timeout and a memory cap.
Any internal error, hang, memory blow-up, unsafe output or write outside --out fails the test
with the case's replay command. The full campaign (1,000+ cases) is `python -m benchmarks.fuzz`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import fuzz  # noqa: E402 - the harness lives with the benchmarks

FAST_CASES = 2 * len(fuzz.KINDS)  # cases 0..25: each kind twice, in order


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[fuzz.Result]:
    return fuzz.run_campaign(FAST_CASES, seed=0, timeout_s=120.0, work=tmp_path_factory.mktemp("fuzz"))


def test_fast_slice_has_no_internal_errors_hangs_or_unsafe_outputs(results: list[fuzz.Result]) -> None:
    bad = [f"case {r.index} [{r.kind}] {r.outcome}: {r.mutation} -> {r.detail} (replay: python -m benchmarks.fuzz --seed 0 --only {r.index})" for r in results if r.outcome != "ok"]
    assert not bad, "\n".join(bad)


def test_fast_slice_covers_every_input_kind(results: list[fuzz.Result]) -> None:
    kinds = {r.kind.split("-")[0] for r in results}
    assert {"inventory", "model", "workload", "log", "scenario", "capacity", "plan", "kubectl", "nvidia", "hf", "flag", "gpu"} <= kinds


def test_the_campaign_is_reproducible() -> None:
    import random

    a = fuzz.mutate_doc(random.Random("0:5"), fuzz.INVENTORY)
    b = fuzz.mutate_doc(random.Random("0:5"), fuzz.INVENTORY)
    assert fuzz.dump_yaml(a[0]) == fuzz.dump_yaml(b[0]) and a[1] == b[1]


@pytest.mark.parametrize(
    "doc, problem",
    [
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad Name"}}, "DNS-1123"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok", "labels": {"a": "NVIDIA H100 80GB HBM3"}}}, "label value"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok"}, "spec": {"nodeSelector": {"a": "x y"}}}, "label value"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok", "labels": {"a": "H100-80GB"}}}, None),
    ],
)
def test_the_output_checks_can_fail(doc: dict, problem: str | None) -> None:
    found = fuzz._k8s_problem(doc)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_strict_json_check_refuses_infinity(tmp_path: Path) -> None:
    f = tmp_path / "plan.json"
    f.write_text('{"time_limit": Infinity}')
    assert "non-JSON" in (fuzz._file_problem(f) or "")
