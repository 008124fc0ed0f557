"""What several benchmarks need: a free loopback port and a new database on the PostgreSQL
that scripts/with-postgres starts. Benchmarks run as scripts (``python bench/x.py``), so
this folder is on their import path."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_postgres_database(prefix: str) -> str:
    """The URL of a new, empty database on the test PostgreSQL (kept for a look afterwards)."""
    admin = os.environ.get("AIFACTORIES_TEST_PG_URL")
    if not admin:
        raise SystemExit("PostgreSQL: run under scripts/with-postgres (AIFACTORIES_TEST_PG_URL)")
    name = f"{prefix}_{int(time.time())}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def wait_healthy(url: str, server: subprocess.Popen[bytes], seconds: float, hint: str = "") -> None:
    """Wait until the platform at ``url`` answers /health; stop it and exit if it never does."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"aif up --demo did not answer in {seconds:g} s{hint}")


def demo_env(
    data_dir: Path, database_url: str, port: int, config: Path, **settings: str
) -> dict[str, str]:
    """The environment of a benchmark's ``aif up --demo``: this shell's, without its own
    AIFACTORIES_* settings, plus the data folder, database, port, CLI profile folder and any
    further settings (``EXECUTOR="mock"`` for AIFACTORIES_EXECUTOR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORIES_")}
    env.update(
        {
            "AIFACTORIES_DATA_DIR": str(data_dir),
            "AIFACTORIES_DATABASE_URL": database_url,
            "AIFACTORIES_PORT": str(port),
            "XDG_CONFIG_HOME": str(config),
        }
    )
    env.update({f"AIFACTORIES_{name}": value for name, value in settings.items()})
    return env
