"""The API's limits: request body size (413) and rate limits (429 with Retry-After).

Both answer in the documented error body (api/schemas.py ErrorBody). The body limit is a pure
ASGI middleware (a few microseconds a request): Content-Length is checked before anything is
read; a chunked body is counted as it arrives and refused as soon as it passes the limit,
without reading the rest (the server then closes the connection).

Rate limits are in-process token buckets (docs/api-access.md): with several API processes
each limits its own share, so a client spread over N processes gets up to N times the rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aifactories.domain.clock import stopwatch
from aifactories.settings import Settings

# a bucket map larger than this drops its full buckets (they hold nothing worth keeping)
_MAX_BUCKETS = 100_000


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, reading no more of them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        if declared is None:  # chunked (or no body): counted as it arrives
            await self._counted(scope, receive, send)
            return
        try:
            too_large = int(declared) > self.max_bytes
        except ValueError:
            too_large = False  # the server itself refuses a malformed Content-Length
        if too_large:
            await self._refuse(send)
            return
        # the server delivers no more than the declared length: nothing to count
        await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        answered = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, answered
            if received > self.max_bytes:
                return {"type": "http.disconnect"}  # never read on past the limit
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        answered = True
                        await self._refuse(send)
                    # the application sees a client that went away and stops reading
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is sent: whatever the application answers is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "body_too_large",
                "message": f"the request body is larger than this API accepts "
                f"({self.max_bytes} bytes); send a smaller job script or request",
                "field": "body",
                "limit": f"at most {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Buckets:
    """Token buckets by key: up to ``per_minute`` at once, refilled at ``per_minute`` a
    minute. Used from the event loop only (no lock)."""

    def __init__(self, per_minute: int, now: Callable[[], float] = stopwatch) -> None:
        self.now = now  # a monotonic clock; tests freeze it
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def _level(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return self.capacity
        tokens, at = found
        return min(self.capacity, tokens + (now - at) * self.rate)

    def wait_s(self, key: str) -> float:
        """Seconds until ``key`` may act again (0: now), without spending anything."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        level = self._level(key, self.now())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: str) -> float:
        """Spend one; returns 0, or the seconds to wait when the bucket is empty."""
        if not self.enabled:
            return 0.0
        now = self.now()
        level = self._level(key, now)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate
        if len(self._buckets) >= _MAX_BUCKETS:
            self._prune(now)
        self._buckets[key] = (level - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.capacity]
        for key in full or list(self._buckets):
            del self._buckets[key]


@dataclass(frozen=True)
class RateLimits:
    """One API process's limiters (app.state.rate_limits)."""

    auth_failures: Buckets  # by client address
    requests: Buckets  # by token (its hash)

    @classmethod
    def of(cls, settings: Settings, now: Callable[[], float] = stopwatch) -> RateLimits:
        return cls(
            Buckets(settings.auth_failures_per_minute, now),
            Buckets(settings.token_requests_per_minute, now),
        )


class TooManyRequests(Exception):
    def __init__(self, wait_s: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(wait_s))
        self.message = message


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def install(app: FastAPI, settings: Settings) -> None:
    """The body limit, this process's rate limiters and the 429 answer."""
    app.state.rate_limits = RateLimits.of(settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(TooManyRequests)
    async def _too_many(_request: Request, exc: TooManyRequests) -> JSONResponse:
        return JSONResponse(
            {
                "error": "rate_limited",
                "message": exc.message,
                "field": None,
                "limit": f"retry after {exc.retry_after} s",
            },
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
