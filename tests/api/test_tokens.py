"""API tokens: expiry, revocation at once, last use, operators' rights; and ``aif tokens``
against the API served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from aifactories.api.app import create_app
from aifactories.cli.main import app as cli
from aifactories.db.models import ApiTokenRow
from aifactories.db.programme_models import AuditRow
from aifactories.services.core.auth import forget_cached_principals
from tests.api.harness import Harness, make_harness
from tests.api.served import served

DAY = 86400.0


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, database_url)
    yield h
    h.platform.stop()


def _token_row(h: Harness, token_id: int) -> ApiTokenRow:
    with h.platform.ctx.reads() as session:
        row = session.get(ApiTokenRow, token_id)
        assert row is not None
        return row


def test_create_use_list_and_revoke_at_once(harness: Harness) -> None:
    alice = harness.client("alice")
    made = alice.post("/tokens", json={"label": "laptop", "expires_in_days": 30})
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["token"].startswith("aif_") and token["status"] == "active"
    assert token["label"] == "laptop" and token["username"] == "alice"
    row = _token_row(harness, token["id"])
    assert row.expires_at == pytest.approx(row.created_at + 30 * DAY)
    assert row.token_hash != token["token"]  # only the hash is kept

    laptop = harness.client(None)
    laptop.headers["Authorization"] = f"Bearer {token['token']}"
    assert laptop.get("/me").json()["username"] == "alice"  # now cached for a few seconds
    listed = {t["id"]: t for t in alice.get("/tokens").json()}
    assert listed[token["id"]]["last_used_at"] is not None
    assert "token" not in listed[token["id"]]  # a secret is never listed
    assert all(t["username"] == "alice" for t in listed.values())

    revoked = alice.delete(f"/tokens/{token['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = laptop.get("/me")  # at once, although the principal was cached
    assert refused.status_code == 401
    assert (
        "revoked" in refused.json()["message"] and "aif tokens create" in refused.json()["message"]
    )
    assert alice.get("/me").status_code == 200  # alice's other token is untouched


def test_tokens_expire_with_a_message_that_says_so(harness: Harness) -> None:
    alice = harness.client("alice")
    short = alice.post("/tokens", json={"label": "short", "expires_in_days": 1}).json()
    user = harness.client(None)
    user.headers["Authorization"] = f"Bearer {short['token']}"
    assert user.get("/me").status_code == 200
    harness.clock.advance(DAY + 1)
    expired = user.get("/me")  # the cached principal is not trusted past the expiry
    assert expired.status_code == 401
    message = expired.json()["message"]
    assert "expired on" in message and "aif tokens create" in message
    listed = {t["id"]: t["status"] for t in alice.get("/tokens").json()}
    assert listed[short["id"]] == "expired"


def test_the_demo_tokens_expire_too(harness: Harness) -> None:
    alice = harness.client("alice")
    lifetime = harness.platform.settings.token_lifetime_days
    harness.clock.advance(lifetime * DAY - 60)
    assert alice.get("/me").status_code == 200
    harness.clock.advance(120)
    assert alice.get("/me").status_code == 401


def test_a_lifetime_beyond_the_setting_is_refused(harness: Harness) -> None:
    lifetime = harness.platform.settings.token_lifetime_days
    response = harness.client("alice").post(
        "/tokens", json={"label": "forever", "expires_in_days": lifetime + 1}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "expires_in_days"


def test_last_use_is_written_at_most_once_a_minute(harness: Harness) -> None:
    alice = harness.client("alice")
    made = alice.post("/tokens", json={"label": "ci"}).json()
    user = harness.client(None)
    user.headers["Authorization"] = f"Bearer {made['token']}"
    user.get("/me")
    first = _token_row(harness, made["id"]).last_used_at
    assert first is not None
    harness.clock.advance(30)
    forget_cached_principals()  # as after TOKEN_CACHE_S: the next request looks it up again
    user.get("/me")
    assert _token_row(harness, made["id"]).last_used_at == first
    harness.clock.advance(31)
    forget_cached_principals()
    user.get("/me")
    assert _token_row(harness, made["id"]).last_used_at == pytest.approx(first + 61)


def test_only_the_owner_or_an_operator_manages_a_token(harness: Harness) -> None:
    alice, bob, oscar = (harness.client(u) for u in ("alice", "bob", "oscar"))
    token = alice.post("/tokens", json={"label": "mine"}).json()
    assert bob.delete(f"/tokens/{token['id']}").status_code == 404
    assert bob.get("/tokens", params={"user": "alice"}).status_code == 403
    assert bob.post("/tokens", json={"label": "x", "user": "alice"}).status_code == 403

    everyone = oscar.get("/tokens", params={"user": "*"}).json()
    assert {"alice", "bob", "oscar"} <= {t["username"] for t in everyone}
    assert oscar.delete(f"/tokens/{token['id']}").json()["status"] == "revoked"
    handed = oscar.post("/tokens", json={"label": "for bob", "user": "bob"})
    assert handed.status_code == 201 and handed.json()["username"] == "bob"
    with harness.platform.ctx.reads() as session:
        actions = set(session.scalars(select(AuditRow.action)))
    assert {"token.revoke", "token.create"} <= actions


@pytest.fixture
def api_url(harness: Harness) -> Iterator[str]:
    with served(create_app(harness.platform.settings, platform=harness.platform)) as url:
        yield url


def test_aif_tokens_commands(harness: Harness, api_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "AIFACTORIES_SERVER": api_url,
        "AIFACTORIES_TOKEN": harness.tokens["alice"],
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    created = runner.invoke(
        cli, ["tokens", "create", "--label", "notebook", "--days", "7"], env=env
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("aif_")

    listed = runner.invoke(cli, ["tokens", "list"], env=env)
    assert listed.exit_code == 0 and "notebook" in listed.output and "active" in listed.output

    as_new = {**env, "AIFACTORIES_TOKEN": secret}
    assert "alice" in runner.invoke(cli, ["whoami"], env=as_new).output
    token_id = next(
        t["id"]
        for t in httpx.get(
            f"{api_url}/tokens", headers={"Authorization": f"Bearer {secret}"}
        ).json()
        if t["label"] == "notebook"
    )
    revoked = runner.invoke(cli, ["tokens", "revoke", str(token_id)], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    refused = runner.invoke(cli, ["whoami"], env=as_new)
    assert refused.exit_code == 4 and "revoked" in refused.output
