"""Backup and restore: SQLite's online copy while the platform writes, and PostgreSQL's
pg_dump / pg_restore into a fresh database; the platform starts on the copy with the same
books and goes on working (docs/operations.md)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.admin import db_app
from aifactories.db.migrate import head_revision
from aifactories.services import backup
from tests.broker.mock_platform import (
    MockPlatform,
    assert_books_consistent,
    books,
    mock_platform,
    populate,
)
from tests.conftest import PG_ENV, fresh_postgres_database
from tests.e2e.books import assert_books_balance


def _goes_on_working(mp: MockPlatform) -> None:
    """A new job is placed and charged, and once every job ended the books balance."""
    job_id = mp.submit()
    mp.platform.broker.run_once()
    assert mp.job(job_id).state in ("submitted", "running")
    mp.clock.advance(600)
    mp.finish_all()
    mp.platform.broker.run_once()
    assert mp.job(job_id).state == "completed"
    assert_books_balance(mp.platform.database_url)


def test_sqlite_online_backup_while_the_platform_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    live = mock_platform(tmp_path / "live", url)
    populate(live)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:  # the API and the broker at work
        while not stop.is_set():
            written.append(live.submit(gpus=1))
            live.platform.broker.run_once()
            live.clock.advance(30)
            if len(written) % 3 == 0:
                live.finish_all()

    writer = threading.Thread(target=write)
    writer.start()
    copies = []
    try:
        while len(copies) < 3:
            if len(written) > 3 * (len(copies) + 1):  # a few writes between the copies
                copy = tmp_path / f"copy{len(copies)}.db"
                report = backup.backup_sqlite(url, copy)
                assert report.revision == head_revision()
                copies.append(copy)
            else:
                stop.wait(0.01)
    finally:
        stop.set()
        writer.join()
    live.platform.stop()
    for copy in copies:
        assert copy.stat().st_mode & 0o777 == 0o600
        assert_books_consistent(f"sqlite:///{copy}")  # one instant's books, not a torn copy
    # the platform starts on a copy (with the sites' state, which the copy predates: it
    # adopts what the sites still run) and goes on working
    restored = mock_platform(
        tmp_path / "restored",
        f"sqlite:///{copies[-1]}",
        clock=live.clock,
        executors=live.executors,
    )
    restored.platform.check_schema()
    restored.platform.broker.run_once()
    _goes_on_working(restored)
    restored.platform.stop()


def test_aif_db_backup_copies_sqlite_and_tells_the_pg_dump_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'aif.db'}"
    mp = mock_platform(tmp_path, url)
    populate(mp)
    monkeypatch.setenv("AIFACTORIES_DATABASE_URL", url)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "cli"))
    result = CliRunner().invoke(db_app, ["backup", "--to", str(tmp_path / "b.db")])
    assert result.exit_code == 0, result.output
    assert "schema revision" in result.output
    assert books(f"sqlite:///{tmp_path / 'b.db'}") == books(url)
    mp.platform.stop()
    monkeypatch.setenv("AIFACTORIES_DATABASE_URL", "postgresql+psycopg://aif:pw@db.example/aif")
    result = CliRunner().invoke(db_app, ["backup", "--to", "aif.dump"])
    assert result.exit_code == 1
    assert "pg_dump --format=custom --file=aif.dump postgresql://aif@db.example/aif" in (
        result.output
    )
    assert "pw" not in result.output  # a command line is visible to every user of the machine


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    """A second, empty database on the test PostgreSQL, to restore into."""
    import os

    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(f"no PostgreSQL: set {PG_ENV} (scripts/with-postgres)")
    with fresh_postgres_database(admin_url, prefix="aif_restore") as url:
        yield url


@pytest.mark.postgres
def test_postgresql_dump_and_restore_into_a_fresh_database(
    tmp_path: Path, database_url: str, fresh_pg_database: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_dump is PostgreSQL's")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.fail("pg_dump and pg_restore are needed: apt-get install postgresql-client")
    live = mock_platform(tmp_path / "live", database_url)
    populate(live)
    before = books(database_url)
    dump = tmp_path / "aif.dump"
    # exactly the commands the documentation and 'aif db backup' give
    for command in (
        backup.pg_dump_command(database_url, dump),
        backup.pg_restore_command(fresh_pg_database, dump),
    ):
        subprocess.run(shlex.split(command), check=True, capture_output=True, timeout=120)
    live.platform.stop()
    assert books(fresh_pg_database) == before
    restored = mock_platform(
        tmp_path / "restored",
        fresh_pg_database,
        clock=live.clock,
        executors=live.executors,
    )
    restored.platform.check_schema()
    # the sequences came along: new rows get new ids, not the restored rows' ones
    _goes_on_working(restored)
    restored.platform.stop()
