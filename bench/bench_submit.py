"""Job submissions per second through the REST API, into SQLite and into PostgreSQL.

Starts the real platform (``aif up --demo``, broker running on in-memory mock sites so that
no thousands of processes are spawned) on loopback, then a bounded load generator: at most
--count POST /jobs from --concurrency connections, stopped after --max-seconds whatever
happens. The generator is wrk (Debian's ``wrk``; light, so that the 2 cores measure the
server) when it is installed, else a Python one (httpx, which costs about a core itself).
Prints throughput and latency percentiles next to the targets.

    python bench/bench_submit.py --database sqlite
    scripts/with-postgres python bench/bench_submit.py --database both
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _support import demo_env, free_port, new_postgres_database

TARGET_RATE = 500.0
TARGET_P99_MS = 100.0
AIF = str(Path(sys.executable).with_name("aif"))


async def _load(
    url: str, token: str, count: int, concurrency: int, max_seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    body = {"project": "aurora-vision", "gpus": 1, "time_limit": 60, "command": ["true"]}
    deadline = time.perf_counter() + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            response = await client.post("/jobs", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 201:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


# One-minute jobs: 50,000 submissions reserve under 1,000 of the demo project's 20,000
# GPU-hours, so no answer is a budget refusal (a cheap 4xx would flatter the rate).
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"project":"aurora-vision","gpus":1,"time_limit":60,"command":["true"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
local limit = MAX
local done = 0
response = function(status, headers, body)
  done = done + 1
  if done >= limit then wrk.thread:stop() end
end
"""


def _wrk(
    url: str, token: str, count: int, concurrency: int, max_seconds: float, home: Path
) -> tuple[float, float, float, int, int]:
    """(rate, p50 ms, p99 ms, requests, errors) measured by wrk."""
    script = home / "post.lua"
    script.write_text(_WRK_SCRIPT.replace("TOKEN", token).replace("MAX", str(count)))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{int(max_seconds)}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/jobs",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=max_seconds + 30,
    ).stdout

    def ms(label: str) -> float:
        value = next(line.split()[1] for line in out.splitlines() if line.strip().startswith(label))
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        unit = value.lstrip("0123456789.")
        return float(value[: len(value) - len(unit)]) * scale[unit]

    requests = int(next(line.split()[0] for line in out.splitlines() if "requests in" in line))
    rate = float(
        next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
    )
    errors = sum(
        int(line.split()[-1]) for line in out.splitlines() if line.strip().startswith("Non-2xx")
    )
    return rate, ms("50%"), ms("99%"), requests, errors


def _placement_lag(url: str) -> float:
    """Seconds from now until no job is pending any more (the broker has placed them all)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < 120:
            with engine.connect() as conn:
                left = conn.execute(text("SELECT count(*) FROM jobs WHERE state = 'pending'"))
                if left.scalar_one() == 0:
                    break
            time.sleep(0.2)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def run(database: str, count: int, concurrency: int, max_seconds: float, workers: int) -> bool:
    home = Path(tempfile.mkdtemp(prefix="aif-bench-"))
    url = (
        f"sqlite:///{home / 'aif.db'}"
        if database == "sqlite"
        else new_postgres_database("aif_bench")
    )
    port = free_port()
    env = demo_env(
        home,
        url,
        port,
        home / "config",
        EXECUTOR="mock",
        RUN_BROKER=os.environ.get("BENCH_RUN_BROKER", "true"),
    )
    server = subprocess.Popen(
        [AIF, "up", "--demo", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = next(
            line.split()[1]
            for line in (home / "demo-tokens.txt").read_text().splitlines()
            if line.startswith("alice ")
        )
        asyncio.run(_load(base, token, 200, concurrency, 30))  # warm-up
        if shutil.which("wrk"):
            generator = "wrk"
            rate, p50, p99, done, errors = _wrk(base, token, count, concurrency, max_seconds, home)
            elapsed = done / rate
        else:
            generator = "httpx"
            latencies, errors, elapsed = asyncio.run(
                _load(base, token, count, concurrency, max_seconds)
            )
            done, rate = len(latencies), len(latencies) / elapsed
            ordered = sorted(latencies)
            p50 = statistics.median(ordered) * 1000
            p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1000
        lag = _placement_lag(url) if env["AIFACTORIES_RUN_BROKER"] == "true" else None
    finally:
        server.terminate()
        server.wait(timeout=30)
    # "Broker on" counts only if the broker placed as fast as the target too: every job
    # submitted during the load placed, over the load's time plus the lag after it (a broker
    # that fell behind would flatter the API's rate).
    placed_rate = None if lag is None else done / (elapsed + lag)
    ok = rate >= TARGET_RATE and p99 <= TARGET_P99_MS and errors == 0
    ok = ok and (placed_rate is None or placed_rate >= TARGET_RATE)
    broker = "broker on" if env["AIFACTORIES_RUN_BROKER"] == "true" else "API only"
    if lag is not None and placed_rate is not None:
        print(
            f"  the broker placed all {done} jobs {lag:.1f} s after the load ended: "
            f"{placed_rate:.0f} placements/s (target >= {TARGET_RATE:.0f})"
        )
    print(
        f"{database:<10} {broker:<9} {generator:<5} {done:>6} jobs in {elapsed:6.2f} s  "
        f"{rate:7.1f}/s (target >= {TARGET_RATE:.0f})  p50 {p50:6.1f} ms  "
        f"p99 {p99:6.1f} ms (target <= {TARGET_P99_MS:.0f})  errors {errors}  "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(
        f"{args.workers} API workers, concurrency {args.concurrency}, "
        f"up to {args.count} submissions, "
        f"at most {args.max_seconds:.0f} s each; {os.cpu_count()} CPUs"
    )
    results = [
        run(db, args.count, args.concurrency, args.max_seconds, args.workers) for db in databases
    ]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
