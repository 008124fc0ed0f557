"""Benchmark a twin sweep: serial against local processes, wall time side by side.

    python bench/bench_sweep.py [--jobs 1500] [--loads 0.5,0.7,0.9,1.1] [--workers N]

A small sweep (three policies x the loads, the generator on two sites of 64 GPUs) runs once
serially and once on the local processes engine (``--workers``, default one per core); both
must give the same rows (but for the wall-clock cycle times). Target: the processes engine at
least 0.8 x workers times as fast as the serial one (its start-up and the result transfer
cost little against the runs).
"""

from __future__ import annotations

import argparse
import os
import time

from aifactories.catalogue.loader import Catalogue
from aifactories.services.twin.sweep import SweepSpec, simulated, sweep
from aifactories.services.twin.sweep_engines import Processes, Serial
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
    points = len(loads)
    print(
        f"sweep: {len(POLICIES)} policies x {points} loads, {args.jobs} jobs per run, "
        f"{os.cpu_count()} cores; target: processes >= {0.8 * args.workers:.1f}x serial"
    )
    started = time.perf_counter()
    serial = sweep(spec, _no_catalogue, Serial())
    serial_s = time.perf_counter() - started
    started = time.perf_counter()
    parallel = sweep(spec, _no_catalogue, Processes(args.workers))
    parallel_s = time.perf_counter() - started
    same = [repr(simulated(r)) for r in serial] == [repr(simulated(r)) for r in parallel]
    speedup = serial_s / parallel_s
    ok = same and speedup >= 0.8 * args.workers
    print(f"{'engine':<22}{'wall s':>8}{'speed-up':>10}{'target':>8}")
    print(f"{'serial':<22}{serial_s:>8.2f}{1.0:>10.2f}{'':>8}")
    print(
        f"{f'{args.workers} local processes':<22}{parallel_s:>8.2f}{speedup:>10.2f}"
        f"{f'>={0.8 * args.workers:.1f}':>8}" + ("" if ok else "  MISSED")
    )
    print(f"same rows as the serial sweep: {'yes' if same else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
