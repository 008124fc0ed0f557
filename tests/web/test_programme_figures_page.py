"""The programme's figures page (programme operators): the figures of a seeded stretch of the
programme (services/fund/history_seed.py) as services/fund/programme_figures.py computes them,
the period's form and its errors, as_of, the CSV, and the role check; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from aifactories.db.models import UserRow
from aifactories.services.core.auth import principal_of_user
from aifactories.services.fund.history_seed import seed_history
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.fund.programme_figures_values import ProgrammeFigures
from aifactories.web.programme_figures import last_twelve_months
from aifactories.web.programme_figures_sections import number
from tests.api.harness import Harness
from tests.api.programme_helpers import draft, open_call, submit
from tests.web.harness import browser, portal

PAGE = "/portal/programme/figures"
HOUR = 3600.0


def _figures(h: Harness, start: str, end: str, as_of: float | None = None) -> ProgrammeFigures:
    """What the service answers oscar for the period, as the page asks it."""
    with h.platform.ctx.reads() as session:
        oscar = session.scalars(select(UserRow).where(UserRow.username == "oscar")).one()
        principal = principal_of_user(session, oscar)
    return programme_figures(
        h.platform.ctx,
        principal,
        start=datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp(),
        end=datetime.fromisoformat(end).replace(tzinfo=UTC).timestamp(),
        as_of=as_of,
    )


def _row(page: str, table: str, row: str, part: str = "tbody") -> list[str]:
    """The cells of the row named ``row`` in the table with id ``table`` (its tbody or tfoot)."""
    body = page[page.index(f'id="{table}"') :]
    body = body[: body.index("</table>")]
    body = body[body.index(f"<{part}>") : body.index(f"</{part}>")]
    found = re.search(rf'<th scope="row">{re.escape(row)}</th>(.*?)</tr>', body, re.S)
    assert found, f"no row {row} in {table}"
    return re.findall(r"<td[^>]*>(.*?)</td>", found.group(1))


def _error(page: str, field: str) -> str:
    found = re.search(rf'<span class="field-error" id="f-{field}-error">(.*?)</span>', page)
    assert found, f"no error next to {field}"
    return found.group(1)


@pytest.fixture
def seeded(h: Harness) -> Harness:
    # ninety days of the programme before the harness's now: inside the default period
    seed_history(h.platform.ctx, days=90, proposals=10, seed=3)
    return h


def test_the_page_shows_the_services_figures_of_the_last_twelve_months(seeded: Harness) -> None:
    h = seeded
    page = portal(h, "oscar").get(PAGE)
    assert page.status_code == 200, page.text[:500]
    start, end = last_twelve_months(h.clock.now())
    assert f'name="from" value="{start}"' in page.text and f'name="to" value="{end}"' in page.text
    expected = _figures(h, start, end)
    granted = {(r.dimension, r.key): r for r in expected.granted}
    used = {(r.dimension, r.key): r for r in expected.used}
    total = granted[("total", "total")]
    assert total.gpu_hours > 0
    assert _row(page.text, "table-by-kind", "Total", "tfoot") == [
        number(total.gpu_hours, "GPU-h"),
        number(total.eur, "EUR"),
        number(used[("total", "total")].gpu_hours, "GPU-h"),
        number(used[("total", "total")].eur, "EUR"),
    ]
    # a known figure by hand: the start-ups' granted GPU-hours, in words and in the chart
    startups = granted[("kind", "startup")]
    assert _row(page.text, "table-by-kind", "Start-ups")[0] == number(startups.gpu_hours, "GPU-h")
    assert f'class="bar-value">{number(startups.gpu_hours, "GPU-h")}</text>' in page.text
    # every family has its chart and its table
    for section in ("by-kind", "by-domain", "by-critical", "by-industrial", "by-country",
                    "by-mode", "by-site", "utilisation", "time-to-access", "waits", "energy",
                    "capacity"):  # fmt: skip
        assert f'<table id="table-{section}">' in page.text
        assert f'<section aria-labelledby="{section}">' in page.text
        chunk = page.text.split(f'<section aria-labelledby="{section}">')[1].split("</section>")[0]
        assert '<svg viewBox="0 0' in chunk and "the numbers are in the table below" in chunk
    waits = {w.mode: w for w in expected.waits}
    assert _row(page.text, "table-waits", "All jobs", "tfoot")[0] == f"{waits['total'].count:,}"
    for share in expected.capacity_shares:
        assert _row(page.text, "table-capacity", share.site_id)[1] == number(share.share, "ratio")
    assert 'aria-current="page">Figures</a>' in page.text  # the programme's nav


def test_the_form_says_what_is_wrong_next_to_the_field(h: Harness) -> None:
    oscar = portal(h, "oscar")
    reversed_ = oscar.get(PAGE, params={"from": "2026-06-01", "to": "2026-01-01"})
    assert reversed_.status_code == 422
    assert "the period must end after it starts" in _error(reversed_.text, "to")
    assert 'id="f-from-error"' not in reversed_.text
    assert 'value="2026-06-01"' in reversed_.text  # what was typed stays in the form
    assert 'id="table-by-kind"' not in reversed_.text and "/figures/csv" not in reversed_.text
    garbled = oscar.get(PAGE, params={"from": "last spring", "as_of": "soon"})
    assert garbled.status_code == 422
    assert "is no ISO date or time" in _error(garbled.text, "from")
    assert "is no ISO date or time" in _error(garbled.text, "as_of")
    # the CSV of a wrong period is the page with its errors, not a file
    refused = oscar.get(f"{PAGE}/csv", params={"from": "2026-06-01", "to": "2026-01-01"})
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]


def test_as_of_before_a_decision_hides_its_grant(h: Harness) -> None:
    h.clock.advance(2 * HOUR)
    decided = h.clock.now()
    open_call(h, "pg", "playground")
    proposal = draft(h, "alice", "pg", requested_gpu_hours=700)
    assert submit(h, "alice", proposal["id"])["status"] == "awarded"  # decided at submission
    h.clock.advance(2 * HOUR)
    oscar = portal(h, "oscar")
    before = datetime.fromtimestamp(decided - HOUR, tz=UTC).isoformat()
    after = datetime.fromtimestamp(decided + HOUR, tz=UTC).isoformat()
    earlier = oscar.get(PAGE, params={"as_of": before})
    later = oscar.get(PAGE, params={"as_of": after})
    assert earlier.status_code == later.status_code == 200
    assert "Playground" not in earlier.text.split('id="table-by-mode"')[1].split("</table>")[0]
    assert _row(later.text, "table-by-mode", "Playground")[0] == "700"
    total_before = _row(earlier.text, "table-by-kind", "Total", "tfoot")[0]
    total_after = _row(later.text, "table-by-kind", "Total", "tfoot")[0]
    as_number = lambda text: float(text.replace(",", ""))  # noqa: E731
    assert as_number(total_after) - as_number(total_before) == 700


def test_the_csv_is_the_services_long_table(seeded: Harness) -> None:
    h = seeded
    period = {"from": "2025-10-01", "to": "2026-01-01"}
    answer = portal(h, "oscar").get(f"{PAGE}/csv", params=period)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(answer.text)))
    expected = _figures(h, period["from"], period["to"]).rows()
    assert len(table) == len(expected) > 50
    for got, want in zip(table, expected, strict=True):
        assert (got["family"], got["key"], got["metric"], got["unit"]) == (
            want.family, want.key, want.metric, want.unit
        )  # fmt: skip
        if got["value"] == "":  # no value (a percentile of nothing): empty, as in the report
            assert math.isnan(want.value)
        else:
            assert float(got["value"]) == pytest.approx(want.value, rel=1e-12)


def test_only_programme_operators_read_the_figures(h: Harness) -> None:
    for user in ("alice", "sam"):
        client = portal(h, user)
        for path in (PAGE, f"{PAGE}/csv"):
            answer = client.get(path)
            assert answer.status_code == 403, (user, path)
            assert "Not allowed" in answer.text
        assert 'href="/portal/programme/figures"' not in client.get("/portal/account").text
    anonymous = browser(h).get(PAGE)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith(
        "/portal/login"
    )
