"""The jobs pages in a real browser (Debian's Chromium, Playwright) against ``aif up --demo``
with emulated sites: a job submitted from the portal's form, its state changing on its page
and in the list without a reload (static/jobs.js), its output followed line by line, times
rewritten in the reader's zone in the rows fetched later, and no console error or failed
request on the way. The server-side rules are tested in tests/web/test_job_pages.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.server import Server
from tests.e2e.test_portal_browser import HELSINKI_ZONE, TIMEZONE

pytestmark = pytest.mark.slow

SCRIPT = (
    "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=10\n"
    "for i in 1 2 3; do echo line $i; sleep 1; done\n"
)
WAIT_S = 60.0  # the emulated job runs 3 s; the broker places it within a cycle or two


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("jobs-portal")
    srv = Server(home, f"sqlite:///{home / 'aif.db'}")
    srv.start("--demo")
    yield srv
    srv.stop()


def _watch(page: Page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
    )


def _until(page: Page, selector: str, done: str) -> list[str]:
    """The texts ``selector`` showed, until one contains ``done`` (or the wait is over)."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = page.inner_text(selector)
        if not seen or seen[-1] != text:
            seen.append(text)
        if done in text:
            break
        page.wait_for_timeout(300)
    return seen


def test_a_job_submitted_in_the_browser_is_watched_and_read_live(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=TIMEZONE)
    page = context.new_page()
    problems: list[str] = []
    _watch(page, problems)
    page.goto(f"{server.url}/portal/login?next=/portal/submit")
    page.fill("input[name=token]", server.token("alice"))
    page.click("form[action='/portal/login/token'] button[type=submit]")
    page.wait_for_url("**/portal/submit")
    page.fill("#script", SCRIPT)
    page.click("form[action='/portal/submit'] button[type=submit]")
    page.wait_for_url("**/portal/jobs/*")
    ref = page.url.rsplit("/", 1)[1]

    states = _until(page, "#job-live", "finished")
    assert states[-1] == f"Job {ref}: finished successfully.", states
    assert len(states) > 1  # it changed on the page, without a reload
    lines = _until(page, "#log-output", "line 3")
    assert lines[-1].strip() == "line 1\nline 2\nline 3", lines
    assert page.query_selector("#job-cancel") is None  # an ended job: no cancel button
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)

    # a second job, watched from the list: its row changes by itself, its times localised
    page.goto(f"{server.url}/portal/submit")
    page.fill("#command", "sleep 2")
    page.fill("#gpus", "1")
    page.fill("#time", "10")
    page.click("form[action='/portal/submit'] button[type=submit]")
    page.wait_for_url("**/portal/jobs/*")
    page.goto(f"{server.url}/portal/jobs")
    summaries = _until(page, "#jobs-live", "2 completed")
    assert summaries[-1] == "2 completed.", summaries
    assert page.get_attribute("#job-rows", "data-live") == "0"  # and it stopped asking
    submitted = page.inner_text("#job-rows tr:first-child time")
    assert HELSINKI_ZONE.search(submitted), submitted  # rewritten in the fetched rows too
    assert problems == []
    context.close()
