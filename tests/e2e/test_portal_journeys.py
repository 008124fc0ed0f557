"""The portal's journeys end to end, in Debian's Chromium (Playwright), against ``aif up
--demo`` as a process and a real OpenID provider as another (tests/oidc, npm's certified
``oidc-provider``), with emulated sites running the jobs:

- a new user signs in through the provider, chooses their organisation, applies to a
  Playground call, gets the project, submits a job from the portal, watches it finish on its
  page and reads its output;
- a reviewer scores the proposal assigned to them;
- the programme operator decides the round by the call's rule, proposes awards (optimiser and
  greedy side by side, the report embedded) and applies them;
- a member of another project reaches none of the new user's project, job or proposal.

No page shows a console error, an uncaught exception or a failed request on the way. Skipped
without Chromium or Node.js, failing in CI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.e2e.portal_journeys import (
    Person,
    api,
    apply_to_playground,
    run_and_apply_awards,
    score_review,
    sign_in_with_provider,
    submit_job_and_read_output,
    wait_until,
)
from tests.e2e.server import Server
from tests.e2e.test_portal_browser import DESKTOP, PHONE, TIMEZONE
from tests.oidc_provider import OidcProvider, running_provider

pytestmark = pytest.mark.slow

DAY = 86400.0
CUTOFF_IN_S = 25.0  # the peer-reviewed call's cut-off: passed before the operator decides
GOOD = 8.5
# form controls a screen reader cannot name: no <label>, no aria-label(ledby), no title
UNNAMED_CONTROLS = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
               && !c.getAttribute('aria-labelledby') && !c.title)
  .map(c => c.outerHTML.slice(0, 120))
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, OidcProvider]]:
    home = tmp_path_factory.mktemp("journeys")
    srv = Server(home, f"sqlite:///{home / 'aif.db'}")
    with running_provider(home, [f"{srv.url}/portal/login/callback"]) as provider:
        srv.extra_env.update(provider.settings_env())
        srv.extra_env["AIFACTORIES_OIDC_ORGANISATION_CLAIM"] = "no_such_claim"  # chosen once
        srv.start("--demo")
        yield srv, provider
        srv.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport=DESKTOP, timezone_id=TIMEZONE)
    yield made
    made.close()


def _open_call(srv: Server, code: str, mode: str, **extra: object) -> None:
    now = time.time()
    body = {
        "code": code,
        "title": f"The journey's {mode.replace('_', ' ')}",
        "mode": mode,
        "closes_at": now + 60 * DAY,
        "budget_gpu_hours": {"pool": 200_000.0},
        **extra,
    }
    opened = api(srv.url, srv.token("oscar"), "POST", "/calls", **body)
    assert opened.status_code == 201, opened.text


def test_a_new_user_goes_from_the_login_page_to_a_job_and_its_output(
    platform: tuple[Server, OidcProvider], browser: Browser
) -> None:
    srv, _provider = platform
    _open_call(srv, "pg", "playground")
    context = browser.new_context(viewport=DESKTOP, timezone_id=TIMEZONE)
    nora = Person.open(context, srv.url)
    sign_in_with_provider(nora, "nora", organisation="Aurora Robotics")
    project = apply_to_playground(nora, "pg")
    ref = submit_job_and_read_output(nora, project)
    assert nora.problems == [], nora.problems

    # the same pages on a phone: nothing wider than the screen, every control named
    phone = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, storage_state=context.storage_state()
    )
    on_phone = Person.open(phone, srv.url)
    for path in (
        "/portal/proposals",
        f"/portal/projects/{project}",
        f"/portal/jobs/{ref}",
        "/portal/jobs",
        "/portal/submit",
        "/portal/account",
        "/portal/notifications",
        "/portal/calls/pg/apply",
    ):
        page = on_phone.go(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a phone"
        assert page.evaluate(UNNAMED_CONTROLS) == [], path
    assert on_phone.problems == [], on_phone.problems
    phone.close()

    # carol, PI of another project, reaches none of it: the same 404 as for nothing at all
    carol = Person.open(browser.new_context(viewport=DESKTOP), srv.url)
    carol.sign_in_with_token(srv.token("carol"))
    carol.expected_errors.add(404)
    proposals = api(srv.url, srv.token("oscar"), "GET", "/proposals").json()
    mine = [p["id"] for p in proposals if p.get("project") == project]
    assert mine, proposals
    for path in (
        f"/portal/projects/{project}",
        f"/portal/projects/{project}/jobs",
        f"/portal/jobs/{ref}",
        f"/portal/jobs/{ref}/output/download",
        f"/portal/proposals/{mine[0]}",
    ):
        answer = carol.page.goto(srv.url + path)
        assert answer is not None and answer.status == 404, path
        shown = carol.page.content()
        assert "invoices" not in shown and "hello from the portal" not in shown, path
    assert f"/portal/jobs/{ref}" not in carol.go("/portal/jobs").content()
    assert carol.problems == []
    context.close()


def test_a_reviewer_scores_and_the_operator_awards_and_applies(
    platform: tuple[Server, OidcProvider], context: BrowserContext
) -> None:
    srv, _provider = platform
    cutoff = time.time() + CUTOFF_IN_S
    rules = {"reviewers_per_proposal": 1, "min_average_score": 6}
    _open_call(srv, "ls", "large_scale", cutoffs=[cutoff], rules=rules)
    body = {
        "title": "Weather models for wind farms",
        "abstract": "Graph neural networks forecast wind at turbine height for grid operators.",
        "domain": "energy",
        "requested_gpu_hours": 60_000,
        "period_months": 6,
    }
    proposal = api(srv.url, srv.token("fabien"), "POST", "/calls/ls/proposals", **body)
    assert proposal.status_code == 201, proposal.text
    pid = proposal.json()["id"]
    submitted = api(srv.url, srv.token("fabien"), "POST", f"/proposals/{pid}/submit")
    assert submitted.status_code == 200, submitted.text
    plan = api(srv.url, srv.token("oscar"), "POST", "/calls/ls/review-assignments")
    assert plan.status_code == 200, plan.text
    (assignment,) = [a for a in plan.json()["assigned"] if a["proposal_id"] == pid]

    reviewer = Person.open(context, srv.url)
    reviewer.sign_in_with_token(srv.token(assignment["reviewer"]))
    score_review(reviewer, int(assignment["review_id"]), GOOD)
    assert reviewer.problems == []

    wait_until(cutoff + 1)
    operator = Person.open(context.browser.new_context(viewport=DESKTOP), srv.url)  # type: ignore[union-attr]
    operator.sign_in_with_token(srv.token("oscar"))
    run_and_apply_awards(operator, "ls")
    assert operator.problems == []
    status = api(srv.url, srv.token("fabien"), "GET", f"/proposals/{pid}").json()["status"]
    assert status == "awarded"
