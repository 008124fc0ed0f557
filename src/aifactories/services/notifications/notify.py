"""Notifications, written to the outbox inside the transaction of the event they tell of.
Delivery (SMTP and webhooks, with retries) happens after commit: see notify_delivery."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from aifactories.db import outbox
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
    targets = [("email", user.email)]
    if user.webhook_url:
        targets.append(("webhook", user.webhook_url))
    return [
        outbox.queue(
            session,
            at=at,
            user_id=user.id,
            channel=channel,
            recipient=recipient,
            event=event,
            subject=subject,
            body=body,
            payload=payload,
        )
        for channel, recipient in targets
    ]
