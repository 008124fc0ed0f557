"""A database that does not answer: 503 with Retry-After in the error body, and /health says so
instead of failing (a real PostgreSQL client against a closed loopback port)."""

from __future__ import annotations

import socket
from pathlib import Path

from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from aifactories.services.platform import Platform
from aifactories.settings import Settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def test_unreachable_database_gives_503_and_a_health_that_says_so(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://aif@127.0.0.1:{_closed_port()}/gone?connect_timeout=2"
    settings = Settings(data_dir=tmp_path, database_url=url, run_broker=False)
    client = TestClient(create_app(settings, platform=Platform(settings)))

    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "database unavailable"
    assert health.json()["lease"] is None

    answer = client.get("/me", headers={"Authorization": "Bearer aif_not_checked"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"] == "database_unavailable"
    assert "try again" in answer.json()["message"]
