"""/tokens: list, create and revoke API tokens (docs/api-access.md)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from aifactories.api.deps import Ctx, IdempotencyKey, Me
from aifactories.api.params import PathId, WordQ
from aifactories.domain.clock import to_datetime
from aifactories.services.core import tokens as token_service

router = APIRouter(tags=["tokens"])


def _iso(epoch: float | None) -> str | None:
    return to_datetime(epoch).isoformat() if epoch is not None else None


class TokenOut(BaseModel):
    id: int
    user_id: int
    username: str
    label: str
    status: str  # active, expired or revoked
    created_at: str
    expires_at: str | None  # None: never (a token from before expiry existed)
    last_used_at: str | None  # to the minute: not written at every request
    revoked_at: str | None

    @classmethod
    def of(cls, view: token_service.TokenView, now: float) -> TokenOut:
        return cls(
            id=view.id,
            user_id=view.user_id,
            username=view.username,
            label=view.label,
            status=view.status(now),
            created_at=_iso(view.created_at) or "",
            expires_at=_iso(view.expires_at),
            last_used_at=_iso(view.last_used_at),
            revoked_at=_iso(view.revoked_at),
        )


class NewTokenOut(TokenOut):
    # the secret, shown this once; null when a retry with the same Idempotency-Key got the
    # token made the first time (only its hash is kept): revoke it and make another
    token: str | None


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(context: Ctx, who: Me, user: WordQ = None) -> list[TokenOut]:
    """Your tokens, newest first; operators: another user's (``user=NAME``) or all
    (``user=*``)."""
    now = context.clock.now()
    return [TokenOut.of(v, now) for v in token_service.list_tokens(context, who, user)]


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def create_token(
    context: Ctx, who: Me, body: token_service.TokenIn, key: IdempotencyKey = None
) -> NewTokenOut:
    """A new token; its secret is in this answer only."""
    made = token_service.create_token(context, who, body, key)
    out = TokenOut.of(made.view, context.clock.now())
    return NewTokenOut(**out.model_dump(), token=made.secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(context: Ctx, who: Me, token_id: PathId) -> TokenOut:
    """Revoke one of your tokens (operators: anyone's), at once."""
    return TokenOut.of(token_service.revoke_token(context, who, token_id), context.clock.now())
