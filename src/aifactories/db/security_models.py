"""Rows for the API's safety rules: token expiry and revocation, idempotency keys."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aifactories.db.models import Base

IDEMPOTENCY_KEY_MAX = 255


class IdempotencyKeyRow(Base):
    """A creation made under an ``Idempotency-Key``: written in the same transaction as the
    object it created, so a key exists exactly when its object does. The unique constraint
    is what makes two concurrent requests with one key create one object: the second
    transaction's insert fails and rolls back everything it made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    operation: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the operation's inputs (path parameters and body), to refuse a reused key
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class UserIdentityRow(Base):
    """A user's account at an OpenID provider: the provider's ``sub`` is unique per issuer
    only, so the pair is the key (a user may have several, one per provider)."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_user_identities_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    last_login_at: Mapped[float] = mapped_column(Float)


class WebSessionRow(Base):
    """A portal session: the browser holds a signed cookie with the secret, the database its
    SHA-256 (as for API tokens), so that logging out or an expiry ends it everywhere."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    via: Mapped[str] = mapped_column(String(20))  # how the user signed in: oidc, token
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float)
