"""Map the error hierarchy to HTTP: one status per class, one body shape for all."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from aifactories.api.validation import validation_response
from aifactories.domain import errors as e
from aifactories.web.errors import is_portal_request, portal_error

STATUS: list[tuple[type[e.AifError], int]] = [
    (e.InvalidInput, 422),
    (e.NotFound, 404),
    (e.AuthenticationRequired, 401),
    (e.PermissionDenied, 403),
    (e.Conflict, 409),
    (e.ExecutorError, 503),
    (e.ConfigurationError, 500),
    (e.CatalogueError, 500),
]


_HTTP_MESSAGES = {
    404: ("not_found", "no such path: {r.method} {r.url.path}; /docs lists the API's paths"),
    405: ("method_not_allowed", "{r.url.path} does not take {r.method}; /docs lists its methods"),
}


def _in_words(problems: object) -> str:
    """A form's invalid fields, named, for a page (the API answers them as JSON)."""
    parts = []
    for problem in problems if isinstance(problems, list | tuple) else []:
        where = ".".join(
            str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")
        )
        parts.append(f"{where or 'request'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def status_of(exc: e.AifError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def install(app: FastAPI) -> None:
    @app.exception_handler(e.AifError)
    async def _aif_error(request: Request, exc: e.AifError) -> Response:
        if is_portal_request(request):
            return portal_error(request, status_of(exc), exc.message)
        body: dict[str, object] = {"error": exc.code, "message": exc.message}
        if isinstance(exc, e.InvalidInput):
            body["field"] = exc.field
            body["limit"] = exc.limit
        if isinstance(exc, e.BudgetExceeded):
            body["needed_gpu_seconds"] = exc.needed_gpu_seconds
            body["left_gpu_seconds"] = exc.left_gpu_seconds
        headers = {"WWW-Authenticate": "Bearer"} if status_of(exc) == 401 else None
        return JSONResponse(body, status_code=status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if is_portal_request(request):
            return portal_error(request, 422, _in_words(exc.errors()))
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own answers (no such path, method not allowed) in the one error body
        code, message = _HTTP_MESSAGES.get(exc.status_code, ("http_error", str(exc.detail)))
        if is_portal_request(request):
            text = "no such page" if exc.status_code == 404 else message.format(r=request)
            return portal_error(request, exc.status_code, text)
        body = {"error": code, "message": message.format(r=request), "field": None, "limit": None}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # A database that does not answer (restarting, network, full) is a passing outage, not
        # a server fault: 503 with Retry-After lets clients and load balancers wait. Anything
        # else from the database is a bug and stays a 500 (and a traceback in the log).
        if not exc.connection_invalidated and not _unreachable(exc):
            raise exc
        body = {
            "error": "database_unavailable",
            "message": "the platform's database does not answer; try again in a few seconds",
            "field": None,
            "limit": None,
        }
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def _unreachable(exc: DBAPIError) -> bool:
    from sqlalchemy.exc import OperationalError

    text = str(exc.orig).lower()
    return isinstance(exc, OperationalError) and any(
        word in text for word in ("connection", "could not connect", "server closed", "timeout")
    )
