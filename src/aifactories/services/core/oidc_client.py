"""The platform as an OpenID Connect client of the institution's provider (docs/portal-login.md).

Only standard OpenID Connect and OAuth 2.0, so any provider works: discovery
(``/.well-known/openid-configuration``), the authorization code flow with PKCE (S256) for
the portal, the device authorization grant (RFC 8628) for ``aif login``. The client secret
stays on the server: the CLI asks the platform, which asks the provider.

An ID token is accepted only when its signature verifies with a key of the provider's JWKS
and ``iss``, ``aud`` (and ``azp``), ``exp`` and, in the code flow, ``nonce`` are right. Claims
the ID token leaves out (many providers put only ``sub`` there) are read from the userinfo
endpoint with the access token, and kept only if they are about the same ``sub``.

Every call to the provider has a timeout; failures become :class:`SignInFailed` with a
message for the person signing in.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from aifactories.domain.clock import Clock, stopwatch
from aifactories.domain.errors import AifError
from aifactories.settings import Settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
METADATA_KEEP_S = 3600.0  # discovery and keys are read again after this (key rotation)
LEEWAY_S = 60  # clock skew allowed between the provider and the platform
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# asymmetric signatures only: "none" and the HS* family (keyed with the client secret) never
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
ID_TOKEN_ALGORITHMS += ["ES512", "EdDSA"]


class SignInFailed(AifError):
    """Signing in at the provider did not work. ``error`` is the OAuth error code when the
    provider gave one (access_denied, expired_token, ...), else one of ours
    (provider_unreachable, provider_error, invalid_id_token, not_configured)."""

    code = "sign_in_failed"

    def __init__(self, message: str, error: str = "provider_error") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    device_authorization_endpoint: str | None
    end_session_endpoint: str | None


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep (signed, in a cookie) until it is back."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class DeviceStart:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


@dataclass(frozen=True)
class DevicePoll:
    """One poll of the device grant: ``claims`` once the person approved, else why not yet."""

    status: Literal["done", "authorization_pending", "slow_down"]
    claims: dict[str, Any] | None = None


# one discovery and one key set per hour and process, not per login: issuer -> (read at,
# metadata); jwks_uri -> (read at, keys)
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keysets: dict[str, tuple[float, KeySet]] = {}


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer)


def _client(settings: Settings) -> tuple[str, str, str]:
    issuer, client_id, secret = (
        settings.oidc_issuer,
        settings.oidc_client_id,
        settings.oidc_client_secret,
    )
    if not issuer:
        raise SignInFailed(
            "this platform has no OpenID provider configured (AIFACTORIES_OIDC_ISSUER); "
            "sign in with a personal API token instead",
            "not_configured",
        )
    if not client_id or not secret:
        raise SignInFailed(
            "the OpenID provider is configured without its client: set "
            "AIFACTORIES_OIDC_CLIENT_ID and AIFACTORIES_OIDC_CLIENT_SECRET",
            "not_configured",
        )
    return issuer, client_id, secret


async def _get_json(url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            response = await http.get(url, **kwargs)
    except httpx.HTTPError as exc:
        raise SignInFailed(
            f"the sign-in service cannot be reached ({what}: {exc.__class__.__name__}); "
            "try again in a moment",
            "provider_unreachable",
        ) from None
    if response.status_code != 200:
        raise SignInFailed(
            f"the sign-in service answered {response.status_code} to the {what}; "
            "try again later, or tell the platform's operators",
        )
    return _json_object(response, what)


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SignInFailed(f"the sign-in service's {what} is not a JSON object")
    return body


async def metadata(settings: Settings) -> ProviderMetadata:
    """The provider's discovery document, read once an hour."""
    issuer, _, _ = _client(settings)
    cached = _metadata.get(issuer)
    if cached is not None and stopwatch() - cached[0] < METADATA_KEEP_S:
        return cached[1]
    found = await _get_json(
        issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document"
    )
    # the document must be the issuer's own (a trailing slash aside): a provider answering
    # for another issuer would let that issuer's tokens in
    if str(found.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise SignInFailed(
            f"the provider at {issuer} calls itself {found.get('issuer')!r}; "
            "AIFACTORIES_OIDC_ISSUER must be exactly its issuer URL",
            "not_configured",
        )
    try:
        meta = ProviderMetadata(
            issuer=str(found["issuer"]),
            authorization_endpoint=str(found["authorization_endpoint"]),
            token_endpoint=str(found["token_endpoint"]),
            jwks_uri=str(found["jwks_uri"]),
            userinfo_endpoint=found.get("userinfo_endpoint"),
            device_authorization_endpoint=found.get("device_authorization_endpoint"),
            end_session_endpoint=found.get("end_session_endpoint"),
        )
    except KeyError as missing:
        raise SignInFailed(f"the provider's discovery document has no {missing}") from None
    _metadata[issuer] = (stopwatch(), meta)
    return meta


async def _keys(meta: ProviderMetadata, refresh: bool = False) -> KeySet:
    cached = _keysets.get(meta.jwks_uri)
    if cached is not None and stopwatch() - cached[0] < METADATA_KEEP_S and not refresh:
        return cached[1]
    found = await _get_json(meta.jwks_uri, "key set (JWKS)")
    try:
        keys = KeySet.import_key_set(found)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise SignInFailed(f"the provider's key set cannot be read: {exc}") from None
    _keysets[meta.jwks_uri] = (stopwatch(), keys)
    return keys


def s256(verifier: str) -> str:
    """PKCE's S256 challenge: the verifier's SHA-256, base64url without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(
    settings: Settings, meta: ProviderMetadata, redirect_uri: str
) -> AuthorizationRequest:
    """The authorization code request with PKCE (S256), a fresh state and nonce."""
    _, client_id, _ = _client(settings)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43 to 128
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.oidc_scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in meta.authorization_endpoint else "?"
    url = meta.authorization_endpoint + separator + urlencode(query)
    return AuthorizationRequest(url, state, nonce, verifier)


async def _token_request(
    settings: Settings, meta: ProviderMetadata, form: dict[str, str]
) -> httpx.Response:
    _, client_id, secret = _client(settings)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            return await http.post(
                meta.token_endpoint,
                data=form,
                auth=(client_id, secret),  # client_secret_basic, every provider's default
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise SignInFailed(
            f"the sign-in service cannot be reached (token endpoint: "
            f"{exc.__class__.__name__}); try again in a moment",
            "provider_unreachable",
        ) from None


async def finish_code_flow(
    settings: Settings,
    clock: Clock,
    meta: ProviderMetadata,
    code: str,
    redirect_uri: str,
    verifier: str,
    nonce: str,
) -> dict[str, Any]:
    """Exchange the code for tokens and return the person's validated claims."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    response = await _token_request(settings, meta, form)
    tokens = _json_object(response, "token answer")
    if response.status_code != 200:
        raise SignInFailed(
            f"the sign-in service did not accept the sign-in: {_described(tokens)}; start again",
            str(tokens.get("error", "provider_error")),
        )
    return await _claims_of(settings, clock, meta, tokens, nonce)


async def start_device(settings: Settings) -> DeviceStart:
    """Ask the provider for a device code and a user code (RFC 8628)."""
    meta = await metadata(settings)
    if not meta.device_authorization_endpoint:
        raise SignInFailed(
            "the sign-in service does not offer the device grant; make a token in the "
            "portal and give it to 'aif login --token-file FILE'",
            "device_grant_unsupported",
        )
    _, client_id, secret = _client(settings)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            response = await http.post(
                meta.device_authorization_endpoint,
                data={"client_id": client_id, "scope": settings.oidc_scopes},
                auth=(client_id, secret),
            )
    except httpx.HTTPError as exc:
        raise SignInFailed(
            f"the sign-in service cannot be reached ({exc.__class__.__name__}); try again",
            "provider_unreachable",
        ) from None
    body = _json_object(response, "device authorization answer")
    if response.status_code != 200:
        raise SignInFailed(f"the sign-in service refused the device sign-in: {_described(body)}")
    try:
        return DeviceStart(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body.get("verification_uri") or body["verification_url"]),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=int(body["expires_in"]),
            interval=int(body.get("interval", 5)),  # RFC 8628: 5 s when not given
        )
    except (KeyError, ValueError, TypeError):
        raise SignInFailed("the sign-in service's device answer lacks a field") from None


