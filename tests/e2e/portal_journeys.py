"""The portal's journeys, as a person does them in a browser: by labels, buttons and links
(Playwright's role and label locators, so a journey also fails when a control has no name).
Used by tests/e2e/test_portal_journeys.py and bench/bench_portal_journey.py.

Every page a journey opens is watched: a console error, an uncaught exception, or an answer
of 400 or more that the journey did not ask for is a problem, reported at the end.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Response, expect

from tests.oidc_provider import PASSWORD

_LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of \d+")
JOB_WAIT_S = 90.0  # placed within a cycle or two (0.2 s), run on an emulated site
SCRIPT = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=10\necho hello from the portal\n"


@dataclass
class Person:
    """One browser (cookies of its own) and what went wrong on the pages it saw."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    expected_errors: set[int] = field(default_factory=set)  # statuses the journey asks for

    @classmethod
    def open(cls, context: BrowserContext, base: str) -> Person:
        person = cls(context.new_page(), base)
        page = person.page
        page.set_default_timeout(20_000)
        page.on("console", person._console)
        page.on("pageerror", lambda error: person.problems.append(f"uncaught: {error}"))
        page.on("response", person._answer)
        return person

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium logs every answer of 400 or more as "Failed to load resource"; an answer the
        # journey asked for (a form sent back with its errors, 422; another user's page, 404)
        # is not a problem, and any other shows in _answer with its address
        if message.type != "error" or _LOAD_FAILED.match(message.text):
            return
        self.problems.append(f"console: {message.text}")

    def _answer(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.expected_errors:
            self.problems.append(f"{response.url}: HTTP {response.status}")

    def shot(self, name: str) -> None:
        """A picture of the page for docs/portal.md, when AIFACTORIES_SCREENSHOTS names a
        folder (``AIFACTORIES_SCREENSHOTS=docs/img pytest tests/e2e/test_portal_journeys.py``)."""
        folder = os.environ.get("AIFACTORIES_SCREENSHOTS")
        if folder:
            self.page.screenshot(path=str(Path(folder) / f"portal-{name}.png"), full_page=True)

    def go(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def sign_in_with_token(self, token: str) -> None:
        page = self.go("/portal/login")
        page.get_by_role("textbox", name=re.compile("^API token")).fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_in_with_provider(person: Person, login: str, organisation: str) -> None:
    """The institutional login: the platform's button, the provider's own login and consent
    pages, back to the platform, and a new user's one-time choice of organisation."""
    page = person.go("/portal/login")
    page.get_by_role("link", name=re.compile(r"^Sign in with ")).click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").first.click()
    page.get_by_role("button", name=re.compile("Continue", re.I)).click()  # the consent
    page.wait_for_url(re.compile(re.escape(person.base) + "/portal/"))
    if "/portal/welcome" in page.url:
        choice = page.get_by_label("Organisation")
        value = choice.locator("option", has_text=organisation).first.get_attribute("value")
        assert value, f"{organisation} is not offered"
        choice.select_option(value)
        page.get_by_role("button", name="Save my organisation").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def apply_to_playground(person: Person, call: str) -> str:
    """Open the call, draft a proposal (one mistake first: the form names it), submit it;
    returns the project the award made."""
    page = person.go("/portal/calls")
    page.locator(f'a[href="/portal/calls/{call}/apply"]').click()
    page.get_by_label("Title").fill("Fine-tuning a small language model for invoices")
    page.get_by_label("Abstract").fill(
        "We fine-tune an open 1B-parameter model to read supplier invoices for an SME."
    )
    page.get_by_label("Application domain").select_option(index=1)
    page.get_by_label("Period").select_option(index=1)
    hours = page.get_by_label("GPU-hours requested")
    hours.fill("0")  # a mistake: the page says which field and why
    person.expected_errors.add(422)
    page.get_by_role("button", name="Save the draft").click()
    expect(hours).to_have_attribute("aria-invalid", "true")
    person.shot("apply-errors")
    person.expected_errors.discard(422)
    hours.fill("100")
    page.get_by_role("button", name="Save the draft").click()
    page.get_by_role("button", name=re.compile(r"^Submit")).click()
    expect(page.get_by_text(re.compile("awarded"))).not_to_have_count(0)
    person.shot("proposal-awarded")
    link = page.locator('a[href^="/portal/projects/"]').first
    href = link.get_attribute("href")
    assert href, "the awarded proposal links to its project"
    return href.rsplit("/", 1)[1]


def submit_job_and_read_output(person: Person, project: str) -> str:
    """Submit a batch script from the portal, watch it run on its page (no reload), read its
    output; returns the job's reference."""
    page = person.go(f"/portal/projects/{project}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    person.shot("project")
    page = person.go("/portal/submit")
    page.get_by_label("Project").select_option(project)
    page.get_by_label("Batch script").fill(SCRIPT)
    person.shot("submit")
    page.get_by_role("button", name="Submit the job").click()
    page.wait_for_url(re.compile(r"/portal/jobs/\d+$"))
    ref = page.url.rsplit("/", 1)[1]
    live = page.locator("#job-live")
    expect(live).to_contain_text("finished successfully", timeout=JOB_WAIT_S * 1000)
    expect(page.locator("pre.log").first).to_contain_text(
        "hello from the portal", timeout=JOB_WAIT_S * 1000
    )
    person.shot("job")
    return ref


def score_review(person: Person, review_id: int, score: float) -> None:
    """A reviewer's assigned proposal: a score for each criterion and a comment."""
    page = person.go("/portal/reviews")
    page.locator(f'a[href="/portal/reviews/{review_id}"]').first.click()
    form = page.locator(f'form[action="/portal/reviews/{review_id}"]')
    for box in form.locator("input[type=number]").all():
        box.fill(f"{score:g}")
    form.get_by_label("Comment").fill("A clear plan, a credible team, the right hardware.")
    person.shot("review")
    form.get_by_role("button", name=re.compile("Submit the review|Save the changes")).click()
    expect(page.locator("p.flash.done")).to_be_visible()


def run_and_apply_awards(person: Person, call: str) -> int:
    """The programme operator decides the ready proposals by the call's rule, proposes awards
    (optimiser and greedy side by side, the report embedded) and applies them."""
    page = person.go(f"/portal/programme/calls/{call}/ranking")
    page.get_by_role("button", name=re.compile("Decide every ready proposal")).click()
    expect(page.locator("p.flash.done")).to_be_visible()
    page = person.go(f"/portal/programme/calls/{call}/award-runs")
    page.get_by_role("button", name="Propose awards").click()
    page.wait_for_url(re.compile(r"/portal/programme/award-runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.frame_locator("iframe.report").locator("body")).to_contain_text(
        f"Award run {run_id}"
    )
    person.shot("award-run")
    if os.environ.get("AIFACTORIES_SCREENSHOTS"):  # the embedded report, drawn (Plotly)
        report = page.locator("iframe.report")
        report.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)
        report.screenshot(
            path=str(Path(os.environ["AIFACTORIES_SCREENSHOTS"]) / "portal-award-report.png")
        )
    page.get_by_label("Reason").fill("Panel of the journey test.")
    page.get_by_label(re.compile("I confirm")).check()
    page.get_by_role("button", name=f"Apply award run {run_id}").click()
    expect(page.locator("p.flash.done")).to_contain_text(f"Award run {run_id} is applied")
    return run_id


def api(base: str, token: str, method: str, path: str, **body: object) -> httpx.Response:
    return httpx.request(
        method,
        base + path,
        json=body or None,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def wait_until(epoch: float) -> None:
    while time.time() < epoch:
        time.sleep(0.2)
