"""Atomic output: a file or a whole folder appears complete, or not at all.

Files: `write_bytes` writes a temp file in the same folder, fsyncs it and renames it over the
target (rename(2) replaces a file atomically on POSIX).

Folders (`staged_dir`): what "atomic" means for a folder that already exists. POSIX rename(2) can
only replace an EMPTY folder, so "write a new folder, rename it over the old" is not available,
and renaming entries one at a time (the earlier design) shows a mix of old and new to anyone who
looks, or who kills the command, in between. The choice here, in order of preference:

1. The new folder is built complete in a staging folder NEXT to the target (same file system, so
   no EXDEV), including the entries of the old folder that this run does not write (an `emit`
   of manifests into a solve's folder keeps its plan.json). It is then swapped with the target in
   ONE system call, Linux renameat2(RENAME_EXCHANGE), which exchanges two non-empty folders
   atomically (man 2 rename: ext4 since Linux 3.15, btrfs/tmpfs/cifs since 3.17, xfs since 4.0;
   checked here on ext4). At every instant the target is the old folder or the new one, never a
   mix, and never absent.
2. Where RENAME_EXCHANGE is refused (another OS, an old kernel, some network file systems), two
   renames: target -> .X.old.*, staging -> target. A kill between them leaves no target but a
   complete .X.old.*, which the next run restores before anything else (old-complete).
3. A target that is a mount point (a CI volume) cannot be renamed at all. Then the staging
   folder sits INSIDE the target (same file system) and, once complete, is renamed to
   .X.ready.* (one atomic rename marks "new content complete"); its entries are then moved in
   one at a time. A kill during the moves leaves the .X.ready.* journal, and the next run on that
   folder rolls it forward, so the folder ends new-complete; a reader looking during those
   milliseconds can see a mix. To get a single swap on a volume, name a folder inside it.

The commit holds an exclusive fcntl lock on the folder that holds the staging folders (the
target's parent, or the target for a mount point), so two commands writing one --out take turns
instead of failing with "Directory not empty". Each staging folder holds its own lock while its
run is alive; leftovers of killed runs (.X.staging.* whose lock is free, .X.old.*) are removed, and
.X.ready.* rolled forward, by the next commit to that target.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from maestro_plan.errors import InputError


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (LF line endings whatever the platform)."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (temp file in the same folder, fsync, rename)."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a folder; a file name was expected.", file=p, field="--out", hint="name a file, e.g. out/result.json.")
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


def _step(name: str) -> None:
    """A named point of the commit; tests replace this to kill the process exactly there."""


@contextlib.contextmanager
def staged_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; when the block succeeds, its entries plus the target's other
    entries become the target in one swap (see the module docstring). A failure inside the block
    leaves the target exactly as it was. Top-level entries of the staging folder replace the
    target's entries of the same name wholesale (files of an earlier run that this run no longer
    writes under manifests/ do not linger)."""
    t = _target(target)
    mount = t.is_dir() and os.path.ismount(t)
    home = t if mount else t.parent
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home):  # so that no other run's cleanup sees it before it is held
        stage = Path(tempfile.mkdtemp(prefix=f".{t.name}.staging.", dir=home))
        alive = _hold(stage)  # tells other runs' cleanup that this staging folder is in use
    try:
        yield stage
        _step("staged")
        with _locked(home):
            _recover(t, home)
            _carry_over(t, stage)
            _make_public(stage)
            _step("carried")
            if mount:
                _commit_into_mount(t, stage)
            else:
                _swap(t, stage)
    finally:
        os.close(alive)
        shutil.rmtree(stage, ignore_errors=True)


def recover(target: str | Path) -> None:
    """Finish or undo what a killed commit to `target` left, and remove its leftovers."""
    t = _target(target)
    home = t if (t.is_dir() and os.path.ismount(t)) else t.parent
    if home.is_dir():
        with _locked(home):
            _recover(t, home)


def _target(target: str | Path) -> Path:
    t = Path(target).absolute()
    if t.is_symlink() and t.resolve().is_dir():
        t = t.resolve()  # write into the folder the link names; the link stays
    if t.exists() and not t.is_dir():
        raise InputError("--out names an existing file; a folder was expected.", file=t, field="--out", hint="name a folder (it is created), or remove the file.")
    return t


# --------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------


def _carry_over(t: Path, stage: Path) -> None:
    """Copy (hard-link where possible) the target's entries that this run did not write."""
    if not t.is_dir():
        return
    written = {p.name for p in stage.iterdir()}
    for src in sorted(t.iterdir()):
        if src.name in written or src.name.startswith(f".{t.name}."):
            continue
        dst = stage / src.name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(src, dst)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)  # outputs are never modified in place, so sharing the inode is safe
    except OSError:
        shutil.copy2(src, dst)


def _make_public(stage: Path) -> None:
    mode = 0o777 & ~_umask()  # mkdtemp makes 0700 folders
    for p in [stage, *stage.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, mode)


def _swap(t: Path, stage: Path) -> None:
    """Make `stage` the target: one exchange, else two renames (see the module docstring)."""
    if not t.exists():
        os.rename(stage, t)
        _step("swapped")
        return
    if _exchange(stage, t):
        _step("swapped")  # `stage` now holds the old folder; the finally of staged_dir removes it
        return
    old = Path(tempfile.mkdtemp(prefix=f".{t.name}.old.", dir=t.parent))
    os.rename(t, old / "x")
    _step("moved-old")
    os.rename(stage, t)
    _step("swapped")
    shutil.rmtree(old, ignore_errors=True)


def _commit_into_mount(t: Path, stage: Path) -> None:
    ready = stage.with_name(stage.name.replace(".staging.", ".ready.", 1))
    os.rename(stage, ready)  # the journal: the new content is complete
    _step("ready")
    _roll_forward(t, ready)


def _roll_forward(t: Path, ready: Path) -> None:
    """Move a complete .X.ready.* folder's entries into the target, replacing same-named ones.
    Plain renames, so a resumed roll-forward only moves what is still in the journal folder; the
    target's other entries were carried into it under the lock, so none are stale."""
    trash = Path(tempfile.mkdtemp(prefix=f".{t.name}.old.", dir=t))
    for src in sorted(ready.iterdir()):
        dst = t / src.name
        if dst.exists() or dst.is_symlink():
            os.rename(dst, trash / src.name)
        os.rename(src, dst)
        _step("moved-entry")
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(ready, ignore_errors=True)


def _recover(t: Path, home: Path) -> None:
    """Under the lock: restore an old folder a killed two-rename swap left, roll a mount point's
    journal forward, and remove leftovers of killed runs."""
    prefix = f".{t.name}."
    leftovers = sorted(p for p in home.iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink())
    for p in leftovers:
        kind = p.name[len(prefix):].split(".", 1)[0]
        if kind == "old" and not t.exists() and (p / "x").is_dir():
            os.rename(p / "x", t)  # killed between the two renames: the old folder is complete
        if kind == "ready" and home == t:
            _roll_forward(t, p)
        elif kind == "staging" and not _is_free(p):
            continue  # a live run's staging folder
        shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# System calls
# --------------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE). False where unsupported."""
    fn = getattr(_libc(), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _hold(folder: Path) -> int:
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _is_free(folder: Path) -> bool:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
