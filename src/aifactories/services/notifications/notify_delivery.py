"""Delivery of the notification outbox: e-mails over SMTP, webhooks over HTTPS, with retries.

``notify_user`` (services/notifications/notify.py) writes rows inside the transaction of the
event; this module sends them after commit. Each row goes through three short steps, never holding a
transaction open across network I/O:

1. **claim**: one conditional update ``pending -> sending`` (attempts + 1, a lease until
   ``now + LEASE_S``), committed. Of two workers claiming the same row, one updates it and
   the other finds nothing to update: each message is sent by one worker.
2. **send**: SMTP or an HTTP POST, outside any transaction.
3. **finish**: one conditional update, only if the row is still ``sending`` with this
   claim's attempt number: ``sent``; or back to ``pending`` with an exponential backoff;
   or ``failed`` after ``notify_max_attempts``.

A worker that dies between claim and finish leaves its row ``sending``; once the lease has
run out the next pass takes it back (``pending``, or ``failed`` if that was its last
attempt). Delivery is therefore *at least once*: a crash after the send and before the
finish sends that message again. Receivers that must not act twice de-duplicate on the
``X-Aif-Delivery`` header (webhooks) or the ``Message-ID`` (e-mails), both derived from the
notification's id.

Without ``smtp_host`` e-mails are not claimed: they stay ``pending`` (and readable through
``GET /notifications``) until an SMTP host is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import httpx
from sqlalchemy import func, select, update

from aifactories.db.programme_models import NotificationRow
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.settings import Settings

log = logging.getLogger(__name__)

STATUSES = ("pending", "sending", "sent", "failed")
# a claimed row whose worker has not finished within this many seconds is taken back
LEASE_S = 300.0
# retry n waits BACKOFF_BASE_S * 2**(n-1), at most BACKOFF_MAX_S
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 6 * 3600.0
# one SMTP conversation step or one HTTP request; well under LEASE_S
SEND_TIMEOUT_S = 20.0
ERROR_CHARS = 2000


def backoff_s(attempts: int) -> float:
    """The wait before the next try, after ``attempts`` failed ones."""
    return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    at: float
    claimed: int = 0
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again after a backoff
    failed: int = 0  # gave up: notify_max_attempts reached
    recovered: int = 0  # interrupted sends (lease run out) taken back
    held_emails: int = 0  # due e-mails left pending: no SMTP host configured
    lost_claims: int = 0  # another worker took the row back while this one was sending
    errors: list[str] = field(default_factory=list)  # "notification 12 (email): reason"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": to_datetime(self.at).isoformat(),
            "claimed": self.claimed,
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "recovered": self.recovered,
            "held_emails": self.held_emails,
            "lost_claims": self.lost_claims,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class _Claim:
    """A snapshot of a claimed row, taken inside the claim's transaction."""

    id: int
    channel: str
    recipient: str
    event: str
    subject: str
    body: str
    payload: dict[str, Any]
    attempts: int  # this claim's stamp
    created_at: float


def deliver_pending(ctx: ServiceContext, *, limit: int = 100) -> DeliveryReport:
    """Send up to ``limit`` due notifications (``pending`` with ``next_attempt_at <= now``),
    oldest first. Safe to run in several workers at once."""
    now = ctx.clock.now()
    report = DeliveryReport(at=now)
    settings = ctx.settings
    with ctx.reads() as session:
        interrupted = session.scalar(
            select(NotificationRow.id)
            .where(NotificationRow.status == "sending", NotificationRow.next_attempt_at <= now)
            .limit(1)
        )
    if interrupted is not None:  # the write lock only when there is something to take back
        report.recovered = _recover_interrupted(ctx, now)
    with ctx.reads() as session:
        due = (
            select(NotificationRow.id)
            .where(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now)
            .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
            .limit(limit)
        )
        if not settings.smtp_host:
            due = due.where(NotificationRow.channel != "email")
            report.held_emails = (
                session.scalar(
                    select(func.count())
                    .select_from(NotificationRow)
                    .where(
                        NotificationRow.status == "pending",
                        NotificationRow.next_attempt_at <= now,
                        NotificationRow.channel == "email",
                    )
                )
                or 0
            )
        ids = list(session.scalars(due))
    if not ids:
        return report
    mailer = _Mailer(settings)
    try:
        with httpx.Client(timeout=SEND_TIMEOUT_S, follow_redirects=False) as http:
            for notification_id in ids:
                claim = _claim(ctx, notification_id, now)
                if claim is None:
                    continue  # another worker has it, or it is no longer due
                report.claimed += 1
                error = _send(claim, settings, mailer, http)
                _finish(ctx, claim, error, report)
    finally:
        mailer.close()
    return report


