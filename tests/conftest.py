"""Shared fixtures: databases (SQLite and a real PostgreSQL), platforms driven by a manual clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.oidc_provider import oidc_provider  # noqa: F401 - a fixture: the real OpenID provider

PG_ENV = "AIFACTORIES_TEST_PG_URL"


def _postgres_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            f"{PG_ENV} is not set: in CI the PostgreSQL tests must run (scripts/check "
            "starts a server)"
        )
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the test PostgreSQL."""
    with database_of_kind(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@contextmanager
def database_of_kind(kind: str, directory: Path) -> Iterator[str]:
    """A fresh database, ``kind`` 'sqlite' (a file in ``directory``) or 'postgresql', for a
    fixture of any scope; without PostgreSQL it skips (and fails in CI)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'aif.db'}"
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip(f"no PostgreSQL: run through scripts/check, or set {PG_ENV}")
    with fresh_postgres_database(admin_url) as url:
        yield url


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str = "aif") -> Iterator[str]:
    """A new, empty database on the test PostgreSQL, dropped afterwards (its connections
    ended first)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
