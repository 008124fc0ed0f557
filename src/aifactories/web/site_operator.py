"""The site operator's pages: the technical checks waiting for one of their sites, and each
site they operate: its partitions (GPUs, free now, up or down for maintenance), the GPU-hours
it delivered by project, and the jobs queued and running there. Only the caller's own sites:
another site is refused (403), one the catalogue does not have is not found (404).

The technical check is the API's (services/programme/technical_checks.py); the maintenance
switch is services/sites/partition_state.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import Conflict, InvalidInput, PermissionDenied
from aifactories.domain.sites import Site
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.jobs.sites import PartitionView, list_sites
from aifactories.services.programme.proposals import list_proposals
from aifactories.services.programme.technical_checks import technical_check
from aifactories.services.sites.partition_state import (
    PartitionDown,
    down_partitions,
    set_partition_down,
)
from aifactories.services.sites.site_views import (
    jobs_at_site,
    operated_site,
    usage_at_site,
)
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context

router = APIRouter(include_in_schema=False)
OUTCOMES = (
    ("accept", "Pass: award it at this site"),
    ("revise", "Ask the applicant for a revision"),
    ("reject", "Fail: reject it"),
)


@dataclass(frozen=True)
class PartitionRow:
    view: PartitionView
    down: PartitionDown | None
    queued: int
    running: int

    @property
    def state(self) -> str:
        if self.down is not None:
            return "down for maintenance"
        if self.view.free_gpus is None:
            return "not reported yet"
        return "up" if self.view.available else (self.view.status_reason or "unavailable")


def _require_site_operator(principal: Principal) -> None:
    if not principal.operated_sites:
        raise PermissionDenied(
            "this page is for site operators; a platform administrator names a site's operators"
        )


def _checks_to_do(ctx: ServiceContext, principal: Principal) -> list[dict[str, Any]]:
    """Proposals waiting for a technical check that one of the caller's sites could host,
    each with those sites (a programme operator sees more through the API; here, only what
    their own sites are asked)."""
    waiting = list_proposals(ctx, principal, status="technical_check", limit=500)
    out = []
    for proposal in waiting:
        mine = [s for s in proposal["candidate_sites"] if s in principal.operated_sites]
        if mine:
            out.append({**proposal, "my_sites": mine})
    return sorted(out, key=lambda p: p["submitted_at"] or 0)


def _site_rows(
    ctx: ServiceContext, principal: Principal, site_ids: set[str]
) -> dict[str, list[PartitionRow]]:
    down = down_partitions(ctx, principal)
    rows: dict[str, list[PartitionRow]] = {}
    for view in list_sites(ctx):
        if view.site.id not in site_ids:
            continue
        rows[view.site.id] = [PartitionRow(p, down.get(p.id), 0, 0) for p in view.partitions]
    return rows


def _overview(
    request: Request,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    failed: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    _require_site_operator(principal)
    ctx = context(request)
    sites = sorted(principal.operated_sites)
    partitions = _site_rows(ctx, principal, set(sites))
    names: dict[str, Site] = {s.id: s for s in ctx.catalogue.sites}
    return render(
        request,
        "site/overview.html",
        page="site",
        status_code=status_code,
        checks=_checks_to_do(ctx, principal),
        sites=[(names[s], partitions.get(s, [])) for s in sites if s in names],
        outcomes=OUTCOMES,
        errors=errors or {},
        values=values or {},
        failed=failed,
    )


@router.get("/portal/site", response_class=HTMLResponse)
def site_overview(request: Request, principal: SignedIn) -> HTMLResponse:
    return _overview(request, principal)


def _site_page(
    request: Request,
    principal: Principal,
    site_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    failed: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    site = operated_site(ctx, principal, site_id)
    jobs = jobs_at_site(ctx, principal, site.id)
    counts: dict[tuple[str, bool], int] = {}
    for job in jobs:
        key = (job.partition, job.state == "running")
        counts[key] = counts.get(key, 0) + 1
    rows = [
        PartitionRow(
            r.view, r.down, counts.get((r.view.name, False), 0), counts.get((r.view.name, True), 0)
        )
        for r in _site_rows(ctx, principal, {site.id}).get(site.id, [])
    ]
    usage = usage_at_site(ctx, principal, site.id)
    return render(
        request,
        "site/site.html",
        page="site",
        status_code=status_code,
        site=site,
        partitions=rows,
        jobs=jobs,
        running=[j for j in jobs if j.state == "running"],
        queued=[j for j in jobs if j.state != "running"],
        usage=usage,
        delivered=round(sum(u.delivered_gpu_hours for u in usage), 2),
        charged=round(sum(u.charged_gpu_hours for u in usage), 2),
        errors=errors or {},
        values=values or {},
        failed=failed,
    )


@router.get("/portal/site/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, principal: SignedIn, site_id: str) -> HTMLResponse:
    return _site_page(request, principal, site_id)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/portal/site/checks/{proposal_id}", dependencies=[CsrfChecked], response_model=None)
async def check_proposal(request: Request, principal: SignedIn, proposal_id: int) -> Response:
    _require_site_operator(principal)
    ctx = context(request)
    form = await request.form()
    outcome, reason = _text(form, "outcome"), _text(form, "reason")
    site = _text(form, "site_id") or None
    try:
        row = await run_in_threadpool(
            technical_check, ctx, principal, proposal_id, outcome, reason, site
        )
    except InvalidInput as wrong:
        said = wrong.detail
        if wrong.field == "outcome":  # the API's words name its values, not the buttons
            said = "choose one: pass, ask for a revision, or fail"
        return _overview(
            request,
            principal,
            errors={wrong.field: said},
            values={"outcome": outcome, "reason": reason, "site_id": site or ""},
            failed=proposal_id,
            status_code=422,
        )
    except Conflict as refused:
        return redirect(request, "/portal/site", refused.message, "error")
    said = {
        "awarded": "passed: the proposal is awarded",
        "revision": "sent back for a revision",
        "rejected": "failed: the proposal is rejected",
    }.get(row.status, f"recorded (the proposal is {row.status})")
    return redirect(request, "/portal/site", f"The technical check of proposal {row.id} is {said}.")


@router.post(
    "/portal/site/{site_id}/partitions/{name}",
    dependencies=[CsrfChecked],
    response_model=None,
)
async def partition_state(
    request: Request, principal: SignedIn, site_id: str, name: str
) -> Response:
    ctx = context(request)
    site = operated_site(ctx, principal, site_id)
    form = await request.form()
    action, reason = _text(form, "action"), _text(form, "reason")
    partition_id = f"{site.id}/{name}"
    if action not in ("down", "up"):
        return _site_page(
            request,
            principal,
            site.id,
            errors={"action": "choose to take the partition down or to bring it back up"},
            values={"reason": reason},
            failed=name,
            status_code=422,
        )
    try:
        await run_in_threadpool(
            set_partition_down, ctx, principal, partition_id, action == "down", reason
        )
    except InvalidInput as wrong:
        return _site_page(
            request,
            principal,
            site.id,
            errors={wrong.field: wrong.detail},
            values={"reason": reason},
            failed=name,
            status_code=422,
        )
    except Conflict as refused:
        return redirect(request, f"/portal/site/{site.id}", refused.message, "error")
    said = "is down for maintenance" if action == "down" else "is back up"
    return redirect(request, f"/portal/site/{site.id}", f"Partition {partition_id} {said}.")