def _recover_interrupted(ctx: ServiceContext, now: float) -> int:
    """Take back rows left ``sending`` past their lease (a worker died or hung)."""
    reason = "delivery interrupted (the worker stopped before recording the result)"
    with ctx.sessions.begin() as session:
        expired = (NotificationRow.status == "sending", NotificationRow.next_attempt_at <= now)
        gave_up = session.execute(
            update(NotificationRow)
            .where(*expired, NotificationRow.attempts >= ctx.settings.notify_max_attempts)
            .values(status="failed", last_error=reason)
            .execution_options(synchronize_session=False)
        )
        retry = session.execute(
            update(NotificationRow)
            .where(*expired)
            .values(status="pending", last_error=reason)
            .execution_options(synchronize_session=False)
        )
        count = int(gave_up.rowcount or 0) + int(retry.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        log.warning("notifications: %d interrupted deliveries taken back", count)
    return count


def _claim(ctx: ServiceContext, notification_id: int, now: float) -> _Claim | None:
    with ctx.sessions.begin() as session:
        result = session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.status == "pending",
                NotificationRow.next_attempt_at <= now,
            )
            .values(
                status="sending",
                attempts=NotificationRow.attempts + 1,
                next_attempt_at=now + LEASE_S,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(NotificationRow, notification_id, populate_existing=True)
        assert row is not None
        return _Claim(
            id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            event=row.event,
            subject=row.subject,
            body=row.body,
            payload=dict(row.payload or {}),
            attempts=row.attempts,
            created_at=row.created_at,
        )


def _finish(ctx: ServiceContext, claim: _Claim, error: str | None, report: DeliveryReport) -> None:
    now = ctx.clock.now()
    max_attempts = ctx.settings.notify_max_attempts
    values: dict[str, Any]
    if error is None:
        values = {"status": "sent", "sent_at": now, "last_error": None}
    elif claim.attempts >= max_attempts:
        values = {"status": "failed", "last_error": error[:ERROR_CHARS]}
    else:
        values = {
            "status": "pending",
            "last_error": error[:ERROR_CHARS],
            "next_attempt_at": now + backoff_s(claim.attempts),
        }
    with ctx.sessions.begin() as session:
        result = session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == claim.id,
                NotificationRow.status == "sending",
                NotificationRow.attempts == claim.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        mine = result.rowcount == 1  # type: ignore[attr-defined]
    if not mine:
        report.lost_claims += 1
        log.warning(
            "notification %d: its lease ran out while sending (%s); another pass has it",
            claim.id,
            "sent" if error is None else error,
        )
        return
    if error is None:
        report.sent += 1
        return
    report.errors.append(f"notification {claim.id} ({claim.channel}): {error}")
    if values["status"] == "failed":
        report.failed += 1
        log.error(
            "notification %d (%s to %s) failed after %d attempts: %s",
            claim.id,
            claim.channel,
            claim.recipient,
            claim.attempts,
            error,
        )
    else:
        report.retrying += 1
        log.info(
            "notification %d (%s): attempt %d failed, retrying in %.0f s: %s",
            claim.id,
            claim.channel,
            claim.attempts,
            backoff_s(claim.attempts),
            error,
        )


def _send(claim: _Claim, settings: Settings, mailer: _Mailer, http: httpx.Client) -> str | None:
    """Send one notification; None if it went, else why not."""
    try:
        if claim.channel == "email":
            mailer.send(email_message(claim, settings))
            return None
        if claim.channel == "webhook":
            return _post_webhook(claim, settings, http)
        return f"unknown channel {claim.channel!r}"
    except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # a malformed row (an address, a URL): recorded, never fatal
        log.exception("notification %d: unexpected error while sending", claim.id)
        return f"{type(exc).__name__}: {exc}"


# -- e-mail -----------------------------------------------------------------------------------


class _Mailer:
    """One SMTP connection per pass, opened on the first e-mail; dropped on any error (the
    next e-mail opens a new one)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        assert s.smtp_host
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SEND_TIMEOUT_S)
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def email_message(claim: _Claim, settings: Settings) -> EmailMessage:
    """The e-mail for a notification: plain text, with a Message-ID derived from its id."""
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "aifactories.localhost"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = claim.recipient
    message["Subject"] = claim.subject
    message["Date"] = format_datetime(to_datetime(claim.created_at))
    message["Message-ID"] = f"<aif-notification-{claim.id}@{domain}>"
    message["X-Aif-Event"] = claim.event
    message.set_content(claim.body)
    return message


# -- webhooks ---------------------------------------------------------------------------------


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-Aif-Signature`` header value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post_webhook(claim: _Claim, settings: Settings, http: httpx.Client) -> str | None:
    body = webhook_body(claim.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aifactories-notify",
        "X-Aif-Event": claim.event,
        "X-Aif-Delivery": str(claim.id),
    }
    if settings.webhook_secret:
        headers["X-Aif-Signature"] = webhook_signature(settings.webhook_secret, body)
    response = http.post(claim.recipient, content=body, headers=headers)
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


# -- reading the outbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationView:
    id: int
    channel: str
    recipient: str
    event: str
    subject: str
    body: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_at: float
    next_attempt_at: float
    sent_at: float | None

    @classmethod
    def of(cls, row: NotificationRow) -> NotificationView:
        return cls(
            id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            event=row.event,
            subject=row.subject,
            body=row.body,
            payload=dict(row.payload or {}),
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
        )


def list_notifications(
    ctx: ServiceContext,
    principal: Principal,
    *,
    status: str | None = None,
    recipient: str | None = None,
    event: str | None = None,
    mine: bool = False,
    limit: int = 100,
    before: int | None = None,
) -> list[NotificationView]:
    """The outbox, newest first. A programme operator sees every notification (``mine``:
    only their own); anyone else only their own (by user, whatever address it went to).
    ``before``: only ids below this one (the next page)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"unknown status {status!r}", " / ".join(STATUSES))
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit", f"limit {limit} is out of range", "1 to 10000")
    query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
    if status is not None:
        query = query.where(NotificationRow.status == status)
    if recipient is not None:
        query = query.where(NotificationRow.recipient == recipient)
    if event is not None:
        query = query.where(NotificationRow.event == event)
    if before is not None:
        query = query.where(NotificationRow.id < before)
    with ctx.reads() as session:
        if mine or not principal.is_operator:
            query = query.where(NotificationRow.user_id == int(principal.user_id))
        return [NotificationView.of(row) for row in session.scalars(query)]


def deliver_now(ctx: ServiceContext, principal: Principal, *, limit: int = 100) -> DeliveryReport:
    """A delivery pass on demand (programme operators)."""
    require_programme_operator(principal, "deliver the notification outbox")
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit", f"limit {limit} is out of range", "1 to 10000")
    return deliver_pending(ctx, limit=limit)
