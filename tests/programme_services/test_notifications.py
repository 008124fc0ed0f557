"""The notification outbox against real receivers: an SMTP server and a webhook endpoint on
loopback; SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from aifactories.db.models import UserRow
from aifactories.db.programme_models import NotificationRow
from aifactories.services.core.context import ServiceContext
from aifactories.services.notifications import notify_delivery
from aifactories.services.notifications.notify import notify_user
from aifactories.services.notifications.notify_delivery import LEASE_S, backoff_s, deliver_pending
from aifactories.services.programme_worker import ProgrammeWorker
from tests.api.harness import Harness, make_harness
from tests.programme_services.smtp_sink import SmtpSink, WebhookReceiver, free_port

SECRET = "test-webhook-secret"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def make(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(**settings: object) -> Harness:
        settings.setdefault("webhook_secret", SECRET)
        settings.setdefault("site_sync_interval_s", 0)
        h = make_harness(tmp_path / f"h{len(made)}", database_url, **settings)
        made.append(h)
        return h

    yield build
    for h in made:
        h.platform.stop()


def _set_webhook(h: Harness, username: str, url: str | None) -> None:
    with h.platform.ctx.sessions.begin() as session:
        session.execute(update(UserRow).where(UserRow.username == username).values(webhook_url=url))


def _user_id(h: Harness, username: str) -> int:
    with h.platform.ctx.reads() as session:
        return int(session.scalars(select(UserRow.id).where(UserRow.username == username)).one())


def _notify(h: Harness, username: str, n: int = 1, event: str = "proposal.submitted") -> None:
    user_id = _user_id(h, username)
    with h.platform.ctx.sessions.begin() as session:
        for i in range(n):
            notify_user(
                session,
                at=h.clock.now(),
                user_id=user_id,
                event=event,
                subject=f"[aifactories] proposal {i} submitted",
                body=f"Your proposal {i} was submitted.\nIt is in the queue for review.\n",
                payload={"proposal_id": i, "status": "submitted"},
            )


def _rows(h: Harness) -> list[NotificationRow]:
    with h.platform.ctx.reads() as session:
        return list(session.scalars(select(NotificationRow).order_by(NotificationRow.id)))


def test_rolled_back_event_sends_nothing(
    make: Callable[..., Harness], sink: SmtpSink, hook: WebhookReceiver
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _set_webhook(h, "alice", hook.url)
    user_id = _user_id(h, "alice")

    class Refused(Exception):
        pass

    with pytest.raises(Refused), h.platform.ctx.sessions.begin() as session:
        rows = notify_user(
            session,
            at=h.clock.now(),
            user_id=user_id,
            event="proposal.accepted",
            subject="never",
            body="never",
        )
        assert len(rows) == 2
        session.flush()  # the rows reach the database, then the decision fails
        raise Refused

    report = deliver_pending(h.platform.ctx)
    assert report.claimed == 0
    assert _rows(h) == []
    assert sink.messages == []
    assert hook.requests == []


def test_committed_notification_is_delivered_once(
    make: Callable[..., Harness], sink: SmtpSink, hook: WebhookReceiver
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _set_webhook(h, "alice", hook.url)
    _notify(h, "alice")

    report = deliver_pending(h.platform.ctx)
    assert (report.claimed, report.sent, report.retrying, report.failed) == (2, 2, 0, 0)
    assert len(sink.received) == 1
    got = sink.received[0]
    assert got.envelope_to == ["alice@example.eu"]
    message = got.message
    assert message["To"] == "alice@example.eu"
    assert message["From"] == h.platform.settings.smtp_from
    assert message["Subject"] == "[aifactories] proposal 0 submitted"
    assert message["X-Aif-Event"] == "proposal.submitted"
    email_row = next(r for r in _rows(h) if r.channel == "email")
    assert message["Message-ID"] == f"<aif-notification-{email_row.id}@aifactories.localhost>"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert text == "Your proposal 0 was submitted.\nIt is in the queue for review.\n"

    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request.path == "/hook"
    assert request.headers["x-aif-event"] == "proposal.submitted"
    assert request.headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-aif-signature"], expected)
    data = json.loads(request.body)
    assert data == {
        "event": "proposal.submitted",
        "subject": "[aifactories] proposal 0 submitted",
        "proposal_id": 0,
        "status": "submitted",
    }
    webhook_row = next(r for r in _rows(h) if r.channel == "webhook")
    assert request.headers["x-aif-delivery"] == str(webhook_row.id)

    for row in _rows(h):
        assert (row.status, row.attempts, row.sent_at, row.last_error) == (
            "sent",
            1,
            h.clock.now(),
            None,
        )
    # a second pass, later, sends nothing again
    h.clock.advance(3600)
    again = deliver_pending(h.platform.ctx)
    assert again.claimed == 0
    assert len(sink.received) == 1
    assert len(hook.requests) == 1


def test_webhook_without_secret_is_unsigned(
    make: Callable[..., Harness], hook: WebhookReceiver
) -> None:
    h = make(webhook_secret=None)
    _set_webhook(h, "alice", hook.url)
    _notify(h, "alice")
    report = deliver_pending(h.platform.ctx)
    assert report.sent == 1
    assert "x-aif-signature" not in hook.requests[0].headers


def test_a_bad_webhook_url_fails_alone(make: Callable[..., Harness], sink: SmtpSink) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _set_webhook(h, "alice", "not a url")
    _notify(h, "alice")
    report = deliver_pending(h.platform.ctx)
    assert (report.sent, report.retrying) == (1, 1)
    assert len(sink.messages) == 1
    webhook = next(r for r in _rows(h) if r.channel == "webhook")
    assert report.errors[0].startswith(f"notification {webhook.id} (webhook): ")
    assert (webhook.status, webhook.attempts) == ("pending", 1)
    assert webhook.last_error


def test_smtp_down_is_retried_with_backoff_then_delivered(make: Callable[..., Harness]) -> None:
    port = free_port()  # nothing listens there yet
    h = make(smtp_host="127.0.0.1", smtp_port=port)
    _notify(h, "carol")  # carol has no webhook: one e-mail
    start = h.clock.now()

    first = deliver_pending(h.platform.ctx)
    assert (first.claimed, first.sent, first.retrying) == (1, 0, 1)
    (row,) = _rows(h)
    assert row.status == "pending"
    assert row.attempts == 1
    assert row.next_attempt_at == start + backoff_s(1) == start + 30
    assert row.last_error and "Connection" in row.last_error

    # not due yet: nothing is tried
    h.clock.advance(29)
    assert deliver_pending(h.platform.ctx).claimed == 0
    h.clock.advance(1)
    second = deliver_pending(h.platform.ctx)
    assert second.retrying == 1
    (row,) = _rows(h)
    assert row.attempts == 2
    assert row.next_attempt_at == h.clock.now() + backoff_s(2) == h.clock.now() + 60

    sink = SmtpSink(port).start()
    try:
        h.clock.advance(60)
        third = deliver_pending(h.platform.ctx)
        assert third.sent == 1
        (row,) = _rows(h)
        assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
        assert [m["To"] for m in sink.messages] == ["carol@example.eu"]
    finally:
        sink.stop()


def test_gives_up_after_max_attempts(make: Callable[..., Harness], hook: WebhookReceiver) -> None:
    h = make(notify_max_attempts=3)  # no SMTP host: the e-mail waits, the webhook is tried
    _set_webhook(h, "alice", hook.url)
    hook.status = 500
    _notify(h, "alice")
    reports = []
    for _ in range(5):
        reports.append(deliver_pending(h.platform.ctx))
        h.clock.advance(backoff_s(10))
    assert [r.retrying for r in reports] == [1, 1, 0, 0, 0]
    assert [r.failed for r in reports] == [0, 0, 1, 0, 0]
    assert all(r.held_emails == 1 for r in reports)
    assert len(hook.requests) == 3
    webhook = next(r for r in _rows(h) if r.channel == "webhook")
    assert (webhook.status, webhook.attempts) == ("failed", 3)
    assert webhook.last_error is not None and webhook.last_error.startswith("HTTP 500")
    email = next(r for r in _rows(h) if r.channel == "email")
    assert (email.status, email.attempts) == ("pending", 0)


def test_two_concurrent_passes_send_each_message_once(
    make: Callable[..., Harness], sink: SmtpSink, hook: WebhookReceiver
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _set_webhook(h, "alice", hook.url)
    _notify(h, "alice", n=15)  # 15 e-mails and 15 webhooks
    _notify(h, "carol", n=10)  # 10 e-mails
    barrier = threading.Barrier(2)
    reports: list[notify_delivery.DeliveryReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(deliver_pending(h.platform.ctx))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r.sent for r in reports) == 40
    assert sum(r.claimed for r in reports) == 40
    ids = [m["Message-ID"] for m in sink.messages]
    assert len(ids) == 25 and len(set(ids)) == 25
    deliveries = [r.headers["x-aif-delivery"] for r in hook.requests]
    assert len(deliveries) == 15 and len(set(deliveries)) == 15
    assert {r.status for r in _rows(h)} == {"sent"}
    assert {r.attempts for r in _rows(h)} == {1}


def test_interrupted_send_is_taken_back_after_the_lease(
    make: Callable[..., Harness], sink: SmtpSink
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _notify(h, "carol")
    (row,) = _rows(h)
    # a worker claims the row, then dies before sending
    assert notify_delivery._claim(h.platform.ctx, row.id, h.clock.now()) is not None
    assert _rows(h)[0].status == "sending"
    assert deliver_pending(h.platform.ctx).claimed == 0  # still leased
    h.clock.advance(LEASE_S)
    report = deliver_pending(h.platform.ctx)
    assert (report.recovered, report.sent) == (1, 1)
    (row,) = _rows(h)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(sink.messages) == 1


def test_a_late_finish_does_not_overwrite_a_new_claim(
    make: Callable[..., Harness], sink: SmtpSink
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _notify(h, "carol")
    (row,) = _rows(h)
    ctx = h.platform.ctx
    slow = notify_delivery._claim(ctx, row.id, h.clock.now())
    assert slow is not None
    h.clock.advance(LEASE_S)
    assert deliver_pending(ctx).sent == 1  # taken back and sent by another pass
    report = notify_delivery.DeliveryReport(at=h.clock.now())
    notify_delivery._finish(ctx, slow, "SMTPServerDisconnected: late", report)
    assert report.lost_claims == 1
    (row,) = _rows(h)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_without_smtp_host_emails_wait_and_are_readable(
    make: Callable[..., Harness], hook: WebhookReceiver
) -> None:
    h = make()
    _set_webhook(h, "alice", hook.url)
    _notify(h, "alice")
    _notify(h, "carol")
    report = deliver_pending(h.platform.ctx)
    assert (report.sent, report.held_emails) == (1, 2)

    alice = h.client("alice").get("/notifications").json()
    assert [(n["channel"], n["status"]) for n in alice] == [
        ("webhook", "sent"),
        ("email", "pending"),
    ]
    assert alice[1]["recipient"] == "alice@example.eu"
    assert "submitted" in alice[1]["body"]
    carol = h.client("carol").get("/notifications").json()
    assert [n["recipient"] for n in carol] == ["carol@example.eu"]
    # each reads their own by who they are, not by address: a changed or shared address
    # neither hides one's own nor shows another's
    with h.platform.ctx.sessions.begin() as session:
        session.execute(
            update(UserRow).where(UserRow.username == "carol").values(email="alice@example.eu")
        )
        session.execute(
            update(UserRow).where(UserRow.username == "alice").values(email="a.new@example.eu")
        )
    assert len(h.client("alice").get("/notifications").json()) == 2
    assert [n["recipient"] for n in h.client("carol").get("/notifications").json()] == [
        "carol@example.eu"
    ]
    oscar = h.client("oscar")
    assert len(oscar.get("/notifications").json()) == 3
    assert oscar.get("/notifications", params={"mine": True}).json() == []
    pending = oscar.get("/notifications", params={"status": "pending"}).json()
    assert {n["recipient"] for n in pending} == {"alice@example.eu", "carol@example.eu"}
    only = oscar.get("/notifications", params={"recipient": "carol@example.eu"}).json()
    assert len(only) == 1
    page = oscar.get("/notifications", params={"limit": 2}).json()
    rest = oscar.get("/notifications", params={"before": page[-1]["id"]}).json()
    assert [n["id"] for n in page + rest] == sorted((n["id"] for n in page + rest), reverse=True)
    assert len(page + rest) == 3
    bad = oscar.get("/notifications", params={"status": "lost"})
    assert bad.status_code == 422


def test_deliver_endpoint_is_for_operators(make: Callable[..., Harness], sink: SmtpSink) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port)
    _notify(h, "carol")
    refused = h.client("carol").post("/notifications/deliver")
    assert refused.status_code == 403
    assert sink.messages == []
    done = h.client("oscar").post("/notifications/deliver")
    assert done.status_code == 200
    assert done.json()["sent"] == 1
    assert len(sink.messages) == 1


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_platform_worker_delivers_and_runs_extra_jobs(
    make: Callable[..., Harness], sink: SmtpSink
) -> None:
    h = make(smtp_host="127.0.0.1", smtp_port=sink.port, notify_interval_s=0.1)
    swept: list[float] = []
    h.platform.programme_jobs.append(lambda ctx: swept.append(ctx.clock.now()))
    h.platform.start_broker()
    _notify(h, "carol")
    assert _wait_for(lambda: len(sink.messages) == 1)
    assert _wait_for(lambda: len(swept) >= 2)
    h.platform.stop()
    stopped_at = len(swept)
    time.sleep(0.3)
    assert len(swept) == stopped_at  # stop() joined the worker
    assert _rows(h)[0].status == "sent"


def test_worker_survives_failing_jobs(make: Callable[..., Harness]) -> None:
    h = make()
    calls: list[str] = []

    def broken(_ctx: ServiceContext) -> None:
        calls.append("broken")
        raise RuntimeError("a bad sweep")

    def fine(_ctx: ServiceContext) -> None:
        calls.append("fine")

    worker = ProgrammeWorker(h.platform.ctx, extra=[broken, fine], interval_s=0.05)
    worker.start()
    try:
        assert _wait_for(lambda: calls.count("fine") >= 3)
    finally:
        worker.stop()
    assert calls.count("broken") >= 3
    assert worker.passes >= 3
    assert worker._thread is None
