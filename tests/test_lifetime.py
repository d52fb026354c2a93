"""Worker processes die with the command that started them (maestro_plan/lifetime.py, issue 18):
a solve's forked block workers (solve/decompose.run_blocks, used by column generation and the
neighbourhood search) when the solve is SIGKILLed, and when the solve runs in a Ray worker of
`sweep --executor ray` whose driver is SIGKILLed. Before, such block workers finished their
sub-MIP as orphans (a minute or more, measured with a Ray sweep). The blocks here sleep instead of
solving, so that only the lifetime is tested."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SLEEPER = textwrap.dedent(
    """
    import os, time
    def block(prob, pid_file, seed):  # a block that never ends: records its pid, then sleeps
        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(300)
    """
)

BLOCKS = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    import sleeper
    from maestro_plan.solve.decompose import run_blocks
    def solve_like(pid_file):
        prob = SimpleNamespace(settings=SimpleNamespace(workers=2, seed=0))
        run_blocks(prob, [("a", pid_file), ("b", pid_file)], fn=sleeper.block, min_parallel=2)
    if __name__ == "__main__":
        if sys.argv[2] == "ray":
            import ray
            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
            ray.get(ray.remote(num_cpus=1)(solve_like).remote(sys.argv[1]))
        else:
            solve_like(sys.argv[1])
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _block_workers_die_with(tmp_path: Path, mode: str) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    (tmp_path / "blocks.py").write_text(BLOCKS)
    pid_file = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "blocks.py"), str(pid_file), mode], env=env, cwd=tmp_path)
    try:
        waited = time.monotonic() + 120  # a bound on waiting for Ray to start, not a timing assertion
        pids: list[int] = []
        while len(pids) < 2 and time.monotonic() < waited and parent.poll() is None:
            time.sleep(0.2)
            pids = [int(x) for x in pid_file.read_text().split()] if pid_file.exists() else []
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    waited = time.monotonic() + 30  # the blocks would sleep 300 s as orphans
    while any(_alive(p) for p in pids) and time.monotonic() < waited:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_block_workers_die_with_a_killed_solve(tmp_path: Path) -> None:
    _block_workers_die_with(tmp_path, "local")


@pytest.mark.slow
def test_block_workers_in_a_ray_worker_die_with_a_killed_sweep(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'maestro-plan[ray]')")
    _block_workers_die_with(tmp_path, "ray")
