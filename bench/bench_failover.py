"""Failover: from SIGKILL of the instance whose broker leads to the first placement by a
standby, with two ``aif up`` instances on one PostgreSQL (docs/operations.md).

Both instances run the real platform on mock sites (in memory: the benchmark measures the
lease, not a site). Each round: submit a job to the standby's API right after killing the
leader, and time until that job is placed; the killed instance is then started again (as the
new standby) for the next round. The default lease settings are used (10 s period, renewed
every 2 s) unless AIFACTORIES_LEASE_PERIOD_S / AIFACTORIES_LEASE_RENEW_INTERVAL_S say
otherwise. Target: under two lease periods.

    scripts/with-postgres .venv/bin/python bench/bench_failover.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from _support import free_port, new_postgres_database

AIF = str(Path(sys.executable).with_name("aif"))
PLACED = {"placed", "submitted", "running", "completed"}


@dataclass
class Instance:
    name: str
    home: Path
    database_url: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORIES_")}
        env.update(
            {
                "AIFACTORIES_DATA_DIR": str(self.home),
                "AIFACTORIES_DATABASE_URL": self.database_url,
                "AIFACTORIES_PORT": str(self.port),
                "AIFACTORIES_EXECUTOR": "mock",
                "AIFACTORIES_INSTANCE_NAME": self.name,
                "XDG_CONFIG_HOME": str(self.home / "config"),
            }
        )
        for key in ("AIFACTORIES_LEASE_PERIOD_S", "AIFACTORIES_LEASE_RENEW_INTERVAL_S"):
            if key in os.environ:
                env[key] = os.environ[key]
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [AIF, "up", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not start: see {self.home / 'server.log'}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def lease(self) -> dict[str, object]:
        lease: dict[str, object] = httpx.get(f"{self.url}/health", timeout=5).json()["lease"]
        return lease


def _round(leader: Instance, standby: Instance, token: str) -> tuple[float, float]:
    """(seconds to the takeover, seconds to the first placement), both from the SIGKILL."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"project": "aurora-vision", "gpus": 1, "time_limit": 600, "command": ["true"]}
    leader.kill()
    killed = time.perf_counter()
    response = httpx.post(f"{standby.url}/jobs", json=body, headers=headers, timeout=10)
    response.raise_for_status()
    job = f"{standby.url}/jobs/{response.json()['id']}"
    took_over = placed = None
    while placed is None:
        now = time.perf_counter()
        if now - killed > 120:
            raise SystemExit(f"no placement 120 s after the kill: see {standby.home}")
        if took_over is None and standby.lease()["holder"] == standby.name:
            took_over = now - killed
        if httpx.get(job, headers=headers, timeout=5).json()["state"] in PLACED:
            placed = now - killed
        time.sleep(0.02)
    return took_over if took_over is not None else placed, placed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database_url = new_postgres_database("aif_failover")
    base = Path(tempfile.mkdtemp(prefix="aif-failover-"))
    one, two = (Instance(name, base / name, database_url, free_port()) for name in ("one", "two"))
    for instance in (one, two):
        instance.home.mkdir()
    try:
        one.start("--demo")
        two.start()
        token = next(
            line.split()[1]
            for line in (one.home / "demo-tokens.txt").read_text().splitlines()
            if line.startswith("alice ")
        )
        period = float(os.environ.get("AIFACTORIES_LEASE_PERIOD_S", "10"))
        leader, standby = one, two
        takeovers, placements = [], []
        for n in range(args.rounds):
            assert leader.lease()["holder"] == leader.name
            time.sleep(3.3)  # kill at a different point of the renewal cycle each round
            took_over, placed = _round(leader, standby, token)
            takeovers.append(took_over)
            placements.append(placed)
            print(f"round {n + 1}: lease taken {took_over:5.2f} s, first placement {placed:5.2f} s")
            leader.start()  # back, as the standby now
            leader, standby = standby, leader
        target = 2 * period
        worst = max(placements)
        print(
            f"failover (SIGKILL to first placement), {args.rounds} rounds: median "
            f"{statistics.median(placements):.2f} s, max {worst:.2f} s "
            f"(target < {target:g} s = two lease periods of {period:g} s)  "
            f"{'PASS' if worst < target else 'FAIL'}"
        )
    finally:
        one.stop()
        two.stop()


if __name__ == "__main__":
    main()
