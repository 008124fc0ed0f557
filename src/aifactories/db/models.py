"""Tables. Times are epoch seconds (float, UTC) from the injected clock; GPU time is integer
GPU-seconds. Every schema change goes through an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class OrganisationRow(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)  # programme operator
    # where programme notifications are POSTed besides e-mail (a chat or ticket hook)
    webhook_url: Mapped[str | None] = mapped_column(String(1024))


class ApiTokenRow(Base):
    """API tokens, stored as SHA-256 of a 256-bit random secret: a fast hash is right for
    high-entropy secrets (nothing to brute-force), and lookup by hash stays one index probe."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    # None: never expires (only tokens made before expiry existed, if an operator chose so)
    expires_at: Mapped[float | None] = mapped_column(Float)
    # written at most once a minute per token and process (services/core/auth.py), not per request
    last_used_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    domain: Mapped[str] = mapped_column(String(40))
    industrial: Mapped[bool] = mapped_column(Boolean, default=False)
    priority_weight: Mapped[float] = mapped_column(Float, default=1.0)


class MembershipRow(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(10))
    # Education: a student's cap within the course project (None = no cap of their own)
    cap_gpu_seconds: Mapped[int | None] = mapped_column(BigInteger)


def _created_at_default(context: Any) -> float:
    return float(context.get_current_parameters()["starts_at"])


class AllocationRow(Base):
    """A budget of GPU-seconds. ``reserved + used <= granted`` always (checked in SQL too)."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint(
            "reserved_gpu_seconds >= 0 AND used_gpu_seconds >= 0"
            " AND reserved_gpu_seconds + used_gpu_seconds <= granted_gpu_seconds",
            name="ck_allocations_balance",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))
    # a pool allocation (site_id None) usable only at these sites; None: at any site
    pool_sites: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    granted_gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    reserved_gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    used_gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), default="open")
    # when it was made (the injected clock): the programme's figures as of a date count an
    # allocation made outside calls only once made. An insert that does not say records its
    # start (migration 0010 did the same for allocations made before it, awards excepted).
    # Never NULL; nullable because SQLite cannot make it NOT NULL without rebuilding a table
    # that jobs and the ledger reference.
    created_at: Mapped[float | None] = mapped_column(Float, default=_created_at_default)


def _start_recorded_default(context: Any) -> float | None:
    started = context.get_current_parameters().get("started_at")
    return None if started is None else float(started)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_submitted", "state", "submitted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12))
    # the spec
    gpus: Mapped[int] = mapped_column(Integer)
    nodes: Mapped[int | None] = mapped_column(Integer)
    gpu_model: Mapped[str] = mapped_column(String(40))
    min_gpu_memory_gb: Mapped[int] = mapped_column(Integer, default=0)
    time_limit_s: Mapped[int] = mapped_column(Integer)
    command: Mapped[list[str]] = mapped_column(JSON, default=list)
    script: Mapped[str | None] = mapped_column(Text)
    workdir: Mapped[str | None] = mapped_column(String(1024))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    runtime_s: Mapped[int | None] = mapped_column(Integer)
    # Slurm's resource and batch options (db/convert.py: slurm_options, spec_from_columns)
    # JSON(none_as_null): None is SQL NULL, so "IS NULL" finds the plain jobs
    slurm: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    array_job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    array_task_id: Mapped[int | None] = mapped_column(Integer)
    # [[kind, [job ids]], ...] and "any" for '?': see domain/batch.py Dependencies
    dependency: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    warnings: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    # where the site writes the job's standard output and error (set once known)
    output_path: Mapped[str | None] = mapped_column(String(4096))
    error_path: Mapped[str | None] = mapped_column(String(4096))
    # placement and progress
    submitted_at: Mapped[float] = mapped_column(Float)
    placed_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    # when the broker learnt of the start (the injected clock; ``started_at`` is the site's,
    # reported later): the programme's figures as of a date count a start only once learnt.
    # An insert that does not say (seeded history) records ``started_at``.
    start_recorded_at: Mapped[float | None] = mapped_column(Float, default=_start_recorded_default)
    ended_at: Mapped[float | None] = mapped_column(Float)
    site_id: Mapped[str | None] = mapped_column(String(64))
    partition_id: Mapped[str | None] = mapped_column(String(130))
    shape_nodes: Mapped[int | None] = mapped_column(Integer)
    shape_gpus_per_node: Mapped[int | None] = mapped_column(Integer)
    shape_exclusive: Mapped[bool | None] = mapped_column(Boolean)
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    billing_weight: Mapped[float | None] = mapped_column(Float)
    reserved_gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    elapsed_s: Mapped[float | None] = mapped_column(Float)
    site_job_id: Mapped[str | None] = mapped_column(String(64))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    requeues: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    # loaded with the job, so that front-ends can name the project without another query
    project: Mapped[ProjectRow] = relationship(lazy="joined", innerjoin=True)


class RequeuedStartRow(Base):
    """A start that a requeue cleared from its job (the job went back to the queue): kept so
    that the programme's figures as of a date before the requeue still see the start then on
    record. Written only by a requeue, never on the broker's start path."""

    __tablename__ = "requeued_starts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)  # the site's, as the job had it
    recorded_at: Mapped[float] = mapped_column(Float)  # the job's start_recorded_at
    requeued_at: Mapped[float] = mapped_column(Float)  # when the requeue cleared it


def _recorded_at_default(context: Any) -> float:
    return float(context.get_current_parameters()["at"])


class LedgerEntryRow(Base):
    """The books: every reserve, release and charge, written with the job change it belongs to."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[float] = mapped_column(Float, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    # when the entry was written (the injected clock): ``at`` dates the usage, which a job's
    # settlement or an import writes later; the programme's figures as of a date read this.
    # An insert that does not say (seeded history written at its own times) records ``at``.
    recorded_at: Mapped[float] = mapped_column(Float, default=_recorded_at_default)


class PlatformMetaRow(Base):
    """Facts about this platform installation, such as its instance id (in job tags)."""

    __tablename__ = "platform_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SiteUsageRow(Base):
    """A job run at a site outside the broker (a member's own sbatch with the project's
    account), imported from the site's accounting once: the unique key makes a second import
    of the same job a no-op."""

    __tablename__ = "site_usage"
    __table_args__ = (UniqueConstraint("site_id", "site_job_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    site_job_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float] = mapped_column(Float)
    account: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    gpus: Mapped[int] = mapped_column(Integer)
    elapsed_s: Mapped[float] = mapped_column(Float)
    charged_gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    imported_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)


class StaleSiteJobRow(Base):
    """A copy of a job left at a site the broker moved the job away from (the site was
    unreachable): cancelled there as soon as the site answers again, so no job runs twice."""

    __tablename__ = "stale_site_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    tag: Mapped[str] = mapped_column(String(64))
    site_job_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    done_at: Mapped[float | None] = mapped_column(Float)


class PartitionStatusRow(Base):
    """What the broker last saw of each partition: shown as "free GPUs now"."""

    __tablename__ = "partition_status"

    partition_id: Mapped[str] = mapped_column(String(130), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    free_gpus: Mapped[int] = mapped_column(Integer)
    free_nodes_by_free_gpus: Mapped[list[int]] = mapped_column(JSON)
    available: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for the hot paths that skip the ORM."""
    return cast(Table, model.__table__)


def row_dict(row: Any) -> dict[str, Any]:
    """A row's columns as a dict (for debugging and exports)."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


# The access programme's tables live in their own module; importing it here registers them
# on Base.metadata wherever the models are loaded (migrations, tests, create_all).
from aifactories.db import lease_models, programme_models, security_models  # noqa: E402, F401
