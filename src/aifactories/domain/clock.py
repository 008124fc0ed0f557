"""The only module that reads the wall clock. Everything else receives a :class:`Clock`."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Seconds since the Unix epoch, as a float. The twin supplies a virtual one."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to: for tests and for the twin's driver."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock never goes back")
        with self._lock:
            self._now += seconds

    def set(self, when: float) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a clock never goes back")
            self._now = when


def to_datetime(epoch_seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime, for display and storage."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


def stopwatch() -> float:
    """A monotonic reading for measuring durations (cycle times, benchmarks); never a date."""
    return time.perf_counter()
