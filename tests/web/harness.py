"""Portal tests: a platform with the demo's users (tests/api/harness.py), and browsers, as
TestClients holding a portal session cookie, signed in the way a demo user signs in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from tests.api.harness import Harness, make_harness

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def browser(h: Harness) -> TestClient:
    """A browser that is not signed in (it does not follow redirects: tests look at them)."""
    return TestClient(create_app(h.platform.settings, platform=h.platform), follow_redirects=False)


def portal(h: Harness, user: str) -> TestClient:
    """A browser signed in as the demo user ``user`` (with their API token, as the login
    page allows)."""
    client = browser(h)
    answer = client.post(
        "/portal/login/token", data={"token": h.tokens[user], "next": "/portal/account"}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/portal/account"
    return client


def csrf(client: TestClient, page: str = "/portal/account") -> str:
    """This browser's CSRF token, read from a page as a form would carry it."""
    found = CSRF_META.search(client.get(page).text)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str] | None = None) -> object:
    """POST a form with this session's CSRF token."""
    return client.post(path, data={"csrf": csrf(client), **(data or {})})


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()
