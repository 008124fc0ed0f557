"""Shared names of the trace reader tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# The traces live beside the repository (../shared/traces), never inside it.
SHARED_TRACES = (Path(__file__).resolve().parents[3] / ".." / "shared" / "traces").resolve()

Write = Callable[[str, str], Path]
"""``write(name, text)``: a file in the test's tmp_path with that text."""
