"""The foundation's own pieces: token distributions, YAML safety, atomic writes, plan I/O."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maestro_plan import atomic
from maestro_plan.errors import InputError
from maestro_plan.load.loader import read_document, tp_allowed
from maestro_plan.load.schema import NodePool, TokenDist
from maestro_plan.plan.io import read_plan


def test_token_dist_interpolates_percentiles() -> None:
    d = TokenDist(mean=1000, percentiles={50: 800, 90: 2000, 99: 4000})
    assert d.quantile(50) == 800
    assert d.quantile(70) == pytest.approx(1400)
    assert d.quantile(99) == 4000
    assert d.quantile(99.9) == 4000  # beyond the last known point: the last point, no extrapolation
    assert d.mean_tokens() == 1000


def test_token_dist_histogram_quantile_and_mean() -> None:
    d = TokenDist(histogram={"edges": [0, 100, 200, 400], "counts": [50, 30, 20]})
    assert d.quantile(50) == pytest.approx(100)
    assert d.quantile(80) == pytest.approx(200)
    assert d.quantile(90) == pytest.approx(300)
    assert d.mean_tokens() == pytest.approx((50 * 50 + 150 * 30 + 300 * 20) / 100)


@given(st.lists(st.floats(min_value=1, max_value=1e5), min_size=2, max_size=6, unique=True), st.floats(min_value=1, max_value=100), st.floats(min_value=1, max_value=100))
def test_token_dist_quantile_is_monotone(values: list[float], p1: float, p2: float) -> None:
    pcts = [10, 50, 90, 95, 99, 99.9][: len(values)]
    d = TokenDist(mean=sorted(values)[len(values) // 2], percentiles=dict(zip(pcts, sorted(values))))
    lo, hi = sorted((p1, p2))
    assert d.quantile(lo) <= d.quantile(hi) + 1e-9


def test_token_dist_rejects_decreasing_percentiles() -> None:
    with pytest.raises(ValueError, match="must not decrease"):
        TokenDist(mean=10, percentiles={50: 100, 90: 50})


def test_node_pool_count_or_names() -> None:
    pool = NodePool(name="p", zone="z", gpu_type="h100-sxm", gpus_per_node=8, count=3, host_dram_gib=2048)
    assert pool.node_names == ["p-000", "p-001", "p-002"]
    with pytest.raises(ValueError, match="exactly one"):
        NodePool(name="p", zone="z", gpu_type="h100-sxm", gpus_per_node=8, count=3, nodes=["a"], host_dram_gib=1)


@pytest.mark.parametrize(
    ("heads", "kv", "tp", "ok"),
    [(32, 8, 1, True), (32, 8, 8, True), (32, 8, 16, True), (32, 8, 3, False), (64, 8, 8, True), (28, 4, 8, False), (40, 8, 8, True), (40, 8, 16, False)],
)
def test_tp_allowed_follows_vllm(heads: int, kv: int, tp: int, ok: bool) -> None:
    assert tp_allowed(heads, kv, tp) is ok


def test_yaml_duplicate_keys_and_unsafe_tags_are_rejected(tmp_path) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text("a: 1\na: 2\n")
    with pytest.raises(InputError, match="duplicate key 'a'"):
        read_document(dup)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        read_document(unsafe)


def test_atomic_staged_dir_leaves_target_untouched_on_failure(tmp_path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "plan.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.staged_dir(target) as stage:
            (stage / "plan.json").write_text("new")
            raise RuntimeError("emitter failed")
    assert (target / "plan.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind
    with atomic.staged_dir(target) as stage:
        (stage / "plan.json").write_text("new")
        (stage / "sub").mkdir()
        (stage / "sub" / "x.yaml").write_text("y")
    assert (target / "plan.json").read_text() == "new"
    assert (target / "sub" / "x.yaml").read_text() == "y"


def test_atomic_write_text_replaces_whole_file(tmp_path) -> None:
    p = tmp_path / "a" / "f.txt"
    atomic.write_text(p, "one")
    atomic.write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(os.listdir(p.parent)) == ["f.txt"]


def test_read_plan_refuses_newer_schema_and_non_plans(tmp_path) -> None:
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"schema_version": "9.0"}))
    with pytest.raises(InputError, match="schema 9.0"):
        read_plan(p)
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="schema_version"):
        read_plan(p)
    with pytest.raises(InputError, match="does not exist"):
        read_plan(tmp_path / "missing.json")


def test_staged_dir_swaps_folders_whole_and_keeps_other_entries(tmp_path) -> None:
    target = tmp_path / "out"
    with atomic.staged_dir(target) as stage:
        (stage / "manifests").mkdir()
        (stage / "manifests" / "old-replica.yaml").write_text("old")
        (stage / "plan.json").write_text("{}")
    with atomic.staged_dir(target) as stage:  # a re-emit of manifests only
        (stage / "manifests").mkdir()
        (stage / "manifests" / "new-replica.yaml").write_text("new")
    assert sorted(p.name for p in (target / "manifests").iterdir()) == ["new-replica.yaml"]
    assert (target / "plan.json").read_text() == "{}"  # not written this time: left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "manifests").stat().st_mode & 0o055  # readable by others, not 0700


def test_atomic_files_get_ordinary_permissions(tmp_path) -> None:
    p = tmp_path / "f.txt"
    atomic.write_text(p, "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
