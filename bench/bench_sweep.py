"""Benchmark a twin sweep: serial against local processes, wall time side by side.

    python bench/bench_sweep.py [--jobs 1500] [--loads 0.5,0.7,0.9,1.1] [--workers N]

A small sweep (three policies x the loads, the generator on two sites of 64 GPUs) runs once
serially and once on the local processes engine (``--workers``, default one per core); both
must give the same rows (but for the wall-clock cycle times). Target: the processes engine at
least 0.8 x workers times as fast as the serial one (its start-up and the result transfer
cost little against the runs). Also printed: the CPU time the points took where they ran (the
same on both engines when nothing else competes for the cores) and the load average, since a
speed-up on a machine shared with other work says little.
"""

from __future__ import annotations

import argparse
import os
import time

from aifactories.catalogue.loader import Catalogue
from aifactories.services.twin.sweep import SweepPoint, SweepSpec, points_of, run_point, simulated
from aifactories.services.twin.sweep_engines import Engine, Processes, Serial
from aifactories.twin.metrics.summary import Row
from aifactories.twin.scenario import Scenario, validate_spec

POLICIES = ("fifo", "easy_backfill", "first_fit")


def _site(ident: str, country: str, model: str) -> dict[str, object]:
    partition = {"name": "gpu", "gpu_model": model, "gpu_memory_gb": 80, "gpus_per_node": 8}
    return {
        "id": ident,
        "name": ident.upper(),
        "country": country,
        "supercomputer": ident.upper(),
        "status": "operational",
        "partitions": [{**partition, "nodes": 8}],
    }


def _no_catalogue() -> Catalogue:
    raise AssertionError("the benchmark's scenario names its sites")


def _timed(point: SweepPoint) -> tuple[list[Row], float]:
    """The point's rows and the CPU time it took in the process that ran it."""
    started = time.process_time()
    rows = run_point(point)
    assert isinstance(rows, list), rows
    return rows, time.process_time() - started


def _run(engine: Engine, points: list[SweepPoint]) -> tuple[list[Row], float, float]:
    """Rows in the grid's order, wall seconds, CPU seconds of the points."""
    started = time.perf_counter()
    results: dict[int, list[Row]] = {}
    cpu = 0.0
    for index, (rows, seconds) in engine.run(_timed, points):
        results[index] = rows
        cpu += seconds
    wall = time.perf_counter() - started
    return [row for i in sorted(results) for row in results[i]], wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--loads", default="0.5,0.7,0.9,1.1")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sites = {"sites": [_site("a", "IT", "H100"), _site("b", "DE", "A100")]}
    data = {"sites": sites, "workload": {"generator": {"jobs": args.jobs}}}
    scenario = Scenario(validate_spec(data, "bench_sweep"), "bench_sweep")
    loads = tuple(float(x) for x in args.loads.split(","))
    spec = SweepSpec((scenario,), policies=POLICIES, loads=loads)
    print(
        f"sweep: {len(POLICIES)} policies x {len(loads)} loads, {args.jobs} jobs per run, "
        f"{os.cpu_count()} cores; target: processes >= {0.8 * args.workers:.1f}x serial"
    )
    points = points_of(spec, _no_catalogue)
    load_before = os.getloadavg()[0]
    serial, serial_s, serial_cpu = _run(Serial(), points)
    parallel, parallel_s, parallel_cpu = _run(Processes(args.workers), points)
    same = [repr(simulated(r)) for r in serial] == [repr(simulated(r)) for r in parallel]
    speedup = serial_s / parallel_s
    ok = same and speedup >= 0.8 * args.workers
    print(f"{'engine':<22}{'wall s':>8}{'CPU s':>8}{'speed-up':>10}{'target':>8}")
    print(f"{'serial':<22}{serial_s:>8.2f}{serial_cpu:>8.2f}{1.0:>10.2f}{'':>8}")
    print(
        f"{f'{args.workers} local processes':<22}{parallel_s:>8.2f}{parallel_cpu:>8.2f}"
        f"{speedup:>10.2f}{f'>={0.8 * args.workers:.1f}':>8}" + ("" if ok else "  MISSED")
    )
    print(f"load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"same rows as the serial sweep: {'yes' if same else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
