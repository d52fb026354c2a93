"""Worker processes that do not outlive the command that started them.

A sweep runs its scenarios in a process pool. When the command is killed (SIGTERM from a CI
runner, SIGKILL, a closed terminal) the pool's workers would otherwise finish their solve, a
minute or more, as orphans. `die_with_parent()`, run first in each worker, asks Linux to send the
worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG, man 2 prctl); elsewhere a daemon
thread polls the parent's pid once a second and exits the worker when it changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    parent = os.getppid()
    if not _pdeathsig():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="die-with-parent").start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _pdeathsig() -> bool:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
