"""The books as the programme's figures read them: grants, charges, proposals' paths to access
and job starts over a period, as they stood at ``as_of``.

What counts at ``as_of`` (so that a past date gives the same figures whenever computed):
- a grant is an audit entry at or before ``as_of``: ``proposal.award`` (its allocations, as
  the entry lists them) or ``allocation.request.approve`` of an extension (the GPU-seconds it
  added); an allocation of a project that came from no call (an operator's, like the demo's)
  has no such entry and counts as granted at its start, at its size then (its size now less
  what approved extensions and transfers changed);
- use is a ledger ``charge`` entry *recorded* (``recorded_at``, when it was written) at or
  before ``as_of``: the ledger dates a charge at the end of the usage it covers, but writes it
  when the job is settled or its usage imported from a site's accounting, perhaps days later;
- a proposal is submitted at its first ``proposal.submit`` entry and decided at its first
  ``proposal.award``, ``proposal.reject`` or ``proposal.technical_check.reject`` entry, each
  at or before ``as_of``;
- a job started when its row says (the site's time) if the broker had learnt it at or before
  ``as_of`` (``start_recorded_at``: a start reported late does not change an old ``as_of``);
  a start a requeue cleared since (``requeued_starts``) counts as it stood before ``as_of``:
  learnt by then and cleared after (programme_figures_starts.py);
- an allocation made outside calls counts from its ``starts_at`` once made (``created_at``)
  at or before ``as_of``.
The period [start, end) selects by the same times: grants by their decision, proposals by
their submission, jobs by their start; a charge covers the usage that ends at its date, so
charges are selected in (start, end]: a month piece dated at the first instant of the next
month belongs to its own month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.models import (
    AllocationRow,
    OrganisationRow,
    ProjectRow,
)
from aifactories.db.programme_models import AuditRow, CallRow, ProposalRow
from aifactories.domain.organisations import CRITICAL_DOMAINS, Domain
from aifactories.services.fund.programme_figures_charges import Charge, read_charges
from aifactories.services.fund.programme_figures_starts import starts_on_record

__all__ = ["Access", "Books", "Charge", "Grant", "JobStart", "Who", "read_books"]

OUTSIDE_CALLS = "outside_calls"  # the access mode of a project that came from no call
SUBMIT = "proposal.submit"
AWARD = "proposal.award"
DECISIONS = (AWARD, "proposal.reject", "proposal.technical_check.reject")
EXTENSION_APPROVED = "allocation.request.approve"


@dataclass(frozen=True, slots=True)
class Who:
    """Whom GPU-hours went to: the traits every figure is broken down by."""

    kind: str
    domain: str
    critical: bool
    industrial: bool
    country: str
    mode: str


@dataclass(frozen=True, slots=True)
class Grant:
    at: float
    who: Who
    site_id: str | None  # None: the pool
    pool_sites: tuple[str, ...] | None  # a pool grant's sites; None: any
    gpu_seconds: int


@dataclass(frozen=True, slots=True)
class Access:
    """A proposal's path: submitted, decided (awarded or not), its project's first job."""

    mode: str
    submitted_at: float
    decided_at: float | None
    awarded: bool
    first_job_at: float | None


@dataclass(frozen=True, slots=True)
class JobStart:
    mode: str
    site_id: str | None
    submitted_at: float
    started_at: float


@dataclass(frozen=True)
class Books:
    start: float
    end: float
    as_of: float
    grants: list[Grant]
    charges: list[Charge]
    project_who: dict[int, Who]
    accesses: list[Access]
    starts: list[JobStart]


@dataclass(frozen=True, slots=True)
class _Proposal:
    """What the figures read of a proposal (its texts stay in the database)."""

    id: int
    project_id: int | None
    call_id: int
    organisation_id: int
    domain: str
    critical_domain: bool
    industrial: bool


@dataclass
class _Lookups:
    orgs: dict[int, tuple[str, str]]  # id -> kind, country
    call_modes: dict[int, str]
    proposals: dict[int, _Proposal]
    project_who: dict[int, Who]
    project_proposal: dict[int, int]


def _critical(domain: str) -> bool:
    try:
        return Domain(domain) in CRITICAL_DOMAINS
    except ValueError:
        return False


def _lookups(session: Session) -> _Lookups:
    orgs = {
        i: (k, c)
        for i, k, c in session.execute(
            select(OrganisationRow.id, OrganisationRow.kind, OrganisationRow.country)
        )
    }
    call_modes = {i: m for i, m in session.execute(select(CallRow.id, CallRow.mode))}
    proposals = {
        row.id: _Proposal(*row)
        for row in session.execute(
            select(
                ProposalRow.id,
                ProposalRow.project_id,
                ProposalRow.call_id,
                ProposalRow.organisation_id,
                ProposalRow.domain,
                ProposalRow.critical_domain,
                ProposalRow.industrial,
            )
        )
    }
    project_proposal = {p.project_id: p.id for p in proposals.values() if p.project_id is not None}
    project_who: dict[int, Who] = {}
    for project in session.execute(
        select(ProjectRow.id, ProjectRow.organisation_id, ProjectRow.domain, ProjectRow.industrial)
    ):
        kind, country = orgs.get(project.organisation_id, ("unknown", "??"))
        proposal = proposals.get(project_proposal.get(project.id, -1))
        mode = call_modes.get(proposal.call_id, OUTSIDE_CALLS) if proposal else OUTSIDE_CALLS
        project_who[project.id] = Who(
            kind, project.domain, _critical(project.domain), project.industrial, country, mode
        )
    return _Lookups(orgs, call_modes, proposals, project_who, project_proposal)


def _proposal_who(look: _Lookups, proposal: _Proposal) -> Who:
    kind, country = look.orgs.get(proposal.organisation_id, ("unknown", "??"))
    mode = look.call_modes.get(proposal.call_id, OUTSIDE_CALLS)
    return Who(kind, proposal.domain, proposal.critical_domain, proposal.industrial, country, mode)


def _proposal_id(subject: str) -> int | None:
    kind, _, ident = subject.partition(":")
    return int(ident) if kind == "proposal" and ident.isdigit() else None


def _sites(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(s) for s in value)


def _grants(
    session: Session, look: _Lookups, start: float, end: float, as_of: float
) -> list[Grant]:
    grants: list[Grant] = []
    entries = session.scalars(
        select(AuditRow)
        .where(
            AuditRow.action.in_([AWARD, EXTENSION_APPROVED]),
            AuditRow.at >= start,
            AuditRow.at < end,
            AuditRow.at <= as_of,
        )
        .order_by(AuditRow.id)
    )
    allocations = {
        a.id: a
        for a in session.execute(
            select(
                AllocationRow.id,
                AllocationRow.project_id,
                AllocationRow.site_id,
                AllocationRow.pool_sites,
                AllocationRow.granted_gpu_seconds,
                AllocationRow.starts_at,
                AllocationRow.created_at,
            )
        )
    }
    for entry in entries:
        details = entry.details or {}
        if entry.action == AWARD:
            proposal = look.proposals.get(_proposal_id(entry.subject) or -1)
            if proposal is None:
                continue
            who = _proposal_who(look, proposal)
            for alloc in details.get("allocations", []):
                grants.append(
                    Grant(
                        entry.at,
                        who,
                        alloc.get("site_id"),
                        _sites(alloc.get("pool_sites")),
                        round(float(alloc.get("gpu_hours", 0.0)) * 3600),
                    )
                )
        elif details.get("kind") == "extension":
            row = allocations.get(int(details.get("allocation_id", -1)))
            before = (details.get("before") or {}).get("granted_gpu_seconds")
            after = (details.get("after") or {}).get("granted_gpu_seconds")
            if row is None or before is None or after is None or after == before:
                continue
            who = look.project_who[row.project_id]
            grants.append(
                Grant(entry.at, who, row.site_id, _sites(row.pool_sites), int(after) - int(before))
            )
    changed = _approved_changes(session)
    for row in allocations.values():
        outside = row.project_id not in look.project_proposal
        created = row.starts_at if row.created_at is None else row.created_at
        made = row.starts_at <= as_of and created <= as_of
        if outside and start <= row.starts_at < end and made:
            who = look.project_who[row.project_id]
            first = row.granted_gpu_seconds - changed.get(row.id, 0)  # its size when made
            grants.append(Grant(row.starts_at, who, row.site_id, _sites(row.pool_sites), first))
    return grants


def _approved_changes(session: Session) -> dict[int, int]:
    """GPU-seconds each allocation gained (or gave) by approved extensions and transfers,
    ever: what its size now holds beyond its size when it was made."""
    changed: dict[int, int] = defaultdict(int)
    for details in session.scalars(
        select(AuditRow.details).where(AuditRow.action == EXTENSION_APPROVED)
    ):
        details = details or {}
        if details.get("kind") == "extension":
            before = (details.get("before") or {}).get("granted_gpu_seconds")
            after = (details.get("after") or {}).get("granted_gpu_seconds")
            if before is not None and after is not None:
                changed[int(details.get("allocation_id", -1))] += int(after) - int(before)
        elif details.get("from_allocation_id") is not None:
            amount = int(details.get("gpu_seconds", 0))
            changed[int(details["from_allocation_id"])] -= amount
            changed[int(details.get("to_allocation_id", -1))] += amount
    return changed


def _first_by_proposal(rows: Iterable[tuple[str, float]]) -> dict[int, float]:
    first: dict[int, float] = {}
    for subject, at in rows:
        pid = _proposal_id(subject)
        if pid is not None and pid not in first:
            first[pid] = at
    return first


def _accesses(
    session: Session, look: _Lookups, start: float, end: float, as_of: float
) -> list[Access]:
    def events(actions: Iterable[str]) -> dict[int, tuple[float, str]]:
        found: dict[int, tuple[float, str]] = {}
        query = (
            select(AuditRow.subject, AuditRow.at, AuditRow.action)
            .where(AuditRow.action.in_(list(actions)), AuditRow.at <= as_of)
            .order_by(AuditRow.at, AuditRow.id)
        )
        for subject, at, action in session.execute(query):
            pid = _proposal_id(subject)
            if pid is not None and pid not in found:
                found[pid] = (at, action)
        return found

    submitted = events([SUBMIT])
    decided = events(DECISIONS)
    starts = starts_on_record(as_of)
    first_jobs = dict(
        session.execute(
            select(starts.c.project_id, func.min(starts.c.started_at)).group_by(starts.c.project_id)
        ).all()
    )
    accesses = []
    for pid, (at, _) in sorted(submitted.items()):
        proposal = look.proposals.get(pid)
        if proposal is None or not start <= at < end:
            continue
        decision = decided.get(pid)
        awarded = decision is not None and decision[1] == AWARD
        first = first_jobs.get(proposal.project_id) if awarded and proposal.project_id else None
        accesses.append(
            Access(
                look.call_modes.get(proposal.call_id, OUTSIDE_CALLS),
                at,
                decision[0] if decision else None,
                awarded,
                float(first) if first is not None else None,
            )
        )
    return accesses


def _starts(
    session: Session, look: _Lookups, start: float, end: float, as_of: float
) -> list[JobStart]:
    starts = starts_on_record(as_of)
    rows = session.execute(
        select(starts.c.project_id, starts.c.site_id, starts.c.submitted_at, starts.c.started_at)
        .where(starts.c.started_at >= start, starts.c.started_at < end)
        .order_by(starts.c.job_id, starts.c.started_at)
    )
    return [
        JobStart(look.project_who[project].mode, site, float(submitted), float(started or 0.0))
        for project, site, submitted, started in rows
    ]


def read_books(
    session: Session, start: float, end: float, as_of: float, site_ids: Iterable[str]
) -> Books:
    """Everything the figures need for [start, end) as it stood at ``as_of`` (``site_ids``:
    the catalogue's, to tell where imported usage ran)."""
    look = _lookups(session)
    return Books(
        start,
        end,
        as_of,
        _grants(session, look, start, end, as_of),
        read_charges(session, start, end, as_of, site_ids),
        look.project_who,
        _accesses(session, look, start, end, as_of),
        _starts(session, look, start, end, as_of),
    )
