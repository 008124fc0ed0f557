"""Benchmark the plan check over a year: ``aif invest --check --days 365`` of the InvestAI case.

    python bench/bench_plan_check_year.py [--days 365] [--seed 0] [--figures FILE] [--strict]

The packaged InvestAI plan file (fund/data/investai.yaml) is planned, then checked in the
twin (``check_plan_in_twin``, what ``aif invest --check`` runs): today's federation and the
federation with the plan's new capacity over the same jobs. Today's federation faces about 24
times the demand it can serve, so its queue only grows (a million jobs queued by the end of
the year): every scheduling cycle must cost what it can start, not the queue's length.
Prints the wall time of the check and the process's peak memory (max RSS) beside the targets
(the issue's year benchmark: 10 minutes and 4 GB on 2 cores). ``--figures FILE`` writes each
federation's figures exactly (repr of every float) to compare two versions of the code:
the same seed must give the same figures. ``--strict`` exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path

from aifactories.services.core.context import catalogue_from_settings
from aifactories.services.fund.invest import plan_from_file
from aifactories.services.fund.plan_check import check_plan_in_twin
from aifactories.settings import Settings

TARGET_S = 600.0
TARGET_GB = 4.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, help="write the figures here, exactly")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    catalogue = catalogue_from_settings(Settings())
    run = plan_from_file(None, catalogue)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = check_plan_in_twin(run, catalogue, Path(out), days=args.days, seed=args.seed)
    elapsed = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux.
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    check = result.check
    lines = [f"jobs {check.jobs} size_factor {check.size_factor} policy {check.policy}"]
    for year in (check.before, check.after):
        for field in dataclasses.fields(year):
            lines.append(f"{year.label}: {field.name} = {getattr(year, field.name)!r}")
    if args.figures is not None:
        args.figures.write_text("\n".join(lines) + "\n")
    before, after = check.before, check.after
    print(f"plan check over {args.days:g} days (seed {args.seed}): {check.jobs:,} jobs")
    print(f"{'':28}{'today':>14}{'with the plan':>16}")
    for name, a, b in (
        ("jobs never started", before.never_started, after.never_started),
        ("mean wait (h)", f"{before.mean_wait_h:.4f}", f"{after.mean_wait_h:.4f}"),
        ("GPU-hours delivered", f"{before.gpu_hours:,.0f}", f"{after.gpu_hours:,.0f}"),
    ):
        print(f"{name:28}{a:>14}{b:>16}")
    print(f"{'':28}{'figure':>14}{'target':>16}")
    print(f"{'wall time (s)':28}{elapsed:>14.1f}{TARGET_S:>16.0f}")
    print(f"{'peak memory (GB, max RSS)':28}{peak_gb:>14.2f}{TARGET_GB:>16.1f}")
    met = elapsed <= TARGET_S and peak_gb <= TARGET_GB
    print("targets met" if met else "target missed")
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
