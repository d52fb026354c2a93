"""The simulator's event kinds (one enum for the event loop and the engines) and the interface an
engine sees of the simulator that owns the queue (so replica.py needs nothing from engine.py).

Values are the heap's kind field; events are ordered by (time, sequence number), never by kind.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Event(IntEnum):
    ITER = 1  # an engine's (macro-)step ends
    LOADED = 3  # a standby engine finished loading its weights
    IDLE = 4  # a standby engine's idle timer fires
    ARRIVE = 10  # a call reaches its engine (after the network)
    RESP = 11  # a call's response reaches the query (after the network)


class Host(Protocol):
    """What an engine uses of the simulator: the event queue, the clock, the measurement window."""

    now: float
    w0: float
    w1: float
    standby_idle_ms: float

    def push(self, t: float, kind: int, obj: object, epoch: int) -> None: ...

    def call_done(self, c: object, t: float) -> None: ...
