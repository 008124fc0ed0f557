"""The portal's session cookie and its protection against cross-site request forgery.

The cookie holds a random session secret, signed (itsdangerous, with the platform's session
key) and timestamped: a cookie altered or older than the session lifetime is refused before
the database is asked. It is HttpOnly (no script reads it), SameSite=Lax (no cross-site POST
carries it) and Secure when the portal is served over HTTPS. The session itself lives in the
database (services/core/web_sessions.py), so signing out ends it everywhere.

Every form that changes state carries a CSRF token: an HMAC of the session secret, so it is
bound to this session and needs no storage; `check_csrf` also refuses a POST whose Origin is
another site. The API (Bearer tokens) never reads the cookie, so it needs none of this.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeTimedSerializer

from aifactories.domain.errors import AuthenticationRequired, PermissionDenied
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.web_sessions import (
    HOUR_S,
    OpenedSession,
    open_session,
    principal_for_session,
    session_key,
)

COOKIE = "aif_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_PRINCIPAL = "aif_portal_principal"  # request.state: looked up once per request


def context(request: Request) -> ServiceContext:
    return request.app.state.platform.ctx  # type: ignore[no-any-return]


def signer(request: Request, purpose: str) -> URLSafeTimedSerializer:
    """A signer for one purpose (the session cookie, the login flow's state): a value signed
    for one purpose is refused for another."""
    return URLSafeTimedSerializer(session_key(context(request)), salt=f"aifactories.{purpose}")


def _secure(request: Request) -> bool:
    public = context(request).settings.public_url
    scheme = urlsplit(public).scheme if public else request.url.scheme
    return scheme == "https"


def set_session_cookie(request: Request, response: Response, opened: OpenedSession) -> None:
    lifetime = int(context(request).settings.session_lifetime_hours * HOUR_S)
    response.set_cookie(
        COOKIE,
        signer(request, "session").dumps(opened.secret),
        max_age=lifetime,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def sign_in(request: Request, response: Response, user_id: int, via: str) -> None:
    """Open a session for ``user_id`` and give the browser its cookie."""
    set_session_cookie(request, response, open_session(context(request), user_id, via))


def session_secret(request: Request) -> str | None:
    """The session secret from a cookie whose signature and age are good, else None."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    lifetime = int(context(request).settings.session_lifetime_hours * HOUR_S)
    try:
        value = signer(request, "session").loads(raw, max_age=lifetime)
    except BadSignature:  # includes SignatureExpired
        return None
    return value if isinstance(value, str) else None


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


async def current_principal(request: Request) -> Principal | None:
    if hasattr(request.state, _PRINCIPAL):
        found: Principal | None = getattr(request.state, _PRINCIPAL)
        return found
    secret = session_secret(request)
    principal = (
        await run_in_threadpool(principal_for_session, context(request), secret) if secret else None
    )
    setattr(request.state, _PRINCIPAL, principal)
    return principal


async def _signed_in(request: Request) -> Principal:
    principal = await current_principal(request)
    if principal is None:
        # the portal's error handler turns this into a redirect to the login page
        raise AuthenticationRequired("sign in to see this page")
    return principal


MaybeSignedIn = Annotated[Principal | None, Depends(current_principal)]
SignedIn = Annotated[Principal, Depends(_signed_in)]


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser's session ("" when signed out: forms then fail)."""
    secret = session_secret(request)
    if not secret:
        return ""
    key = session_key(context(request)).encode()
    return hmac.new(key, b"csrf:" + secret.encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    """For every state-changing route: the form field (or header) must carry this session's
    CSRF token, and a browser's Origin, when sent, must be this site."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = urlsplit(str(request.base_url))
        sent = urlsplit(origin)
        if (sent.scheme, sent.netloc) != (own.scheme, own.netloc):
            raise PermissionDenied(
                "this form was sent from another site; open the page on this portal and send "
                "it from there"
            )
    sent_token = request.headers.get(CSRF_HEADER)
    if sent_token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent_token = value if isinstance(value, str) else None
    expected = csrf_token(request)
    if not expected or not sent_token or not hmac.compare_digest(expected, sent_token):
        raise PermissionDenied(
            "this form has expired or did not come from this portal; reload the page and send "
            "it again"
        )


CsrfChecked = Depends(check_csrf)
