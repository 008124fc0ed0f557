"""What the platform reports about itself at a scrape or a probe: queue lengths, free GPUs,
ledger totals, and whether the database is reachable and at the expected schema.

Read at the moment they are asked for, from the database every instance shares, so that every
API instance reports the same federation whichever of them runs the broker. A few grouped
queries over indexed columns and small tables: cheap at a scrape every few seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from aifactories.db.migrate import head_revision
from aifactories.db.models import AllocationRow, JobRow, PartitionStatusRow
from aifactories.domain.jobs import JobState
from aifactories.services.core.context import ServiceContext

log = logging.getLogger(__name__)

POOL = "pool"  # the site label of allocations usable at any site

_COUNTED = (
    JobState.PENDING.value,
    JobState.PLACED.value,
    JobState.SUBMITTED.value,
    JobState.RUNNING.value,
)


@dataclass(frozen=True)
class PartitionGauges:
    site: str
    partition: str  # the partition's name at its site
    gpus: int  # in the catalogue
    free_gpus: int  # as the broker last saw them (0 if never seen)
    available: bool
    queued: int  # placed or submitted there, not yet started
    running: int


@dataclass(frozen=True)
class LedgerTotal:
    site: str  # or POOL
    status: str  # the allocations' status: open, closed, ...
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    charged_gpu_seconds: int


@dataclass(frozen=True)
class PlatformGauges:
    pending: int  # submitted, waiting for the broker to place them
    partitions: tuple[PartitionGauges, ...]
    ledger: tuple[LedgerTotal, ...]


def read_gauges(ctx: ServiceContext) -> PlatformGauges:
    names = {p.id: (p.site_id, p.name) for p in ctx.catalogue.operational_partitions}
    with ctx.reads() as session:
        counts = session.execute(
            select(JobRow.state, JobRow.partition_id, func.count())
            .where(JobRow.state.in_(_COUNTED))
            .group_by(JobRow.state, JobRow.partition_id)
        ).all()
        status = {
            row.partition_id: row for row in session.execute(select(PartitionStatusRow)).scalars()
        }
        ledger = session.execute(
            select(
                AllocationRow.site_id,
                AllocationRow.status,
                func.sum(AllocationRow.granted_gpu_seconds),
                func.sum(AllocationRow.reserved_gpu_seconds),
                func.sum(AllocationRow.used_gpu_seconds),
            ).group_by(AllocationRow.site_id, AllocationRow.status)
        ).all()
    pending = 0
    queued: dict[str, int] = {}
    running: dict[str, int] = {}
    for state, partition_id, count in counts:
        if state == JobState.PENDING.value:
            pending += count
        elif partition_id is not None:
            into = running if state == JobState.RUNNING.value else queued
            into[partition_id] = into.get(partition_id, 0) + count
    partitions = []
    for partition in ctx.catalogue.operational_partitions:
        seen = status.get(partition.id)
        site, name = names[partition.id]
        partitions.append(
            PartitionGauges(
                site=site,
                partition=name,
                gpus=partition.total_gpus,
                free_gpus=seen.free_gpus if seen is not None else 0,
                available=bool(seen.available) if seen is not None else False,
                queued=queued.get(partition.id, 0),
                running=running.get(partition.id, 0),
            )
        )
    return PlatformGauges(
        pending=pending,
        partitions=tuple(partitions),
        ledger=tuple(
            LedgerTotal(
                site=site or POOL,
                status=state,
                granted_gpu_seconds=int(granted or 0),
                reserved_gpu_seconds=int(reserved or 0),
                charged_gpu_seconds=int(charged or 0),
            )
            for site, state, granted, reserved, charged in ledger
        ),
    )


@cache
def _head() -> str | None:
    return head_revision()  # reads the migration scripts: once per process is enough


def schema_problem(ctx: ServiceContext) -> str | None:
    """Why the database cannot serve this code (unreachable, or at another schema revision),
    or None when it can. Uses the platform's own pool: a probe must not open new engines."""
    try:
        with ctx.read_engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        # The details go to the log, not to the unauthenticated probe's answer.
        log.warning("readiness: database unreachable: %s", exc)
        return f"database unreachable ({type(exc).__name__}; the platform's log has details)"
    head = _head()
    if current != head:
        return (
            f"database at schema revision {current or 'none'}, this code needs {head}: "
            "run 'aif db upgrade'"
        )
    return None
