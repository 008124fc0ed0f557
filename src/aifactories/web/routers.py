"""Every router of the portal, in one list for the application to include."""

from __future__ import annotations

from fastapi import APIRouter

from aifactories.web import applicant, job_output, job_submit, jobs, login, pages, projects
from aifactories.web.programme import programme_routers


def web_routers() -> list[APIRouter]:
    return [
        pages.router,
        login.router,
        *programme_routers(),
        applicant.router,
        projects.router,
        jobs.router,
        job_output.router,
        job_submit.router,
    ]
