"""Idempotency keys: a creation sent twice with one ``Idempotency-Key`` creates one object.

A creation service makes a :class:`Once` from the caller's key and its own inputs, and runs
its transaction through :func:`replaying`. Inside that transaction it calls :func:`record`
with the new object's id, so the key is stored exactly when the object is (no response cache
written afterwards that a crash could lose). A retry finds the key and gets the same object
back; a retry with other inputs gets 422. Two concurrent requests with one key both pass the
first look-up, but only one transaction can insert the key (unique on user and key): the
other fails, rolls back everything it created, and answers with the winner's object. This
holds on SQLite (one writer at a time) and PostgreSQL (the second insert waits for the first
transaction, then fails).

Keys are kept ``idempotency_keep_hours`` (docs/api-access.md), then swept: a process sweeps
at most once per SWEEP_EVERY_S, after a creation that used a key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy import Result, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from aifactories.db.models import Base, table_of
from aifactories.db.security_models import IDEMPOTENCY_KEY_MAX, IdempotencyKeyRow
from aifactories.domain.clock import stopwatch
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.services.core.context import Principal, ServiceContext

HEADER = "Idempotency-Key"
SWEEP_EVERY_S = 3600.0
_KEYS = table_of(IdempotencyKeyRow)
_INSERT = insert(_KEYS)
_last_sweep = {"at": -SWEEP_EVERY_S}
_sweep_lock = threading.Lock()

T = TypeVar("T")
M = TypeVar("M", bound=Base)


class Executes(Protocol):
    """A Session or a Connection: the creation's own transaction."""

    def execute(self, statement: Executable, parameters: dict[str, object]) -> Result[object]: ...


@dataclass(frozen=True)
class Once:
    """A key as a creation service sees it: whose, for which operation and which inputs."""

    user_id: int
    key: str
    operation: str
    request_hash: str


def once(principal: Principal, key: str | None, operation: str, *inputs: object) -> Once | None:
    """The key of a request, or None without one. ``inputs`` are everything that makes the
    request what it is (path parameters, the body model): they are hashed, never stored."""
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not (key.isascii() and key.isprintable()):
        raise InvalidInput(
            HEADER,
            "not a usable idempotency key",
            limit=f"1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, e.g. a random UUID",
        )
    canonical = json.dumps(
        [operation, to_jsonable_python(inputs)], sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return Once(int(principal.user_id), key, operation, digest)


def record(tx: Executes, key: Once | None, resource_id: int, now: float) -> None:
    """Store the key in the creation's transaction (a no-op without a key)."""
    if key is None:
        return
    tx.execute(
        _INSERT,
        {
            "user_id": key.user_id,
            "key": key.key,
            "operation": key.operation,
            "request_hash": key.request_hash,
            "resource_id": resource_id,
            "created_at": now,
        },
    )


def created_before(ctx: ServiceContext, key: Once | None) -> int | None:
    """The id of the object this key already created, or None. A key used for another
    request is refused; a key past its keeping time is forgotten here (the sweep may not
    have run yet)."""
    if key is None:
        return None
    with ctx.read_engine.connect() as conn:
        row = (
            conn.execute(
                select(
                    _KEYS.c.id,
                    _KEYS.c.operation,
                    _KEYS.c.request_hash,
                    _KEYS.c.resource_id,
                    _KEYS.c.created_at,
                ).where(_KEYS.c.user_id == key.user_id, _KEYS.c.key == key.key)
            )
            .mappings()
            .one_or_none()
        )
    if row is None:
        return None
    if row["created_at"] < ctx.clock.now() - _keep_s(ctx):
        with ctx.write_engine.begin() as conn:
            conn.execute(delete(_KEYS).where(_KEYS.c.id == row["id"]))
        return None
    if row["operation"] != key.operation or row["request_hash"] != key.request_hash:
        raise InvalidInput(
            HEADER,
            f"the key {key.key!r} was already used for another request (operation "
            f"{row['operation']}); a retry must send the very same request, and a new request "
            "a new key",
            limit="one key per distinct request",
        )
    return int(row["resource_id"])


def replaying(
    ctx: ServiceContext,
    key: Once | None,
    create: Callable[[], T],
    created: Callable[[int], T],
) -> T:
    """Run ``create`` (which calls :func:`record` in its transaction) once per key; a repeat,
    or the loser of a race on the key, gets ``created(id)`` of the first one's object."""
    if key is None:
        return create()
    earlier = created_before(ctx, key)
    if earlier is not None:
        return created(earlier)
    try:
        result = create()
    except IntegrityError:
        earlier = created_before(ctx, key)
        if earlier is None:
            raise  # another constraint: not the key's doing
        return created(earlier)
    _sweep_now_and_then(ctx)
    return result


def sweep(ctx: ServiceContext) -> int:
    """Forget keys older than the keeping time; returns how many."""
    with ctx.write_engine.begin() as conn:
        gone = conn.execute(
            delete(_KEYS).where(_KEYS.c.created_at < ctx.clock.now() - _keep_s(ctx))
        )
    return int(gone.rowcount or 0)


def _sweep_now_and_then(ctx: ServiceContext) -> None:
    with _sweep_lock:
        due = stopwatch() - _last_sweep["at"] >= SWEEP_EVERY_S
        if due:
            _last_sweep["at"] = stopwatch()
    if due:
        sweep(ctx)


def _keep_s(ctx: ServiceContext) -> float:
    return ctx.settings.idempotency_keep_hours * 3600.0


def stored(ctx: ServiceContext, model: type[M], row_id: int) -> M:
    """The row a key created, detached: what a replayed creation returns."""
    with ctx.reads() as session:
        row = session.get(model, row_id)
        if row is None:
            raise NotFound(
                f"what this idempotency key created ({model.__tablename__} {row_id}) no longer "
                "exists; send the request with a new key to create it again"
            )
        session.expunge(row)
        return row
