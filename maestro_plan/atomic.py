"""Atomic output: a file or a whole folder appears complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (LF line endings whatever the platform)."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (temp file in the same folder, fsync, rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs are ordinary files
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; on success its entries replace target's.

    Everything is produced in the staging folder first, so a failure while producing outputs leaves
    `target` exactly as it was. On success each top-level entry of the staging folder replaces the
    entry of the same name in `target` WHOLESALE (a folder such as manifests/ is swapped by two
    renames, so files of an earlier run that this run no longer writes do not linger); entries of
    `target` that this run does not write are left alone.
    """
    t = Path(target)
    t.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{t.name}.staging.", dir=t.parent))
    trash = Path(tempfile.mkdtemp(prefix=f".{t.name}.old.", dir=t.parent))
    try:
        yield stage
        t.mkdir(parents=True, exist_ok=True)
        for src in sorted(stage.iterdir()):
            dst = t / src.name
            if src.is_dir():
                if dst.is_dir() and not dst.is_symlink():
                    os.rename(dst, trash / src.name)
                elif dst.exists() or dst.is_symlink():
                    os.replace(dst, trash / src.name)
                os.rename(src, dst)
            else:
                if dst.is_dir() and not dst.is_symlink():
                    os.rename(dst, trash / src.name)
                os.replace(src, dst)
        for p in [t, *t.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)
