"""Notifications, written to the outbox inside the transaction of the event they tell of.
Delivery (SMTP and webhooks, with retries) happens after commit: see notify_delivery."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from aifactories.db.models import UserRow
from aifactories.db.programme_models import NotificationRow


def notify_user(
    session: Session,
    *,
    at: float,
    user_id: int,
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
) -> list[NotificationRow]:
    """Queue an e-mail to the user and, if they have one, a POST to their webhook."""
    user = session.get(UserRow, user_id)
    if user is None:
        return []
    data = {"event": event, "subject": subject, **(payload or {})}
    rows = [
        NotificationRow(
            channel="email",
            user_id=user.id,
            recipient=user.email,
            event=event,
            subject=subject,
            body=body,
            payload=data,
            status="pending",
            attempts=0,
            created_at=at,
            next_attempt_at=at,
        )
    ]
    if user.webhook_url:
        rows.append(
            NotificationRow(
                channel="webhook",
                user_id=user.id,
                recipient=user.webhook_url,
                event=event,
                subject=subject,
                body=body,
                payload=data,
                status="pending",
                attempts=0,
                created_at=at,
                next_attempt_at=at,
            )
        )
    session.add_all(rows)
    return rows
