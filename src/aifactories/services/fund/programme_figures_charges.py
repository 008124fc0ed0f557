"""The use the programme's figures count: the ledger's charges of a period as they stood at
``as_of``, summed in the database.

A charge covers the usage that ends at its date (``at``; a month piece at the first instant
of the next month), so a period [start, end) takes the charges dated in (start, end]; it
counts at ``as_of`` if it was written (``recorded_at``) by then. The figures need no single
charge, only their sum per project, allocation, job partition, job site, the billing weight
the job was charged at, and (usage imported from a site's accounting, which names no job)
the site it ran at: one grouped query, whatever the number of charges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, null, select
from sqlalchemy.orm import Session

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow


@dataclass(frozen=True, slots=True)
class Charge:
    """Charges of one project summed over the period, alike in all that values them."""

    project_id: int
    site_id: str | None  # where it ran (the job's site, the import's, else the allocation's)
    partition_id: str | None  # None: usage imported from a site's accounting
    billing_weight: float | None  # the weight the job was charged at (None: no job)
    alloc_site_id: str | None  # the allocation charged: its site (None: a pool)
    pool_sites: tuple[str, ...] | None  # and a pool's sites (None: any)
    gpu_seconds: int
    imported: bool = False  # usage imported from a site's accounting


def _sites(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(s) for s in value)


def _imported_at(site_ids: Iterable[str]) -> ColumnElement[Any]:
    """The site an entry of imported usage ran at, read from its note ("direct <site> job
    ..."), for the sites of the catalogue; NULL for every other entry."""
    whens = [
        (LedgerEntryRow.note.startswith(f"direct {site} job ", autoescape=True), literal(site))
        for site in site_ids
    ]
    if not whens:
        return null()
    imported = LedgerEntryRow.job_id.is_(None) & LedgerEntryRow.note.startswith("direct ")
    # only an imported entry walks the sites
    return case((imported, case(*whens, else_=null())), else_=null())


def read_charges(
    session: Session,
    start: float,
    end: float,
    as_of: float,
    site_ids: Iterable[str],
) -> list[Charge]:
    """The charges dated in (start, end] and recorded by ``as_of``, summed per project,
    allocation, job site, job partition, job billing weight and import site."""
    at: ColumnElement[float] = LedgerEntryRow.at.expression
    if session.get_bind().dialect.name == "sqlite":
        # a period is most of the ledger as often as not: SQLite reads the table in order
        # four times faster than through the index on ``at`` (PostgreSQL chooses by itself)
        at = LedgerEntryRow.at + 0.0
    entries = (
        select(
            LedgerEntryRow.allocation_id.label("allocation_id"),
            LedgerEntryRow.job_id.label("job_id"),
            _imported_at(site_ids).label("import_site"),
            LedgerEntryRow.gpu_seconds.label("gpu_seconds"),
        )
        .where(
            LedgerEntryRow.kind == "charge",
            at > start,
            at <= end,
            # written by then: a job's settlement and an import write usage days after it ran
            LedgerEntryRow.recorded_at <= as_of,
        )
        .subquery()
    )
    # per job first (the few columns of the ledger alone), then per what values a charge
    by_job = (
        select(
            entries.c.allocation_id,
            entries.c.job_id,
            entries.c.import_site,
            func.sum(entries.c.gpu_seconds).label("gpu_seconds"),
        )
        .group_by(entries.c.allocation_id, entries.c.job_id, entries.c.import_site)
        .subquery()
    )
    keys = (
        by_job.c.allocation_id,
        JobRow.site_id,
        JobRow.partition_id,
        JobRow.billing_weight,
        by_job.c.import_site,
    )
    sums = session.execute(
        select(*keys, func.sum(by_job.c.gpu_seconds))
        .outerjoin(JobRow, JobRow.id == by_job.c.job_id)
        .group_by(*keys)
    ).all()
    allocations = {
        i: (project, site, _sites(pool))
        for i, project, site, pool in session.execute(
            select(
                AllocationRow.id,
                AllocationRow.project_id,
                AllocationRow.site_id,
                AllocationRow.pool_sites,
            )
        )
    }
    charges = []
    for allocation, job_site, partition, weight, import_site, seconds in sums:
        project, alloc_site, pool = allocations[allocation]
        charges.append(
            Charge(
                project,
                job_site or import_site or alloc_site,
                partition,
                None if weight is None else float(weight),
                alloc_site,
                pool,
                int(seconds or 0),
                import_site is not None and partition is None,
            )
        )
    charges.sort(key=lambda c: (c.project_id, c.site_id or "", c.partition_id or ""))
    return charges
