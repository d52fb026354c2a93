"""Golden files for every emitter on the small fixed plan, and determinism.

Regenerate after an intended change:  UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_emit_golden.py
then review the diff of tests/data/emit/golden/ like code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from emit_testlib import GOLDEN, fixture_inputs, fixture_plan

from maestro_plan.emit import EMITTERS, emit_all

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("emit")
    emit_all(fixture_plan(), fixture_inputs(), out)
    return out


def _text_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".png"}


def test_golden_files(emitted: Path) -> None:
    got = _text_files(emitted)
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in got.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text, encoding="utf-8", newline="\n")
        pytest.skip("golden files regenerated")
    want = _text_files(GOLDEN)
    assert sorted(got) == sorted(want), "emitted file set differs from tests/data/emit/golden (UPDATE_GOLDEN=1 to regenerate)"
    for rel in want:
        assert got[rel] == want[rel], f"{rel} differs from its golden file (UPDATE_GOLDEN=1 to regenerate after review)"


def test_every_format_writes_its_files(tmp_path: Path) -> None:
    expect = {"k8s": "manifests/", "routing": "routing.json", "litellm": "routing/litellm.yaml", "gateway": "routing/gateway-api/", "report": "report.html"}
    for name, emitter in EMITTERS.items():
        out = tmp_path / name
        files = [str(p.relative_to(out)) for p in emitter(fixture_plan(), fixture_inputs(), out)]
        assert files and any(f.startswith(expect[name]) for f in files), (name, files)
        assert all((out / f).is_file() and (out / f).stat().st_size > 0 for f in files)


def test_emit_twice_is_byte_identical(emitted: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    emit_all(fixture_plan(), fixture_inputs(), again)
    a = {str(p.relative_to(emitted)): p.read_bytes() for p in sorted(emitted.rglob("*")) if p.is_file()}
    b = {str(p.relative_to(again)): p.read_bytes() for p in sorted(again.rglob("*")) if p.is_file()}
    assert a.keys() == b.keys()
    for rel in a:
        assert a[rel] == b[rel], f"{rel} differs between two emits of the same plan"
    pngs = [rel for rel in a if rel.endswith(".png")]
    assert len(pngs) == 3 and all(a[rel].startswith(PNG_SIGNATURE) for rel in pngs)
    assert all(b"tIME" not in a[rel] and b"Software" not in a[rel] for rel in pngs), "PNG carries a timestamp or version tag"
