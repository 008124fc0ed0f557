"""The role matrix again, through the portal: every signed-in page x every role, against
the objects of the API's role-matrix world (tests/api/role_matrix_world.py: alice's project
aurora-vision, her jobs, proposals, the review of her proposal, ...), each role signed in
through the login page. A page must show only what the same principal may read through the
API: each cell below is the API's answer for the same object (tests/api/role_matrix.py), with
a browser's wording: "in" is the way to the sign-in page (the API's 401), "ok" a page.

Where the portal differs from the API on purpose: /portal/reviews is 403 for a user outside
the reviewer pool (the API answers an empty list); /portal/proposals is the caller's own
proposals (an operator finds everyone's under /portal/programme); downloading the output of
a job that has written nothing yet is 404 (the page itself says "no output yet").

Lists: the target must be listed for exactly the roles the API lists it for.
Forms: every state-changing form refuses the roles the API refuses, with the same status,
and changes nothing (the allowed cells are exercised by each page's own tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from aifactories.settings import Settings
from tests.api.harness import make_harness
from tests.api.role_matrix import ROLE_COLUMNS
from tests.api.role_matrix_world import World, build_world
from tests.api.test_role_matrix import _routes
from tests.web.harness import browser, csrf

SHORT = ("anon", "prog", "site", "rev+", "rev-", "pi", "mem", "opi", "org", "none")

PAGES = """
page (under /portal)                          anon prog site rev+ rev- pi   mem  opi  org  none
GET /account                                  in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /proposals                                in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /notifications                            in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /projects                                 in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /jobs                                     in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /projects/{project}                       in   ok   404  404  404  ok   ok   404  404  404
GET /projects/{project}/jobs                  in   ok   404  404  404  ok   ok   404  404  404
GET /jobs/{job}                               in   ok   404  404  404  ok   ok   404  404  404
GET /jobs/{job}/summary                       in   ok   404  404  404  ok   ok   404  404  404
GET /jobs/{job}/output                        in   403  404  404  404  ok   ok   404  404  404
GET /jobs/{job}/output/download               in   403  404  404  404  404  404  404  404  404
GET /jobs/{member_job}                        in   ok   404  404  404  ok   ok   404  404  404
GET /proposals/{proposal}                     in   ok   ok   ok   404  ok   ok   404  404  404
GET /proposals/{draft}/edit                   in   404  404  404  404  ok   404  404  404  404
GET /proposals/{proposal}/withdraw            in   404  404  404  404  ok   404  404  404  404
GET /proposals/{accepted}                     in   ok   ok   404  404  ok   ok   404  404  404
GET /reviews                                  in   403  403  ok   ok   403  403  403  403  403
GET /reviews/{review}                         in   ok   404  ok   404  404  404  404  404  404
GET /site                                     in   ok   ok   403  403  403  403  403  403  403
GET /site/{site}                              in   403  ok   403  403  403  403  403  403  403
GET /submit                                   in   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /programme                                in   ok   403  403  403  403  403  403  403  403
GET /programme/calls                          in   ok   403  403  403  403  403  403  403  403
GET /programme/calls/new                      in   ok   403  403  403  403  403  403  403  403
GET /programme/calls/{peer_call}              in   ok   403  403  403  403  403  403  403  403
GET /programme/calls/{peer_call}/edit         in   ok   403  403  403  403  403  403  403  403
GET /programme/reviewers                      in   ok   403  403  403  403  403  403  403  403
GET /programme/calls/{peer_call}/ranking      in   ok   403  403  403  403  403  403  403  403
GET /programme/proposals                      in   ok   403  403  403  403  403  403  403  403
GET /programme/calls/{decided_call}/award-runs in   ok   403  403  403  403  403  403  403  403
GET /programme/award-runs/{award_run}         in   ok   403  403  403  403  403  403  403  403
GET /programme/award-runs/{award_run}/report  in   ok   403  403  403  403  403  403  403  403
GET /programme/allocation-requests            in   ok   403  403  403  403  403  403  403  403
GET /programme/audit                          in   ok   403  403  403  403  403  403  403  403
GET /programme/audit/export                   in   ok   403  403  403  403  403  403  403  403
GET /programme/figures                        in   ok   403  403  403  403  403  403  403  403
GET /programme/figures/csv                    in   ok   403  403  403  403  403  403  403  403
GET /figures                                  ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /calls/{fast_call}/apply                  in   ok   ok   ok   ok   ok   ok   ok   ok   ok
"""

# (page, what marks the target in it, the roles that see it listed)
LISTS = [
    ("/portal/projects", 'href="/portal/projects/{project}"', {"prog", "pi", "mem"}),
    ("/portal/jobs", 'href="/portal/jobs/{job}"', {"prog", "pi", "mem"}),
    ("/portal/proposals", 'href="/portal/proposals/{proposal}"', {"pi", "mem"}),
    ("/portal/reviews", 'href="/portal/reviews/{review}"', {"rev+"}),
]

# state-changing forms: (form, the roles refused and how); the world must be unchanged after
FORMS = [
    (
        "POST /portal/jobs/{job}/cancel",
        {"site": 404, "rev+": 404, "rev-": 404, "opi": 404, "org": 404, "none": 404},
    ),
    (
        "POST /portal/proposals/{proposal}/withdraw",
        {"site": 404, "rev-": 404, "opi": 404, "org": 404, "none": 404, "mem": 404},
    ),
    (
        "POST /portal/projects/{project}/members/bob/remove",
        {"site": 404, "rev+": 404, "opi": 404, "org": 404, "none": 404, "mem": 403},
    ),
    (
        "POST /portal/reviews/{review}/decline",
        {"site": 404, "rev-": 404, "pi": 404, "mem": 404, "opi": 404},
    ),
    (
        "POST /portal/programme/award-runs/{award_run}/apply",
        {"site": 403, "rev+": 403, "pi": 403, "mem": 403, "opi": 403},
    ),
    (
        "POST /portal/tokens/{token}/revoke",
        {"site": 404, "rev+": 404, "mem": 404, "opi": 404, "none": 404},
    ),
]


def expected_pages() -> list[tuple[str, dict[str, str]]]:
    rows = []
    for line in PAGES.strip().splitlines()[1:]:
        method, path, *cells = line.split()
        assert len(cells) == len(SHORT), line
        rows.append((f"{method} /portal{path}", dict(zip(SHORT, cells, strict=True))))
    return rows


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[World, dict[str, TestClient]]]:
    # SQLite: the rules live in the services, which tests/api runs on both databases
    home = tmp_path_factory.mktemp("portal-matrix")
    h = make_harness(home, f"sqlite:///{home / 'world.db'}")
    built = build_world(h)
    clients: dict[str, TestClient] = {}
    for short, role in zip(SHORT, ROLE_COLUMNS, strict=True):
        client = browser(h)
        user = built.users[role]
        if user is not None:
            signed = client.post("/portal/login/token", data={"token": built.tokens[user]})
            assert signed.status_code == 303, signed.text
        clients[short] = client
    yield built, clients
    h.platform.stop()


def _ids(built: World) -> dict[str, object]:
    # it4lia: sam's site, where alice's Fast Lane proposal waits for its technical check
    return {**built.ids(), "site": "it4lia"}


# portal routes without a row here, and why
UNLISTED = {
    "GET /portal/login": "the sign-in page, for anyone (tests/web/test_portal_session.py)",
    "GET /portal/login/oidc": "starts the provider's sign-in (tests/web/test_oidc_login.py)",
    "GET /portal/login/callback": "the provider's answer (tests/web/test_oidc_login.py)",
    "GET /portal/welcome": "a new user's organisation, once (tests/web/test_oidc_login.py)",
    "GET /portal/calls": "public: tests/api/role_matrix.py has its row",
    "GET /portal/jobs/rows": "the rows of GET /portal/jobs, for its live refresh",
}


def test_every_signed_in_page_has_a_row() -> None:
    app = create_app(Settings(database_url="sqlite://", run_broker=False))
    routed = {
        f"{method} {re.sub(r'{[^}]*}', '{}', path)}"
        for method, path in _routes(list(app.routes))
        if method == "GET" and path.startswith("/portal/")
    }
    rows = {re.sub(r"{[^}]*}", "{}", page) for page, _ in expected_pages()}
    assert routed - rows - set(UNLISTED) == set(), "pages without a row"
    assert rows - routed == set(), "rows without a page"


def _cell(answer: object) -> str:
    status = answer.status_code  # type: ignore[attr-defined]
    location = answer.headers.get("location", "")  # type: ignore[attr-defined]
    if status == 303 and location.startswith("/portal/login"):
        return "in"
    return "ok" if status == 200 else str(status)


@pytest.mark.parametrize(("page", "cells"), expected_pages(), ids=lambda v: str(v)[:60])
def test_each_page_answers_each_role_as_the_api_does(
    world: tuple[World, dict[str, TestClient]], page: str, cells: dict[str, str]
) -> None:
    built, clients = world
    method, path = page.split(" ")
    url = path.format(**_ids(built))
    found = {role: _cell(clients[role].request(method, url)) for role in SHORT}
    assert found == cells


@pytest.mark.parametrize(("page", "marker", "listed"), LISTS, ids=[row[0] for row in LISTS])
def test_lists_show_the_target_to_exactly_the_roles_the_api_shows_it_to(
    world: tuple[World, dict[str, TestClient]], page: str, marker: str, listed: set[str]
) -> None:
    built, clients = world
    needle = marker.format(**_ids(built))
    shown = {role for role in SHORT if needle in clients[role].get(page).text}
    assert shown == listed


@pytest.mark.parametrize(("form", "refused"), FORMS, ids=[row[0] for row in FORMS])
def test_forms_refuse_the_roles_the_api_refuses_and_change_nothing(
    world: tuple[World, dict[str, TestClient]], form: str, refused: dict[str, int]
) -> None:
    built, clients = world
    method, path = form.split(" ")
    url = path.format(**_ids(built))
    owner = clients["pi"]
    before = [owner.get(p.format(**_ids(built))).text for p in _WITNESSES]
    for role, status in refused.items():
        client = clients[role]
        answer = client.request(method, url, data={"csrf": csrf(client), "reason": "x"})
        assert answer.status_code == status, (role, answer.status_code, answer.text[:300])
    after = [owner.get(p.format(**_ids(built))).text for p in _WITNESSES]
    assert _states(after) == _states(before)


# pages whose state words show whether a refused form changed something
_WITNESSES = ("/portal/jobs/{job}", "/portal/proposals/{proposal}", "/portal/projects/{project}")


def _states(pages: list[str]) -> list[tuple[bool, ...]]:
    words = ("cancelled", "withdrawn", "bob", "revoked")
    return [tuple(word in page.lower() for word in words) for page in pages]
