"""Engines and sessions, made on demand from a URL (never at import time)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the broker writes; busy_timeout turns lock contention into a
    # short wait instead of "database is locked"; foreign keys are off by default in SQLite.
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling would not).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _serialise_transactions(engine: Engine, database: str) -> None:
    """SQLite has one writer at a time. "BEGIN IMMEDIATE" takes the write lock up front, so a
    transaction never fails on a read-to-write lock upgrade. Before it, a thread lock queues
    this process's transactions and an advisory file lock (``<database>.writelock``) queues
    other processes' (API workers, the broker, admin commands): both hand over in
    microseconds, where SQLite's own busy handler sleeps in growing steps (tens of
    milliseconds) and wrecks tail latency under concurrent requests."""
    lock = threading.RLock()
    lock_file = open(  # noqa: SIM115 - lives with the engine
        f"{database}.writelock", "a+b", opener=lambda path, flags: os.open(path, flags, 0o600)
    )
    depth = 0

    def acquire() -> None:
        nonlocal depth
        lock.acquire()
        if depth == 0:
            try:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            except BaseException:
                lock.release()
                raise
        depth += 1

    def release() -> None:
        nonlocal depth
        depth -= 1
        if depth == 0:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
        lock.release()

    def begin(conn: Connection) -> None:
        acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release()
            raise

    event.listen(engine, "begin", begin)
    event.listen(engine, "commit", lambda _conn: release())
    event.listen(engine, "rollback", lambda _conn: release())
    event.listen(engine, "engine_disposed", lambda _engine: lock_file.close())


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            _private_files(parsed.database)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if parsed.database and parsed.database != ":memory:":
            _serialise_transactions(engine, parsed.database)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _private_files(database: str) -> None:
    """The database file is the platform's alone (0600), created so before SQLite opens it;
    SQLite gives its -wal and -shm files the database file's mode. Files made by an older
    version are tightened too.

    An existing database file is never opened here: closing any descriptor of a file drops
    every POSIX lock this process holds on it, SQLite's own included, so a second engine made
    while a connection is open (``aif up`` migrates through one) would leave that connection
    unlocked; the next process to close the database would then take itself for the last and
    delete the live WAL (SQLite's "database disk image is malformed")."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", ".writelock"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(f"{database}{suffix}", 0o600)


def make_read_engine(url: str, write_engine: Engine) -> Engine:
    """An engine for read-only sessions. On SQLite a second engine whose transactions are
    plain deferred BEGINs outside the write lock: in WAL mode readers never block the writer
    nor each other, so reads (listing jobs, the broker's snapshot) do not queue behind writes.
    Elsewhere the same engine serves both."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return write_engine
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, _record)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")  # a write through here is a bug: fail loudly
        cursor.close()

    event.listen(engine, "connect", pragmas)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
