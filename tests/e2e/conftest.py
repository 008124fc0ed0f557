"""What the browser tests share: Debian's Chromium, or a skip (a failure in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


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
