"""Projects, their members' roles, allocations of GPU-seconds, and the priority weight."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aifactories.domain.ids import AllocationId, OrganisationId, ProjectId, SiteId
from aifactories.domain.organisations import CRITICAL_DOMAINS, Domain


class Role(StrEnum):
    PI = "pi"  # principal investigator: sees and cancels every job of the project
    MEMBER = "member"  # sees the project's jobs and balance, cancels only their own jobs


class AllocationStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # no new jobs; reservations were released


@dataclass(frozen=True, slots=True)
class PriorityWeights:
    """The programme's visible priority weights (DESIGN: a policy weight, not a hidden rule)."""

    critical_domain: float = 1.5
    industrial: float = 1.25

    def for_project(self, domain: Domain, industrial: bool) -> float:
        weight = 1.0
        if domain in CRITICAL_DOMAINS:
            weight *= self.critical_domain
        if industrial:
            weight *= self.industrial
        return weight


@dataclass(frozen=True, slots=True)
class Project:
    id: ProjectId
    code: str
    title: str
    organisation_id: OrganisationId
    domain: Domain
    industrial: bool
    priority_weight: float


@dataclass(frozen=True, slots=True)
class Allocation:
    """GPU-seconds granted to a project for a period, at one site or (``site_id`` None) a pool:
    at any site, or only at ``pool_sites`` when those are given (the sites its proposal
    allows: hardware and residency).

    Invariant kept by the ledger: ``reserved + used + left == granted`` and ``left >= 0``.
    """

    id: AllocationId
    project_id: ProjectId
    site_id: SiteId | None
    granted_gpu_seconds: int
    reserved_gpu_seconds: int
    used_gpu_seconds: int
    starts_at: float
    ends_at: float
    status: AllocationStatus
    pool_sites: frozenset[SiteId] | None = None  # a pool's sites; None: every site

    @property
    def left_gpu_seconds(self) -> int:
        return self.granted_gpu_seconds - self.reserved_gpu_seconds - self.used_gpu_seconds

    def covers(self, site_id: SiteId) -> bool:
        """Whether the allocation may pay at ``site_id`` (its period and status aside)."""
        if self.site_id is not None:
            return self.site_id == site_id
        return self.pool_sites is None or site_id in self.pool_sites

    def usable_at(self, site_id: SiteId, now: float) -> bool:
        return (
            self.status is AllocationStatus.OPEN
            and self.starts_at <= now < self.ends_at
            and self.covers(site_id)
        )
