"""The books in euros: what each charged job and each allocation is worth.

Reads the ledger (charge entries, the reservations jobs hold) and values it with the rules of
:mod:`aifactories.fund.valuation_rules` at the cost model's full cost per GPU-hour of each
partition (docs/fund.md, "The books in euros"). Read-only: the caller's session, or a read
transaction of its own.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.catalogue.loader import Catalogue
from aifactories.db.accounts import allocations_of, project_by_ref
from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.domain.errors import ConfigurationError, NotFound
from aifactories.fund.valuation_rules import (
    AllocationEuros,
    Held,
    PartitionRate,
    allocation_rate,
    charge_eur,
    partition_rates,
    value_allocation,
)
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.fund.costs import cost_model_of
from aifactories.services.programme.allocation_common import AllocationView, alert_thresholds

log = logging.getLogger(__name__)

# The rates of a catalogue, computed once: the cost model is data read at start, like the
# catalogue (a changed cost model file is read by the next start). Keyed by the catalogue
# object; the few catalogues of a process (one; tests make more) are kept, never many.
_RATES: dict[int, tuple[Catalogue, Mapping[str, PartitionRate]]] = {}
_RATES_LOCK = threading.Lock()
_RATES_KEPT = 8


def rates_of(catalogue: Catalogue) -> Mapping[str, PartitionRate]:
    """Every partition's full cost per GPU-hour with its capacity and billing weight.

    A cost model that cannot be read leaves the books without euros (logged with its cause),
    rather than refusing submissions, jobs and balances to users who cannot fix it: the
    GPU-hours are the books, the euros a valuation of them."""
    hit = _RATES.get(id(catalogue))
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    try:
        rates: Mapping[str, PartitionRate] = partition_rates(catalogue, cost_model_of(catalogue))
    except ConfigurationError as exc:  # a bad cost model file: its message names the file and field
        log.error("the books show no euros: the cost model cannot be read: %s", exc)
        rates = {}
    except Exception:  # a bug or a missing data file: the traceback, and still no outage
        log.exception("the books show no euros: the cost model failed to load")
        rates = {}
    with _RATES_LOCK:
        if len(_RATES) >= _RATES_KEPT:
            _RATES.clear()
        _RATES[id(catalogue)] = (catalogue, rates)
    return rates


@dataclass(frozen=True)
class JobEuros:
    """A job's charge in euros and the full cost of one GPU-hour of its partition; None:
    not valued (no partition yet, or one the cost model does not price)."""

    eur_per_gpu_hour: float | None
    charged: float | None


def job_euros(catalogue: Catalogue, row: JobRow) -> JobEuros:
    """A job's charge in euros: its GPU-hours actually used (charged GPU-seconds / billing
    weight / 3600) at its partition's full cost per GPU-hour. Nothing charged is EUR 0."""
    rate = rates_of(catalogue).get(row.partition_id or "")
    eur_per_gpu_hour = None if rate is None else rate.eur_per_gpu_hour
    if not row.charged_gpu_seconds:
        return JobEuros(eur_per_gpu_hour, 0.0)
    if rate is None:
        return JobEuros(None, None)
    weight = row.billing_weight or rate.billing_weight
    return JobEuros(
        rate.eur_per_gpu_hour, charge_eur(row.charged_gpu_seconds, weight, rate.eur_per_gpu_hour)
    )


def allocation_euros(
    session: Session, catalogue: Catalogue, rows: Sequence[AllocationRow]
) -> dict[int, AllocationEuros]:
    """The euro balance of each allocation in ``rows``, in the caller's session: two
    grouped queries (charges by partition, reservations by partition), whatever the number
    of jobs."""
    if not rows:
        return {}
    rates = rates_of(catalogue)
    ids = [r.id for r in rows]
    charged = session.execute(
        select(
            LedgerEntryRow.allocation_id,
            JobRow.partition_id,
            JobRow.billing_weight,
            func.sum(LedgerEntryRow.gpu_seconds),
        )
        .outerjoin(JobRow, JobRow.id == LedgerEntryRow.job_id)
        .where(LedgerEntryRow.kind == "charge", LedgerEntryRow.allocation_id.in_(ids))
        .group_by(LedgerEntryRow.allocation_id, JobRow.partition_id, JobRow.billing_weight)
    ).all()
    held = session.execute(
        select(
            JobRow.allocation_id,
            JobRow.partition_id,
            JobRow.billing_weight,
            func.sum(JobRow.reserved_gpu_seconds),
        )
        .where(JobRow.allocation_id.in_(ids), JobRow.reserved_gpu_seconds > 0)
        .group_by(JobRow.allocation_id, JobRow.partition_id, JobRow.billing_weight)
    ).all()
    charges = _by_allocation(charged, rates)
    reservations = _by_allocation(held, rates)
    operational = [site.id for site in catalogue.operational_sites]
    return {
        r.id: value_allocation(
            granted=r.granted_gpu_seconds,
            reserved=r.reserved_gpu_seconds,
            used=r.used_gpu_seconds,
            rate=allocation_rate(rates, r.site_id, r.pool_sites, operational),
            reservations=reservations.get(r.id, ()),
            charges=charges.get(r.id, ()),
        )
        for r in rows
    }


@dataclass(frozen=True)
class ValuedAllocation:
    """An allocation and its balance in euros, read together."""

    allocation: AllocationView
    euros: AllocationEuros


def project_allocations_valued(
    ctx: ServiceContext, principal: Principal, project_ref: str
) -> list[ValuedAllocation]:
    """A project's allocations, oldest first, with their alerts and their euros (members and
    operators), in one read: the euros value the very GPU-seconds listed beside them, as
    ``project_balance`` does, not those of a later transaction."""
    with ctx.reads() as session:
        project = project_by_ref(session, project_ref)
        if project is None:
            raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
        require_project_access(principal, project.id, project_ref)
        rows = allocations_of(session, project.id)
        alerts = alert_thresholds(session, [r.id for r in rows])
        euros = allocation_euros(session, ctx.catalogue, rows)
        return [
            ValuedAllocation(AllocationView.of(r, project.code, alerts.get(r.id, ())), euros[r.id])
            for r in rows
        ]


def project_allocation_euros(
    ctx: ServiceContext, principal: Principal, project_ref: str
) -> dict[int, AllocationEuros]:
    """The euro balance of each of a project's allocations (members and operators); a
    separate read: for pages that list the allocations in the same request, prefer
    :func:`project_allocations_valued`."""
    with ctx.reads() as session:
        project = project_by_ref(session, project_ref)
        if project is None:
            raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
        require_project_access(principal, project.id, project_ref)
        return allocation_euros(session, ctx.catalogue, allocations_of(session, project.id))


def _by_allocation(
    rows: Sequence[tuple[int | None, str | None, float | None, int | None]],
    rates: Mapping[str, PartitionRate],
) -> dict[int, list[Held]]:
    out: dict[int, list[Held]] = defaultdict(list)
    for allocation_id, partition_id, weight, total in rows:
        if allocation_id is None or not total:
            continue
        out[allocation_id].append(Held(int(total), _billed_rate(rates, partition_id, weight)))
    return out


def _billed_rate(
    rates: Mapping[str, PartitionRate], partition_id: str | None, weight: float | None
) -> float | None:
    """Euros per billing-weighted GPU-hour of a partition, at the weight the job was charged
    (None: no job, as for usage imported from a site's accounting, or no cost)."""
    rate = rates.get(partition_id or "")
    if rate is None:
        return None
    return rate.eur_per_gpu_hour / (weight or rate.billing_weight)
