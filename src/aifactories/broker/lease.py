"""The broker lease: one active broker among several platform instances, with fencing.

Several instances (``aif up`` processes) may share one PostgreSQL database; each serves the
API and each may run a broker, but only the holder of the lease places and reconciles. The
lease is one row (``leases``, db/lease_models.py): holder, epoch, expiry.

- **Acquire**: in one short transaction, read the row and, if it is free, expired, or held
  under this instance's own name (a restart of the same instance), take it with an UPDATE
  conditional on the epoch read and on those conditions again: ``epoch + 1``, expiry = now +
  period. Two instances racing both read epoch *n*; only one UPDATE matches.
- **Renew**: an UPDATE conditional on holder, epoch and an expiry still in the future.
- **Fencing**: the broker's sessions come from :meth:`BrokerLease.fenced`: the first statement
  of each of their transactions is ``SELECT ... FOR SHARE`` of the lease row with
  ``epoch = mine AND expires_at > now``. No row: :class:`LeaseLost`, and the transaction
  (a reservation, a site job id, a charge) rolls back. On PostgreSQL the shared row lock is
  held to commit, so a takeover's UPDATE waits for the old leader's transaction in flight
  and that transaction can never commit after the takeover; on SQLite every write transaction
  is serialised anyway.
- **Time**: expiries are compared with the *database's* clock (``clock_timestamp()`` on
  PostgreSQL; the machine's clock on SQLite, which has one machine), never an instance's own,
  so clock skew between machines does not matter. Locally a holder trusts its lease only
  until ``period - margin`` after it *sent* its last successful renewal, on its monotonic
  clock: that is always before the database lets anyone else take it.

Tests inject a :class:`~aifactories.domain.clock.Clock` (lease times then come from it) and a
monotonic function. docs/operations.md explains the choices and the one gap left: a submission
to a site already in flight when the lease is lost cannot be fenced by the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, FunctionElement, event, literal, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from aifactories.db.lease_models import BROKER_LEASE, LeaseRow
from aifactories.db.models import table_of
from aifactories.domain.clock import Clock, stopwatch
from aifactories.domain.errors import AifError
from aifactories.executors.base import (
    Executor,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
)

log = logging.getLogger(__name__)

_LEASES = table_of(LeaseRow)


class LeaseLost(AifError):
    """This instance does not hold the broker lease (any more): it must not place."""

    code = "lease_lost"


class db_now(FunctionElement[float]):  # noqa: N801 - reads as the SQL function it renders
    """The database server's clock, in epoch seconds."""

    type = Float()
    inherit_cache = True


