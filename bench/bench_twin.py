"""Benchmark the twin: a full trace replay over the catalogue's operational sites.

    python bench/bench_twin.py [--trace ../shared/traces/philly-pollux/philly.csv]
        [--format philly] [--policies first_fit,earliest_start,fair_share,easy_backfill]
        [--limit N]

Each policy runs in its own process (so each peak memory is its own) and prints its wall
time and peak resident memory next to the targets (under 60 s, goal 20 s; under 2 GB), and
its mean job completion time and 95th-percentile wait next to the lower bound: every job
started at once (no wait) and run for its own trace runtime. Also printed: the bound with
every job on the fastest GPU model of the federation, since faster GPUs can beat the trace.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.twin.federation import DEFAULT_SPEED, projects_for
from aifactories.twin.metrics.summary import summarise
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces import read_trace

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = ROOT.parent / "shared" / "traces" / "philly-pollux" / "philly.csv"
POLICIES = "first_fit,earliest_start,fair_share,easy_backfill"
TARGET_S, GOAL_S, TARGET_MB = 60.0, 20.0, 2048.0


def run_one(
    trace_path: Path, trace_format: str, policy: str, limit: int | None
) -> dict[str, float]:
    started = time.perf_counter()
    trace = read_trace(trace_path, trace_format, limit=limit)
    catalogue = load_default_catalogue()
    countries = sorted({s.country for s in catalogue.operational_sites})
    projects = projects_for(trace, countries, 0)
    run = Simulation(trace, projects, TwinSetup(catalogue.sites, policy)).run()
    wall = time.perf_counter() - started
    summary = summarise(run)
    fastest = max(DEFAULT_SPEED.get(p.gpu_model, 1.0) for p in catalogue.operational_partitions)
    runtimes = [job.runtime_s for job in trace.jobs]
    return {
        "jobs": len(trace.jobs),
        "wall_s": wall,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jct_mean_h": summary.jct.mean / 3600,
        "wait_p95_h": summary.wait.p95 / 3600,
        "unfinished": summary.unfinished,
        "bound_jct_h": sum(runtimes) / len(runtimes) / 3600,
        "bound_fastest_h": sum(runtimes) / len(runtimes) / fastest / 3600,
        "cycles": summary.cycles.cycles,
        "cycle_p99_ms": summary.cycles.p99_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--format", default="philly")
    parser.add_argument("--policies", default=POLICIES)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one policy, JSON out
    args = parser.parse_args()
    if not args.trace.exists():
        print(f"trace not found: {args.trace} (the shared traces sit beside the repository)")
        return 2
    if args.one:
        print(json.dumps(run_one(args.trace, args.format, args.one, args.limit)))
        return 0
    print(
        f"twin replay of {args.trace.name}, targets: wall < {TARGET_S:.0f} s "
        f"(goal {GOAL_S:.0f} s), peak memory < {TARGET_MB:.0f} MB"
    )
    header = (
        f"{'policy':<16}{'jobs':>7}{'wall s':>8}{'target':>8}{'peak MB':>9}{'mean JCT h':>12}"
        f"{'bound h':>9}{'fastest h':>10}{'p95 wait h':>11}{'cycles':>8}{'p99 ms':>8}"
    )
    print(header)
    failed = False
    for policy in args.policies.split(","):
        command = [
            sys.executable,
            __file__,
            "--trace",
            str(args.trace),
            "--format",
            args.format,
            "--one",
            policy,
        ]
        if args.limit:
            command += ["--limit", str(args.limit)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ok = r["wall_s"] < TARGET_S and r["peak_mb"] < TARGET_MB
        failed |= not ok
        print(
            f"{policy:<16}{r['jobs']:>7}{r['wall_s']:>8.1f}{'<60':>8}{r['peak_mb']:>9.0f}"
            f"{r['jct_mean_h']:>12.2f}{r['bound_jct_h']:>9.2f}{r['bound_fastest_h']:>10.2f}"
            f"{r['wait_p95_h']:>11.2f}{r['cycles']:>8}{r['cycle_p99_ms']:>8.1f}"
            + ("" if ok else "  MISSED")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
