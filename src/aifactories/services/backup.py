"""Backups of the platform's database (docs/operations.md).

SQLite: an online copy with SQLite's own backup API, safe while the platform writes: the copy
is one read transaction, so it is the database as of one instant (in WAL mode writers go on
meanwhile), checked and then moved into place. PostgreSQL: ``pg_dump`` is the tool; this
module only writes its command line, with the platform's URL in libpq's form.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from aifactories.domain.errors import ConfigurationError


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size_bytes: int
    revision: str | None  # the schema revision the copy is at


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


def backup_sqlite(database_url: str, to: Path) -> BackupReport:
    """Copy a live SQLite database to ``to`` (replaced if it exists; mode 0600, like the
    database itself). A partial copy never takes ``to``'s name."""
    source_path = make_url(database_url).database
    if not source_path or source_path == ":memory:":
        raise ConfigurationError(f"{database_url} is not a database file: nothing to back up")
    if not Path(source_path).is_file():
        raise ConfigurationError(
            f"no database at {source_path}: check AIFACTORIES_DATABASE_URL / AIFACTORIES_DATA_DIR"
        )
    to = to.resolve()
    if to == Path(source_path).resolve():
        raise ConfigurationError("the backup cannot overwrite the database itself")
    partial = to.with_name(f".{to.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        source = sqlite3.connect(source_path, timeout=30)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)  # all pages in one step: one consistent snapshot
                # A copy is a plain file: no WAL to carry around with it.
                target.execute("PRAGMA journal_mode=DELETE")
                check = target.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise ConfigurationError(f"the copy failed SQLite's check: {check}")
                revision = _revision(target)
            finally:
                target.close()
        finally:
            source.close()
        os.replace(partial, to)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(path=to, size_bytes=to.stat().st_size, revision=revision)


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def libpq_url(database_url: str) -> str:
    """The URL as ``pg_dump``/``psql`` take it: no SQLAlchemy driver suffix, and no password
    (a command line is visible to every user of the machine): PGPASSWORD or ~/.pgpass has it."""
    url = make_url(database_url)._replace(drivername="postgresql", password=None)
    return url.render_as_string(hide_password=False)


def pg_dump_command(database_url: str, to: Path) -> str:
    """The command that backs up a PostgreSQL database into ``to`` (pg_dump's custom format,
    restored with pg_restore)."""
    return shlex.join(["pg_dump", "--format=custom", f"--file={to}", libpq_url(database_url)])


def pg_restore_command(database_url: str, source: Path) -> str:
    """The command that restores a pg_dump file into an empty database at ``database_url``."""
    return shlex.join(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            f"--dbname={libpq_url(database_url)}",
            str(source),
        ]
    )
