"""The broker's log of what it does, and its counters: one call per event, in one place.

Apply, reconcile, failover and the loop call these at the moment something happens to a job
or a site, so that the log lines read alike and carry the same structured fields (``extra``:
the JSON log format shows them as fields) and every logged event is also counted
(``broker/stats.py``). Jobs: INFO for placements and ends, WARNING for failures. Sites: WARNING
when one becomes unavailable, INFO when it is back.

An event is reported inside the transaction that records it: if that transaction rolls back
(a lost lease, a database error), the next cycle reports it again. Rare, and a log line or a
count too many is the safe side.
"""

from __future__ import annotations

import logging

from aifactories.broker.stats import STATS
from aifactories.db.models import JobRow

log = logging.getLogger(__name__)


def _hours(gpu_seconds: int | None) -> float:
    return round((gpu_seconds or 0) / 3600, 4)


def _partition(row: JobRow) -> str:
    return (row.partition_id or "").partition("/")[2]  # ids are "site/partition"


def placed(row: JobRow, project: str) -> None:
    """``row`` was just placed (its budget reserved); it goes to its site next."""
    STATS.placed(row.site_id or "", _partition(row))
    log.info(
        "job %d of %s placed at %s, %.2f GPU-hours reserved",
        row.id,
        project,
        row.partition_id,
        _hours(row.reserved_gpu_seconds),
        extra={
            "event": "placed",
            "job_id": row.id,
            "project": project,
            "project_id": row.project_id,
            "site": row.site_id,
            "partition": _partition(row),
            "gpu_hours": _hours(row.reserved_gpu_seconds),
        },
    )


def finished(row: JobRow, state: str, charged_gpu_seconds: int, reason: str | None) -> None:
    """``row`` reached the final ``state`` at its site and was charged."""
    site = row.site_id or ""
    STATS.finished(site, state)
    failed = state in ("failed", "timeout")
    log.log(
        logging.WARNING if failed else logging.INFO,
        "job %d of project %d %s at %s, %.2f GPU-hours charged%s",
        row.id,
        row.project_id,
        state,
        row.partition_id,
        _hours(charged_gpu_seconds),
        f": {reason}" if reason and failed else "",
        extra={
            "event": state,
            "job_id": row.id,
            "project_id": row.project_id,
            "site": site,
            "partition": _partition(row),
            "gpu_hours": _hours(charged_gpu_seconds),
            "reason": reason,
        },
    )


def submitted(site: str, accepted: int, *, site_down: bool = False) -> None:
    """``site`` accepted ``accepted`` jobs of a batch; ``site_down``: it then stopped
    answering (apply logs why)."""
    if accepted:
        STATS.submitted(site, accepted)
    if site_down:
        STATS.submit_error(site)


def moved(row: JobRow, site: str) -> None:
    """``row`` was given back to the queue because ``site`` is unreachable."""
    STATS.moved(site)
    log.info(
        "job %d of project %d moved away from %s (unreachable)",
        row.id,
        row.project_id,
        site,
        extra={"event": "moved", "job_id": row.id, "project_id": row.project_id, "site": site},
    )


def site_unavailable(site: str) -> None:
    STATS.outage(site)
    log.warning(
        "site %s unavailable: the broker places nothing there until it answers",
        site,
        extra={"event": "site_unavailable", "site": site},
    )


def site_back(site: str) -> None:
    log.info("site %s back", site, extra={"event": "site_back", "site": site})


def cycle(duration_s: float) -> None:
    STATS.cycle(duration_s)


def cycle_failed() -> None:
    STATS.cycle_failed()
