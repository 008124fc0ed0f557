"""A 1,000-task job array: submitted in one request and placed by the broker (target: under
5 s from the POST to no task pending).

Starts the real platform (``aif up --demo``) on loopback with the emulated sites (real
runner processes; each task sleeps, --runtime) or the in-memory mock sites (--executor mock:
the broker's and the database's share alone), posts one ``--array=0-999`` job and polls the
database until every task has left ``pending``. Prints the submission time, the time to the
last placement and the target side by side.

    python bench/bench_array.py
    python bench/bench_array.py --executor mock --tasks 5000
    scripts/with-postgres python bench/bench_array.py --database postgresql
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from _support import demo_env, free_port, new_postgres_database, wait_healthy

TARGET_S = 5.0
AIF = str(Path(sys.executable).with_name("aif"))


def _until_placed(url: str, array_job_id: int, tasks: int, limit_s: float) -> tuple[float, int]:
    """Seconds until no task of the array is pending, and how many were placed by then."""
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        while True:
            with engine.connect() as conn:
                pending = conn.execute(
                    text("SELECT count(*) FROM jobs WHERE array_job_id = :a AND state = 'pending'"),
                    {"a": array_job_id},
                ).scalar_one()
            if pending == 0 or time.perf_counter() - started > limit_s:
                return time.perf_counter() - started, tasks - int(pending)
            time.sleep(0.05)
    finally:
        engine.dispose()


def run(database: str, executor: str, tasks: int, cycle_s: float) -> bool:
    home = Path(tempfile.mkdtemp(prefix="aif-bench-array-"))
    url = (
        f"sqlite:///{home / 'aif.db'}"
        if database == "sqlite"
        else new_postgres_database("aif_bench_array")
    )
    port = free_port()
    env = demo_env(
        home, url, port, home / "config", EXECUTOR=executor, BROKER_INTERVAL_S=str(cycle_s)
    )
    server = subprocess.Popen(
        [AIF, "up", "--demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, 60)
        token = next(
            line.split()[1]
            for line in (home / "demo-tokens.txt").read_text().splitlines()
            if line.startswith("elena ")
        )
        body = {
            "project": "ejemplo-llm",
            "gpus": 1,
            "time_limit": "10:00",
            "runtime": "5:00",
            "name": "sweep",
            "options": [f"--array=0-{tasks - 1}"],
        }
        started = time.perf_counter()
        answer = httpx.post(
            f"{base}/jobs", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        submitted_s = time.perf_counter() - started
        answer.raise_for_status()
        first = answer.json()
        lag_s, placed = _until_placed(url, int(first["array_job_id"]), tasks, 120)
        total_s = submitted_s + lag_s
    finally:
        server.terminate()
        server.wait(timeout=60)
    ok = placed == tasks and total_s <= TARGET_S
    print(
        f"{database:<10} {executor:<8} {tasks:>5} tasks: submitted in {submitted_s:5.2f} s, "
        f"all placed {total_s:5.2f} s after the POST ({placed} placed; broker cycle "
        f"{cycle_s:g} s)  target <= {TARGET_S:.0f} s  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--executor", choices=["emulated", "mock"], default="emulated")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--cycle", type=float, default=1.0, help="broker interval in seconds")
    args = parser.parse_args()
    sys.exit(0 if run(args.database, args.executor, args.tasks, args.cycle) else 1)


if __name__ == "__main__":
    main()
