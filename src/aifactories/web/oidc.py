"""Signing in with the institution's OpenID provider (docs/portal-login.md).

GET /portal/login/oidc sends the browser to the provider with a fresh state, nonce and PKCE
verifier, kept in a short-lived signed cookie of this flow only; GET /portal/login/callback
checks the state, exchanges the code (with the client secret, which never leaves the
server), validates the ID token (services/core/oidc_client.py), finds or makes the user
(services/core/identities.py) and opens a portal session. A user whose organisation the
provider did not name chooses it once, at /portal/welcome.

Whatever goes wrong (the person cancelled, the flow expired, the answer does not match,
the provider is down) ends on a page that says so and offers to try again, never a 500.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature

from aifactories.domain.errors import Conflict, InvalidInput
from aifactories.services.core import oidc_client
from aifactories.services.core.identities import (
    IdentityClaims,
    choose_organisation,
    list_organisations,
    user_for_identity,
)
from aifactories.services.core.input_types import ID_MAX
from aifactories.services.core.oidc_client import SignInFailed
from aifactories.services.core.web_sessions import VIA_OIDC, end_session
from aifactories.web.login import safe_next
from aifactories.web.render import redirect, render
from aifactories.web.session import (
    CsrfChecked,
    SignedIn,
    context,
    session_secret,
    sign_in,
    signer,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger("aifactories.web.oidc")

CALLBACK = "/portal/login/callback"
FLOW_COOKIE = "aif_oidc_flow"
FLOW_PATH = "/portal/login"  # the cookie goes to the start and the callback only
FLOW_MAX_AGE_S = 600  # from the click to the return: ten minutes to sign in at the provider
_FLOW_PURPOSE = "oidc-flow"

_STATUS = {
    "provider_unreachable": 503,
    "not_configured": 404,
    "access_denied": 403,
    "login_required": 403,
    "consent_required": 403,
    "interaction_required": 403,
    "invalid_id_token": 502,
}


def redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back: the public URL when set (behind a proxy
    the request's own address is not the one browsers use), else this request's."""
    public = context(request).settings.public_url
    base = public if public else str(request.base_url)
    return base.rstrip("/") + CALLBACK


def _failed(request: Request, failure: SignInFailed, next_url: str = "") -> HTMLResponse:
    """A page that says what happened and offers to start again."""
    log.warning("portal sign-in failed: %s (%s)", failure.error, failure.message)
    settings = context(request).settings
    response = render(
        request,
        "login/oidc_failed.html",
        page="login",
        status_code=_STATUS.get(
            failure.error, 502 if failure.error.startswith("provider") else 400
        ),
        provider=settings.oidc_provider_name,
        message=failure.message,
        retry=f"/portal/login?next={quote(safe_next(next_url), safe='')}",
    )
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


@router.get("/portal/login/oidc")
async def start(request: Request, next: str | None = None) -> Response:
    settings = context(request).settings
    target = safe_next(next)
    try:
        meta = await oidc_client.metadata(settings)
        flow = oidc_client.authorization_request(settings, meta, redirect_uri(request))
    except SignInFailed as failure:
        return _failed(request, failure, target)
    response = RedirectResponse(flow.url, status_code=303)
    value = {
        "state": flow.state,
        "nonce": flow.nonce,
        "verifier": flow.verifier,
        "next": target,
        "redirect_uri": redirect_uri(request),
    }
    response.set_cookie(
        FLOW_COOKIE,
        signer(request, _FLOW_PURPOSE).dumps(value),
        max_age=FLOW_MAX_AGE_S,
        httponly=True,
        # Lax: the provider's redirect back is a top-level GET, which carries it
        samesite="lax",
        secure=urlsplit(value["redirect_uri"]).scheme == "https",
        path=FLOW_PATH,
    )
    return response


def _flow(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw:
        return None
    try:
        value = signer(request, _FLOW_PURPOSE).loads(raw, max_age=FLOW_MAX_AGE_S)
    except BadSignature:  # altered, or older than FLOW_MAX_AGE_S
        return None
    return value if isinstance(value, dict) else None


@router.get(CALLBACK)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    iss: str | None = None,
) -> Response:
    ctx = context(request)
    settings = ctx.settings
    provider = settings.oidc_provider_name
    flow = _flow(request)
    if flow is None:
        return _failed(
            request,
            SignInFailed(
                "this sign-in is no longer valid: it took more than ten minutes, or it was "
                "started in another browser, or it is already finished. Start again.",
                "expired_flow",
            ),
        )
    next_url = str(flow.get("next", ""))
    if not state or not hmac.compare_digest(state, str(flow.get("state", ""))):
        return _failed(
            request,
            SignInFailed(
                "the answer from the sign-in service does not belong to the sign-in started "
                "in this browser (perhaps another one was started since). Start again.",
                "bad_state",
            ),
            next_url,
        )
    if error:
        message = (
            f"the sign-in at {provider} was cancelled or refused, so you are not signed in"
            if error == "access_denied"
            else f"{provider} could not sign you in: {error_description or error}"
        )
        return _failed(request, SignInFailed(message, error[:40]), next_url)
    try:
        meta = await oidc_client.metadata(settings)
        if iss is not None and iss.rstrip("/") != meta.issuer.rstrip("/"):
            # RFC 9207: an answer from another provider than the one asked (a mix-up attack)
            raise SignInFailed(
                "the answer came from another sign-in service than the one asked; start again",
                "bad_issuer",
            )
        if not code:
            raise SignInFailed("the sign-in service sent no code; start again", "no_code")
        claims = await oidc_client.finish_code_flow(
            settings,
            ctx.clock,
            meta,
            code,
            str(flow["redirect_uri"]),
            str(flow["verifier"]),
            str(flow["nonce"]),
        )
    except SignInFailed as failure:
        return _failed(request, failure, next_url)
    identity = IdentityClaims.of(meta.issuer, claims, settings.oidc_organisation_claim)
    user = await run_in_threadpool(user_for_identity, ctx, identity)
    if user.organisation_id is None:
        target = f"/portal/welcome?next={quote(safe_next(next_url), safe='')}"
    else:
        target = safe_next(next_url)
    greeting = f"Welcome, {user.username}." if user.created else "You are signed in."
    response = redirect(request, target, greeting)
    earlier = session_secret(request)
    if earlier:  # signed in already (perhaps as someone else): that session ends here
        await run_in_threadpool(end_session, ctx, earlier)
    await run_in_threadpool(sign_in, request, response, user.user_id, VIA_OIDC)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


def _welcome(
    request: Request, next_url: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "login/welcome.html",
        page="welcome",
        status_code=status_code,
        organisations=list_organisations(context(request)),
        next=safe_next(next_url),
        error=error,
    )


@router.get("/portal/welcome", response_class=HTMLResponse)
def welcome(request: Request, principal: SignedIn, next: str | None = None) -> Response:
    if principal.organisation_id is not None:
        return redirect(request, safe_next(next))
    return _welcome(request, next or "")


@router.post("/portal/welcome", dependencies=[CsrfChecked])
def chosen(
    request: Request,
    principal: SignedIn,
    organisation: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    text = organisation.strip()
    if not text.isdigit() or int(text) > ID_MAX:
        return _welcome(request, next, "choose your organisation from the list", 422)
    try:
        view = choose_organisation(context(request), principal, int(text))
    except InvalidInput as invalid:
        return _welcome(request, next, invalid.message, 422)
    except Conflict as refused:
        return redirect(request, safe_next(next), refused.message, "error")
    return redirect(request, safe_next(next), f"Your organisation is {view.name}.")
