"""A tiny HTTP server on loopback standing for the API: it records what the CLI sends and
answers with canned JSON, so that tests see the exact request an ``aif`` command builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

AIF = str(Path(sys.executable).with_name("aif"))
TOKEN = "aif_test_token"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    # (method, path) -> (status, body); anything else is a 404
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)

    def answer(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.answers[(method, path)] = (status, body)

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """An environment for the CLI: this server, a token, a profile file under ``home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORIES_")}
        env.update(
            {
                "AIFACTORIES_SERVER": self.url,
                "AIFACTORIES_TOKEN": TOKEN,
                "AIFACTORIES_CONFIG": str(home / "profile.json"),
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
        )
        env.update(extra)
        return env


@contextmanager
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.requests.append(
                Request(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    json.loads(raw) if raw else None,
                )
            )
            status, body = api.answers.get(
                (self.command, self.path.split("?")[0]),
                (404, {"error": "not_found", "message": f"no {self.path} here"}),
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def run_aif(
    env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``aif ARGS`` as a process, as a user's shell runs it."""
    return subprocess.run(
        [AIF, *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
