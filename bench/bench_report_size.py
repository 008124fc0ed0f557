"""Benchmark the twin's report: its size on full traces, against the 2 MB target.

    python bench/bench_report_size.py [--limit N]

Replays the NASA iPSC/860 log at doubled load on its own 128-node machine (FIFO and EASY
backfill) and the Philly trace on the catalogue's operational sites (first fit and fair
share), writes each run's report into a temporary folder, and prints its size beside the
target, the copies of plotly.js in it (target 1), the longest curve (target about 1,000
points), the units chosen and the time the report took to write. The traces sit beside the
repository (../shared/traces).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import yaml

from aifactories.catalogue.loader import load_default_catalogue, parse_catalogue
from aifactories.domain.sites import Site
from aifactories.twin.federation import projects_for
from aifactories.twin.metrics.summary import compare
from aifactories.twin.report import write_report
from aifactories.twin.report_figures import figures
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces import read_trace
from aifactories.twin.traces.transform import scale_load
from aifactories.twin.units import Units

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
NASA = TRACES / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"
PHILLY = TRACES / "philly-pollux" / "philly.csv"
IPSC = """
sites:
  - {id: ipsc, name: NASA Ames iPSC/860, country: US, supercomputer: iPSC/860,
     status: operational,
     partitions: [{name: cube, gpu_model: A100, gpu_memory_gb: 8, gpus_per_node: 1,
                   nodes: 128}]}
"""
TARGET_MB = 2.0
BANNER = re.compile(r"\* plotly\.js .*v\d+\.\d+\.\d+")


def measure(
    name: str,
    path: Path,
    trace_format: str,
    load: float,
    sites: tuple[Site, ...],
    policies: list[str],
    limit: int | None,
) -> None:
    if not path.is_file():
        print(f"{name}: trace not found at {path} (the shared traces sit beside the repository)")
        return
    trace = scale_load(read_trace(path, trace_format, limit=limit), load)
    countries = sorted({s.country for s in sites})
    projects = projects_for(trace, countries, 0)
    runs = [Simulation(trace, projects, TwinSetup(sites, p)).run() for p in policies]
    rows = compare(runs)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        report = write_report(Path(folder), name, runs, rows)
        seconds = time.perf_counter() - started
        page = report.read_text(encoding="utf-8")
        size_mb = report.stat().st_size / 1e6
    units = Units.of(runs)
    longest = max(len(t.x) for f in figures(runs, rows, units) for t in f.data)
    print(
        f"{name}: {len(trace.jobs):,} jobs, {', '.join(policies)}\n"
        f"  report {size_mb:.2f} MB (target < {TARGET_MB:.0f} MB), "
        f"plotly.js copies {len(BANNER.findall(page))} (target 1), "
        f"longest curve {longest:,} points (target ~1,000)\n"
        f"  job times in {units.job.word}, clock in {units.clock.word}; "
        f"written in {seconds:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N jobs")
    args = parser.parse_args()
    ipsc = parse_catalogue(yaml.safe_load(IPSC), "ipsc").sites
    measure("NASA iPSC/860 x2", NASA, "swf", 2.0, ipsc, ["fifo", "easy_backfill"], args.limit)
    catalogue = load_default_catalogue().sites
    measure("Philly", PHILLY, "philly", 1.0, catalogue, ["first_fit", "fair_share"], args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
