"""``aif login`` by the OAuth 2.0 device grant, through the platform, against a real OpenID
provider (tests/oidc): the platform starts the sign-in at the provider, the person approves
it on the provider's pages (driven here with httpx), and the platform answers once with a
personal API token of the user the provider signed in."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aifactories.api.app import create_app
from aifactories.cli.main import app as aif_app
from tests.api.harness import Harness, make_harness
from tests.api.served import served
from tests.cli.fake_api import AIF, fake_api
from tests.oidc_provider import OidcProvider

# the tests with the provider (a Node.js process, one per test session) are marked slow


def harness_with(tmp_path: Path, database_url: str, provider: OidcProvider) -> Harness:
    harness = make_harness(
        tmp_path,
        database_url,
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_organisation_claim="organisation",
    )
    # ID tokens carry the provider's real times; the platform checks them against its clock
    harness.clock.advance(max(0.0, time.time() - harness.clock.now()))
    return harness


@pytest.fixture
def h(tmp_path: Path, database_url: str, oidc_provider: OidcProvider) -> Iterator[Harness]:
    harness = harness_with(tmp_path, database_url, oidc_provider)
    yield harness
    harness.platform.stop()


@pytest.fixture
def on_sqlite(tmp_path: Path, oidc_provider: OidcProvider) -> Iterator[Harness]:
    """For the CLI as a process: what it does does not depend on the database."""
    harness = harness_with(tmp_path, f"sqlite:///{tmp_path / 'aif.db'}", oidc_provider)
    yield harness
    harness.platform.stop()


def app_of(h: Harness) -> FastAPI:
    return create_app(h.platform.settings, platform=h.platform)


def unique(login: str) -> str:
    return f"{login}{time.monotonic_ns() % 10**9}"


def start(api: TestClient) -> dict[str, Any]:
    answer = api.post("/auth/device")
    assert answer.status_code == 200, answer.text
    started: dict[str, Any] = answer.json()
    return started


@pytest.mark.slow
def test_the_api_gives_a_working_token_once_the_person_approved(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    api = TestClient(app_of(h))
    login = unique("dora")
    oidc_provider.set_account(login, organisation="Kalevala Health Imaging")
    started = start(api)
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", started["user_code"])
    assert started["verification_uri"] == f"{oidc_provider.issuer}/device"
    assert started["interval"] >= 1 and started["expires_in"] > 60
    body = {"device_code": started["device_code"], "label": "aif login on laptop"}
    pending = api.post("/auth/device/token", json=body)
    assert pending.status_code == 428 and pending.json()["error"] == "authorization_pending"
    assert "enter the code" in pending.json()["message"]

    oidc_provider.approve_device(started["verification_uri_complete"], login)
    made = api.post("/auth/device/token", json=body)
    assert made.status_code == 201, made.text
    out = made.json()
    assert (out["username"], out["label"], out["new_user"]) == (login, "aif login on laptop", True)
    assert out["needs_organisation"] is False
    me = api.get("/me", headers={"Authorization": f"Bearer {out['token']}"})
    assert me.status_code == 200 and me.json()["username"] == login
    tokens = api.get("/tokens", headers={"Authorization": f"Bearer {out['token']}"}).json()
    assert [t["label"] for t in tokens] == ["aif login on laptop"]
    # once only: the provider's grant is used up
    again = api.post("/auth/device/token", json=body)
    assert again.status_code == 410 and "run 'aif login' again" in again.json()["message"]


@pytest.mark.slow
def test_a_refused_sign_in_gives_no_token(h: Harness, oidc_provider: OidcProvider) -> None:
    api = TestClient(app_of(h))
    started = start(api)
    oidc_provider.deny_device(started["verification_uri_complete"])
    refused = api.post("/auth/device/token", json={"device_code": started["device_code"]})
    assert refused.status_code == 403 and refused.json()["error"] == "access_denied"


@pytest.mark.slow
def test_a_device_code_not_from_this_platform_is_refused(
    h: Harness, oidc_provider: OidcProvider
) -> None:
    api = TestClient(app_of(h))
    forged = api.post("/auth/device/token", json={"device_code": "made-up"})
    assert forged.status_code == 410 and "not one this platform gave" in forged.json()["message"]


def test_without_a_provider_the_answer_says_to_use_a_token(tmp_path: Path) -> None:
    plain = make_harness(tmp_path, f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        answer = TestClient(app_of(plain)).post("/auth/device")
        assert answer.status_code == 404
        assert "personal API token" in answer.json()["message"]
    finally:
        plain.platform.stop()


@pytest.mark.slow
def test_aif_login_signs_in_through_the_provider_and_saves_the_token(
    on_sqlite: Harness, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    login = unique("cleo")
    env = {
        "AIFACTORIES_CONFIG": str(tmp_path / "profile.json"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PATH": "/usr/bin:/bin",
    }
    with served(app_of(on_sqlite)) as url:
        aif = subprocess.Popen(
            [AIF, "login", "--device", "--server", url],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert aif.stderr is not None
            shown = ""
            while "directly" not in shown:
                line = aif.stderr.readline()
                assert line, f"aif login ended early: {shown}"
                shown += line
            link = re.search(r"\(or open (\S+) directly\)", shown)
            assert link, shown
            oidc_provider.approve_device(link.group(1), login)
            out, err = aif.communicate(timeout=60)
        finally:
            if aif.poll() is None:
                aif.kill()
                aif.wait()
        assert aif.returncode == 0, shown + err
        assert f"logged in as {login}" in out
        saved = json.loads((tmp_path / "profile.json").read_text())
        assert saved["server"] == url and saved["token"].startswith("aif_")
        assert saved["token"] not in out + err + shown
        me = httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {saved['token']}"})
        assert me.json()["username"] == login


def test_aif_login_device_without_a_provider_says_how_to_get_a_token(tmp_path: Path) -> None:
    with fake_api() as api:  # answers 404 to /auth/device, as a platform without a provider
        result = CliRunner().invoke(
            aif_app,
            ["login", "--device", "--server", api.url],
            env={"AIFACTORIES_CONFIG": str(tmp_path / "profile.json"), "COLUMNS": "200"},
        )
    assert result.exit_code == 2
    assert "offers no sign-in through an institution" in result.stderr
    assert "--token-file" in result.stderr and not (tmp_path / "profile.json").exists()


def test_token_file_dash_reads_standard_input(tmp_path: Path) -> None:
    with fake_api() as api:
        api.answer("GET", "/me", {"username": "carol", "is_operator": False, "projects": {}})
        result = CliRunner().invoke(
            aif_app,
            ["login", "--server", api.url, "--token-file", "-"],
            input="aif_from_stdin\n",
            env={"AIFACTORIES_CONFIG": str(tmp_path / "profile.json"), "COLUMNS": "200"},
        )
        assert result.exit_code == 0, result.output
        assert api.requests[-1].headers["Authorization"] == "Bearer aif_from_stdin"
    assert json.loads((tmp_path / "profile.json").read_text())["token"] == "aif_from_stdin"


@pytest.mark.slow
def test_on_a_terminal_aif_login_offers_the_sign_in_page_by_itself(
    on_sqlite: Harness, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    login = unique("tove")
    env = {
        "AIFACTORIES_CONFIG": str(tmp_path / "profile.json"),
        "COLUMNS": "200",
        "TERM": "xterm",
        "PATH": "/usr/bin:/bin",
    }
    with served(app_of(on_sqlite)) as url:
        pid, terminal = pty.fork()
        if pid == 0:  # the child: aif on a terminal, as a user types it, with no option
            try:
                os.execve(AIF, ["aif", "login", "--server", url], env)
            finally:
                os._exit(127)  # never back into the test runner
        shown = b""
        approved = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the child ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            link = re.search(rb"\(or open (\S+) directly\)", shown)
            if link and not approved and b"Waiting for you to approve" in shown:
                oidc_provider.approve_device(link.group(1).decode(), login)
                approved = True
        _, status = os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))  # styles
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert approved and f"logged in as {login}" in text and "API token:" not in text
    assert json.loads((tmp_path / "profile.json").read_text())["server"] == url
