"""What every route needs: the service context and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aifactories.api.observability import PRINCIPAL_KEY
from aifactories.api.schemas import ErrorBody
from aifactories.services.auth import authenticate, cached_principal
from aifactories.services.context import Principal, ServiceContext
from aifactories.services.platform import Platform

_bearer = HTTPBearer(auto_error=False, description="an API token: 'aif_...'")
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
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
    principal = cached_principal(context, token)
    if principal is None:
        principal = await run_in_threadpool(authenticate, context, token)
    # for the access log (api/observability.py): who, never the token
    request.scope.setdefault("state", {})[PRINCIPAL_KEY] = principal.user_id
    return principal


Me = Annotated[Principal, Depends(_principal)]
