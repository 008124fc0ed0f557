"""/auth/device: ``aif login`` through the institution's OpenID provider, by the OAuth 2.0
device authorization grant (RFC 8628; docs/portal-login.md).

The platform is the provider's client, so the client secret never leaves the server: the CLI
asks the platform for a code (POST /auth/device), the person enters it at the provider in any
browser, and the CLI asks the platform until it is approved (POST /auth/device/token), which
then answers once with a personal API token of the user the provider signed in (made on the
first login as in the portal).

The device code the CLI holds is the provider's, signed by the platform: only codes started
here are accepted, and not after they expire. No token is needed to call these two.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from aifactories.api.deps import Ctx
from aifactories.api.limits import Buckets, TooManyRequests, rate_limits
from aifactories.api.schemas import ErrorBody
from aifactories.domain.clock import to_datetime
from aifactories.services.core import oidc_client
from aifactories.services.core.identities import IdentityClaims, user_for_identity
from aifactories.services.core.input_types import check_line
from aifactories.services.core.oidc_client import SignInFailed
from aifactories.services.core.tokens import issue_token
from aifactories.services.core.web_sessions import session_key

router = APIRouter(tags=["login"])

# per client address: a person starts a login now and then; a CLI polls every few seconds
STARTS_PER_MINUTE = 10
POLLS_PER_MINUTE = 60
_SALT = "aifactories.device-login"
# a device code handed out here is refused after this, whatever the provider says (RFC 8628
# codes live minutes; the provider refuses an expired one first)
HANDLE_MAX_AGE_S = 3600
DEFAULT_LABEL = "aif login"

# the provider's words for a device sign-in that did not end in a token, as HTTP statuses
_STATUS = {
    "authorization_pending": 428,
    "slow_down": 429,
    "access_denied": 403,
    "expired_token": 410,
    "invalid_grant": 410,
    "not_configured": 404,
    "device_grant_unsupported": 501,
    "provider_unreachable": 503,
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


class DeviceStartOut(BaseModel):
    device_code: str = Field(description="give it back to POST /auth/device/token")
    user_code: str = Field(description="the code the person enters at the provider")
    verification_uri: str
    verification_uri_complete: str | None = Field(description="the same, with the code in it")
    interval: int = Field(description="seconds between two polls")
    expires_in: int = Field(description="seconds until the code expires")


class DeviceTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_code: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    label: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100),
        AfterValidator(check_line),
        Field(description="what the token is for ('aif login on HOST' from the CLI)"),
    ] = DEFAULT_LABEL


class DeviceTokenOut(BaseModel):
    token: str = Field(description="the new personal API token, shown this once")
    username: str
    label: str
    expires_at: str
    new_user: bool = Field(description="this login made the user")
    needs_organisation: bool = Field(
        description="the user has no organisation yet: choose it once at /portal/welcome"
    )


class _Limits:
    """This process's buckets for the two endpoints (app.state.device_login_limits)."""

    def __init__(self) -> None:
        self.starts = Buckets(STARTS_PER_MINUTE)
        self.polls = Buckets(POLLS_PER_MINUTE)


def _limits(request: Request) -> _Limits:
    found = getattr(request.app.state, "device_login_limits", None)
    if found is None:
        found = request.app.state.device_login_limits = _Limits()
    return found


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _signer(context: Ctx) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(session_key(context), salt=_SALT)


def _refused(failure: SignInFailed, **extra: Any) -> JSONResponse:
    status = _STATUS.get(failure.error, 502)
    body = {"error": failure.error, "message": failure.message, "field": None, "limit": None}
    headers = {"Retry-After": str(extra["interval"])} if "interval" in extra else None
    return JSONResponse({**body, **extra}, status_code=status, headers=headers)


@router.post(
    "/auth/device",
    response_model=DeviceStartOut,
    responses=_errors(404, 429, 501, 502, 503),
)
async def start_device_login(request: Request, context: Ctx) -> Any:
    """Start a device sign-in at the OpenID provider: show the person ``user_code`` and
    ``verification_uri``, then poll POST /auth/device/token every ``interval`` seconds."""
    wait = _limits(request).starts.take(_address(request))
    if wait:
        raise TooManyRequests(wait, "too many sign-ins started from your address; wait a minute")
    try:
        started = await oidc_client.start_device(context.settings)
    except SignInFailed as failure:
        return _refused(failure)
    handle = _signer(context).dumps([started.device_code, started.interval])
    return DeviceStartOut(
        device_code=handle,
        user_code=started.user_code,
        verification_uri=started.verification_uri,
        verification_uri_complete=started.verification_uri_complete,
        interval=started.interval,
        expires_in=started.expires_in,
    )


@router.post(
    "/auth/device/token",
    response_model=DeviceTokenOut,
    status_code=201,
    responses=_errors(403, 404, 410, 428, 429, 502, 503),
)
async def finish_device_login(request: Request, context: Ctx, body: DeviceTokenIn) -> Any:
    """Ask once whether the person approved the sign-in: 428 (authorization_pending) until
    then, 201 with a new personal API token once, 403 if refused, 410 once expired."""
    address = _address(request)
    limits = rate_limits(request)
    wait = limits.auth_failures.wait_s(address) or _limits(request).polls.take(address)
    if wait:
        raise TooManyRequests(wait, "too many sign-in polls from your address; slow down")
    try:
        device_code, interval = _signer(context).loads(body.device_code, max_age=HANDLE_MAX_AGE_S)
    except (BadSignature, ValueError, TypeError):
        limits.auth_failures.take(address)  # guessing codes counts as failing to authenticate
        return _refused(
            SignInFailed(
                "this device code is not one this platform gave, or it expired; run "
                "'aif login' again",
                "invalid_grant",
            )
        )
    settings = context.settings
    try:
        polled = await oidc_client.poll_device(settings, context.clock, str(device_code))
        meta = await oidc_client.metadata(settings)  # read by the poll: from the cache
    except SignInFailed as failure:
        return _refused(failure)
    if polled.claims is None:
        waiting = SignInFailed(
            "not approved yet: enter the code at the sign-in page, then ask again"
            if polled.status == "authorization_pending"
            else "asking too often: wait the interval between two polls",
            polled.status,
        )
        # RFC 8628 3.5: after slow_down, poll 5 seconds less often
        return _refused(
            waiting, interval=int(interval) + (5 if polled.status == "slow_down" else 0)
        )
    identity = IdentityClaims.of(meta.issuer, polled.claims, settings.oidc_organisation_claim)
    user = await run_in_threadpool(user_for_identity, context, identity)
    made = await run_in_threadpool(
        issue_token, context, user.username, body.label, settings.token_lifetime_days
    )
    assert made.secret is not None  # a new token: its secret is there
    expires = made.view.expires_at
    return DeviceTokenOut(
        token=made.secret,
        username=user.username,
        label=body.label,
        expires_at=to_datetime(expires).isoformat() if expires is not None else "",
        new_user=user.created,
        needs_organisation=user.organisation_id is None,
    )
