"""``aif programme report`` through the API (GET /programme/figures) on a seeded year: the three
files are written and their totals match; only programme operators read the figures."""

from __future__ import annotations

import csv
import html
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from aifactories.cli import programme as cli_programme
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.domain.clock import to_datetime
from aifactories.services.fund.history_seed import SeededHistory, seed_history
from tests.api.harness import Harness, make_harness

DAY_S = 86400.0


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[tuple[Harness, SeededHistory]]:
    harness = make_harness(tmp_path, database_url)
    history = seed_history(
        harness.platform.ctx, start=harness.clock.now() + DAY_S, days=120, proposals=16, seed=3
    )
    yield harness, history
    harness.platform.stop()


def _iso(epoch: float) -> str:
    return to_datetime(epoch).isoformat()


def test_report_writes_three_files_whose_totals_match(
    h: tuple[Harness, SeededHistory], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    harness, history = h
    api = Client(Profile(server="http://testserver", token=harness.tokens["oscar"]))
    api._http = harness.client("oscar")
    monkeypatch.setattr(cli_programme, "client", lambda: api)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli_programme.programme_app,
        [
            "report",
            "--from",
            _iso(history.start),
            "--to",
            _iso(history.end),
            "--as-of",
            _iso(history.end),
            "--out",
            str(out),
        ],
        env={"NO_COLOR": "1", "COLUMNS": "250", "AIFACTORIES_CONFIG": "/nonexistent/p.json"},
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "figures.csv", "figures.parquet"}

    with (out / "figures.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["family", "key", "metric", "value", "unit"]

    def value(family: str, key: str, metric: str) -> float:
        (found,) = [
            r for r in rows if (r["family"], r["key"], r["metric"]) == (family, key, metric)
        ]
        return float(found["value"])

    for family in ("granted", "used"):
        for metric in ("gpu_hours", "eur"):
            total = value(family, "total", metric)
            assert total > 0
            for dimension in ("kind", "domain", "country", "mode", "site"):
                parts = [
                    float(r["value"])
                    for r in rows
                    if r["family"] == family
                    and r["metric"] == metric
                    and r["key"].startswith(f"{dimension}=")
                ]
                assert sum(parts) == pytest.approx(total, rel=1e-9)
    # the same table in Parquet, and the same totals the API answers
    table = pl.read_parquet(out / "figures.parquet")
    assert table.columns == ["family", "key", "metric", "value", "unit"]
    assert table.height == len(rows)
    served = harness.client("oscar").get(
        "/programme/figures",
        params={"from": _iso(history.start), "to": _iso(history.end), "as_of": _iso(history.end)},
    )
    assert served.status_code == 200, served.text
    granted = [r for r in served.json()["rows"] if (r["family"], r["key"]) == ("granted", "total")]
    assert {r["metric"]: r["value"] for r in granted} == pytest.approx(
        {
            "gpu_hours": value("granted", "total", "gpu_hours"),
            "eur": value("granted", "total", "eur"),
        }
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<script type='text/javascript'>") == 1  # plotly.js, once
    for title in ("By organisation kind", "Time to access", "Utilisation of each partition"):
        assert html.escape(title) in page
    assert "granted" in result.output and "wrote" in result.output


def test_only_operators_read_the_figures(h: tuple[Harness, SeededHistory]) -> None:
    harness, history = h
    params = {"from": _iso(history.start), "to": _iso(history.end)}
    assert harness.client("alice").get("/programme/figures", params=params).status_code == 403
    bad = harness.client("oscar").get(
        "/programme/figures", params={"from": "yesterday", "to": _iso(history.end)}
    )
    assert bad.status_code == 422
    assert "from" in bad.text
