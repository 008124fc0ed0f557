"""The text helpers every command uses: plurals, units, local times, readable structures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aifactories.cli.human import details_text, duration, hours, local_day, local_time, plural


@pytest.fixture
def helsinki(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Helsinki")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_plural() -> None:
    assert plural(1, "GPU") == "1 GPU"
    assert plural(2, "GPU") == "2 GPUs"
    assert plural(0, "job") == "0 jobs"
    assert plural(1, "job") == "1 job"
    assert plural(6, "audit entry") == "6 audit entries"
    assert plural(2, "day") == "2 days"
    assert plural(3, "match") == "3 matches"
    assert plural(1_000, "GPU") == "1,000 GPUs"
    assert plural(2, "person", "people") == "2 people"


def test_units() -> None:
    assert hours(1234.5) == "1,234.50 h"
    assert hours(None) == "-"
    assert duration(45) == "45 s"
    assert duration(125) == "2 min 5 s"
    assert duration(7200) == "2 h"
    assert duration(5400) == "1 h 30 min"
    assert duration(3 * 86400 + 4 * 3600 + 5) == "3 d 4 h"


def test_local_time_shows_the_zone(helsinki: None) -> None:
    # 2026-01-01 00:00 UTC is 02:00 in Helsinki (EET)
    assert local_time(1_767_225_600.0) == "2026-01-01 02:00:00 EET"
    assert local_time("2026-01-01T00:00:00+00:00") == "2026-01-01 02:00:00 EET"
    assert local_time("2026-07-01T00:00:00+00:00", seconds=False) == "2026-07-01 03:00 EEST"
    assert local_day("2025-12-31T23:30:00+00:00") == "2026-01-01"
    assert local_time(None) == "-"


def test_details_are_key_value_lines(helsinki: None) -> None:
    text = details_text(
        {
            "allocation_id": 4,
            "granted_gpu_hours": 1000.0,
            "cancelling_job_ids": [7, 8],
            "weights": {"science": 0.6, "industry": 0.4},
            "industrial": True,
            "site_id": None,
            "ends_at": 1_767_225_600.0,
        }
    )
    assert text.splitlines() == [
        "allocation: 4",
        "cancelling job ids: 7, 8",
        "ends at: 2026-01-01 02:00:00 EET",
        "granted GPU-hours: 1,000.00 h",
        "industrial: yes",
        "site: -",
        "weights: science: 0.6; industry: 0.4",
    ]
    assert "{" not in text and "[" not in text


def test_a_wide_table_is_split_never_cropped(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from aifactories.cli import render

    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=80, no_color=True))
    columns = [("policy", "left")] + [(f"measure number {i}", "right") for i in range(10)]
    rows = [
        ["slurm_multifactor", *(f"{1000 + i:,.2f} h" for i in range(10))],
        ["gavel_las_agnostic", *(f"{2000 + i:,.2f} MWh" for i in range(10))],
    ]
    render.print_split("Policies", columns, rows)
    text = out.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    for row in rows:
        for cell in row:
            assert cell in text  # whole: not cut, not wrapped
    assert "(1/" in text  # it was split
