"""The programme's public figures: anyone reads them; they follow the proposals and awards."""

from __future__ import annotations

import re

from tests.api.harness import Harness
from tests.api.programme_helpers import draft, open_call, submit
from tests.web.harness import browser, portal


def _cell(page: str, table: str, row: str) -> list[str]:
    """The cells of the row named ``row`` in the table with id ``table``."""
    body = page[page.index(f'id="{table}"') :]
    body = body[: body.index("</table>")]
    found = re.search(rf'<th scope="row">{re.escape(row)}</th>(.*?)</tr>', body, re.S)
    assert found, f"no row {row} in {table}"
    return re.findall(r"<td[^>]*>(.*?)</td>", found.group(1))


def test_anyone_reads_the_figures_and_they_follow_the_awards(h: Harness) -> None:
    page = browser(h).get("/portal/figures")
    assert page.status_code == 200
    assert "<caption>Calls, proposals and GPU-hours by access mode</caption>" in page.text
    # the demo's projects were set up outside the calls: their grants count apart
    before = _cell(page.text, "table-mode", "Outside the calls")
    assert before[0] == "-" and before[4] == "86,000"
    open_call(h, "pg", "playground")
    proposal = draft(h, "alice", "pg", requested_gpu_hours=500)
    assert submit(h, "alice", proposal["id"])["status"] == "awarded"
    draft(h, "bob", "pg", requested_gpu_hours=300)  # a draft is not received
    page = portal(h, "alice").get("/portal/figures")
    assert page.status_code == 200
    calls, received, awarded, requested, granted, delivered = _cell(
        page.text, "table-mode", "Playground"
    )
    assert (calls, received, awarded, requested, granted, delivered) == (
        "1", "1", "1", "500", "500", "0"
    )  # fmt: skip
    # Aurora Robotics is a start-up: its demo project's 20,000 GPU-hours and the new 500
    assert _cell(page.text, "table-kind", "Start-ups")[:4] == ["1", "1", "500", "20,500"]
    # the chart carries the same numbers, and says where the table is
    assert "<svg" in page.text and "the numbers are in the table below" in page.text
    assert re.search(r'class="bar granted"', page.text)
    assert "{" not in re.sub(r"<style.*?</style>", "", page.text, flags=re.S).split("<main")[1]


def test_the_federation_links_to_the_figures(h: Harness) -> None:
    assert 'href="/portal/figures"' in browser(h).get("/").text
