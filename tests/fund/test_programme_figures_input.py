"""Hostile periods for the programme's figures (GET /programme/figures, the service and the
portal page): not-a-number, infinities and times outside years 1970 to 9999 are refused
with the field named, never an error of the server or empty figures."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from aifactories.cli import programme as cli_programme
from aifactories.cli.client import Client
from aifactories.cli.config import Profile
from aifactories.db.models import UserRow
from aifactories.domain.errors import InvalidInput
from aifactories.services.core.auth import principal_of_user
from aifactories.services.fund.programme_figures import programme_figures
from tests.api.harness import Harness, make_harness
from tests.web.harness import portal


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


HOSTILE = [
    ({"from": "-inf", "to": "inf"}, "from"),
    ({"from": "2026-01-01", "to": "inf"}, "to"),
    ({"from": "nan", "to": "2026-02-01"}, "from"),
    ({"from": "0", "to": "1e18"}, "to"),
    ({"from": "2026-01-01", "to": "2026-02-01", "as_of": "nan"}, "as_of"),
    ({"from": "2026-01-01", "to": "2026-02-01", "as_of": "1e20"}, "as_of"),
    ({"from": "2026-01-01", "to": "2026-02-01", "as_of": "-inf"}, "as_of"),
    ({"from": "-1e12", "to": "2026-02-01"}, "from"),
    ({"from": "0001-01-01", "to": "9999-12-31"}, "from"),
    ({"from": "2026-13-01", "to": "2026-02-01"}, "from"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
]


@pytest.mark.parametrize(("query", "field"), HOSTILE)
def test_the_api_refuses_a_hostile_period_naming_the_field(
    h: Harness, query: dict[str, str], field: str
) -> None:
    answer = h.client("oscar").get("/programme/figures", params=query)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


def test_the_widest_period_and_epoch_seconds_are_answered(h: Harness) -> None:
    client = h.client("oscar")
    answer = client.get("/programme/figures", params={"from": "1970-01-01", "to": "9999-12-31"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["period_to"].startswith("9999-12-31")
    answer = client.get("/programme/figures", params={"from": "0", "to": "1.8e9", "as_of": "1e9"})
    assert answer.status_code == 200, answer.text


def test_the_service_refuses_not_a_number(h: Harness) -> None:
    """The service checks its own input: a caller other than the API (the portal, a script)
    gets the field named too, not empty figures."""
    ctx = h.platform.ctx
    with ctx.reads() as session:
        user = session.scalars(select(UserRow).where(UserRow.username == "oscar")).one()
        oscar = principal_of_user(session, user)
    for start, end, as_of, field in (
        (0.0, 1e9, math.nan, "as_of"),
        (-math.inf, math.inf, None, "from"),
        (0.0, math.nan, None, "to"),
    ):
        with pytest.raises(InvalidInput) as refused:
            programme_figures(ctx, oscar, start=start, end=end, as_of=as_of)
        assert refused.value.field == field


def test_the_portal_shows_the_problem_next_to_its_field(h: Harness) -> None:
    client = portal(h, "oscar")
    for query, field in HOSTILE[:8]:
        answer = client.get("/portal/programme/figures", params=query)
        assert answer.status_code == 422, (query, answer.status_code)
        found = re.search(
            rf'<span class="field-error" id="f-{field}-error">(.*?)</span>', answer.text
        )
        assert found, (query, field)
        assert "no time" in found.group(1) or "outside years 1970 to 9999" in found.group(1)


def test_the_command_prints_what_is_wrong(
    h: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = Client(Profile(server="http://testserver", token=h.tokens["oscar"]))
    api._http = h.client("oscar")
    monkeypatch.setattr(cli_programme, "client", lambda: api)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli_programme.programme_app,
        ["report", "--from", "2026-01-01", "--to", "2026-02-01", "--as-of", "1e20"],
        env={"NO_COLOR": "1", "COLUMNS": "250", "AIFACTORIES_CONFIG": "/nonexistent/p.json"},
    )
    assert result.exit_code != 0
    assert "as_of" in result.output and "1970-01-01 and 9999-12-31" in result.output
    assert not (tmp_path / "programme-report").exists()
