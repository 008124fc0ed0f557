"""API tokens: list, create (the secret is shown once), revoke.

Everyone manages their own tokens; a programme operator also anyone's (to hand a new token
to a user whose tokens all expired, or to cut one off). A token lives at most
``token_lifetime_days``; a revocation takes effect at once in this process and within the
token cache's TOKEN_CACHE_S in the others (services/core/auth.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from sqlalchemy.orm import Session

from aifactories.db.accounts import new_token_row, tokens_of, user_by_username
from aifactories.db.models import ApiTokenRow, UserRow
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.services.core import idempotency
from aifactories.services.core.auth import forget_cached_principals, require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import Username, check_line
from aifactories.services.notifications import audit

DAY_S = 86400.0


class TokenIn(BaseModel):
    """A new token: what it is for, how long it lives, and (operators) whose it is."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100),
        AfterValidator(check_line),
        Field(description="what the token is for"),
    ] = "api"
    expires_in_days: Annotated[
        StrictInt | None,
        Field(
            ge=1,
            le=3650,
            description="lifetime; default and maximum: the platform's token_lifetime_days",
        ),
    ] = None
    user: Annotated[Username | None, Field(description="operators: make it for this user")] = None


@dataclass(frozen=True)
class TokenView:
    id: int
    user_id: int
    username: str
    label: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    view: TokenView
    # the plaintext, shown this once; None when a retried request (same Idempotency-Key)
    # gets the token created the first time: only its hash was kept
    secret: str | None


def _view(row: ApiTokenRow, username: str) -> TokenView:
    return TokenView(
        id=row.id,
        user_id=row.user_id,
        username=username,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _username(session: Session, user_id: int) -> str:
    user = session.get(UserRow, user_id)
    return user.username if user is not None else f"user {user_id}"


def list_tokens(
    ctx: ServiceContext, principal: Principal, user: str | None = None
) -> list[TokenView]:
    """The caller's tokens; an operator may name a user, or ``*`` for everyone's."""
    with ctx.reads() as session:
        if user is None or user == principal.username:
            owner: int | None = int(principal.user_id)
        else:
            require_programme_operator(principal, "list another user's tokens")
            owner = None if user == "*" else _user_id(session, user)
        rows = tokens_of(session, owner)
        names = {uid: _username(session, uid) for uid in {r.user_id for r in rows}}
        return [_view(r, names[r.user_id]) for r in rows]


def create_token(
    ctx: ServiceContext, principal: Principal, body: TokenIn, key: str | None = None
) -> NewToken:
    lifetime = ctx.settings.token_lifetime_days
    days = body.expires_in_days if body.expires_in_days is not None else lifetime
    if days > lifetime:
        raise InvalidInput(
            "expires_in_days",
            f"{days} days is longer than this platform lets a token live",
            limit=f"1 to {lifetime} days",
        )
    once = idempotency.once(principal, key, "tokens.create", body)

    def create() -> NewToken:
        now = ctx.clock.now()
        with ctx.sessions() as session, session.begin():
            owner = int(principal.user_id)
            if body.user is not None and body.user != principal.username:
                require_programme_operator(principal, "make a token for another user")
                owner = _user_id(session, body.user)
            row, secret = new_token_row(session, owner, body.label, now, now + days * DAY_S)
            idempotency.record(session, once, row.id, now)
            if owner != principal.user_id:
                audit.record(
                    session,
                    at=now,
                    actor=principal,
                    action="token.create",
                    subject=f"user:{body.user}",
                    details={"token_id": row.id, "label": body.label, "days": days},
                )
            return NewToken(_view(row, _username(session, owner)), secret)

    return idempotency.replaying(
        ctx, once, create, lambda token_id: NewToken(get_token(ctx, principal, token_id), None)
    )


def get_token(ctx: ServiceContext, principal: Principal, token_id: int) -> TokenView:
    with ctx.reads() as session:
        row = _visible(session, principal, token_id)
        return _view(row, _username(session, row.user_id))


def revoke_token(ctx: ServiceContext, principal: Principal, token_id: int) -> TokenView:
    """Revoke a token at once (a second revocation changes nothing)."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = _visible(session, principal, token_id)
        if row.revoked_at is None:
            row.revoked_at = now
            if row.user_id != principal.user_id:
                audit.record(
                    session,
                    at=now,
                    actor=principal,
                    action="token.revoke",
                    subject=f"user:{_username(session, row.user_id)}",
                    details={"token_id": row.id, "label": row.label},
                )
        view = _view(row, _username(session, row.user_id))
    forget_cached_principals()  # at once here; other processes within TOKEN_CACHE_S
    return view


def issue_token(ctx: ServiceContext, username: str, label: str, days: int) -> NewToken:
    """A token made on the server itself (``aif tokens issue``): the way back in when every
    token of every operator has expired."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        owner = _user_id(session, username)
        row, secret = new_token_row(session, owner, label, now, now + days * DAY_S)
        return NewToken(_view(row, username), secret)


def _visible(session: Session, principal: Principal, token_id: int) -> ApiTokenRow:
    row = session.get(ApiTokenRow, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_operator):
        raise NotFound(f"token {token_id} does not exist or is not yours")
    return row


def _user_id(session: Session, username: str) -> int:
    user = user_by_username(session, username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user.id
