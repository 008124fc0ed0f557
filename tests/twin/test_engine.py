"""The event engine: time, then priority, then insertion order; no event in the past."""

from __future__ import annotations

import pytest

from aifactories.twin.engine import EventEngine, Priority


def test_events_run_by_time_priority_then_insertion() -> None:
    engine = EventEngine()
    seen: list[str] = []
    engine.schedule(5.0, Priority.CYCLE, lambda: seen.append("cycle@5"))
    engine.schedule(5.0, Priority.JOB_END, lambda: seen.append("end@5"))
    engine.schedule(1.0, Priority.SAMPLE, lambda: seen.append("sample@1"))
    engine.schedule(5.0, Priority.JOB_END, lambda: seen.append("end2@5"))
    engine.schedule(5.0, Priority.OUTAGE, lambda: seen.append("outage@5"))
    assert engine.peek_time() == 1.0 and len(engine) == 5
    engine.run()
    assert seen == ["sample@1", "outage@5", "end@5", "end2@5", "cycle@5"]
    assert engine.clock.now() == 5.0 and engine.processed == 5


def test_until_stop_and_the_past() -> None:
    engine = EventEngine()
    seen: list[float] = []
    for t in (1.0, 2.0, 3.0, 4.0):
        engine.schedule(t, Priority.JOB_ARRIVAL, lambda t=t: seen.append(t))
    engine.run(until=2.5)
    assert seen == [1.0, 2.0] and engine.clock.now() == 2.5
    with pytest.raises(ValueError, match="before now"):
        engine.schedule(2.0, Priority.CYCLE, lambda: None, "late")
    engine.run(stop=lambda: len(seen) == 3)
    assert seen == [1.0, 2.0, 3.0] and len(engine) == 1
