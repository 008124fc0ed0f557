"""One line in the access log and one latency observation per request, as a pure ASGI middleware.

Pure ASGI, not Starlette's BaseHTTPMiddleware: that one runs every request through an extra
task and stream, which costs tens of microseconds on the submission path; this one only wraps
``send`` to see the status. The route *template* (``/jobs/{job_id}``) labels the latency
histogram, never the raw path: ids in paths would make one time series per job. The access
log has both. It never has a header or a query string (a token could be in either).
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aifactories.services.logging_setup import ACCESS_LOGGER

UNMATCHED = "unmatched"  # the template of requests no route took (404s): one series for all
PRINCIPAL_KEY = "principal_id"  # in the request state (scope["state"]), set by api/deps.py

# Requests take about a millisecond on the hot path and up to seconds for reports.
REQUEST_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def request_histogram(registry: Any) -> Histogram:
    return Histogram(
        "aif_http_request_duration_seconds",
        "Time from a request's arrival to its response's end, by route template, method "
        "and status class.",
        ["route", "method", "status"],
        buckets=REQUEST_BUCKETS_S,
        registry=registry,
    )


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self._histogram = histogram
        # The histogram's children, cached: labels() takes a lock and builds a key each time.
        self._children: dict[tuple[str, str, str], Any] = {}
        self._log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        # The state dict exists before the app runs, so that the principal the auth
        # dependency writes into it is seen here (copies of the scope share this dict).
        state = scope.setdefault("state", {})
        status = 500  # if the app fails before it answers, the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            duration = perf_counter() - started
            route = scope.get("route")
            template: str = getattr(route, "path", None) or UNMATCHED
            method: str = scope["method"]
            key = (template, method, f"{status // 100}xx")
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._histogram.labels(*key)
            child.observe(duration)
            if self._log.isEnabledFor(logging.INFO):
                self._access_line(scope, template, method, status, duration, state)

    def _access_line(
        self,
        scope: Scope,
        template: str,
        method: str,
        status: int,
        duration: float,
        state: dict[str, Any],
    ) -> None:
        principal = state.get(PRINCIPAL_KEY)
        path: str = scope["path"]
        ms = round(duration * 1000, 3)
        # makeRecord + handle, not info(): info() walks the stack to find its caller, which
        # is always this line (a third of the record's cost).
        record = self._log.makeRecord(
            ACCESS_LOGGER,
            logging.INFO,
            __file__,
            0,
            "%s %s %d %.1f ms principal %s (%s)",
            (method, path, status, ms, "-" if principal is None else principal, template),
            None,
            extra={
                "method": method,
                "route": template,
                "path": path,
                "status": status,
                "duration_ms": ms,
                "principal_id": principal,
            },
        )
        self._log.handle(record)
