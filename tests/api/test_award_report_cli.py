"""``aif awards report RUN``: a real award run from the API written as one HTML page."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aifactories.cli import awards as cli_awards
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.programme.award_report import plan_views, shares_by_country
from tests.api.harness import Harness, make_harness
from tests.api.test_award_runs import reviewed_round


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def _aif(h: Harness, monkeypatch: pytest.MonkeyPatch, user: str, *args: str) -> tuple[int, str]:
    """Run ``aif awards ...`` against the in-process API (TestClient is an httpx.Client)."""
    api = Client(Profile(server="http://testserver", token=h.tokens[user]))
    api._http = h.client(user)
    monkeypatch.setattr(cli_awards, "client", lambda: api)
    result = CliRunner().invoke(
        cli_awards.awards_app,
        list(args),
        env={"NO_COLOR": "1", "COLUMNS": "250", "AIFACTORIES_CONFIG": "/nonexistent/p.json"},
    )
    return result.exit_code, result.output


def test_report_writes_the_page(
    h: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reviewed_round(h, budget_hours=150_000)  # 180,000 h asked: one proposal gets less
    response = h.client("oscar").post("/calls/ls/award-runs", json={})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    # the run carries both plans with their monthly lines: the report draws them side by side
    views = plan_views(run)
    assert [v.name for v in views] == ["optimiser", "greedy"]
    assert all(v.monthly for v in views)
    for view, plan in zip(views, (run["optimiser"], run["greedy"]), strict=True):
        drawn = sum(line.gpu_hours for line in view.monthly or ())
        assert drawn == pytest.approx(plan["awarded_gpu_hours"], rel=1e-9)

    # and each country's share of its requested hours, per plan
    countries = shares_by_country(run)
    assert set(countries) == {"optimiser", "greedy"}
    assert all(0 <= v <= 100 for by in countries.values() for v in by.values())

    out = tmp_path / "reports" / "run.html"
    out.parent.mkdir()
    code, output = _aif(h, monkeypatch, "oscar", "report", str(run["id"]), "-o", str(out))
    assert code == 0, output
    assert str(out) in output
    page = out.read_text(encoding="utf-8")
    assert len(page) > 1_000_000 and "plotly" in page  # plotly.js embedded: opens offline
    assert "Share of requested GPU-hours awarded by country" in page
    assert html.escape(run["objective"]) in page
    for outcome in run["plan"]["outcomes"]:
        assert f"<td>#{outcome['proposal_id']}</td>" in page
    assert "<th class='num'>optimiser</th><th class='num'>greedy</th>" in page
    short = [o for o in run["plan"]["outcomes"] if o["awarded"] < o["requested"] - 1e-3]
    assert short
    for o in short:
        assert f"<td>{o['reason']}</td>" in page and html.escape(o["explanation"]) in page

    # the default file name, in the working directory
    monkeypatch.chdir(tmp_path)
    code, output = _aif(h, monkeypatch, "oscar", "report", str(run["id"]))
    assert code == 0, output
    assert (tmp_path / f"award-run-{run['id']}.html").read_text(encoding="utf-8") == page

    # a file that cannot be written, a run that does not exist, a user who may not read it
    code, output = _aif(
        h, monkeypatch, "oscar", "report", str(run["id"]), "-o", str(tmp_path / "no" / "x.html")
    )
    assert code == 1 and "cannot write" in output and "No such file or directory" in output
    code, output = _aif(h, monkeypatch, "oscar", "report", "999")
    assert code == 3 and "does not exist" in output
    code, output = _aif(h, monkeypatch, "carol", "report", str(run["id"]), "-o", str(out))
    assert code == 4


def test_show_prints_the_comparison_under_its_header(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewed_round(h, budget_hours=150_000)
    run = h.client("oscar").post("/calls/ls/award-runs", json={}).json()
    code, output = _aif(h, monkeypatch, "oscar", "show", str(run["id"]))
    assert code == 0, output
    header = next(line for line in output.splitlines() if "measure" in line)
    assert "optimiser" in header and "greedy" in header
    assert "objective (points)" in output  # a row, no longer taken for the header
