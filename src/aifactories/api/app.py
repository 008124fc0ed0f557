"""``create_app(settings)``: the REST API over the services, with the broker in its lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from anyio import to_thread
from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import DBAPIError

from aifactories import __version__
from aifactories.api import (
    allocations,
    audit,
    awards,
    calls,
    device_login,
    docs_ui,
    errors,
    fund_costs,
    invest,
    job_output,
    limits,
    metrics,
    programme_figures,
    projects,
    proposals,
    reviews,
    tokens,
)
from aifactories.api import health as probes  # "health" is the /health endpoint below
from aifactories.api.deps import ERRORS as _ERRORS
from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.observability import ObservabilityMiddleware
from aifactories.api.params import PathJobRef, PathRef, RefQ
from aifactories.api.schemas import BalanceOut, HealthOut, JobOut, MeOut, SiteOut
from aifactories.services.core.auth import project_codes
from aifactories.services.fund.costs import site_partition_costs
from aifactories.services.fund.valuation import job_euros
from aifactories.services.jobs import job_queries
from aifactories.services.jobs import jobs as job_service
from aifactories.services.jobs.balances import project_balance
from aifactories.services.jobs.sites import list_sites
from aifactories.services.logging_setup import configure_logging
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from aifactories.web import pages as web_pages
from aifactories.web.routers import web_routers


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    """Build the API. Pass a ready ``platform`` (tests) or let settings make one."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = platform is None
        plat = platform or Platform(settings)
        plat.check_schema()
        # Few threads for blocking endpoints: with the GIL, more threads than cores only add
        # switching; requests queue on the event loop instead (docs/benchmarks.md).
        to_thread.current_default_thread_limiter().total_tokens = plat.settings.api_threads
        app.state.platform = plat
        if plat.settings.run_broker:
            plat.start_broker()
        try:
            yield
        finally:
            if own:
                plat.stop()

    app = FastAPI(
        title="aifactories",
        version=__version__,
        description="One federation of Europe's AI factories: sites, jobs, balances.",
        lifespan=lifespan,
        docs_url=None,  # served from local files by docs_ui (no CDN)
        redoc_url=None,
    )
    errors.install(app)
    docs_ui.install(app)
    app.mount(web_pages.STATIC_URL, web_pages.static_files(), name="portal")
    for portal in web_routers():  # the portal's pages (web/): HTML, not in the schema
        app.include_router(portal)
    limits.install(app, settings)  # the body limit (413) and rate limits (429)
    app.state.metrics = metrics.make_metrics(lambda: getattr(app.state, "platform", None))
    if platform is not None:
        app.state.platform = platform  # usable without running the lifespan (tests)

    @app.get("/health", response_model=HealthOut, tags=["platform"])
    def health(request: Request, context: Ctx) -> dict[str, object]:
        plat: Platform = request.app.state.platform
        report = plat.broker.last_report if plat.settings.run_broker else None
        lease = _lease_or_none(plat)
        return {
            "status": "ok" if lease is not None else "database unavailable",
            "version": __version__,
            "sites": len(context.catalogue.operational_sites),
            "broker": None
            if report is None
            else {
                "policy": plat.broker.policy_name,
                "last_cycle_at": report.at,
                "last_cycle_ms": round(report.duration_s * 1000, 2),
                "waiting": report.waiting,
                "unreachable_sites": sorted(report.unreachable_sites),
            },
            "lease": lease,
        }

    @app.get("/me", response_model=MeOut, responses=_ERRORS, tags=["platform"])
    def me(context: Ctx, who: Me) -> MeOut:
        codes = project_codes(context, who)
        return MeOut(
            user_id=who.user_id,
            username=who.username,
            is_operator=who.is_operator,
            projects={str(p): r.value for p, r in who.roles.items()},
            project_codes={codes[p]: r.value for p, r in who.roles.items() if p in codes},
        )

    @app.get("/sites", response_model=list[SiteOut], responses=_ERRORS, tags=["sites"])
    def sites(context: Ctx, _who: Me) -> list[SiteOut]:
        costs = site_partition_costs(context)
        return [SiteOut.of(view, costs) for view in list_sites(context)]

    @app.post("/jobs", response_model=JobOut, status_code=201, responses=_ERRORS, tags=["jobs"])
    async def submit(
        context: Ctx, who: Me, body: job_service.JobRequest, key: IdempotencyKey = None
    ) -> Response:
        # With a local database the submission runs on the event loop: ~1.5 ms of CPU around
        # sub-millisecond database calls, where a thread hop and GIL hand-offs cost more than
        # the work (docs/benchmarks.md). A remote database's round trips would stall the loop:
        # there it goes to a worker thread.
        if context.settings.inline_database_calls(context.write_engine.url):
            row = job_service.submit_job(context, who, body, key)
        else:
            row = await run_in_threadpool(job_service.submit_job, context, who, body, key)
        # Serialised once here (the hot path): a returned model would be validated again.
        return Response(
            JobOut.of(row, job_euros(context.catalogue, row)).model_dump_json(),
            status_code=201,
            media_type="application/json",
            headers={"Location": f"/jobs/{row.id}"},
        )

    @app.get("/jobs", response_model=list[JobOut], responses=_ERRORS, tags=["jobs"])
    def jobs(
        context: Ctx,
        who: Me,
        project: RefQ = None,
        state: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[JobOut]:
        rows = job_queries.list_jobs(context, who, project=project, states=state or (), limit=limit)
        return [JobOut.of(r, job_euros(context.catalogue, r)) for r in rows]

    @app.get("/jobs/{job_id}", response_model=JobOut, responses=_ERRORS, tags=["jobs"])
    def job(context: Ctx, who: Me, job_id: PathJobRef) -> JobOut:
        row = job_queries.get_job(context, who, job_id)
        return JobOut.of(row, job_euros(context.catalogue, row))

    @app.delete("/jobs/{job_id}", response_model=JobOut, responses=_ERRORS, tags=["jobs"])
    def cancel(context: Ctx, who: Me, job_id: PathJobRef) -> JobOut:
        """Cancel a job; ``123`` of a job array cancels every task, ``123_4`` one task."""
        row = job_queries.cancel_job(context, who, job_id)
        return JobOut.of(row, job_euros(context.catalogue, row))

    @app.get(
        "/projects/{project}/balance",
        response_model=BalanceOut,
        responses=_ERRORS,
        tags=["projects"],
    )
    def balance(context: Ctx, who: Me, project: PathRef) -> BalanceOut:
        return BalanceOut.of(project_balance(context, who, project))

    routers = (
        calls,
        proposals,
        reviews,
        awards,
        projects,
        allocations,
        audit,
        tokens,
        job_output,
        device_login,
        fund_costs,
        programme_figures,
        invest,
    )
    for module in routers:
        app.include_router(module.router, responses=_ERRORS)
    app.include_router(probes.router)  # /livez, /readyz: no token (docs/observability.md)
    app.include_router(metrics.router)
    # Added last, so outermost: it times and logs every answer, the limits' 413 and 429 too.
    app.add_middleware(ObservabilityMiddleware, histogram=app.state.metrics.requests)
    return app


def _lease_or_none(plat: Platform) -> dict[str, object] | None:
    """The broker lease as the database has it; None when the database does not answer
    (/health must say so, not fail: /readyz is the probe that turns it into a 503)."""
    try:
        return {**plat.lease.view().as_dict(), "this_instance": plat.lease.holder}
    except DBAPIError:
        return None


def create_worker_app() -> FastAPI:
    """Factory for extra API worker processes (``aif up --workers N``): settings from the
    environment, and never a broker: the broker runs once, in the ``aif up`` process."""
    settings = Settings(run_broker=False)
    # a new process: nothing configured its logging yet
    configure_logging(settings.log_format, access_log=settings.access_log)
    return create_app(settings)
