"""The audit log in the portal: filters (actor, action, subject, time range), pages of
entries newest first, and the export of every matching entry as CSV, as the API's /audit and
/audit/export give them (services.notifications.audit). Times in the form are UTC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import InvalidInput
from aifactories.services.notifications import audit as audit_service
from aifactories.web.programme_common import operator
from aifactories.web.render import render
from aifactories.web.session import SignedIn

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
FILTERS = ("actor", "action", "subject", "since", "until")


@dataclass(frozen=True)
class Filters:
    actor: str | None
    action: str | None
    subject: str | None
    since: float | None
    until: float | None
    typed: dict[str, str]  # what the operator typed, to keep in the form and the links

    def query(self, **more: str | int) -> str:
        return urlencode({**{k: v for k, v in self.typed.items() if v}, **more})


def _filters(params: Any) -> tuple[Filters, dict[str, str]]:
    """The filters from the query string, and the errors of those that cannot be read."""
    typed = {name: str(params.get(name) or "").strip()[:200] for name in FILTERS}
    errors: dict[str, str] = {}
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = audit_service.parse_time(typed[name], name)
        except InvalidInput as invalid:
            errors[name] = invalid.beside_field()
            times[name] = None
    found = Filters(
        typed["actor"] or None,
        typed["action"] or None,
        typed["subject"] or None,
        times["since"],
        times["until"],
        typed,
    )
    return found, errors


def _text(value: Any) -> str:
    """A detail's value in words: lists joined, mappings as name value pairs, no brackets."""
    if isinstance(value, dict):
        return "; ".join(f"{k} {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


@router.get("/portal/programme/audit", response_class=HTMLResponse)
def audit_page(request: Request, principal: SignedIn, before: int | None = None) -> HTMLResponse:
    """One page of entries, newest first; "older" continues below the last one shown."""
    ctx = operator(request, principal, "read the audit log")
    found, errors = _filters(request.query_params)
    entries = []
    if not errors:
        entries = audit_service.list_audit(
            ctx,
            principal,
            subject=found.subject,
            action=found.action,
            actor=found.actor,
            since=found.since,
            until=found.until,
            limit=PAGE_SIZE + 1,  # one more: is there an older page?
            before=before,
        )
    older = entries[PAGE_SIZE - 1].id if len(entries) > PAGE_SIZE else None
    return render(
        request,
        "programme/audit.html",
        page="programme",
        status_code=422 if errors else 200,
        entries=[(e, [(k, _text(v)) for k, v in e.details.items()]) for e in entries[:PAGE_SIZE]],
        filters=found,
        errors=errors,
        before=before,
        older=found.query(before=older) if older is not None else None,
        newest=found.query(),
        export=found.query(format="csv"),
    )


@router.get("/portal/programme/audit/export", response_model=None)
def export(request: Request, principal: SignedIn) -> StreamingResponse | HTMLResponse:
    """Every matching entry, oldest first, as a CSV download (the API's export)."""
    ctx = operator(request, principal, "read the audit log")
    found, errors = _filters(request.query_params)
    if errors:
        return audit_page(request, principal)
    rows = audit_service.export_audit(
        ctx,
        principal,
        fmt="csv",
        subject=found.subject,
        action=found.action,
        actor=found.actor,
        since=found.since,
        until=found.until,
    )
    stamp = to_datetime(ctx.clock.now()).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        iter(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="aifactories-audit-{stamp}.csv"',
            "X-Aif-Rows": str(rows.rows),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
