"""The audit log: every decision of the access programme, written inside the transaction of
the decision itself, so the log and the state can never disagree."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from aifactories.db.programme_models import AuditRow
from aifactories.services.context import Principal


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
