"""Signing in to the portal and out, the session cookie, CSRF, and the account's tokens."""

from __future__ import annotations

import re

from tests.api.harness import Harness
from tests.web.harness import browser, csrf, portal


def test_a_page_for_members_sends_a_stranger_to_the_login_page_and_back(h: Harness) -> None:
    answer = browser(h).get("/portal/account?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/login?next=%2Fportal%2Faccount%3Fx%3D1"


def test_signing_in_with_a_token_sets_a_safe_cookie_and_shows_who(h: Harness) -> None:
    client = browser(h)
    answer = client.post(
        "/portal/login/token", data={"token": h.tokens["alice"], "next": "/portal/account"}
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "aif_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert re.search(r"Max-Age=\d+", cookie)
    page = client.get("/portal/account")
    assert page.status_code == 200 and "alice" in page.text and "You are signed in." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors" in page.headers["content-security-policy"]
    # the message shows once
    assert "You are signed in." not in client.get("/portal/account").text


def test_a_wrong_token_is_refused_in_words_and_no_session_is_made(h: Harness) -> None:
    client = browser(h)
    answer = client.post("/portal/login/token", data={"token": "aif_nope"})
    assert answer.status_code == 401
    assert "this API token is unknown" in answer.text and 'aria-invalid="true"' in answer.text
    assert "aif_session" not in answer.headers.get("set-cookie", "")
    assert client.get("/portal/account").status_code == 303


def test_next_never_leads_to_another_site(h: Harness) -> None:
    for target in ("https://evil.example/x", "//evil.example", "/\\evil.example", "javascript:1"):
        client = browser(h)
        answer = client.post("/portal/login/token", data={"token": h.tokens["bob"], "next": target})
        assert answer.headers["location"] == "/portal/projects", target


def test_a_forged_or_altered_cookie_signs_nobody_in(h: Harness) -> None:
    client = portal(h, "alice")
    good = client.cookies["aif_session"]
    client.cookies.set("aif_session", good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert client.get("/portal/account").status_code == 303


def test_forms_without_this_sessions_csrf_token_change_nothing(h: Harness) -> None:
    client = portal(h, "alice")
    before = client.get("/portal/account").text.count("<tr>")
    answer = client.post("/portal/tokens", data={"label": "forged"})
    assert answer.status_code == 403 and "reload the page" in answer.text
    other = portal(h, "bob")
    answer = client.post("/portal/tokens", data={"label": "forged", "csrf": csrf(other)})
    assert answer.status_code == 403
    answer = client.post(
        "/portal/tokens",
        data={"label": "forged", "csrf": csrf(client)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and "another site" in answer.text
    assert client.get("/portal/account").text.count("<tr>") == before


def test_a_token_made_in_the_portal_is_shown_once_works_and_stops_when_revoked(
    h: Harness,
) -> None:
    client = portal(h, "carol")
    page = client.post(
        "/portal/tokens", data={"label": "laptop", "expires_in_days": "7", "csrf": csrf(client)}
    )
    assert page.status_code == 200
    secret = re.search(r'id="new-secret" readonly value="(aif_[^"]+)"', page.text)
    assert secret, page.text
    api = h.client(None)
    api.headers["Authorization"] = f"Bearer {secret.group(1)}"
    assert api.get("/me").json()["username"] == "carol"
    listing = client.get("/portal/account").text
    assert "laptop" in listing and secret.group(1) not in listing  # shown only once
    token_id = re.search(
        r'/portal/tokens/(\d+)/revoke" class="inline">.{0,200}laptop', listing, re.S
    )
    assert token_id, listing
    answer = client.post(f"/portal/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf(client)})
    assert answer.status_code == 303
    assert api.get("/me").status_code == 401


def test_a_bad_lifetime_is_named_next_to_the_form(h: Harness) -> None:
    client = portal(h, "carol")
    page = client.post(
        "/portal/tokens", data={"label": "x", "expires_in_days": "99999", "csrf": csrf(client)}
    )
    assert page.status_code == 200 and "expires_in_days" in page.text and "field-error" in page.text


def test_someone_elses_token_cannot_be_revoked_from_the_portal(h: Harness) -> None:
    alice = portal(h, "alice")
    page = alice.get("/portal/account").text
    token_id = re.search(r"/portal/tokens/(\d+)/revoke", page)
    assert token_id
    bob = portal(h, "bob")
    answer = bob.post(f"/portal/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf(bob)})
    assert answer.status_code == 404
    assert alice.get("/portal/account").status_code == 200  # alice's token is untouched


def test_signing_out_ends_the_session_even_for_a_copied_cookie(h: Harness) -> None:
    client = portal(h, "alice")
    copied = client.cookies["aif_session"]
    answer = client.post("/portal/logout", data={"csrf": csrf(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/login"
    thief = browser(h)
    thief.cookies.set("aif_session", copied)
    assert thief.get("/portal/account").status_code == 303


def test_signing_out_everywhere_ends_every_session_of_the_user(h: Harness) -> None:
    laptop, phone = portal(h, "dario"), portal(h, "dario")
    other = portal(h, "alice")
    assert laptop.post("/portal/logout/everywhere", data={"csrf": csrf(laptop)}).status_code == 303
    assert phone.get("/portal/account").status_code == 303
    assert other.get("/portal/account").status_code == 200


def test_a_session_ends_when_its_lifetime_is_over(h: Harness) -> None:
    client = portal(h, "alice")
    h.clock.advance(h.platform.settings.session_lifetime_hours * 3600 + 1)
    assert client.get("/portal/account").status_code == 303


def test_the_navigation_follows_the_roles(h: Harness) -> None:
    assert "/portal/programme" in portal(h, "oscar").get("/").text
    alice = portal(h, "alice").get("/").text
    assert "/portal/programme" not in alice and "/portal/reviews" not in alice
    assert "/portal/reviews" in portal(h, "rita").get("/").text
    assert "/portal/site" in portal(h, "sam").get("/").text
    assert "Sign in" in browser(h).get("/").text
