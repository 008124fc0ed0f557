"""The portal's public pages (issue 13, first pages): anyone sees the federation and the open
calls, in HTML with units and labelled times, served with the platform's own assets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import open_call


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def _client(h: Harness) -> TestClient:
    return TestClient(create_app(h.platform.settings, platform=h.platform))


def test_the_federation_page_lists_every_site_without_signing_in(h: Harness) -> None:
    page = _client(h).get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html and "<title>The federation" in html
    for site in h.platform.catalogue.sites:
        assert site.name.replace("&", "&amp;") in html, site.name
    assert re.search(r"<strong>[\d,]+</strong> GPUs", html)
    assert "{" not in re.sub(r"<style.*?</style>", "", html)  # no raw JSON or Python reprs


def test_open_calls_show_modes_limits_and_labelled_deadlines(h: Harness) -> None:
    open_call(h, "pg", "playground", budget_gpu_hours={"pool": 5000})
    html = _client(h).get("/portal/calls").text
    assert "Playground" in html and "5,000 GPU-hours" in html
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', html)
    assert "<strong>1</strong> open call (" in _client(h).get("/").text


def test_the_portal_loads_only_its_own_assets(h: Harness) -> None:
    client = _client(h)
    for path in ("/", "/portal/calls"):
        html = client.get(path).text
        assets = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        for asset in assets:
            if asset.startswith("/static/"):
                assert client.get(asset).status_code == 200, asset
