"""How long each ``aif`` command takes to start, against a target of 300 ms.

Runs every command as a new process, as a user's shell does, --repeat times after one
warm-up run (hyperfine's method: the minimum shows the cost itself, the median what a user
sees on a machine doing other things), and prints both next to the target. The help of every
command and command group is measured, and ``aif --version``; with a platform (started here:
``aif up --demo`` on SQLite with mock sites, on loopback), also real ``aif jobs``,
``aif balance``, ``aif sites`` and ``aif whoami``. Exits 1 if a median misses the target.

    python bench/bench_cli_start.py [--repeat 10] [--no-platform]

--source DIR measures the CLI of another tree's ``src`` instead (an earlier commit, taken
with ``git archive COMMIT src | tar -x -C DIR``), run as ``python -c`` the way the ``aif``
script runs it: the figures before a change, next to those after.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _support import demo_env, free_port, wait_healthy

TARGET_MS = 300.0
AIF = str(Path(sys.executable).with_name("aif"))
PYTHON = sys.executable
# what the 'aif' console script does, for --source
_RUN = "import sys; sys.argv[0] = 'aif'; from aifactories.cli.main import run; sys.exit(run())"


def _cli_table() -> list[tuple[str, bool]]:
    # Read here, in this process: the table is what 'aif --help' lists.
    from aifactories.cli.main import COMMANDS

    return [(entry.name, entry.group) for entry in COMMANDS]


def _cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _time(argv: Sequence[str], env: dict[str, str], repeat: int) -> tuple[float, float, float, str]:
    """(min ms, median ms, median CPU ms, error or "") of ``argv`` run ``repeat`` times after a
    warm-up. The CPU time (user + system) of the process hardly depends on what else the
    machine runs; the wall time does."""
    samples, cpu = [], []
    error = ""
    for attempt in range(repeat + 1):
        cpu_before = _cpu_s()
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:60]
        if attempt:  # the first run warms the page cache and the .pyc files
            samples.append(elapsed)
            cpu.append((_cpu_s() - cpu_before) * 1000)
    return min(samples), statistics.median(samples), statistics.median(cpu), error


def _start_platform(home: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """``aif up --demo`` on loopback; the environment a demo user's CLI runs with."""
    port = free_port()
    env = demo_env(
        home / "data", f"sqlite:///{home / 'aif.db'}", port, home / "config", EXECUTOR="mock"
    )
    server = subprocess.Popen(
        [AIF, "up", "--demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, server, 60)
    tokens = dict(
        line.split(maxsplit=1)
        for line in (home / "data" / "demo-tokens.txt").read_text().splitlines()
    )
    cli_env = env | {
        "AIFACTORIES_SERVER": url,
        "AIFACTORIES_TOKEN": tokens["alice"].strip(),
        "AIFACTORIES_PROJECT": "aurora-vision",
    }
    return server, cli_env


def _machine() -> str:
    cpu = host.processor() or host.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if names:
            cpu = names[0].split(":", 1)[1].strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, load {load:.2f}; Python {host.python_version()}, "
        f"{host.system()} {host.release()}"
    )


def _row(label: str, figures: tuple[float, float, float, str], target: float | None) -> bool:
    low, median, cpu, error = figures
    ok = not error and (target is None or median <= target)
    verdict = "" if target is None else ("PASS" if ok else "FAIL")
    shown = f"target <= {target:.0f} ms" if target is not None else "(reference)"
    print(
        f"  {label:<30} min {low:5.0f} ms  median {median:5.0f} ms  (CPU {cpu:4.0f} ms)  "
        f"{shown:<18} {verdict}" + (f"  error: {error}" if error else "")
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per command")
    parser.add_argument(
        "--no-platform", action="store_true", help="skip the commands that need a server"
    )
    parser.add_argument("--source", type=Path, help="the src folder of another tree to measure")
    args = parser.parse_args()
    env = os.environ | {"NO_COLOR": "1", "COLUMNS": "120"}
    aif = [AIF]
    if args.source is not None:
        aif = [PYTHON, "-c", _RUN]
        env["PYTHONPATH"] = str(args.source.resolve())
        print(f"measuring the CLI in {args.source}")
    print(f"{_machine()}; {args.repeat} runs per command after a warm-up")

    print("what the CLI is built on costs this much by itself:")
    for label, code in (
        ("python (nothing imported)", "pass"),
        ("import typer", "import typer"),
        ("import typer.rich_utils (help)", "import typer.rich_utils"),
        ("import typer._adapters (values)", "import typer._adapters"),  # pydantic
        ("import httpx", "import httpx"),
    ):
        _row(label, _time([PYTHON, "-c", code], env, args.repeat), None)

    print("aif commands:")
    commands: list[list[str]] = [["--version"], ["--help"]]
    commands += [[name, "--help"] for name, _group in _cli_table()]
    ok = True
    for argv in commands:
        ok &= _row("aif " + " ".join(argv), _time([*aif, *argv], env, args.repeat), TARGET_MS)

    if not args.no_platform:
        home = Path(tempfile.mkdtemp(prefix="aif-bench-cli-"))
        server, cli_env = _start_platform(home)
        try:
            print("aif commands against a platform (aif up --demo, mock sites, loopback):")
            extra = {k: env[k] for k in ("NO_COLOR", "COLUMNS", "PYTHONPATH") if k in env}
            for argv in (["jobs"], ["balance"], ["sites"], ["whoami"]):
                figures = _time([*aif, *argv], cli_env | extra, args.repeat)
                ok &= _row("aif " + " ".join(argv), figures, TARGET_MS)
        finally:
            server.terminate()
            server.wait(timeout=30)
            shutil.rmtree(home, ignore_errors=True)
    print("PASS" if ok else "FAIL: a command missed its target or failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
