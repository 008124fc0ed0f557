"""The portal in a real browser: Debian's Chromium, driven by Playwright, against ``aif up
--demo`` as a process. Every page loads without a console error or a failed request and asks
nothing of any host but the platform; the federation lists the catalogue's sites; times are
shown in the reader's zone; the skip link works from the keyboard; /docs renders the API's
operations offline; the pages fit a phone's width.

Screenshots go to a temporary folder; to refresh the ones in docs/img, run
``AIFACTORIES_SCREENSHOTS=docs/img .venv/bin/pytest tests/e2e/test_portal_browser.py``."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from aifactories.catalogue.loader import load_default_catalogue
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

# Not UTC, so that a time left as the server wrote it is told apart from a rewritten one.
TIMEZONE = "Europe/Helsinki"
HELSINKI_ZONE = re.compile(r"\b(EET|EEST|GMT\+[23])\b")
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
PAGES = {"/": "h1", "/portal/calls": "h1", "/docs": ".opblock"}
DAY = 86400.0
# Where a browser looks for an icon when a page declares none (the portal declares its own).
MISSING_ICON = "/favicon.ico"


@dataclass
class Visit:
    """One page, opened in a browser, with everything it asked for and complained about."""

    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # SQLite only: the pages are the same on PostgreSQL, and the browser is the point here.
    home = tmp_path_factory.mktemp("portal")
    srv = Server(home, f"sqlite:///{home / 'aif.db'}")
    srv.start("--demo")
    # The demo opens no call: the programme operator opens two, so that /portal/calls shows
    # deadlines (time elements) to rewrite.
    now = time.time()
    oscar = {"Authorization": f"Bearer {srv.token('oscar')}"}
    for code, mode, extra in (
        ("pg", "playground", {}),
        ("fl", "fast_lane", {"cutoffs": [now + 14 * DAY, now + 44 * DAY]}),
    ):
        body = {
            "code": code, "title": f"The demo's {mode.replace('_', ' ')}", "mode": mode,
            "closes_at": now + 60 * DAY, "budget_gpu_hours": {"pool": 50_000.0}, **extra,
        }  # fmt: skip
        opened = httpx.post(f"{srv.url}/calls", json=body, headers=oscar, timeout=10)
        assert opened.status_code == 201, opened.text
    yield srv
    srv.stop()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, timezone_id=TIMEZONE)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, timezone_id=TIMEZONE
    )
    yield context
    context.close()


def visit(context: BrowserContext, server: Server, path: str) -> Visit:
    """Open ``path`` and wait until the page is complete (for /docs: the operations drawn)."""
    page = context.new_page()
    seen = Visit(page)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            seen.console_errors.append(f"{message.text} at {message.location}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: seen.console_errors.append(f"uncaught: {error}"))
    page.on(
        "requestfailed",
        lambda request: seen.failed_requests.append(f"{request.url}: {request.failure}"),
    )
    page.on(
        "response",
        lambda response: (
            seen.failed_requests.append(f"{response.url}: HTTP {response.status}")
            if response.status >= 400
            else None
        ),
    )
    response = page.goto(server.url + path, wait_until="networkidle")
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    page.wait_for_selector(PAGES[path])
    return seen


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_loads_cleanly_from_the_platform_alone(
    desktop: BrowserContext, server: Server, path: str
) -> None:
    seen = visit(desktop, server, path)
    assert seen.console_errors == []
    assert seen.failed_requests == []
    own = urlsplit(server.url).netloc
    elsewhere = [
        url
        for url in seen.requests
        if urlsplit(url).scheme not in {"data", "blob"} and urlsplit(url).netloc != own
    ]
    assert elsewhere == [], f"{path} asked other hosts"
    assert len(seen.requests) > 1  # the page and its own assets at least


@pytest.mark.parametrize("path", ["/", "/portal/calls"])
def test_the_browser_finds_the_portals_icon(
    desktop: BrowserContext, server: Server, path: str
) -> None:
    page = visit(desktop, server, path).page
    declared = page.locator("link[rel~='icon']")
    href = declared.first.get_attribute("href") if declared.count() else MISSING_ICON
    if href and href.startswith("data:"):
        return  # an inline icon: the browser asks for nothing
    answer = page.request.get(server.url + (href or MISSING_ICON))
    assert answer.ok, f"{href}: HTTP {answer.status}"


def test_the_federation_shows_every_site_of_the_catalogue(
    desktop: BrowserContext, server: Server
) -> None:
    page = visit(desktop, server, "/").page
    assert page.title().startswith("The federation")
    shown = {name.strip() for name in page.locator("table tbody th").all_inner_texts()}
    expected = {site.name for site in load_default_catalogue().sites}
    assert expected and shown == expected
    assert page.locator("table caption").is_visible()


def test_times_are_shown_in_the_readers_time_zone(desktop: BrowserContext, server: Server) -> None:
    page = visit(desktop, server, "/portal/calls").page
    times = page.locator("time[datetime]")
    assert times.count() > 0, "the demo's open calls show their deadlines"
    for node in times.all():
        shown, written_by_server = node.inner_text(), node.get_attribute("title") or ""
        assert written_by_server.endswith(" UTC"), written_by_server  # kept for a hover
        assert shown != written_by_server and HELSINKI_ZONE.search(shown), shown


def test_the_skip_link_is_the_first_stop_and_leads_to_the_content(
    desktop: BrowserContext, server: Server
) -> None:
    page = visit(desktop, server, "/").page
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert page.evaluate("document.activeElement.className") == "skip"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "visible once focused"
    page.keyboard.press("Enter")
    page.wait_for_url("**/#main")
    # The next Tab goes into the content, past the header's links.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null"), page.evaluate(
        "document.activeElement.outerHTML"
    )


def test_the_skip_link_moves_focus_to_main(desktop: BrowserContext, server: Server) -> None:
    page = visit(desktop, server, "/").page
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/#main")
    assert page.evaluate("document.activeElement.tagName") == "MAIN"


def test_docs_render_the_apis_operations_offline(desktop: BrowserContext, server: Server) -> None:
    page = visit(desktop, server, "/docs").page
    health = page.locator('.opblock-get .opblock-summary-path[data-path="/health"]')
    assert health.count() == 1
    assert page.locator(".opblock").count() > 20
    assert page.locator(".errors-wrapper").count() == 0  # Swagger UI's "could not render"


@pytest.mark.parametrize("path", ["/", "/portal/calls"])
def test_pages_fit_a_phone_and_are_pictured(
    desktop: BrowserContext, phone: BrowserContext, server: Server, tmp_path: Path, path: str
) -> None:
    folder = Path(os.environ.get("AIFACTORIES_SCREENSHOTS") or tmp_path)
    name = "federation" if path == "/" else "calls"
    for context, size in ((desktop, "desktop"), (phone, "phone")):
        page = visit(context, server, path).page
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than the {size} screen"
        shot = folder / f"portal-{name}-{size}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def test_the_programme_figures_draw_their_charts_and_tables_for_an_operator(
    desktop: BrowserContext, server: Server, tmp_path: Path
) -> None:
    page = desktop.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None,
    )
    page.goto(f"{server.url}/portal/login?next=/portal/programme/figures")
    page.fill("input[name=token]", server.token("oscar"))
    page.click("form[action='/portal/login/token'] button[type=submit]")
    page.wait_for_url("**/portal/programme/figures")
    # every family: a chart drawn on the page (its bars take room) and its table
    assert page.locator("figure.bar-chart svg.bars").count() >= 12
    assert page.locator("table caption").count() == 12
    sites = load_default_catalogue().operational_sites
    assert page.locator("#table-capacity tbody tr").count() == len(sites)
    bar = page.locator("#chart-capacity rect.bar").first.bounding_box()
    assert bar is not None and bar["width"] > 0 and bar["height"] > 0
    folder = Path(os.environ.get("AIFACTORIES_SCREENSHOTS") or tmp_path)
    page.screenshot(path=str(folder / "portal-programme-figures-desktop.png"), full_page=True)
    assert problems == []
