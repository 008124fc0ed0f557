"""Repositories for organisations, users, tokens, projects, memberships and allocations."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, null, or_, select, update
from sqlalchemy.orm import Session

from aifactories.db.models import (
    AllocationRow,
    ApiTokenRow,
    MembershipRow,
    OrganisationRow,
    ProjectRow,
    UserRow,
    table_of,
)
from aifactories.domain.ids import AllocationId, ProjectId, SiteId
from aifactories.domain.projects import Allocation, AllocationStatus

TOKEN_PREFIX = "aif_"
# the lifetime of a token made without a stated expiry (Settings.token_lifetime_days' default)
DEFAULT_TOKEN_LIFETIME_S = 90 * 86400.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(
    session: Session, user_id: int, label: str, now: float, expires_at: float | None = None
) -> str:
    """Create an API token and return its plaintext: the only time it is ever visible."""
    return new_token_row(session, user_id, label, now, expires_at)[1]


def new_token_row(
    session: Session, user_id: int, label: str, now: float, expires_at: float | None = None
) -> tuple[ApiTokenRow, str]:
    """As :func:`new_token`, with the row. Without ``expires_at`` the token lives
    DEFAULT_TOKEN_LIFETIME_S: a token that never expires is never made by default."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        user_id=user_id,
        token_hash=hash_token(token),
        label=label,
        created_at=now,
        expires_at=now + DEFAULT_TOKEN_LIFETIME_S if expires_at is None else expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def token_and_user(session: Session, token: str) -> tuple[ApiTokenRow, UserRow] | None:
    """The token's row (revoked and expired ones too: the caller says which) and its user."""
    found = session.execute(
        select(ApiTokenRow, UserRow)
        .join(UserRow, ApiTokenRow.user_id == UserRow.id)
        .where(ApiTokenRow.token_hash == hash_token(token))
    ).one_or_none()
    return None if found is None else (found[0], found[1])


def tokens_of(session: Session, user_id: int | None) -> list[ApiTokenRow]:
    """A user's tokens (or everyone's, for ``None``), newest first."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.id.desc())
    if user_id is not None:
        query = query.where(ApiTokenRow.user_id == user_id)
    return list(session.scalars(query))


def mark_token_used(conn: Connection, token_id: int, now: float, not_since: float) -> None:
    """Record a use, unless one was recorded after ``not_since`` (one write a minute at most,
    whatever the number of processes)."""
    tokens = table_of(ApiTokenRow)
    conn.execute(
        update(tokens)
        .where(
            tokens.c.id == token_id,
            or_(tokens.c.last_used_at.is_(None), tokens.c.last_used_at < not_since),
        )
        .values(last_used_at=now)
    )


def memberships_of(session: Session, user_id: int) -> dict[int, str]:
    rows = session.execute(
        select(MembershipRow.project_id, MembershipRow.role).where(MembershipRow.user_id == user_id)
    ).all()
    return {project_id: role for project_id, role in rows}


def project_by_ref(session: Session, ref: str | int) -> ProjectRow | None:
    """A project by numeric id or by code."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return session.get(ProjectRow, int(ref))
    return session.execute(select(ProjectRow).where(ProjectRow.code == ref)).scalar_one_or_none()


def allocations_of(session: Session, project_id: int) -> list[AllocationRow]:
    return list(
        session.execute(
            select(AllocationRow)
            .where(AllocationRow.project_id == project_id)
            .order_by(AllocationRow.id)
        ).scalars()
    )


def all_allocations(session: Session) -> list[AllocationRow]:
    return list(session.execute(select(AllocationRow).order_by(AllocationRow.id)).scalars())


def all_projects(session: Session) -> list[ProjectRow]:
    return list(session.execute(select(ProjectRow).order_by(ProjectRow.id)).scalars())


def organisation_by_name(session: Session, name: str) -> OrganisationRow | None:
    return session.execute(
        select(OrganisationRow).where(OrganisationRow.name == name)
    ).scalar_one_or_none()


def user_by_username(session: Session, username: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.username == username)).scalar_one_or_none()


_ALLOCATION_COLUMNS = (
    "id",
    "site_id",
    "granted_gpu_seconds",
    "reserved_gpu_seconds",
    "used_gpu_seconds",
    "starts_at",
    "ends_at",
    "status",
    "pool_sites",
)


def project_and_allocations(
    conn: Connection, ref: str | int, member_id: int | None = None
) -> tuple[ProjectRow, list[Allocation], int | None] | None:
    """A project (by id or code), its allocations and, with ``member_id``, that member's
    GPU-second cap in it (None: no cap), in one query through Core: the submission hot path,
    where the ORM's overhead and each round trip count."""
    projects, allocations = table_of(ProjectRow), table_of(AllocationRow)
    members = table_of(MembershipRow)
    if isinstance(ref, int) or ref.isdigit():
        where = projects.c.id == int(ref)
    else:
        where = projects.c.code == ref
    cap = (
        select(members.c.cap_gpu_seconds)
        .where(members.c.project_id == projects.c.id, members.c.user_id == member_id)
        .scalar_subquery()
        if member_id is not None
        else null()
    )
    query = (
        select(
            projects,
            cap.label("m_cap"),
            *(allocations.c[name].label(f"a_{name}") for name in _ALLOCATION_COLUMNS),
        )
        .select_from(projects.outerjoin(allocations, allocations.c.project_id == projects.c.id))
        .where(where)
        .order_by(allocations.c.id)
    )
    rows = conn.execute(query).mappings().all()
    if not rows:
        return None
    project = ProjectRow(**{c.key: rows[0][c.key] for c in projects.columns})
    found = [
        Allocation(
            id=AllocationId(r["a_id"]),
            project_id=ProjectId(project.id),
            site_id=SiteId(r["a_site_id"]) if r["a_site_id"] else None,
            granted_gpu_seconds=r["a_granted_gpu_seconds"],
            reserved_gpu_seconds=r["a_reserved_gpu_seconds"],
            used_gpu_seconds=r["a_used_gpu_seconds"],
            starts_at=r["a_starts_at"],
            ends_at=r["a_ends_at"],
            status=AllocationStatus(r["a_status"]),
            pool_sites=None
            if r["a_pool_sites"] is None
            else frozenset(map(SiteId, r["a_pool_sites"])),
        )
        for r in rows
        if r["a_id"] is not None
    ]
    cap_value = rows[0]["m_cap"]
    return project, found, None if cap_value is None else int(cap_value)
