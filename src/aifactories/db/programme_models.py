"""Tables of the access programme: calls, proposals, checks, reviews, awards, the audit log,
the notification outbox and the allocation lifecycle. Times are epoch seconds from the
injected clock; GPU time is integer GPU-seconds (requests keep the applicant's GPU-hours)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aifactories.db.models import Base


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # open / closed
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)  # CallRules.to_json(), resolved
    # GPU-hours per site id, or "pool" for any site; what awards may draw from
    budget_gpu_hours: Mapped[dict[str, float]] = mapped_column(JSON)
    opens_at: Mapped[float] = mapped_column(Float)
    closes_at: Mapped[float] = mapped_column(Float)
    cutoffs: Mapped[list[float]] = mapped_column(JSON, default=list)
    course_ends_at: Mapped[float | None] = mapped_column(Float)  # Education
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)


class ProposalRow(Base):
    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    pi_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(300))
    abstract: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(40))
    critical_domain: Mapped[bool] = mapped_column(Boolean)
    industrial: Mapped[bool] = mapped_column(Boolean)
    requested_gpu_hours: Mapped[float] = mapped_column(Float)
    gpu_model: Mapped[str | None] = mapped_column(String(40))
    min_gpu_memory_gb: Mapped[int] = mapped_column(Integer, default=0)
    largest_job_gpus: Mapped[int] = mapped_column(Integer, default=1)
    preferred_sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    residency: Mapped[list[str]] = mapped_column(JSON, default=list)  # countries; [] = any
    period_months: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[float | None] = mapped_column(Float)  # None: at the award
    members: Mapped[list[str]] = mapped_column(JSON, default=list)  # usernames
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cutoff_at: Mapped[float | None] = mapped_column(Float)  # the cut-off it is reviewed at
    score: Mapped[float | None] = mapped_column(Float)  # panel average, weighted
    rank: Mapped[int | None] = mapped_column(Integer)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, default=1)


class TechnicalCheckRow(Base):
    __tablename__ = "technical_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    site_id: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(10))  # accept / reject / revise
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)


class ReviewerRow(Base):
    """A user in the reviewer pool, with the domains they can judge."""

    __tablename__ = "reviewers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    expertise: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ConflictRow(Base):
    """A declared conflict of interest: with an organisation or one proposal."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id"))
    reason: Mapped[str] = mapped_column(Text)
    declared_at: Mapped[float] = mapped_column(Float)


class ReviewRow(Base):
    """An assignment of a reviewer to a proposal, and (once submitted) their scores."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("proposal_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(10))  # assigned / submitted / declined
    scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    assigned_at: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[float | None] = mapped_column(Float)


class SiteOperatorRow(Base):
    """Who operates which site: they run its technical checks."""

    __tablename__ = "site_operators"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class AwardRunRow(Base):
    """One run of the allocation optimiser (or greedy rule) for a call's cut-off."""

    __tablename__ = "award_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    cutoff_at: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(10))  # optimiser / greedy
    status: Mapped[str] = mapped_column(String(10))  # proposed / applied / discarded
    objective: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[float] = mapped_column(Float)
    applied_at: Mapped[float | None] = mapped_column(Float)


class AwardLineRow(Base):
    """GPU-hours for one proposal at one partition in one month of an award run."""

    __tablename__ = "award_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("award_runs.id"), index=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    site_id: Mapped[str] = mapped_column(String(64))
    partition_id: Mapped[str] = mapped_column(String(130))
    month_starts_at: Mapped[float] = mapped_column(Float)
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)


class AuditRow(Base):
    """Every decision: who, when, what, why. Written in the transaction of the decision."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(64))  # username, or "system"
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "proposal:12"
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NotificationRow(Base):
    """The outbox: written in the transaction of the event, delivered after commit, retried
    until sent, so a crash neither loses a notification nor sends one for a rolled-back event."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # email / webhook
    # whose it is: a user reads their own by this, not by an address that may change or be shared
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(1024))  # address or URL
    event: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)


class AllocationAlertRow(Base):
    """A usage alert sent once per allocation and threshold (50, 75, 90, 100 %)."""

    __tablename__ = "allocation_alerts"
    __table_args__ = (UniqueConstraint("allocation_id", "threshold"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"))
    threshold: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)


class AllocationRequestRow(Base):
    """An extension (more time and/or GPU-hours) or a transfer of GPU-hours to another of
    the same PI's allocations, decided by a programme operator."""

    __tablename__ = "allocation_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # extension / transfer
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    new_ends_at: Mapped[float | None] = mapped_column(Float)
    target_allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending / approved / refused
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float)
