"""Rows for running several platform instances on one database: the broker lease."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from aifactories.db.models import Base

BROKER_LEASE = "broker"  # the one lease row's name


class LeaseRow(Base):
    """Who runs the broker. One row per lease (today only ``broker``). ``epoch`` is the
    fencing token: it grows by one at every acquisition, and every broker write checks in its
    own transaction that the epoch is still the one it acquired (broker/lease.py). Times are
    epoch seconds from the database's clock, so the instances' clocks never need to agree."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))  # an instance name; None: free
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[float | None] = mapped_column(Float)
    renewed_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
