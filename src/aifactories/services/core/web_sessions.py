"""Portal sessions: opened at sign-in, looked up on every page, ended at sign-out.

The browser keeps a random 256-bit secret (in a signed cookie, web/session.py); the database
keeps its SHA-256 and the expiry, so that signing out, an expiry, or an operator ending a
user's sessions takes effect at the next request, in every process. No cache: a page costs
one indexed lookup more than an API call with a cached token, and a session ended must be
ended at once (the issue asks it of token revocation; a portal session is no weaker).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from aifactories.db.accounts import hash_token
from aifactories.db.models import UserRow
from aifactories.db.security_models import WebSessionRow
from aifactories.domain.errors import AuthenticationRequired
from aifactories.services.core.auth import authenticate, principal_of_user
from aifactories.services.core.context import Principal, ServiceContext

HOUR_S = 3600.0
_KEY_FILE = "portal-session.key"
_keys: dict[Path, str] = {}  # key file -> its key
VIA_TOKEN = "token"
VIA_OIDC = "oidc"


@dataclass(frozen=True)
class OpenedSession:
    secret: str  # for the cookie; never stored
    expires_at: float


def open_session(ctx: ServiceContext, user_id: int, via: str) -> OpenedSession:
    """A new session for ``user_id``, living the platform's session_lifetime_hours."""
    now = ctx.clock.now()
    secret = secrets.token_urlsafe(32)
    expires_at = now + ctx.settings.session_lifetime_hours * HOUR_S
    with ctx.sessions() as session, session.begin():
        if session.get(UserRow, user_id) is None:
            raise AuthenticationRequired(f"user {user_id} does not exist")
        session.add(
            WebSessionRow(
                session_hash=hash_token(secret),
                user_id=user_id,
                via=via,
                created_at=now,
                expires_at=expires_at,
            )
        )
    return OpenedSession(secret, expires_at)


def open_session_with_token(ctx: ServiceContext, token: str) -> OpenedSession:
    """Sign in with a personal API token (the demo's users, or anyone without a provider):
    the token is checked exactly as the API checks it."""
    principal = authenticate(ctx, token.strip())
    return open_session(ctx, int(principal.user_id), VIA_TOKEN)


def principal_for_session(ctx: ServiceContext, secret: str) -> Principal | None:
    """The signed-in principal, or None when the session is unknown, ended or expired."""
    now = ctx.clock.now()
    with ctx.reads() as session:
        row = session.scalars(
            select(WebSessionRow).where(WebSessionRow.session_hash == hash_token(secret))
        ).first()
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        user = session.get(UserRow, row.user_id)
        return None if user is None else principal_of_user(session, user)


def end_session(ctx: ServiceContext, secret: str) -> None:
    """Sign out: the session ends for every process at once; ending it twice changes nothing."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.session_hash == hash_token(secret))
            .where(WebSessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )


def end_sessions_of(ctx: ServiceContext, principal: Principal) -> int:
    """Sign out everywhere: every open session of the caller; returns how many ended."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        result = session.execute(
            update(WebSessionRow)
            .where(WebSessionRow.user_id == int(principal.user_id))
            .where(WebSessionRow.ended_at.is_(None))
            .where(WebSessionRow.expires_at > now)
            .values(ended_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def session_key(ctx: ServiceContext) -> str:
    """The signing key: AIFACTORIES_SESSION_SECRET, else a random key kept (0600) in the data
    directory, so that sessions survive a restart and every instance on one data directory
    agrees. Several hosts must share AIFACTORIES_SESSION_SECRET."""
    if ctx.settings.session_secret:
        return ctx.settings.session_secret
    path = Path(ctx.settings.data_dir) / _KEY_FILE
    known = _keys.get(path)
    if known is None:  # read once per process: every signed cookie and form needs it
        known = _keys[path] = _read_or_make_key(path)
    return known


def _read_or_make_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key
