"""Things that happen to the federation during a twin run, besides jobs: outages and capacity
changes. A scenario lists them; the simulation turns each into events on its heap (at
:attr:`~aifactories.twin.engine.Priority.OUTAGE`, so a cycle at the same instant sees them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aifactories.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class SiteOutage:
    """``site_id`` is down from ``start_s`` to ``end_s`` (seconds from the trace start).

    Jobs running there when it fails are lost and requeued (they pay their runtime so far as
    used GPU-hours and start again from the beginning, or from their last checkpoint when a
    preemptive policy keeps them); nothing is placed there until it is back.
    """

    site_id: str
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise InvalidInput("outage.start_s", f"{self.start_s!r}", limit="a time >= 0")
        if not self.end_s > self.start_s:
            raise InvalidInput(
                "outage.end_s", f"{self.end_s!r}", limit=f"a time after start_s={self.start_s}"
            )


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """From ``at_s`` on, partition ``partition`` of ``site_id`` has ``nodes`` nodes.

    Growth is immediate. A shrink takes idle nodes first; nodes still busy leave as their
    jobs end (nothing running is killed), so capacity reaches ``nodes`` when they drain.
    """

    site_id: str
    partition: str
    at_s: float
    nodes: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.at_s) and self.at_s >= 0):
            raise InvalidInput("capacity_change.at_s", f"{self.at_s!r}", limit="a time >= 0")
        if self.nodes < 0:
            raise InvalidInput("capacity_change.nodes", f"{self.nodes}", limit="0 or more")


TwinEvent = SiteOutage | CapacityChange
