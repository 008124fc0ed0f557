"""Outages and capacity changes in a twin run: checking a setup's events against its sites,
putting them on the engine's heap, and knowing which sites are down.

What an event does to jobs (requeue, drain) is the simulation's business; this module only
decides when a site goes down or comes back. Outages of one site may overlap: the site is
down from the first start to the last end of the overlapping ones (a count, not a flag, so
that the order of the events in the setup does not matter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Site
from aifactories.twin.engine import EventEngine, Priority
from aifactories.twin.events import CapacityChange, SiteOutage, TwinEvent


def check_events(events: Sequence[TwinEvent], sites: Iterable[Site]) -> None:
    """Raise :class:`InvalidInput` naming the first event whose site or partition the twin
    does not have (only operational sites are simulated), with the ones it does have."""
    by_id: dict[str, Site] = {site.id: site for site in sites}
    for index, event in enumerate(events):
        site = by_id.get(event.site_id)
        if site is None:
            known = ", ".join(sorted(by_id)) or "none"
            raise InvalidInput(
                f"events[{index}]",
                f"{event!r} names site {event.site_id!r}, which is not an operational site "
                f"of the setup; known sites: {known}",
            )
        if isinstance(event, CapacityChange):
            names = [p.name for p in site.partitions]
            if event.partition not in names:
                raise InvalidInput(
                    f"events[{index}]",
                    f"{event!r} names partition {event.partition!r} of site {site.id!r}; "
                    f"its partitions: {', '.join(names) or 'none'}",
                )


@dataclass
class Lost:
    """What a job lost to outages: its restarts and the GPU time, energy and carbon of the
    attempts that were cut short (charged and burnt, but not part of its result)."""

    restarts: int = 0
    gpu_seconds: float = 0.0
    energy_kwh: float = 0.0
    carbon_kg: float = 0.0


class Disruptions:
    """A setup's events on the heap, and the down count of each site."""

    def __init__(self, events: Sequence[TwinEvent], sites: Iterable[Site]) -> None:
        check_events(events, sites)
        self.events = tuple(events)
        self._down: dict[str, int] = {}

    def is_down(self, site_id: str) -> bool:
        return self._down.get(site_id, 0) > 0

    def schedule(
        self,
        engine: EventEngine,
        *,
        on_down: Callable[[str], None],
        on_up: Callable[[str], None],
        on_resize: Callable[[str, str, int], None],
        on_change: Callable[[], None],
    ) -> None:
        """Put every event on ``engine`` at :attr:`Priority.OUTAGE`, in the setup's order for
        ties. ``on_down``/``on_up`` run when a site goes down or comes back (not for an
        outage nested in another), ``on_resize`` for each capacity change, and
        ``on_change`` after every event (the simulation asks for a cycle there)."""

        def start(site_id: str) -> None:
            self._down[site_id] = self._down.get(site_id, 0) + 1
            if self._down[site_id] == 1:
                on_down(site_id)
            on_change()

        def end(site_id: str) -> None:
            self._down[site_id] -= 1
            if self._down[site_id] == 0:
                on_up(site_id)
            on_change()

        def resize(event: CapacityChange) -> None:
            on_resize(event.site_id, event.partition, event.nodes)
            on_change()

        for event in self.events:
            if isinstance(event, SiteOutage):
                engine.schedule(
                    event.start_s, Priority.OUTAGE, partial(start, event.site_id), "down"
                )
                engine.schedule(event.end_s, Priority.OUTAGE, partial(end, event.site_id), "up")
            else:
                engine.schedule(event.at_s, Priority.OUTAGE, partial(resize, event), "capacity")
