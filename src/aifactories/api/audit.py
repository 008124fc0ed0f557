"""REST endpoints: the audit log (list, export) and the notification outbox (list, deliver)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from aifactories.api.deps import Ctx, Me
from aifactories.api.params import BeforeQ, TextQ, WordQ, word_query
from aifactories.domain.clock import to_datetime
from aifactories.services.notifications import audit as audit_service
from aifactories.services.notifications import notify_delivery

router = APIRouter(tags=["audit"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
SubjectQ = Annotated[WordQ, word_query("exact, or a prefix ending in '*': proposal:12, proposal:*")]
ActionQ = Annotated[
    WordQ, word_query("exact, or a prefix ending in '*': proposal.technical_check.*")
]
ActorQ = Annotated[WordQ, word_query("a username, or 'system'")]
SinceQ = Annotated[
    WordQ, word_query("from this time (inclusive): ISO 8601, UTC unless an offset is given")
]
UntilQ = Annotated[WordQ, word_query("before this time (exclusive): ISO 8601")]


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor_id: int | None
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]


class NotificationOut(BaseModel):
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
    created_at: str
    next_attempt_at: str
    sent_at: str | None

    @classmethod
    def of(cls, view: notify_delivery.NotificationView) -> NotificationOut:
        return cls(
            id=view.id,
            channel=view.channel,
            recipient=view.recipient,
            event=view.event,
            subject=view.subject,
            body=view.body,
            payload=view.payload,
            status=view.status,
            attempts=view.attempts,
            last_error=view.last_error,
            created_at=to_datetime(view.created_at).isoformat(),
            next_attempt_at=to_datetime(view.next_attempt_at).isoformat(),
            sent_at=to_datetime(view.sent_at).isoformat() if view.sent_at is not None else None,
        )


class DeliveryReportOut(BaseModel):
    at: str
    claimed: int
    sent: int
    retrying: int
    failed: int
    recovered: int
    held_emails: int
    lost_claims: int
    errors: list[str]


@router.get("/audit", response_model=list[AuditEntryOut])
def list_audit(
    context: Ctx,
    who: Me,
    subject: SubjectQ = None,
    action: ActionQ = None,
    actor: ActorQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: Annotated[int, Query(ge=1, le=audit_service.MAX_LIMIT)] = 100,
    before: BeforeQ = None,
) -> list[AuditEntryOut]:
    """Audit entries, newest first (programme operators; site operators: their sites'
    technical checks)."""
    entries = audit_service.list_audit(
        context,
        who,
        subject=subject,
        action=action,
        actor=actor,
        since=audit_service.parse_time(since, "since"),
        until=audit_service.parse_time(until, "until"),
        limit=limit,
        before=before,
    )
    return [AuditEntryOut(**e.to_json()) for e in entries]


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the entries, one a line (CSV with a header, or JSON lines)",
            "content": {t: {"schema": {"type": "string"}} for t in MEDIA_TYPES.values()},
        }
    },
)
def export_audit(
    context: Ctx,
    who: Me,
    fmt: Annotated[
        Literal["csv", "jsonl"], Query(alias="format", description="csv or jsonl")
    ] = "csv",
    subject: SubjectQ = None,
    action: ActionQ = None,
    actor: ActorQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> StreamingResponse:
    """Every matching entry, oldest first, as a download; ``X-Aif-Rows`` tells how many."""
    export = audit_service.export_audit(
        context,
        who,
        fmt=fmt,
        subject=subject,
        action=action,
        actor=actor,
        since=audit_service.parse_time(since, "since"),
        until=audit_service.parse_time(until, "until"),
    )
    stamp = to_datetime(context.clock.now()).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        iter(export),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="aifactories-audit-{stamp}.{fmt}"',
            "X-Aif-Rows": str(export.rows),
        },
    )


@router.get("/notifications", response_model=list[NotificationOut])
def list_notifications(
    context: Ctx,
    who: Me,
    status: Annotated[WordQ, word_query("pending, sending, sent or failed")] = None,
    recipient: Annotated[TextQ, Query(max_length=1024, description="an e-mail or a URL")] = None,
    event: WordQ = None,
    mine: Annotated[bool, Query(description="operators: only their own")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    before: BeforeQ = None,
) -> list[NotificationOut]:
    """The outbox, newest first: everything for programme operators, your own otherwise."""
    views = notify_delivery.list_notifications(
        context,
        who,
        status=status,
        recipient=recipient,
        event=event,
        mine=mine,
        limit=limit,
        before=before,
    )
    return [NotificationOut.of(v) for v in views]


@router.post("/notifications/deliver", response_model=DeliveryReportOut)
def deliver(
    context: Ctx, who: Me, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> DeliveryReportOut:
    """Deliver what is due now (programme operators), without waiting for the worker."""
    report = notify_delivery.deliver_now(context, who, limit=limit)
    return DeliveryReportOut(**report.to_json())
