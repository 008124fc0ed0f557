"""The project pages of PIs and members: their projects with each balance, a project's
allocations, its GPU-hours used over time, its members; the PI adds and removes members, sets
their caps and asks for extensions and transfers.

Every read and change goes through the services the API calls (projects, allocations,
allocation_requests, member_cap_changes), with the signed-in principal, so a page shows and
does exactly what the API would: a project someone is not a member of answers 404 on every
page and form, a member's forged form gets the service's 403. The forms are shown only to
those who may use them (that only hides them; the services decide). After a change the
browser is sent back (303) with a message; a refused change shows the page again with the
service's words next to the form, and what was typed kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import AfterValidator, ValidationError

from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.projects import Role
from aifactories.services.core.context import Principal
from aifactories.services.core.input_types import check_line, check_ref
from aifactories.services.fund.valuation import project_allocations_valued
from aifactories.services.programme import allocation_requests
from aifactories.services.programme import projects as project_service
from aifactories.services.programme.allocation_common import site_text
from aifactories.services.programme.allocations import list_allocations
from aifactories.services.programme.member_cap_changes import set_member_cap
from aifactories.services.programme.project_views import (
    PAGE_SIZE,
    project_summaries,
    project_summary,
    usage_over_time,
)
from aifactories.web.project_chart import day_text, usage_chart
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context
from aifactories.web.templating import gpu_hours

router = APIRouter(include_in_schema=False)

Code = Annotated[str, AfterValidator(check_ref), Path(min_length=1, max_length=64)]
Username = Annotated[str, AfterValidator(check_line), Path(min_length=1, max_length=64)]
Short = Annotated[str, Form(max_length=200)]
Long = Annotated[str, Form(max_length=10_000)]


@dataclass(frozen=True)
class FormError:
    """A refused form: which form (``add``, ``cap:USER``, ``remove:USER``, ``request:ID``),
    which field, if the service named one, and its words."""

    form: str
    field: str | None
    message: str


@router.get("/portal/projects", response_class=HTMLResponse)
def projects_page(
    request: Request,
    principal: SignedIn,
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """The caller's projects (an operator: every project), each with its balance; a page at
    a time, and those whose code or title holds ``q``."""
    listed = project_summaries(
        context(request),
        principal,
        search=q.strip() or None,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return render(
        request,
        "projects/list.html",
        page="projects",
        listed=listed,
        projects=listed.projects,
        q=q.strip(),
        number=page,
        pages=max(1, -(-listed.total // PAGE_SIZE)),
    )


@router.get("/portal/projects/{code}", response_class=HTMLResponse)
def project_page(request: Request, principal: SignedIn, code: Code) -> HTMLResponse:
    return _project_page(request, principal, code)


@router.post("/portal/projects/{code}/members", dependencies=[CsrfChecked])
def add_member(
    request: Request,
    principal: SignedIn,
    code: Code,
    username: Short = "",
    role: Short = "member",
    cap_gpu_hours: Short = "",
) -> Response:
    typed = {"username": username, "role": role, "cap_gpu_hours": cap_gpu_hours}
    name = username.strip()
    try:
        body = project_service.MemberIn(
            username=name, role=role, cap_gpu_hours=_hours(cap_gpu_hours, "cap_gpu_hours")
        )
        view = project_service.add_member(context(request), principal, code, body)
    except (InvalidInput, Conflict, ValidationError) as refused:
        return _refused(request, principal, code, "add", refused, typed)
    project = view["code"]
    return redirect(
        request,
        f"/portal/projects/{project}#members",
        f"{name} is now {'a PI' if body.role is Role.PI else 'a member'} of {project}.",
    )


@router.post("/portal/projects/{code}/members/{username}/cap", dependencies=[CsrfChecked])
def set_cap(
    request: Request, principal: SignedIn, code: Code, username: Username, cap_gpu_hours: Short = ""
) -> Response:
    try:
        cap = set_member_cap(
            context(request), principal, code, username, _hours(cap_gpu_hours, "cap_gpu_hours")
        )
    except (InvalidInput, Conflict) as refused:
        typed = {"cap_gpu_hours": cap_gpu_hours}
        return _refused(request, principal, code, f"cap:{username}", refused, typed)
    shown = "no cap" if cap is None else f"a cap of {gpu_hours(cap)} GPU-hours"
    return redirect(request, f"/portal/projects/{code}#members", f"{username} has {shown} now.")


@router.post("/portal/projects/{code}/members/{username}/remove", dependencies=[CsrfChecked])
def remove_member(
    request: Request, principal: SignedIn, code: Code, username: Username, reason: Long = ""
) -> Response:
    try:
        if not reason.strip():
            raise InvalidInput("reason", "is empty; say why, the member reads it")
        project_service.remove_member(context(request), principal, code, username, reason.strip())
    except (InvalidInput, Conflict) as refused:
        typed = {"reason": reason}
        return _refused(request, principal, code, f"remove:{username}", refused, typed)
    # a PI who removed themselves (another PI stays) may no longer see the project
    gone = username == principal.username and not principal.is_operator
    return redirect(
        request,
        "/portal/projects" if gone else f"/portal/projects/{code}#members",
        f"{username} is no longer a member of {code}.",
    )


@router.post(
    "/portal/projects/{code}/allocations/{allocation_id}/requests", dependencies=[CsrfChecked]
)
def request_change(
    request: Request,
    principal: SignedIn,
    code: Code,
    allocation_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    kind: Short = "extension",
    gpu_hours: Short = "",
    until: Short = "",
    to_allocation: Short = "",
    justification: Long = "",
) -> Response:
    """A PI asks for more GPU-hours or a later end (extension), or to move GPU-hours to
    another allocation of the project (transfer); the programme decides."""
    ctx = context(request)
    # only an allocation of the project in the address (an unknown one: the service's 404)
    mine = {a.id for a in list_allocations(ctx, principal, code)}
    typed = {
        "kind": kind,
        "gpu_hours": gpu_hours,
        "until": until,
        "to_allocation": to_allocation,
        "justification": justification,
    }
    if allocation_id not in mine:
        raise NotFound(f"allocation {allocation_id} is not one of {code}'s")
    try:
        body = allocation_requests.AllocationRequestIn(
            kind=kind,
            gpu_hours=_hours(gpu_hours, "gpu_hours") or 0.0,
            until=until.strip() or None,
            to_allocation=_whole(to_allocation, "to_allocation"),
            justification=justification,
        )
        made = allocation_requests.request_change(ctx, principal, allocation_id, body)
    except (InvalidInput, Conflict, ValidationError) as refused:
        return _refused(request, principal, code, f"request:{allocation_id}", refused, typed)
    return redirect(
        request,
        f"/portal/projects/{code}#requests",
        f"Request {made.id} ({made.kind} of allocation {allocation_id}) is sent; the programme "
        "decides and you are told.",
    )


def _project_page(
    request: Request,
    principal: Principal,
    code: str,
    *,
    error: FormError | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = context(request)
    project = project_service.get_project(ctx, principal, code)  # 404 first: nothing leaks
    summary = project_summary(ctx, principal, code)
    valued = project_allocations_valued(ctx, principal, code)  # one read: euros match hours
    allocations = [v.allocation for v in valued]
    euros = {v.allocation.id: v.euros for v in valued}
    usage = usage_over_time(ctx, principal, code)
    role = principal.role_in(project["id"])
    is_pi = role is Role.PI
    requests = (
        allocation_requests.list_requests(ctx, principal, None, code)
        if is_pi or principal.is_operator
        else []
    )
    return render(
        request,
        "projects/project.html",
        page="projects",
        status_code=status_code,
        project=project,
        summary=summary,
        allocations=allocations,
        places={a.id: site_text(a.site_id, a.pool_sites) for a in allocations},
        euros=euros,
        usage=usage,
        chart=usage_chart(usage),
        day_text=day_text,
        requests=sorted(requests, key=lambda r: -r.id),
        manages=is_pi or principal.is_operator,
        is_pi=is_pi,
        error=error,
        typed=typed or {},
    )


def _refused(
    request: Request,
    principal: Principal,
    code: str,
    form: str,
    refused: Exception,
    typed: dict[str, str],
) -> HTMLResponse:
    """The project page again, the service's words next to the form that was refused."""
    project = project_service.get_project(context(request), principal, code)
    role = principal.role_in(project["id"])
    # a forged form that failed its checks before the service could say no: the service's
    # answer (only those who see a form see its errors)
    if form.startswith("request:") and role is not Role.PI:
        raise PermissionDenied(
            f"only a PI of {project['code']} can ask to change its allocations; ask your PI"
        )
    if not form.startswith("request:") and role is not Role.PI and not principal.is_operator:
        raise PermissionDenied(
            f"only the PI of {project['code']} or a programme operator can change its members"
        )
    error = _form_error(form, refused)
    status = 409 if isinstance(refused, Conflict) else 422
    return _project_page(request, principal, code, error=error, typed=typed, status_code=status)


def _form_error(form: str, refused: Exception) -> FormError:
    if isinstance(refused, InvalidInput):
        return FormError(form, refused.field, refused.beside_field())
    if isinstance(refused, ValidationError):
        first: dict[str, Any] = dict(refused.errors()[0])
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        return FormError(form, field, str(first.get("msg", "is not valid")))
    return FormError(form, None, getattr(refused, "message", str(refused)))


def _hours(text: str, field: str) -> float | None:
    """A number of GPU-hours typed in a form; empty: None."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            field, f"{text!r} is not a number of GPU-hours; write e.g. 250"
        ) from None


def _whole(text: str, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(field, f"{text!r} is not an allocation number")
    return int(text)
