"""What every route needs: the service context and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aifactories.api.limits import TooManyRequests, rate_limits
from aifactories.api.observability import PRINCIPAL_KEY
from aifactories.api.schemas import ErrorBody
from aifactories.domain.errors import AuthenticationRequired
from aifactories.services.core.auth import (
    authenticate,
    cached_principal_by_digest,
    token_digest,
)
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from aifactories.services.platform import Platform

_bearer = HTTPBearer(auto_error=False, description="an API token: 'aif_...'")
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


async def _ctx(request: Request) -> ServiceContext:
    plat: Platform = request.app.state.platform
    return plat.ctx


Ctx = Annotated[ServiceContext, Depends(_ctx)]


async def _principal(
    request: Request,
    context: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Every endpoint but /health needs a token (Authorization: Bearer aif_...). Async, and
    to a worker thread only on a cache miss: a thread hop per request costs more than the
    cached lookup itself."""
    token = credentials.credentials if credentials else None
    limits = rate_limits(request)
    digest = token_digest(token) if token else ""
    principal = cached_principal_by_digest(context, digest) if token else None
    if principal is None:
        # Failed authentications per client address: over the limit, nothing more is looked
        # up for that address until its bucket refills (docs/api-access.md).
        address = request.client.host if request.client else ""
        wait = limits.auth_failures.wait_s(address)
        if wait:
            raise TooManyRequests(
                wait,
                "too many failed authentications from your address; wait, then check the "
                "token ('aif whoami')",
            )
        try:
            principal = await run_in_threadpool(authenticate, context, token)
        except AuthenticationRequired:
            limits.auth_failures.take(address)
            raise
    wait = limits.requests.take(digest)
    if wait:
        raise TooManyRequests(
            wait, "too many requests with this token; slow down and retry after Retry-After"
        )
    # for the access log (api/observability.py): who, never the token
    request.scope.setdefault("state", {})[PRINCIPAL_KEY] = principal.user_id
    return principal


Me = Annotated[Principal, Depends(_principal)]

# Creations accept a key: a retry with it gets the first answer's object (docs/api-access.md).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        max_length=255,
        description="any unique string (a UUID): the same request sent again with the same key "
        "creates nothing new and answers with what the first one created; kept 24 hours by "
        "default",
    ),
]
