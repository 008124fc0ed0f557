"""A second engine on a SQLite database must not take the first one's locks away.

Closing any descriptor of a file drops every POSIX lock the process holds on it. The platform
used to open and close the database file whenever it made an engine (to create it 0600), so
``aif up``, which migrates through further engines while its own connection is open, lost
SQLite's lock on the file; another process closing the database then deleted the live WAL
and the server answered "database disk image is malformed"."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from aifactories.db.engine import make_engine

LOCKS = Path("/proc/locks")


def _locks_held(path: Path) -> int:
    """POSIX locks this process holds on ``path`` (Linux: /proc/locks names the inode)."""
    info = path.stat()
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    mine = str(os.getpid())
    return sum(
        1
        for line in LOCKS.read_text().splitlines()
        if "POSIX" in line and mine in line.split() and line.split()[5] == device
    )


@pytest.mark.skipif(not LOCKS.exists(), reason="needs Linux's /proc/locks")
def test_a_second_engine_leaves_the_first_connections_lock(tmp_path: Path) -> None:
    database = tmp_path / "platform.db"
    url = f"sqlite:///{database}"
    first = make_engine(url)
    with first.connect() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.commit()
        connection.execute(text("SELECT count(*) FROM t")).scalar_one()
        held = _locks_held(database)
        assert held >= 1  # SQLite in WAL mode keeps a shared lock while connected
        second = make_engine(url)  # as a migration in the same process does
        assert _locks_held(database) == held
        second.dispose()
    first.dispose()


def test_the_database_file_is_made_private_and_existing_ones_tightened(tmp_path: Path) -> None:
    made = tmp_path / "new.db"
    make_engine(f"sqlite:///{made}").dispose()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    make_engine(f"sqlite:///{old}").dispose()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
