"""Start the real platform (``aif up``) as a process on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

AIF = str(Path(sys.executable).with_name("aif"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One platform: its data dir, database and CLI profile live under ``home``."""

    home: Path
    database_url: str
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORIES_")}
        env.update(
            {
                "AIFACTORIES_DATA_DIR": str(self.home / "data"),
                "AIFACTORIES_DATABASE_URL": self.database_url,
                "AIFACTORIES_PORT": str(self.port),
                "AIFACTORIES_BROKER_INTERVAL_S": "0.2",
                "XDG_CONFIG_HOME": str(self.home / "config"),
                "NO_COLOR": "1",
                "COLUMNS": "200",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, *args: str, timeout_s: float = 60.0) -> None:
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [AIF, "up", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aif up exited: {(self.home / 'server.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"aif up did not answer: {(self.home / 'server.log').read_text()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def aif(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIF, *args],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=cwd or self.home,
            timeout=120,
            check=False,
        )

    def token(self, user: str) -> str:
        for line in (self.home / "data" / "demo-tokens.txt").read_text().splitlines():
            name, token = line.split()
            if name == user:
                return token
        raise KeyError(user)
