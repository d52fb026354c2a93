"""The output folder commit (maestro_plan/atomic.py): a process SIGKILLed at each step of the commit
leaves the folder old-complete or new-complete, never a mix; the next commit removes what the
killed one left; two processes committing to one folder take turns; a mount point works (staging
inside it, rolled forward after a kill); a killed sweep's workers die with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from maestro_plan import atomic

REPO = Path(__file__).resolve().parent.parent
OLD = {"plan.json": "old", "manifests/a.yaml": "old", "manifests/b.yaml": "old", "keep.txt": "old"}
NEW = {"plan.json": "new", "manifests/a.yaml": "new", "keep.txt": "old"}  # keep.txt: not written, kept

# The child: commit NEW into argv[1], SIGKILL itself at step argv[2] (its n-th occurrence, argv[3]).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from maestro_plan import atomic
    target, kill_at, nth, mount = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    seen = {}
    def step(name):
        seen[name] = seen.get(name, 0) + 1
        if name == kill_at and seen[name] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    atomic._step = step
    if mount:
        real = os.path.ismount
        os.path.ismount = lambda p: os.path.abspath(p) == os.path.abspath(target) or real(p)
    if kill_at == "no-exchange":
        atomic._exchange = lambda a, b: False
        kill_at = "moved-old"
    with atomic.staged_dir(target) as st:
        (st / "plan.json").write_text("new")
        (st / "manifests").mkdir()
        (st / "manifests" / "a.yaml").write_text("new")
        if kill_at == "block":
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def _make_old(target: Path) -> None:
    for rel, text in OLD.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(text)


def _child(target: Path, kill_at: str, nth: int = 1, mount: bool = False) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", CHILD, str(target), kill_at, str(nth), "1" if mount else "0"], env=env, timeout=60).returncode


def _visible(target: Path) -> dict[str, str]:
    return {k: v for k, v in _tree(target).items() if not k.startswith(".")}


@pytest.mark.parametrize(
    "kill_at, nth",
    [("block", 1), ("staged", 1), ("carried", 1), ("swapped", 1), ("no-exchange", 1), ("never", 1)],
)
def test_kill_at_each_step_leaves_old_or_new_complete(tmp_path: Path, kill_at: str, nth: int) -> None:
    target = tmp_path / "out"
    _make_old(target)
    code = _child(target, kill_at, nth)
    assert code == (0 if kill_at == "never" else -signal.SIGKILL)
    atomic.recover(target)  # what the next command does first
    state = _tree(target)
    assert state in (OLD, NEW), state
    if kill_at in ("block", "staged", "carried", "no-exchange"):
        assert state == OLD
    if kill_at in ("swapped", "never"):
        assert state == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .out.staging.* / .out.old.* left


def test_between_the_two_renames_the_target_is_old_after_recovery(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_old(target)
    assert _child(target, "no-exchange") == -signal.SIGKILL
    assert not target.exists()  # killed between the renames (only where RENAME_EXCHANGE is refused)
    atomic.recover(target)
    assert _tree(target) == OLD


@pytest.mark.parametrize("kill_at, nth", [("carried", 1), ("ready", 1), ("moved-entry", 1), ("moved-entry", 2), ("never", 1)])
def test_mount_point_commit_rolls_forward_after_a_kill(tmp_path: Path, kill_at: str, nth: int) -> None:
    target = tmp_path / "vol"
    _make_old(target)
    _child(target, kill_at, nth, mount=True)
    real = os.path.ismount
    try:
        os.path.ismount = lambda p: os.path.abspath(p) == str(target) or real(p)  # type: ignore[assignment]
        atomic.recover(target)
    finally:
        os.path.ismount = real  # type: ignore[assignment]
    state = _tree(target)
    assert state == (OLD if kill_at == "carried" else NEW), state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol"]


def test_leftovers_of_killed_runs_are_removed_but_a_live_staging_folder_is_not(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _make_old(target)
    (tmp_path / ".out.staging.dead1").mkdir()
    (tmp_path / ".out.old.dead2").mkdir()
    with atomic.staged_dir(target) as live:  # live holds its lock while the block runs
        atomic.recover(target)
        assert live.is_dir()
        (live / "plan.json").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert _tree(target)["plan.json"] == "new"


def test_two_processes_committing_to_one_folder_take_turns(tmp_path: Path) -> None:
    target = tmp_path / "out"
    script = textwrap.dedent(
        """
        import sys
        from maestro_plan import atomic
        for i in range(25):
            with atomic.staged_dir(sys.argv[1]) as st:
                (st / "manifests").mkdir()
                for j in range(5):
                    (st / "manifests" / f"{j}.yaml").write_text(sys.argv[2])
                (st / "plan.json").write_text(sys.argv[2])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(target), tag], env=env, stderr=subprocess.PIPE, text=True) for tag in "ab"]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    state = _tree(target)
    assert len(set(state.values())) == 1 and len(state) == 6  # one run's complete output, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(atomic.InputError, match="existing file"), atomic.staged_dir(f):
        pass
    assert f.read_text() == "x"


POOL = textwrap.dedent(
    """
    import multiprocessing as mp, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from maestro_plan.lifetime import die_with_parent
    def work(_):
        return os.getpid(), time.sleep(300)
    def pid(_):
        return os.getpid()
    if __name__ == "__main__":
        with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=die_with_parent) as pool:
            pids = set(pool.map(pid, range(8)))
            print(" ".join(map(str, pids)), flush=True)
            pool.map(work, range(2))
            time.sleep(300)
    """
)


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(x) for x in parent.stdout.readline().split()]
    assert pids and all(_alive(p) for p in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
