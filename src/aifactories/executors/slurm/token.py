"""Tokens for slurmrestd's ``rest_auth/jwt``: minted from the site's HS256 key, or read.

Slurm's ``auth/jwt`` accepts an HS256 JWT signed with the key in ``AuthAltParameters=jwt_key``
and carrying ``sun`` (the Slurm user name), ``iat`` and ``exp``: what ``scontrol token``
makes, here in pure Python (hmac, hashlib, base64) so the platform needs no Slurm client and
no root. A minted token is renewed well before it expires; a token file is read again when
it changes (a site that hands out tokens rotates them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

from aifactories.domain.errors import ConfigurationError, ProtocolError

LIFESPAN_S = 3600
_RENEW_BEFORE_S = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(key: bytes, user: str, now: float, lifespan_s: int = LIFESPAN_S) -> str:
    """An HS256 JWT for ``user``, valid from ``now`` for ``lifespan_s`` seconds."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"exp": int(now) + lifespan_s, "iat": int(now), "sun": user}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def claims_of(token: str) -> dict[str, object]:
    """The (unverified) claims of a JWT: for tests and error messages."""
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _expiry(token: str) -> float:
    """When a token read from a file expires: its ``exp`` claim, or never if it has none
    (or is no JWT we can read: slurmctld will judge it)."""
    try:
        exp = claims_of(token).get("exp")
    except (IndexError, ValueError, AttributeError):
        return float("inf")
    return float(exp) if isinstance(exp, int | float) else float("inf")


class TokenSource:
    """Gives a valid token for ``user``: minted from ``jwt_key_file`` or read from
    ``token_file`` (exactly one of the two)."""

    def __init__(
        self,
        site_id: str,
        user: str,
        *,
        jwt_key_file: str | None = None,
        token_file: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (jwt_key_file is None) == (token_file is None):
            raise ConfigurationError(
                f"site {site_id}: slurm_rest needs exactly one of jwt_key_file (the site's "
                "jwt_hs256.key, to mint tokens) or token_file (a token the site issued)"
            )
        self._site_id = site_id
        self._user = user
        self._clock = clock
        self._path = Path(jwt_key_file or token_file or "")
        self._minting = jwt_key_file is not None
        self._token: str | None = None
        self._expires = 0.0
        self._mtime = -1.0
        if not self._path.is_file():
            what = "JWT key" if self._minting else "token"
            raise ConfigurationError(f"site {site_id}: no {what} file at {self._path}")

    def token(self) -> str:
        now = self._clock()
        if self._minting:
            if self._token is None or now >= self._expires - _RENEW_BEFORE_S:
                self._token = mint(self._path.read_bytes(), self._user, now)
                self._expires = now + LIFESPAN_S
            return self._token
        mtime = self._path.stat().st_mtime
        if self._token is None or mtime != self._mtime:
            self._token = self._path.read_text(encoding="utf-8").strip()
            self._mtime = mtime
            self._expires = _expiry(self._token)
        if now >= self._expires:
            # slurmctld would only hang up on it (22.05 then looks like a dead controller).
            raise ProtocolError(
                f"site {self._site_id}: the token in {self._path} expired at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self._expires))}; "
                "put a fresh one there ('scontrol token username=USER lifespan=SECONDS')"
            )
        return self._token
