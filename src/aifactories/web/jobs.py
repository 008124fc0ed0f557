"""The jobs pages: the caller's jobs (all their projects, or one), a job's page with its
placement, charge, array, options and logs, and cancel.

The same services as ``GET /jobs``, ``GET /jobs/{ref}`` and ``DELETE /jobs/{ref}``, with the
signed-in principal: a job of another project is the same 404 as one that does not exist.
Live state without a reload: static/jobs.js asks the fragments below again every few
seconds while a job shown is not finished (the pages work without it, they just do not
refresh).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import Conflict, PermissionDenied
from aifactories.domain.jobs import FINAL_STATES, JobState
from aifactories.domain.units import human_duration as duration
from aifactories.services.core.context import Principal
from aifactories.services.jobs.job_pages import (
    JobsPage,
    job_detail,
    jobs_page,
    project_choices,
)
from aifactories.services.jobs.job_queries import cancel_job
from aifactories.web.job_output import STREAMS, output_panel
from aifactories.web.render import redirect, render
from aifactories.web.session import CsrfChecked, SignedIn, context

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
JOB_REF = r"^[0-9]{1,10}(_[0-9]{1,7})?$"
PROJECT_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ACTIVE = "active"  # the filter for every state that may still change
STATE_CHOICES: list[tuple[str, str]] = [
    ("", "any state"),
    (ACTIVE, "not finished (pending, placed, submitted, running)"),
    *((s.value, s.value) for s in JobState),
]

Ref = Annotated[str, Path(pattern=JOB_REF, description="123, or 123_4 for an array task")]
Code = Annotated[str, Path(pattern=PROJECT_CODE, max_length=64)]
StateQ = Annotated[str, Query(max_length=20)]
ProjectQ = Annotated[str, Query(max_length=64)]
PageQ = Annotated[int, Query(ge=1, le=1_000_000)]

# what each state means for the person reading the page
STATE_WORDS: dict[str, str] = {
    "pending": "waiting to be placed at a site",
    "placed": "placed at a site, being handed to it",
    "submitted": "queued at its site",
    "running": "running",
    "completed": "finished successfully",
    "failed": "failed",
    "cancelled": "cancelled",
    "timeout": "stopped at its time limit",
}


def _states(state: str) -> list[str]:
    if state == ACTIVE:
        return [s.value for s in JobState if s not in FINAL_STATES]
    return [state] if state else []


def _summary(page: JobsPage) -> str:
    """For the live region: how many jobs of this page are in each state."""
    counts: dict[str, int] = {}
    for line in page.lines:
        counts[line.state.value] = counts.get(line.state.value, 0) + 1
    if not counts:
        return "No jobs."
    return ", ".join(f"{n} {state}" for state, n in counts.items()) + "."


def _list(
    request: Request,
    principal: Principal,
    project: str | None,
    state: str,
    page: int,
    fragment: bool,
) -> HTMLResponse:
    ctx = context(request)
    found = jobs_page(ctx, principal, project, _states(state), page, PER_PAGE)
    query = {"state": state} if state else {}
    base = f"/portal/projects/{project}/jobs" if project else "/portal/jobs"
    rows_src = "/portal/jobs/rows?" + urlencode(
        {**({"project": project} if project else {}), **query, "page": page}
    )
    if fragment:
        return render(
            request,
            "jobs/rows.html",
            jobs=found,
            summary=_summary(found),
            rows_src=rows_src,
            words=STATE_WORDS,
        )
    return render(
        request,
        "jobs/list.html",
        page="jobs",
        jobs=found,
        summary=_summary(found),
        rows_src=rows_src,
        words=STATE_WORDS,
        project=project,
        state=state,
        state_choices=STATE_CHOICES,
        projects=project_choices(ctx, principal),
        base=base,
        page_link=lambda n: base + "?" + urlencode({**query, "page": n}),
    )


@router.get("/portal/jobs", response_class=HTMLResponse)
def jobs(
    request: Request,
    principal: SignedIn,
    project: ProjectQ = "",
    state: StateQ = "",
    page: PageQ = 1,
) -> Response:
    """The caller's jobs across their projects, newest first, as ``aif jobs`` lists them."""
    if project:  # the filter's form sends ?project=CODE: that project's own page
        query = f"?{urlencode({'state': state})}" if state else ""
        return redirect(request, f"/portal/projects/{quote(project, safe='')}/jobs{query}")
    return _list(request, principal, None, state, page, fragment=False)


@router.get("/portal/jobs/rows", response_class=HTMLResponse)
def job_rows(
    request: Request,
    principal: SignedIn,
    project: ProjectQ = "",
    state: StateQ = "",
    page: PageQ = 1,
) -> HTMLResponse:
    """The list's table body alone, for jobs.js to refresh it."""
    return _list(request, principal, project or None, state, page, fragment=True)


@router.get("/portal/projects/{code}/jobs", response_class=HTMLResponse)
def project_jobs(
    request: Request, principal: SignedIn, code: Code, state: StateQ = "", page: PageQ = 1
) -> HTMLResponse:
    """One project's jobs (404 for a project the caller is not in)."""
    return _list(request, principal, code, state, page, fragment=False)


@router.get("/portal/jobs/{ref}", response_class=HTMLResponse)
def job_page(request: Request, principal: SignedIn, ref: Ref) -> HTMLResponse:
    """A job: state, placement, wait reason, times, charge, array, options, logs."""
    detail = job_detail(context(request), principal, ref)
    panels = []
    if detail.may_read_output:
        # without --error, standard error goes into the output's file: one log to show
        for stream in STREAMS if detail.separate_error else STREAMS[:1]:
            panel = output_panel(request, principal, ref, stream)
            if panel is not None:
                panels.append(panel)
    return render(
        request,
        "jobs/job.html",
        page="jobs",
        job=detail,
        words=STATE_WORDS,
        panels=panels,
        duration=duration,
    )


@router.get("/portal/jobs/{ref}/summary", response_class=HTMLResponse)
def job_summary(request: Request, principal: SignedIn, ref: Ref) -> HTMLResponse:
    """The job's state, placement and times alone, for jobs.js to refresh them."""
    detail = job_detail(context(request), principal, ref)
    return render(request, "jobs/summary.html", job=detail, words=STATE_WORDS, duration=duration)


@router.post("/portal/jobs/{ref}/cancel", dependencies=[CsrfChecked])
def cancel(request: Request, principal: SignedIn, ref: Ref) -> Response:
    """Cancel the job (``123`` of an array: every task), if the caller may: its owner, the
    project's PI or a programme operator. A job the caller cannot see: 404."""
    page = f"/portal/jobs/{ref}"
    try:
        row = cancel_job(context(request), principal, ref)
    except (PermissionDenied, Conflict) as refused:
        return redirect(request, page, refused.message, "error")
    state = JobState(row.state)
    if state is JobState.CANCELLED:
        message = f"Job {ref} is cancelled."
    elif state.final:
        message = f"Job {ref} had already ended ({state.value}): nothing to cancel."
    else:
        message = f"Job {ref}: cancel requested; its site stops it at the next broker cycle."
    return redirect(request, page, message)
