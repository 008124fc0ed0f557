"""What the browser tests share: Debian's Chromium (or a skip, a failure in CI), started
headless by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Root needs --no-sandbox. The machine (and CI) may have no internet: without the
# background-networking flags Chromium keeps calling Google's services and its refused
# connections show up many at a time. Playwright's launch() gives every browser a fresh
# temporary --user-data-dir of its own (it refuses one passed in these arguments).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (
            f"Debian's Chromium is not installed ({CHROMIUM}); scripts/check installs it as "
            "root, or: apt-get install --no-install-recommends chromium"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Headless Chromium for one test module (Playwright's sync API holds an event loop while
    it runs: a module at a time, so that other tests' loops never meet it)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
