"""Liveness and readiness probes, for a process supervisor or a load balancer.

``/livez``: the process answers (nothing else is asked: a database outage must not get every
instance restarted). ``/readyz``: this instance can serve, i.e. its database is reachable and
at the schema this code expects, and, if it runs the broker, the broker's last cycle is recent
(not older than ``readyz_broker_intervals`` intervals). 200 or 503, with a JSON body that says
which check failed. No token: probes come from infrastructure that holds none, and the answers
carry nothing about users or projects.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from aifactories import __version__
from aifactories.services.platform import Platform
from aifactories.services.platform_status import schema_problem

router = APIRouter()


@router.get("/livez", include_in_schema=False)
async def livez() -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    plat: Platform | None = getattr(request.app.state, "platform", None)
    if plat is None:
        return _answer({"database": "the platform has not started yet"}, {})
    problems: dict[str, str] = {}
    details: dict[str, object] = {}
    # A remote database's round trip must not hold the event loop.
    database = await run_in_threadpool(schema_problem, plat.ctx)
    if database is not None:
        problems["database"] = database
    broker = _broker_problem(plat, details)
    if broker is not None:
        problems["broker"] = broker
    return _answer(problems, details)


def _broker_problem(plat: Platform, details: dict[str, object]) -> str | None:
    if not plat.broker_running:
        details["broker"] = "not run by this instance"
        return None
    if not plat.broker.leading:
        details["broker"] = "standby: another instance holds the broker lease"
        return None
    details["broker"] = "leading"
    interval = plat.settings.broker_interval_s
    limit = plat.settings.readyz_broker_intervals * interval
    report = plat.broker.last_report
    if report is None:
        return "the broker has not completed a cycle yet"
    age = plat.clock.now() - report.at
    details["broker_last_cycle_age_s"] = round(age, 3)
    if age > limit:
        return (
            f"the broker's last completed cycle is {age:.1f} s old, more than "
            f"{plat.settings.readyz_broker_intervals} intervals of {interval:g} s: "
            "its log says why (a failing cycle is logged at each attempt)"
        )
    return None


def _answer(problems: dict[str, str], details: dict[str, object]) -> JSONResponse:
    body: dict[str, object] = {"status": "fail" if problems else "ok", **details}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=503 if problems else 200)
