"""A real OpenID Connect provider for the tests: tests/oidc/provider.mjs (the certified
``oidc-provider`` from npm) as a local process on loopback, never a mock of the protocol.

The ``oidc_provider`` fixture (one provider for the whole test session) registers the
in-process portal's redirect URI, ``http://testserver/portal/login/callback``; a test that
runs the platform as a process starts its own with :func:`running_provider` and the
platform's address. :class:`OidcProvider` drives the provider's own login, consent and device
pages with httpx, as a person would in a browser (the browser tests drive the same pages with
Playwright).

Without Node.js the tests that use it are skipped, and fail in CI (scripts/check installs
Node.js and the package).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

PROVIDER_DIR = Path(__file__).parent / "oidc"
CLIENT_ID = "aifactories"
TEST_REDIRECT_URI = "http://testserver/portal/login/callback"
START_TIMEOUT_S = 30.0
# any password is accepted by the provider's development login form
PASSWORD = "any password"
MIN_NODE = (20, 18)


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    """The forms of a page with their named inputs (a page's buttons are left out: the
    provider's only named button is "abort")."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(named.get("action", ""), named.get("method", "get").upper()))
        elif tag == "input" and self.forms and named.get("name"):
            self.forms[-1].fields[named["name"]] = named.get("value", "")
        elif tag == "a" and named.get("href"):
            self.links.append(named["href"])


def forms_of(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


@dataclass
class OidcProvider:
    """A running provider: its issuer, the platform's client, and a person at its pages."""

    issuer: str
    client_id: str
    client_secret: str
    accounts_file: Path

    def settings_env(self) -> dict[str, str]:
        """The platform's settings for this provider, as environment variables."""
        return {
            "AIFACTORIES_OIDC_ISSUER": self.issuer,
            "AIFACTORIES_OIDC_CLIENT_ID": self.client_id,
            "AIFACTORIES_OIDC_CLIENT_SECRET": self.client_secret,
            "AIFACTORIES_OIDC_PROVIDER_NAME": "Test University",
            "AIFACTORIES_OIDC_ORGANISATION_CLAIM": "organisation",
        }

    def set_account(self, login: str, **claims: Any) -> None:
        """Change what the provider says about ``login`` from now on (e-mail, name,
        organisation...): the provider reads the accounts file at every use."""
        accounts = json.loads(self.accounts_file.read_text()) if self.accounts_file.exists() else {}
        accounts.setdefault(login, {}).update(claims)
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(accounts))
        tmp.replace(self.accounts_file)

    def sign_in(self, authorization_url: str, login: str) -> str:
        """Open ``authorization_url`` (where the platform sent the browser), sign in as
        ``login``, consent, and return the URL the provider sends the browser back to (the
        platform's callback, with its code and state). A fresh browser each time: the login
        form is always shown."""
        with httpx.Client(timeout=10) as browser:
            return self._walk(browser, browser.get(authorization_url), login)

    def cancel(self, authorization_url: str) -> str:
        """Open ``authorization_url`` and press the login page's Cancel: the provider sends
        the browser back with ``error=access_denied``."""
        with httpx.Client(timeout=10) as browser:
            page = self._follow(browser, browser.get(authorization_url))
            abort = [link for link in forms_of(page.text).links if link.endswith("/abort")]
            assert abort, f"no Cancel link on the provider's page:\n{page.text}"
            return self._walk(browser, browser.get(urljoin(str(page.url), abort[0])), "")

    def approve_device(self, verification_uri_complete: str, login: str) -> str:
        """Open the device verification page as the person at the browser would, confirm the
        code, sign in as ``login`` and consent; returns the provider's last page (its text)."""
        with httpx.Client(timeout=10) as browser:
            done = self._walk(browser, browser.get(verification_uri_complete), login)
            assert "Sign-in Success" in done, done
            return done

    def deny_device(self, verification_uri_complete: str) -> str:
        """Open the device verification page and press Abort on its confirmation; returns
        the provider's last page (its text)."""
        with httpx.Client(timeout=10) as browser:
            page = self._follow(browser, browser.get(verification_uri_complete))
            for _ in range(3):  # the code's own form (sent by script in a browser), then confirm
                form = forms_of(page.text).forms[0]
                if "confirm" in form.fields:
                    form.fields["abort"] = "yes"
                    url = urljoin(str(page.url), form.action)
                    return browser.request(form.method, url, data=form.fields).text
                url = urljoin(str(page.url), form.action)
                page = self._follow(browser, browser.request(form.method, url, data=form.fields))
            raise AssertionError(f"no confirmation form on the provider's page:\n{page.text}")

    def _follow(self, browser: httpx.Client, response: httpx.Response) -> httpx.Response:
        while response.is_redirect:
            response = browser.get(urljoin(str(response.url), response.headers["location"]))
        return response

    def _walk(self, browser: httpx.Client, response: httpx.Response, login: str) -> str:
        """Follow redirects and fill the provider's forms until the browser leaves the
        provider (return where to) or lands on a page without a form (return its text)."""
        for _ in range(30):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if not target.startswith(self.issuer + "/"):
                    return target
                response = browser.get(target)
                continue
            if response.status_code >= 400:
                raise AssertionError(
                    f"the provider answered {response.status_code} at {response.url}:\n"
                    f"{response.text}"
                )
            forms = forms_of(response.text).forms
            if not forms:
                return response.text
            form = forms[0]
            if "login" in form.fields:
                form.fields.update(login=login, password=PASSWORD)
            response = browser.request(
                form.method, urljoin(str(response.url), form.action), data=form.fields
            )
        raise AssertionError("the provider's pages went round in circles")


def node_or_skip() -> str:
    """Node.js, recent enough for oidc-provider 9 (URL.parse, crypto.hash: 20.18 or later);
    without it the test is skipped, and fails in CI."""
    # scripts/check puts a Node.js 20 from the npm registry there when the system's is older
    local = PROVIDER_DIR / ".node" / "node_modules" / ".bin" / "node"
    node = str(local) if local.exists() else shutil.which("node")
    message = None
    if node is None or shutil.which("npm") is None:
        message = (
            "Node.js is not installed, so the test OpenID provider (tests/oidc) cannot run; "
            "scripts/check installs it as root, or: apt-get install nodejs npm"
        )
    else:
        found = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
        version = tuple(int(n) for n in re.findall(r"\d+", found.stdout)[:2])
        if version < MIN_NODE:
            message = (
                f"the test OpenID provider needs Node.js {MIN_NODE[0]}.{MIN_NODE[1]} or later "
                f"(oidc-provider 9); this is {found.stdout.strip()} (Debian 12's is 18: use "
                "Debian 13's nodejs, or scripts/check, which fetches Node.js 20 from the npm "
                "registry into tests/oidc/.node)"
            )
    if message is not None:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return node


def install_provider() -> None:
    """``npm ci`` once (under a lock: several test processes may start together)."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    with open(Path(tempfile.gettempdir()) / "aifactories-oidc-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            return
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(PROVIDER_DIR)],
            check=True,
            capture_output=True,
            timeout=600,
        )


@contextmanager
def running_provider(directory: Path, redirect_uris: list[str]) -> Iterator[OidcProvider]:
    """Start tests/oidc/provider.mjs on a free loopback port, with one confidential client
    allowed to come back to ``redirect_uris``; stop it afterwards."""
    node = node_or_skip()
    install_provider()
    secret = secrets.token_urlsafe(24)
    accounts = directory / "oidc-accounts.json"
    log_path = directory / "oidc-provider.log"
    # --name=value: a value may start with "-" (a random secret does, now and then)
    command = [node, str(PROVIDER_DIR / "provider.mjs"), f"--client-id={CLIENT_ID}"]
    command += [f"--client-secret={secret}", f"--accounts={accounts}"]
    command += [f"--redirect-uri={uri}" for uri in redirect_uris]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, cwd=PROVIDER_DIR, text=True
        )
    try:
        issuer = _issuer_of(process, log_path)
        yield OidcProvider(issuer, CLIENT_ID, secret, accounts)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _issuer_of(process: subprocess.Popen[str], log_path: Path) -> str:
    """The issuer the provider prints once it listens; then wait until discovery answers."""
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening <issuer>", or "" if it died
    if not line.startswith("listening "):
        process.wait(timeout=10)
        raise RuntimeError(f"the OpenID provider did not start:\n{log_path.read_text()}")
    issuer = line.split()[1]
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            found = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
            if found.status_code == 200:
                return issuer
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the OpenID provider does not answer:\n{log_path.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One provider for the test session, for the in-process portal (TestClient)."""
    with running_provider(tmp_path_factory.mktemp("oidc"), [TEST_REDIRECT_URI]) as provider:
        yield provider
