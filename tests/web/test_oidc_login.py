"""Signing in to the portal through a real OpenID provider (tests/oidc, started by the
``oidc_provider`` fixture): the first login makes the user from the provider's claims, later
ones find the same user and follow the provider's e-mail; a forged or stale answer, a
cancelled sign-in, a redirect off-site all fail in words; the organisation is chosen once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient

from aifactories.services.core.identities import list_organisations
from tests.api.harness import Harness, make_harness
from tests.oidc_provider import OidcProvider
from tests.web.harness import browser, csrf

pytestmark = pytest.mark.slow  # the provider is a Node.js process (one per test session)


@pytest.fixture
def h(tmp_path: Path, database_url: str, oidc_provider: OidcProvider) -> Iterator[Harness]:
    harness = make_harness(
        tmp_path,
        database_url,
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=oidc_provider.client_id,
        oidc_client_secret=oidc_provider.client_secret,
        oidc_provider_name="Test University",
        oidc_organisation_claim="organisation",
    )
    # ID tokens carry the provider's real times; the platform checks them against its clock
    harness.clock.advance(max(0.0, time.time() - harness.clock.now()))
    yield harness
    harness.platform.stop()


def start(client: TestClient, next_url: str = "/portal/account") -> str:
    """Click "Sign in with ...": the platform sends the browser to the provider."""
    answer = client.get("/portal/login/oidc", params={"next": next_url})
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def sign_in(
    h: Harness, provider: OidcProvider, login: str, next_url: str = "/portal/account"
) -> tuple[TestClient, str]:
    """A whole sign-in; returns the browser and where the platform sent it at the end."""
    client = browser(h)
    back = provider.sign_in(start(client, next_url), login)
    answer = client.get(back)
    assert answer.status_code == 303, answer.text
    return client, str(answer.headers["location"])


def unique(login: str) -> str:
    """A login name of this test only (the provider and its accounts file outlive a test)."""
    return f"{login}{time.monotonic_ns() % 10**9}"


def test_the_authorization_request_uses_pkce_state_nonce_and_the_callback(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    client = browser(h)
    target = urlsplit(start(client))
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}" == oidc_provider.issuer
    assert query["response_type"] == "code" and query["client_id"] == oidc_provider.client_id
    assert query["redirect_uri"] == "http://testserver/portal/login/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and "openid" in query["scope"].split()
    # the flow's secrets are in a signed, HttpOnly cookie, never in the URL as plain values
    assert "client_secret" not in target.query
    assert "aif_oidc_flow" in client.cookies


def test_first_login_makes_the_user_and_the_second_finds_them(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    login = unique("nora")
    oidc_provider.set_account(login, organisation="Aurora Robotics")
    client, landed = sign_in(h, oidc_provider, login)
    assert landed == "/portal/account"
    page = client.get("/portal/account")
    assert page.status_code == 200 and login in page.text
    assert f"Welcome, {login}." in page.text
    # the session cookie is the portal's usual one
    assert "aif_session" in client.cookies and "aif_oidc_flow" not in client.cookies
    again, landed_again = sign_in(h, oidc_provider, login)
    assert landed_again == "/portal/account"
    second = again.get("/portal/account").text
    assert "You are signed in." in second and f"{login}2" not in second


def test_email_and_name_follow_the_provider(h: Harness, oidc_provider: OidcProvider) -> None:
    login = unique("omar")
    oidc_provider.set_account(login, organisation="Aurora Robotics")
    sign_in(h, oidc_provider, login)
    oidc_provider.set_account(login, email=f"{login}@new.example", name="Omar Changed")
    sign_in(h, oidc_provider, login)
    with h.platform.ctx.reads() as session:
        from aifactories.db.accounts import user_by_username

        user = user_by_username(session, login)
        assert user is not None
        assert (user.email, user.full_name) == (f"{login}@new.example", "Omar Changed")


def test_a_new_user_without_a_known_organisation_chooses_it_once(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    login = unique("pia")
    oidc_provider.set_account(login, organisation="An Institute Nobody Listed")
    client, landed = sign_in(h, oidc_provider, login, "/portal/calls")
    assert landed == "/portal/welcome?next=%2Fportal%2Fcalls"
    page = client.get(landed)
    assert page.status_code == 200 and 'name="organisation"' in page.text
    assert "Aurora Robotics" in page.text and '<label for="organisation"' in page.text
    token = csrf(client, landed)
    # without the CSRF token nothing changes
    forged = client.post("/portal/welcome", data={"organisation": "1", "next": "/portal/calls"})
    assert forged.status_code == 403
    wrong = client.post("/portal/welcome", data={"organisation": "x", "csrf": token})
    assert wrong.status_code == 422 and "choose your organisation" in wrong.text
    orgs = list_organisations(h.platform.ctx)
    done = client.post(
        "/portal/welcome",
        data={"organisation": str(orgs[0].id), "next": "/portal/calls", "csrf": token},
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/calls"
    assert orgs[0].name in client.get("/portal/calls").text  # the flash message
    # once only: the page now moves on, and a second choice is refused
    assert client.get("/portal/welcome?next=/portal/calls").headers["location"] == "/portal/calls"
    again = client.post("/portal/welcome", data={"organisation": str(orgs[1].id), "csrf": token})
    assert again.status_code == 303
    assert "already" in client.get(again.headers["location"]).text
    # and the next login goes straight on
    assert sign_in(h, oidc_provider, login, "/portal/calls")[1] == "/portal/calls"


def test_a_tampered_state_signs_nobody_in(h: Harness, oidc_provider: OidcProvider) -> None:
    client = browser(h)
    back = urlsplit(oidc_provider.sign_in(start(client), unique("eve")))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    query["state"] = query["state"][:-2] + "xx"
    forged = urlunsplit(back._replace(query=urlencode(query)))
    answer = client.get(forged)
    assert answer.status_code == 400
    assert "does not belong to the sign-in started" in answer.text and "Try again" in answer.text
    assert client.get("/portal/account").status_code == 303  # still signed out


def test_an_answer_without_its_flow_cookie_is_refused(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    client = browser(h)
    back = oidc_provider.sign_in(start(client), unique("eve"))
    other = browser(h)  # another browser: the link was sent to someone else
    answer = other.get(back)
    assert answer.status_code == 400 and "no longer valid" in answer.text
    # the real browser can still use it once, and only once
    assert client.get(back).status_code == 303
    assert "no longer valid" in client.get(back).text


def test_a_cancelled_sign_in_says_so(h: Harness, oidc_provider: OidcProvider) -> None:
    client = browser(h)
    back = oidc_provider.cancel(start(client))
    assert "error=access_denied" in back
    answer = client.get(back)
    assert answer.status_code == 403
    assert "cancelled or refused" in answer.text and "/portal/login?next=" in answer.text


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "/\\evil"])
def test_next_never_leads_off_site(h: Harness, oidc_provider: OidcProvider, target: str) -> None:
    login = unique("nils")
    oidc_provider.set_account(login, organisation="Aurora Robotics")
    assert sign_in(h, oidc_provider, login, target)[1] == "/portal/projects"


def test_signing_out_ends_the_session(h: Harness, oidc_provider: OidcProvider) -> None:
    login = unique("lea")
    oidc_provider.set_account(login, organisation="Aurora Robotics")
    client, _ = sign_in(h, oidc_provider, login)
    cookie = client.cookies["aif_session"]
    out = client.post("/portal/logout", data={"csrf": csrf(client)})
    assert out.status_code == 303
    # even the old cookie, kept by someone, opens nothing any more
    thief = browser(h)
    thief.cookies.set("aif_session", cookie)
    assert thief.get("/portal/account").status_code == 303


def test_without_a_provider_the_oidc_link_says_to_use_a_token(tmp_path: Path) -> None:
    plain = make_harness(tmp_path, f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        answer = browser(plain).get("/portal/login/oidc")
        assert answer.status_code == 404 and "personal API token" in answer.text
    finally:
        plain.platform.stop()


def test_signing_in_as_someone_else_ends_the_earlier_session(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    first, second = unique("ada"), unique("bea")
    for login in (first, second):
        oidc_provider.set_account(login, organisation="Aurora Robotics")
    client, _ = sign_in(h, oidc_provider, first)
    earlier = client.cookies["aif_session"]
    assert client.get(oidc_provider.sign_in(start(client), second)).status_code == 303
    assert second in client.get("/portal/account").text
    kept = browser(h)
    kept.cookies.set("aif_session", earlier)
    assert kept.get("/portal/account").status_code == 303


def test_an_expired_id_token_is_refused(h: Harness, oidc_provider: OidcProvider) -> None:
    client = browser(h)
    back = oidc_provider.sign_in(start(client), unique("tim"))
    h.clock.advance(2 * 3600)  # the provider's ID tokens live an hour
    answer = client.get(back)
    assert answer.status_code == 502 and "ID token is not valid" in answer.text
    assert client.get("/portal/account").status_code == 303
