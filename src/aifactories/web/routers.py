"""Every router of the portal, in one list for the application to include."""

from __future__ import annotations

from fastapi import APIRouter

from aifactories.web import (
    applicant,
    figures,
    job_output,
    job_submit,
    jobs,
    login,
    oidc,
    pages,
    programme_figures,
    projects,
    reviewer,
    site_operator,
)
from aifactories.web.programme import programme_routers


def web_routers() -> list[APIRouter]:
    return [
        pages.router,
        login.router,
        oidc.router,
        *programme_routers(),
        programme_figures.router,
        reviewer.router,
        applicant.router,
        projects.router,
        jobs.router,
        job_output.router,
        job_submit.router,
        site_operator.router,
        figures.router,
    ]