@compiles(db_now)
def _db_now_sqlite(_element: db_now, _compiler: Any, **_kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _db_now_postgresql(_element: db_now, _compiler: Any, **_kw: Any) -> str:
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class LeaseView:
    """The lease as the database has it, read at ``now`` (the same clock as the expiry)."""

    holder: str | None
    epoch: int
    acquired_at: float | None
    expires_at: float
    now: float

    @property
    def active(self) -> bool:
        return self.holder is not None and self.expires_at > self.now

    def as_dict(self) -> dict[str, object]:
        return {
            "holder": self.holder if self.active else None,
            "epoch": self.epoch,
            "acquired_at": self.acquired_at,
            "expires_in_s": round(self.expires_at - self.now, 3) if self.active else None,
        }


class BrokerLease:
    """This instance's side of the lease. ``tick()`` renews or tries to acquire; the broker
    asks :meth:`require` at each cycle and writes through :meth:`fenced` sessions."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        read_factory: sessionmaker[Session] | None = None,
        holder: str,
        period_s: float,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = stopwatch,
        name: str = BROKER_LEASE,
    ) -> None:
        if not holder:
            raise ValueError("a lease holder needs a name")
        self.holder = holder
        self.period_s = period_s
        self._sessions = session_factory
        self._reads = read_factory or session_factory
        self._clock = clock
        self._monotonic = monotonic
        self._name = name
        # Trusted locally until period - margin after the renewal was sent: the margin
        # absorbs clock-rate drift and the time between a check and the write it guards.
        self._margin_s = period_s / 10
        self._lock = threading.Lock()
        self._held: tuple[int, float] | None = None  # (epoch, local monotonic deadline)

    # -- the local view -------------------------------------------------------------------

    @property
    def epoch(self) -> int | None:
        """The epoch this instance holds, or None (never held, lost, or not renewed in time)."""
        held = self._held
        if held is None or self._monotonic() >= held[1]:
            return None
        return held[0]

    def held(self) -> bool:
        return self.epoch is not None

    def require(self) -> int:
        """The epoch held, or :class:`LeaseLost`: checked before anything is sent to a site."""
        epoch = self.epoch
        if epoch is None:
            raise LeaseLost(f"{self.holder} does not hold the broker lease")
        return epoch

    # -- acquire, renew, release ----------------------------------------------------------

    def _now(self) -> ColumnElement[float]:
        if self._clock is not None:
            return literal(self._clock.now(), Float())
        return db_now()

    def tick(self) -> bool:
        """Renew the lease if held, else try to take it; whether it is held afterwards.
        A database error is logged: the lease then lapses locally at its deadline."""
        try:
            with self._lock:
                if self._held is not None and self._renew():
                    return True
                return self._acquire()
        except SQLAlchemyError as exc:
            log.warning("broker lease not renewed (database error): %s", exc)
            return self.held()

    def _renew(self) -> bool:
        assert self._held is not None
        epoch = self._held[0]
        sent = self._monotonic()
        now = self._now()
        with self._sessions() as session, session.begin():
            renewed = (
                session.connection()
                .execute(
                    update(_LEASES)
                    .where(
                        _LEASES.c.name == self._name,
                        _LEASES.c.holder == self.holder,
                        _LEASES.c.epoch == epoch,
                        _LEASES.c.expires_at > now,
                    )
                    .values(renewed_at=now, expires_at=now + self.period_s)
                )
                .rowcount
            )
        if renewed == 1:
            self._held = (epoch, sent + self.period_s - self._margin_s)
            return True
        log.warning("%s lost the broker lease (epoch %d): standing by", self.holder, epoch)
        self._held = None
        return False

    def _acquire(self, create: bool = True) -> bool:
        sent = self._monotonic()
        with self._sessions() as session, session.begin():
            # Read without a lock: a standby asks every renew interval, and a row lock here
            # would stall the leader's fenced writes each time. The UPDATE below re-checks
            # everything under the row lock (and waits for the leader's writes in flight).
            row = session.execute(
                select(_LEASES.c.holder, _LEASES.c.epoch, _LEASES.c.expires_at, self._now()).where(
                    _LEASES.c.name == self._name
                )
            ).first()
            if row is not None:
                holder, epoch, expires_at, now = row
                if holder is not None and expires_at > now and holder != self.holder:
                    self._held = None
                    return False
                now_sql = self._now()
                took = (
                    session.connection()
                    .execute(
                        update(_LEASES)
                        .where(
                            _LEASES.c.name == self._name,
                            _LEASES.c.epoch == epoch,
                            or_(
                                _LEASES.c.holder.is_(None),
                                _LEASES.c.holder == self.holder,
                                _LEASES.c.expires_at <= now_sql,
                            ),
                        )
                        .values(
                            holder=self.holder,
                            epoch=epoch + 1,
                            acquired_at=now_sql,
                            renewed_at=now_sql,
                            expires_at=now_sql + self.period_s,
                        )
                    )
                    .rowcount
                )
        if row is None:
            self._create_row()
            return self._acquire(create=False) if create else False
        if took != 1:
            return False
        self._held = (epoch + 1, sent + self.period_s - self._margin_s)
        if holder is None or expires_at <= now:
            log.info("%s leads the broker now (epoch %d)", self.holder, epoch + 1)
        else:
            log.warning(
                "%s took the broker lease back from an earlier process of the same name, "
                "which must have stopped without releasing it (epoch %d); two running "
                "instances must never share a name",
                self.holder,
                epoch + 1,
            )
        return True

    def _create_row(self) -> None:
        """The row the migration inserts, for databases made with ``create_all``."""
        try:
            with self._sessions() as session, session.begin():
                session.add(LeaseRow(name=self._name, holder=None, epoch=0, expires_at=0.0))
        except IntegrityError:
            pass  # another instance made it first

    def release(self) -> None:
        """Give the lease up (a clean stop), so that a standby takes over at its next tick
        instead of waiting for the expiry."""
        with self._lock:
            held, self._held = self._held, None
            if held is None:
                return
            now = self._now()
            with self._sessions() as session, session.begin():
                session.execute(
                    update(_LEASES)
                    .where(
                        _LEASES.c.name == self._name,
                        _LEASES.c.holder == self.holder,
                        _LEASES.c.epoch == held[0],
                    )
                    .values(holder=None, expires_at=now)
                )
        log.info("%s released the broker lease (epoch %d)", self.holder, held[0])

    def run_forever(self, stop: threading.Event, interval_s: float) -> None:
        """Renew (or, standing by, try to take) the lease every ``interval_s`` until ``stop``."""
        while not stop.wait(interval_s):
            self.tick()

    # -- fencing --------------------------------------------------------------------------

    def check(self, connection: Connection) -> int:
        """In the caller's transaction: the epoch held, still current in the database, its
        row share-locked until the transaction ends; else :class:`LeaseLost`."""
        epoch = self.require()
        found = connection.execute(
            select(_LEASES.c.epoch)
            .where(
                _LEASES.c.name == self._name,
                _LEASES.c.holder == self.holder,
                _LEASES.c.epoch == epoch,
                _LEASES.c.expires_at > self._now(),
            )
            .with_for_update(read=True)
        ).first()
        if found is None:
            # Forget the epoch without self._lock: the keeper may hold it while it waits for
            # the database lock that this very transaction holds (SQLite). The epoch is
            # refused by the database anyway, so a renewal racing with this cannot revive it.
            held = self._held
            if held is not None and held[0] == epoch:
                self._held = None
            log.warning("%s: broker lease epoch %d is no longer current", self.holder, epoch)
            raise LeaseLost(
                f"{self.holder} lost the broker lease (epoch {epoch}): the write is refused"
            )
        return epoch

    def fenced(self, factory: sessionmaker[Session]) -> sessionmaker[Session]:
        """A session factory like ``factory`` whose every transaction starts with
        :meth:`check`."""
        fenced: sessionmaker[Session] = sessionmaker(class_=factory.class_, **factory.kw)

        def after_begin(
            _session: Session, _transaction: SessionTransaction, connection: Connection
        ) -> None:
            self.check(connection)

        event.listen(fenced, "after_begin", after_begin)
        return fenced

    def view(self) -> LeaseView:
        """Who holds the lease, as the database says."""
        with self._reads() as session:
            row = session.execute(
                select(
                    _LEASES.c.holder,
                    _LEASES.c.epoch,
                    _LEASES.c.acquired_at,
                    _LEASES.c.expires_at,
                    self._now(),
                ).where(_LEASES.c.name == self._name)
            ).first()
        if row is None:
            return LeaseView(None, 0, None, 0.0, 0.0)
        holder, epoch, acquired_at, expires_at, now = row
        return LeaseView(holder, int(epoch), acquired_at, float(expires_at), float(now))


class FencedExecutor:
    """A site's executor that submits and cancels only while the lease is held locally.

    A site cannot check the database's epoch, so this is the best check there is: just
    before the call, on this process's monotonic clock, whose deadline always comes before
    the database lets another instance take the lease. Reads (poll, capacity, find) pass.
    """

    def __init__(self, inner: Executor, lease: BrokerLease) -> None:
        self.site_id = inner.site_id
        self._inner = inner
        self._lease = lease

    def submit(self, request: SubmitRequest) -> str:
        self._lease.require()
        return self._inner.submit(request)

    def cancel(self, site_job_id: str) -> None:
        self._lease.require()
        self._inner.cancel(site_job_id)

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        return self._inner.poll(site_job_ids)

    def capacity(self) -> list[PartitionCapacity]:
        return self._inner.capacity()

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        return self._inner.find_by_tag(tag)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:  # optional capabilities pass through
        return getattr(self._inner, name)
