"""Log lines that cannot flood the log: a repeated line is written once and then counted, and
text that comes from users (a job's working directory, a site's echo of it) is clipped.

A site that fails at every broker cycle would otherwise add a line every second, each
carrying whatever the failing job holds. The operator needs the first occurrence and how often
it recurred, not every copy::

    throttle = LogThrottle(log, window_s=300)
    throttle.warning(("submit", site_id), "site %s failed on submit: %s", site_id, clip(msg))

The first call logs the line. Calls with the same key within ``window_s`` are only counted.
The first call after the window logs the line again, followed by "[N more times in the last
M s]". :meth:`LogThrottle.resolve` says the condition is over (the site answers again): once
the window has passed it writes the count still owed and forgets the key, so the next failure
is logged at once. Before that it does nothing: a flapping site still gets one line a window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aifactories.domain.clock import stopwatch

# Long enough for a path or a site's one-line reason, short enough that a log line stays a line.
MAX_LOGGED_TEXT = 200


def clip(text: object, limit: int = MAX_LOGGED_TEXT) -> str:
    """``text`` on one line and at most about ``limit`` characters: control characters are
    escaped (a job's text must not forge log lines) and the rest is counted, not written."""
    full = str(text)
    head = "".join(c if c.isprintable() else repr(c)[1:-1] for c in full[:limit])
    if len(full) <= limit:
        return head
    return f"{head}...[{len(full) - limit} more characters]"


@dataclass
class _Seen:
    since: float  # when the key's line was last written
    repeats: int  # calls counted, not written, since then
    level: int
    msg: str
    args: tuple[object, ...]


class LogThrottle:
    """Writes each key's line at most once per ``window_s``, then the count of the others.

    Thread-safe (the broker submits to sites from worker threads). Keeps at most ``max_keys``
    keys, forgetting the oldest, so keys made of job or site ids cannot grow without bound.
    ``time`` is a monotonic reading in seconds (tests pass their own)."""

    def __init__(
        self,
        logger: logging.Logger,
        window_s: float = 300.0,
        *,
        time: Callable[[], float] = stopwatch,
        max_keys: int = 1024,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self._logger = logger
        self._window_s = window_s
        self._time = time
        self._max_keys = max_keys
        self._seen: dict[Hashable, _Seen] = {}
        self._lock = threading.Lock()

    def log(
        self, level: int, key: Hashable, msg: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log ``msg % args`` unless ``key`` was logged within the window; True if written."""
        now = self._time()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self._window_s:
                seen.repeats += 1
                seen.level, seen.msg, seen.args = level, msg, args
                return False
            self._seen.pop(key, None)  # re-inserted last: the dict's order is by last write
            self._seen[key] = _Seen(now, 0, level, msg, args)
            while len(self._seen) > self._max_keys:
                del self._seen[next(iter(self._seen))]
        if seen is not None and seen.repeats:
            msg, args = _with_count(msg, args, seen.repeats, now - seen.since)
        self._logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def resolve(self, key: Hashable) -> None:
        """The condition behind ``key`` is over. Once its window has passed, write the count of
        its unwritten occurrences (if any) and forget the key; before that, do nothing."""
        now = self._time()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.since < self._window_s:
                return
            del self._seen[key]
        if seen.repeats:
            msg, args = _with_count(seen.msg, seen.args, seen.repeats, now - seen.since)
            self._logger.log(seen.level, msg, *args)


def _with_count(
    msg: str, args: tuple[object, ...], repeats: int, over_s: float
) -> tuple[str, tuple[object, ...]]:
    times = "time" if repeats == 1 else "times"
    return f"{msg} [%d more {times} in the last %.0f s]", (*args, repeats, over_s)
