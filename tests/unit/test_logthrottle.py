"""The log throttle: a repeated line once, then a count; job text clipped to one short line."""

from __future__ import annotations

import logging

import pytest

from aifactories.domain.logthrottle import LogThrottle, clip


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="test.throttle")
    return logging.getLogger("test.throttle")


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.throttle"]


def test_a_repeated_line_is_written_once_then_with_its_count(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    time = FakeTime()
    throttle = LogThrottle(logger, window_s=60, time=time)
    for second in range(120):  # a site failing every second for two minutes
        time.now = float(second)
        throttle.warning(("submit", "it4lia"), "site %s failed: %s", "it4lia", "timeout")
    assert _lines(caplog) == [
        "site it4lia failed: timeout",
        "site it4lia failed: timeout [59 more times in the last 60 s]",
    ]


def test_keys_are_throttled_apart(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(logger, window_s=60, time=FakeTime())
    for _ in range(3):
        throttle.warning("a", "site a down")
        throttle.warning("b", "site b down")
    assert _lines(caplog) == ["site a down", "site b down"]


def test_resolve_reports_what_is_owed_once_the_window_is_over(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    time = FakeTime()
    throttle = LogThrottle(logger, window_s=60, time=time)
    throttle.warning("k", "down")
    time.now = 10
    throttle.warning("k", "down")
    throttle.resolve("k")  # within the window: a flapping site still gets one line a window
    time.now = 20
    throttle.warning("k", "down")
    assert _lines(caplog) == ["down"]
    time.now = 70
    throttle.resolve("k")
    assert _lines(caplog) == ["down", "down [2 more times in the last 70 s]"]
    throttle.warning("k", "down again")  # a new condition: written at once
    assert _lines(caplog)[-1] == "down again"


def test_keys_are_bounded(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(logger, window_s=60, time=FakeTime(), max_keys=2)
    for key in ("a", "b", "c", "a"):  # 'a' was forgotten to keep two keys
        throttle.warning(key, "line %s", key)
    assert _lines(caplog) == ["line a", "line b", "line c", "line a"]


def test_clip_keeps_a_line_short_and_single() -> None:
    assert clip("short") == "short"
    long = "/tmp/" + "w" * 296
    clipped = clip(long, 100)
    assert clipped.startswith("/tmp/www") and clipped.endswith("...[201 more characters]")
    assert len(clipped) < 130
    assert clip("a\nINFO forged line\r\x1b[2J") == "a\\nINFO forged line\\r\\x1b[2J"
