"""/docs works without internet access: Swagger UI's page and every file it loads are served
by the platform, none from another host."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.harness import make_harness


def test_docs_and_their_assets_come_from_the_platform(tmp_path: Path) -> None:
    h = make_harness(tmp_path, f"sqlite:///{tmp_path / 'aif.db'}")
    from aifactories.api.app import create_app

    client = TestClient(create_app(h.platform.settings, platform=h.platform))
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\\s*["']([^"']+)["']""", page.text)
    loaded = [u for pair in urls for u in pair if u]
    assert loaded, page.text
    assert not [u for u in loaded if u.startswith(("http:", "https:", "//"))], loaded
    for url in loaded:
        assert client.get(url).status_code == 200, url
    bundle = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert client.get("/redoc").status_code == 404  # ReDoc loads from a CDN: not offered
    h.platform.stop()
