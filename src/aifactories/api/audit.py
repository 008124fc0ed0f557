"""REST endpoints: the audit log (list, export) and the notification outbox (list, deliver)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from aifactories.api.deps import Ctx, Me
from aifactories.domain.clock import to_datetime
from aifactories.services import audit as audit_service
from aifactories.services import notify_delivery

router = APIRouter(tags=["audit"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
SubjectQ = Annotated[
    str | None, Query(description="exact, or a prefix ending in '*': proposal:12, proposal:*")
]
ActionQ = Annotated[
    str | None,
    Query(description="exact, or a prefix ending in '*': proposal.technical_check.*"),
]
ActorQ = Annotated[str | None, Query(description="a username, or 'system'")]
SinceQ = Annotated[
    str | None,
    Query(description="from this time (inclusive): ISO 8601, UTC unless an offset is given"),
]
UntilQ = Annotated[str | None, Query(description="before this time (exclusive): ISO 8601")]


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
    before: Annotated[int | None, Query(description="ids below this one: the next page")] = None,
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
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
)
def export_audit(
    context: Ctx,
    who: Me,
    fmt: Annotated[str, Query(alias="format", description="csv or jsonl")] = "csv",
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
    status: Annotated[str | None, Query(description="pending, sending, sent or failed")] = None,
    recipient: Annotated[str | None, Query(description="an e-mail address or a URL")] = None,
    event: str | None = None,
    mine: Annotated[bool, Query(description="operators: only their own")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    before: Annotated[int | None, Query(description="ids below this one: the next page")] = None,
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
