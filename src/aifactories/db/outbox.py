"""Writing to the notification outbox from below the services: the broker queues job e-mails
(``--mail-type``) in the transaction that changes the job's state, as ``notify_user``
(services/notifications/notify.py) does for the programme's decisions. Delivery is the
services' (notify_delivery.py); nothing here touches the network."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import UserRow
from aifactories.db.programme_models import NotificationRow


def user_email(session: Session, user_id: int) -> str | None:
    """The user's address, or None if there is no such user."""
    return session.scalar(select(UserRow.email).where(UserRow.id == user_id))


def queue(
    session: Session,
    *,
    at: float,
    user_id: int,
    channel: str,
    recipient: str,
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
) -> NotificationRow:
    """Add one pending notification (``channel`` "email" or "webhook") to the caller's
    transaction. ``user_id`` is whose it is (they read it in ``GET /notifications``) even
    when ``recipient`` is another address."""
    row = NotificationRow(
        channel=channel,
        user_id=user_id,
        recipient=recipient,
        event=event,
        subject=subject[:300],  # the column's width; subjects are built short
        body=body,
        payload={"event": event, "subject": subject, **(payload or {})},
        status="pending",
        attempts=0,
        created_at=at,
        next_attempt_at=at,
    )
    session.add(row)
    return row


def queue_email(
    session: Session,
    *,
    at: float,
    user_id: int,
    recipient: str,
    event: str,
    subject: str,
    body: str,
    payload: dict[str, Any] | None = None,
) -> NotificationRow:
    """:func:`queue` on the e-mail channel."""
    return queue(
        session,
        at=at,
        user_id=user_id,
        channel="email",
        recipient=recipient,
        event=event,
        subject=subject,
        body=body,
        payload=payload,
    )
