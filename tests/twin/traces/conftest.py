"""Trace reader test fixtures: the shared real traces, and small files written on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.twin.traces.support import SHARED_TRACES, Write


@pytest.fixture(scope="session")
def shared_traces() -> Path:
    """The shared real traces folder; the test is skipped, saying why, if it is absent."""
    if not SHARED_TRACES.is_dir():
        pytest.skip(f"real traces not found at {SHARED_TRACES} (the shared folder beside the repo)")
    return SHARED_TRACES


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
