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
