"""Signing in and out of the portal, and the account page with the personal API tokens.

Two ways in: the institution's OpenID provider (web/oidc.py, when AIFACTORIES_OIDC_ISSUER is
set) and a personal API token (the demo's users; anyone whose provider is down), checked
exactly as the API checks it. Failed token sign-ins count against the same per-address limit
as the API's failed authentications.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from aifactories.domain.errors import AifError, AuthenticationRequired
from aifactories.services.core.context import Principal
from aifactories.services.core.tokens import (
    NewToken,
    TokenIn,
    create_token,
    list_tokens,
    revoke_token,
)
from aifactories.services.core.web_sessions import (
    end_session,
    end_sessions_of,
    open_session_with_token,
)
from aifactories.web.render import redirect, render
from aifactories.web.session import (
    CsrfChecked,
    MaybeSignedIn,
    SignedIn,
    clear_session_cookie,
    context,
    session_secret,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this portal: never another site (an open redirect would let a phishing
    link send a freshly signed-in user anywhere)."""
    if not target:
        return "/portal/projects"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/portal/projects"
    if "\\" in target:
        return "/portal/projects"
    return target


def _limits(request: Request) -> Any:
    return getattr(request.app.state, "rate_limits", None)


@router.get("/portal/login", response_class=HTMLResponse)
async def login_page(
    request: Request, principal: MaybeSignedIn, next: str | None = None
) -> Response:
    settings = context(request).settings
    if principal is not None:
        return redirect(request, safe_next(next))
    return render(
        request,
        "login/login.html",
        page="login",
        next=safe_next(next),
        oidc=settings.oidc_issuer is not None,
        provider=settings.oidc_provider_name,
        token_login=settings.portal_token_login,
        error=None,
    )


@router.post("/portal/login/token", response_class=HTMLResponse)
async def login_with_token(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ctx = context(request)
    settings = ctx.settings
    if not settings.portal_token_login:
        return redirect(request, "/portal/login", "sign-in with a token is off here", "error")
    limits = _limits(request)
    address = request.client.host if request.client else ""
    if limits is not None and limits.auth_failures.wait_s(address):
        return render(
            request,
            "error.html",
            status_code=429,
            title="Too many failed sign-ins",
            message="too many failed sign-ins from your address; wait a minute and try again",
        )
    try:
        opened = await run_in_threadpool(open_session_with_token, ctx, token)
    except AuthenticationRequired as failed:
        if limits is not None:
            limits.auth_failures.take(address)
        return render(
            request,
            "login/login.html",
            page="login",
            status_code=401,
            next=safe_next(next),
            oidc=settings.oidc_issuer is not None,
            provider=settings.oidc_provider_name,
            token_login=True,
            error=failed.message if token.strip() else "paste your API token (aif_...)",
        )
    response = redirect(request, safe_next(next), "You are signed in.")
    set_session_cookie(request, response, opened)
    return response


@router.post("/portal/logout", dependencies=[CsrfChecked])
async def logout(request: Request) -> Response:
    secret = session_secret(request)
    if secret:
        await run_in_threadpool(end_session, context(request), secret)
    response = redirect(request, "/portal/login", "You are signed out.")
    clear_session_cookie(response)
    return response


@router.post("/portal/logout/everywhere", dependencies=[CsrfChecked])
async def logout_everywhere(request: Request, principal: SignedIn) -> Response:
    ended = await run_in_threadpool(end_sessions_of, context(request), principal)
    response = redirect(request, "/portal/login", f"Signed out of {ended} session(s).")
    clear_session_cookie(response)
    return response


def _account(
    request: Request,
    principal: Principal,
    new_token: NewToken | None = None,
    error: str | None = None,
) -> HTMLResponse:
    ctx = context(request)
    tokens = list_tokens(ctx, principal)
    return render(
        request,
        "login/account.html",
        page="account",
        tokens=sorted(tokens, key=lambda t: -t.created_at),
        now=ctx.clock.now(),
        lifetime_days=ctx.settings.token_lifetime_days,
        new_token=new_token,
        error=error,
    )


@router.get("/portal/account", response_class=HTMLResponse)
def account(request: Request, principal: SignedIn) -> HTMLResponse:
    return _account(request, principal)


@router.post("/portal/tokens", response_class=HTMLResponse, dependencies=[CsrfChecked])
def new_token(
    request: Request,
    principal: SignedIn,
    label: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """The secret is shown on this response only (no-store), never again."""
    try:
        days = int(expires_in_days) if expires_in_days.strip() else None
    except ValueError:
        return _account(
            request, principal, error="lifetime: a whole number of days (or empty for the most)"
        )
    try:
        body = TokenIn(label=label.strip() or "portal", expires_in_days=days)
        created = create_token(context(request), principal, body)
    except AifError as refused:
        return _account(request, principal, error=refused.message)
    except ValueError as invalid:  # pydantic's ValidationError
        return _account(request, principal, error=_first_error(invalid))
    return _account(request, principal, new_token=created)


@router.post("/portal/tokens/{token_id}/revoke", dependencies=[CsrfChecked])
def revoke(request: Request, principal: SignedIn, token_id: int) -> Response:
    view = revoke_token(context(request), principal, token_id)
    return redirect(request, "/portal/account", f"Token {view.label!r} is revoked.")


def _first_error(invalid: ValueError) -> str:
    errors = getattr(invalid, "errors", None)
    if callable(errors):
        first = errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return f"{field}: {first.get('msg', 'invalid')}"
    return str(invalid)
