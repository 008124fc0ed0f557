"""``aif login`` through the institution's sign-in page: the OAuth 2.0 device grant, run by
the server (api/device_login.py), so that no token is ever pasted or typed.

The CLI asks the server for a code, shows where to enter it, and asks the server every few
seconds until the person approved it in a browser (any browser, on any device), the code
expired, or they pressed Ctrl-C. Imported only when ``aif login`` runs.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from aifactories.cli import render
from aifactories.cli.client import ApiError, Client
from aifactories.cli.remote import EXIT_CODES, fail

# the server answers these when it has no provider, or its provider has no device grant
NOT_OFFERED = (404, 501)
SLOW_DOWN_S = 5  # RFC 8628 3.5: after slow_down, poll this much less often


@dataclass(frozen=True)
class DeviceLogin:
    token: str
    username: str
    needs_organisation: bool


def offered(client: Client) -> dict[str, Any] | None:
    """Start a device sign-in, or None when the server does not offer one."""
    try:
        started: dict[str, Any] = client.post("/auth/device")
    except ApiError as exc:
        if exc.status in NOT_OFFERED:
            return None
        fail(exc.message, EXIT_CODES.get(exc.status, 1))
    return started


def sign_in(client: Client, started: dict[str, Any], label: str | None = None) -> DeviceLogin:
    """Show the code and wait for its approval; the token the server then makes."""
    where = started.get("verification_uri_complete") or started["verification_uri"]
    render.err_console.print(
        f"To sign in, open [bold]{started['verification_uri']}[/bold] in a browser and enter "
        f"the code [bold]{started['user_code']}[/bold]\n(or open {where} directly).",
        highlight=False,
    )
    interval = float(started.get("interval") or 5)
    deadline = time.monotonic() + float(started["expires_in"])
    body = {"device_code": started["device_code"], "label": label or default_label()}
    try:
        with render.err_console.status("Waiting for you to approve the sign-in (Ctrl-C stops)"):
            while True:
                time.sleep(interval)
                try:
                    made: dict[str, Any] = client.post("/auth/device/token", json=body)
                except ApiError as exc:
                    if exc.status == 428:  # authorization_pending
                        pass
                    elif exc.status == 429:
                        interval += SLOW_DOWN_S
                    else:
                        fail(exc.message, EXIT_CODES.get(exc.status, 1))
                else:
                    return DeviceLogin(
                        made["token"], made["username"], bool(made.get("needs_organisation"))
                    )
                if time.monotonic() + interval > deadline:
                    fail("the code expired before the sign-in was approved; run 'aif login' again")
    except KeyboardInterrupt:
        fail("sign-in cancelled; nothing was saved", 130)


def default_label() -> str:
    return f"aif login on {socket.gethostname()}"[:100]