async def poll_device(settings: Settings, clock: Clock, device_code: str) -> DevicePoll:
    """Ask the provider once whether the person approved the device sign-in."""
    meta = await metadata(settings)
    response = await _token_request(
        settings, meta, {"grant_type": DEVICE_GRANT, "device_code": device_code}
    )
    body = _json_object(response, "token answer")
    if response.status_code == 200:
        return DevicePoll("done", await _claims_of(settings, clock, meta, body, None))
    error = str(body.get("error", "provider_error"))
    if error in ("authorization_pending", "slow_down"):
        return DevicePoll(error)  # type: ignore[arg-type]
    messages = {
        "access_denied": "the sign-in was refused at the sign-in service",
        "expired_token": "the code expired before it was entered; run 'aif login' again",
        "invalid_grant": "this sign-in is over (used or unknown); run 'aif login' again",
    }
    raise SignInFailed(messages.get(error, f"the sign-in failed: {_described(body)}"), error)


async def _claims_of(
    settings: Settings,
    clock: Clock,
    meta: ProviderMetadata,
    tokens: dict[str, Any],
    nonce: str | None,
) -> dict[str, Any]:
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed(
            "the sign-in service sent no ID token: is 'openid' among AIFACTORIES_OIDC_SCOPES?",
            "invalid_id_token",
        )
    claims = await validated_id_token(settings, clock, meta, id_token, nonce)
    access_token = tokens.get("access_token")
    if meta.userinfo_endpoint and isinstance(access_token, str):
        info = await _get_json(
            meta.userinfo_endpoint,
            "userinfo",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        # another sub would be another person's claims (OpenID Connect Core 5.3.2)
        if info.get("sub") == claims["sub"]:
            claims = {**info, **claims}
    return claims


async def validated_id_token(
    settings: Settings, clock: Clock, meta: ProviderMetadata, id_token: str, nonce: str | None
) -> dict[str, Any]:
    """The ID token's claims, once signature, issuer, audience, expiry and nonce are right."""
    _, client_id, _ = _client(settings)
    keys = await _keys(meta)
    try:
        try:
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        except JoseError:  # perhaps a key the provider rotated in since we read the set
            token = jwt.decode(
                id_token, await _keys(meta, refresh=True), algorithms=ID_TOKEN_ALGORITHMS
            )
        expected: dict[str, Any] = {
            "iss": {"essential": True, "value": meta.issuer},
            "aud": {"essential": True, "value": client_id},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            expected["nonce"] = {"essential": True, "value": nonce}
        jwt.JWTClaimsRegistry(now=int(clock.now()), leeway=LEEWAY_S, **expected).validate(
            token.claims
        )
    except (JoseError, ValueError) as exc:
        raise SignInFailed(
            f"the sign-in service's ID token is not valid here ({exc}); start again",
            "invalid_id_token",
        ) from None
    audiences = token.claims["aud"]
    if isinstance(audiences, list) and len(audiences) > 1 and token.claims.get("azp") != client_id:
        raise SignInFailed("the ID token was issued to another client", "invalid_id_token")
    return dict(token.claims)


def _described(body: dict[str, Any]) -> str:
    error = str(body.get("error", "unknown error"))
    description = body.get("error_description")
    return f"{error} ({description})" if description else error
