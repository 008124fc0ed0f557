"""How long a line a running job writes takes to reach ``aif logs --follow``, against a
target of 1 s on emulated sites.

Starts ``aif up --demo`` (SQLite, emulated sites, jobs isolated as this machine allows, all
on loopback) and submits a job that writes ``--lines`` lines, one every ``--every`` seconds,
each with the wall-clock time it was written (the job runs on this machine: one clock).
A follower reads them as they come: the real ``aif logs -f JOB`` process, and then, for a
second job, the endpoint itself (``GET /jobs/{id}/output?follow=true`` over httpx). The
latency of a line is its arrival time minus its written time; median, p95 and maximum are
printed next to the target. Exits 1 if a p95 misses it.

    python bench/bench_logs_follow.py [--lines 20] [--every 0.5]
"""

from __future__ import annotations

import argparse
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from _support import demo_env, free_port, wait_healthy

TARGET_S = 1.0
AIF = str(Path(sys.executable).with_name("aif"))
# The job: 'ready', then numbered lines, each with the time it was written.
JOB = (
    "import sys, time\n"
    "print('ready', flush=True)\n"
    "time.sleep(1.0)\n"
    "for i in range({lines}):\n"
    "    print(f'line {{i}} {{time.time():.6f}}', flush=True)\n"
    "    time.sleep({every})\n"
)


def _start_platform(home: Path) -> tuple[subprocess.Popen[bytes], str, str, dict[str, str]]:
    port = free_port()
    env = demo_env(home / "data", f"sqlite:///{home / 'aif.db'}", port, home / "config")
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen([AIF, "up", "--demo"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, server, 90, f": see {home / 'server.log'}")
    tokens = dict(
        line.split(maxsplit=1)
        for line in (home / "data" / "demo-tokens.txt").read_text().splitlines()
    )
    token = tokens["alice"].strip()
    return server, url, token, env | {"AIFACTORIES_SERVER": url, "AIFACTORIES_TOKEN": token}


def _submit(url: str, token: str, lines: int, every: float) -> int:
    body = {
        "project": "aurora-vision",
        "gpus": 1,
        "time_limit": 3600,
        "command": ["python3", "-c", JOB.format(lines=lines, every=every)],
    }
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{url}/jobs", json=body, headers=headers, timeout=30)
    created.raise_for_status()
    return int(created.json()["id"])


def _latencies(lines: Iterator[bytes]) -> list[float]:
    """Arrival minus written time of every numbered line after 'ready' (so the follower was
    already connected when the line was written)."""
    ready = False
    found: list[float] = []
    for raw in lines:
        now = time.time()
        text = raw.decode().strip()
        if text == "ready":
            ready = True
        elif ready and text.startswith("line "):
            found.append(now - float(text.split()[2]))
    return found


def _via_cli(env: dict[str, str], job_id: int) -> list[float]:
    follower = subprocess.Popen([AIF, "logs", "-f", str(job_id)], env=env, stdout=subprocess.PIPE)
    assert follower.stdout is not None
    try:
        return _latencies(iter(follower.stdout.readline, b""))
    finally:
        follower.wait(timeout=60)


def _via_api(url: str, token: str, job_id: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(30.0, read=None)
    with httpx.stream(
        "GET", f"{url}/jobs/{job_id}/output?follow=true", headers=headers, timeout=timeout
    ) as response:
        response.raise_for_status()
        return _latencies(line.encode() for line in response.iter_lines())


def _row(label: str, samples: list[float]) -> bool:
    if not samples:
        print(f"  {label:<34} no lines arrived  FAIL")
        return False
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    ok = p95 <= TARGET_S
    print(
        f"  {label:<34} {len(samples):3d} lines  median {statistics.median(samples) * 1000:5.0f} ms"
        f"  p95 {p95 * 1000:5.0f} ms  max {ordered[-1] * 1000:5.0f} ms"
        f"  target p95 <= {TARGET_S * 1000:.0f} ms  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def _machine() -> str:
    cpu = host.processor() or host.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if names:
            cpu = names[0].split(":", 1)[1].strip()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        f"Python {host.python_version()}, {host.system()} {host.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between lines")
    args = parser.parse_args()
    print(f"machine: {_machine()}")
    with tempfile.TemporaryDirectory(prefix="aif-bench-logs-") as folder:
        home = Path(folder)
        server, url, token, env = _start_platform(home)
        try:
            print(f"aif logs --follow latency, {args.lines} lines {args.every} s apart:")
            cli = _via_cli(env, _submit(url, token, args.lines, args.every))
            api = _via_api(url, token, _submit(url, token, args.lines, args.every))
            ok = _row("aif logs -f (the command)", cli)
            ok = _row("GET .../output?follow=true", api) and ok
        finally:
            server.terminate()
            server.wait(timeout=60)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
