"""The audit log: every decision of the access programme, written inside the transaction of
the decision itself, so the log and the state can never disagree.

Reading it: programme operators see every entry; a site operator sees the technical checks
made for their sites (actions ``proposal.technical_check.*`` whose ``details.site_id`` is one
of their sites); nobody else reads the log. ``list_audit`` pages newest first;
``export_audit`` streams every matching entry as CSV or JSON Lines, in the order written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from aifactories.db.programme_models import AuditRow
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput, PermissionDenied
from aifactories.services.core.context import Principal, ServiceContext

EXPORT_FORMATS = ("csv", "jsonl")
FIELDS = ("id", "at", "actor_id", "actor", "action", "subject", "reason", "details")
# the entries a site operator may read: technical checks whose details.site_id is theirs
SITE_CHECK_PREFIX = "proposal.technical_check."
MAX_LIMIT = 10_000
EXPORT_BATCH = 1_000


def record(
    session: Session,
    *,
    at: float,
    actor: Principal | None,
    action: str,
    subject: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditRow:
    """Add an audit entry to the caller's transaction. ``actor`` None is the platform itself
    (an automated check, a call's decision rule)."""
    row = AuditRow(
        at=at,
        actor_id=int(actor.user_id) if actor else None,
        actor=actor.username if actor else "system",
        action=action,
        subject=subject,
        reason=reason,
        details=details or {},
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor_id: int | None
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        return cls(
            id=row.id,
            at=row.at,
            actor_id=row.actor_id,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            reason=row.reason or "",
            details=dict(row.details or {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The exported and served shape: ``at`` as ISO 8601 UTC."""
        return {
            "id": self.id,
            "at": to_datetime(self.at).isoformat(),
            "actor_id": self.actor_id,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditFilter:
    """``subject`` and ``action`` match exactly, or as a prefix when they end with ``*``
    (``proposal:*``, ``proposal.technical_check.*``); ``actor`` is a username or "system";
    ``since`` (inclusive) and ``until`` (exclusive) are epoch seconds."""

    subject: str | None = None
    action: str | None = None
    actor: str | None = None
    since: float | None = None
    until: float | None = None


def parse_time(text: str | None, field: str) -> float | None:
    """Epoch seconds from epoch seconds or an ISO 8601 date or time (UTC unless it says)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):  # nan, inf: no time at all
            raise InvalidInput(field, f"{text!r} is no time", "a date or finite epoch seconds")
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            field,
            f"{text!r} is no ISO date or time",
            "for example 2026-11-01, 2026-11-01T08:00 or 2026-11-01T08:00:00+01:00 "
            "(UTC unless an offset is given), or epoch seconds",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _match(column: Any, pattern: str) -> ColumnElement[bool]:
    if pattern.endswith("*"):
        return column.startswith(pattern[:-1], autoescape=True)  # type: ignore[no-any-return]
    return column == pattern  # type: ignore[no-any-return]


def _visibility(principal: Principal) -> list[ColumnElement[bool]]:
    if principal.is_operator:
        return []
    if principal.operated_sites:
        return [
            AuditRow.action.startswith(SITE_CHECK_PREFIX, autoescape=True),
            AuditRow.details["site_id"].as_string().in_(sorted(principal.operated_sites)),
        ]
    raise PermissionDenied(
        "only a programme operator can read the audit log "
        "(a site operator reads the technical checks of their sites)"
    )


def _conditions(principal: Principal, flt: AuditFilter) -> list[ColumnElement[bool]]:
    conditions = _visibility(principal)
    if flt.subject:
        conditions.append(_match(AuditRow.subject, flt.subject))
    if flt.action:
        conditions.append(_match(AuditRow.action, flt.action))
    if flt.actor:
        conditions.append(AuditRow.actor == flt.actor)
    if flt.since is not None:
        conditions.append(AuditRow.at >= flt.since)
    if flt.until is not None:
        conditions.append(AuditRow.at < flt.until)
    return conditions


def list_audit(
    ctx: ServiceContext,
    principal: Principal,
    *,
    subject: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[AuditEntry]:
    """Audit entries, newest first; ``before``: only ids below this one (the next page)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"limit {limit} is out of range", f"1 to {MAX_LIMIT}")
    conditions = _conditions(principal, AuditFilter(subject, action, actor, since, until))
    if before is not None:
        conditions.append(AuditRow.id < before)
    query = select(AuditRow).where(*conditions).order_by(AuditRow.id.desc()).limit(limit)
    with ctx.reads() as session:
        return [AuditEntry.of(row) for row in session.scalars(query)]


@dataclass(frozen=True)
class AuditExport:
    """An export ready to stream: iterating it yields the text chunks. ``rows`` is how many
    entries it holds: those matching when it was made (later entries are left out)."""

    fmt: str
    rows: int
    ctx: ServiceContext
    conditions: tuple[ColumnElement[bool], ...]
    last_id: int

    def __iter__(self) -> Iterator[str]:
        return _stream(self.ctx, list(self.conditions), self.fmt, self.last_id)


def export_audit(
    ctx: ServiceContext,
    principal: Principal,
    *,
    fmt: str = "csv",
    subject: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> AuditExport:
    """Every matching entry, oldest first, as text chunks: CSV (a header row, then one row
    per entry, ``details`` as JSON) or JSON Lines (one object per line). Access and the
    format are checked here, before the first chunk; then entries are read in batches, each
    in its own short read transaction, up to the last entry written at this call."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput("format", f"unknown export format {fmt!r}", " or ".join(EXPORT_FORMATS))
    conditions = _conditions(principal, AuditFilter(subject, action, actor, since, until))
    with ctx.reads() as session:
        last_id = session.scalar(select(func.max(AuditRow.id))) or 0
        rows = session.scalar(
            select(func.count()).select_from(AuditRow).where(*conditions, AuditRow.id <= last_id)
        )
    return AuditExport(fmt, rows or 0, ctx, tuple(conditions), last_id)


def _stream(
    ctx: ServiceContext, conditions: list[ColumnElement[bool]], fmt: str, last_id: int
) -> Iterator[str]:
    if fmt == "csv":
        yield _csv_lines([list(FIELDS)])
    after = 0
    while True:
        query = (
            select(AuditRow)
            .where(*conditions, AuditRow.id > after, AuditRow.id <= last_id)
            .order_by(AuditRow.id)
            .limit(EXPORT_BATCH)
        )
        with ctx.reads() as session:
            batch = [AuditEntry.of(row) for row in session.scalars(query)]
        if not batch:
            return
        yield _encode(batch, fmt)
        after = batch[-1].id
        if len(batch) < EXPORT_BATCH:
            return


def _csv_lines(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _encode(batch: list[AuditEntry], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(
            json.dumps(e.to_json(), sort_keys=True, ensure_ascii=False) + "\n" for e in batch
        )
    rows = []
    for entry in batch:
        data = entry.to_json()
        data["actor_id"] = "" if entry.actor_id is None else entry.actor_id
        data["details"] = json.dumps(entry.details, sort_keys=True, ensure_ascii=False)
        rows.append([data[name] for name in FIELDS])
    return _csv_lines(rows)
