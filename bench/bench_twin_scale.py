"""Twin speed at scale: deep queues (NASA), a long replay (Philly), a gigafactory year.

    python bench/bench_twin_scale.py [nasa] [philly] [year] [--days 365]

* ``nasa``: the NASA Ames iPSC/860 log (18,066 jobs) at doubled load on its own 128-node
  machine, FIFO and EASY; the queue reaches 5,229 jobs. Targets: under 2 s (FIFO) and 5 s
  (EASY), and every job's start equal to the independent reference of
  tests/twin/test_fidelity_nasa.py (written from the textbook definitions).
* ``philly``: the full Philly replay (82,247 jobs) over the catalogue's operational sites,
  four policies. Target: under 20 s each.
* ``year``: a year of the federation with gigafactories: the catalogue's operational AI
  factories plus five gigafactories of 100,000 accelerators each (the InvestAI plan's
  order of size; hypothetical sites, 12,500 nodes of 8 "B200" GPUs, speed 4 x A100), and
  the seeded federation-year workload (twin/traces/federation_year.py, jobs four times its
  size, up to 16,384 GPUs: over a million jobs keeping the GPUs 85% busy in what they
  deliver). Targets: under 10 minutes and 4 GB.

Each run is a child process, so its wall time and peak memory are its own. Wall time counts
the simulation only (the trace is read or generated first), peak memory everything.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
NASA = SHARED / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"
PHILLY = SHARED / "philly-pollux" / "philly.csv"
TARGETS = {
    "nasa:fifo": 2.0,
    "nasa:easy_backfill": 5.0,
    "philly:first_fit": 20.0,
    "philly:earliest_start": 20.0,
    "philly:fair_share": 20.0,
    "philly:easy_backfill": 20.0,
    "year:easy_backfill": 600.0,
}
MEMORY_TARGET_MB = {"year": 4096.0}
GIGAFACTORIES = {
    "sites": [
        {
            "id": f"gf-{country.lower()}",
            "name": f"Gigafactory {country} (hypothetical)",
            "country": country,
            "supercomputer": "gigafactory",
            "status": "operational",
            "partitions": [
                {
                    "name": "gpu",
                    "gpu_model": "B200",
                    "gpu_memory_gb": 180,
                    "gpus_per_node": 8,
                    "nodes": 12_500,
                    "billing_weight": 4.0,
                }
            ],
        }
        for country in ("DE", "FR", "IT", "ES", "PL")
    ]
}


def _nasa(policy: str) -> dict[str, object]:
    from aifactories.twin.federation import projects_for
    from aifactories.twin.simulation import Simulation, TwinSetup
    from aifactories.twin.traces import read_trace
    from aifactories.twin.traces.transform import scale_load

    sys.path.insert(0, str(ROOT))
    from tests.twin.test_fidelity_nasa import IPSC, reference_starts

    trace = scale_load(read_trace(NASA, "swf"), 2.0)
    simulation = Simulation(
        trace, projects_for(trace, ["US"], 0), TwinSetup(IPSC, policy, time_limit_factor=1.0)
    )
    started = time.perf_counter()
    run = simulation.run()
    wall = time.perf_counter() - started
    expected = reference_starts(trace, easy=policy == "easy_backfill")
    starts = {r.job_id: r.start_s for r in run.results}
    got = [starts[j.job_id] for j in trace.jobs]
    differ = sum(1 for e, g in zip(expected, got, strict=True) if e != g)
    return {
        "jobs": len(trace.jobs),
        "wall_s": wall,
        "queue": max(q for _, q in run.queue_samples),
        "check": f"{differ} starts differ from the reference",
        "ok_check": differ == 0 and len(expected) == len(got),
    }


def _philly(policy: str) -> dict[str, object]:
    from aifactories.catalogue.loader import load_default_catalogue
    from aifactories.twin.federation import projects_for
    from aifactories.twin.simulation import Simulation, TwinSetup
    from aifactories.twin.traces import read_trace

    trace = read_trace(PHILLY, "philly")
    catalogue = load_default_catalogue()
    countries = sorted({s.country for s in catalogue.operational_sites})
    simulation = Simulation(
        trace, projects_for(trace, countries, 0), TwinSetup(catalogue.sites, policy)
    )
    started = time.perf_counter()
    run = simulation.run()
    return {
        "jobs": len(trace.jobs),
        "wall_s": time.perf_counter() - started,
        "queue": max(q for _, q in run.queue_samples),
        "check": f"{sum(1 for r in run.results if r.end_s is None)} unfinished",
        "ok_check": True,
    }


def _year(policy: str, days: float) -> dict[str, object]:
    from aifactories.catalogue.loader import load_default_catalogue, parse_catalogue
    from aifactories.twin.federation import DEFAULT_GPU_POWER_KW, DEFAULT_SPEED, projects_for
    from aifactories.twin.simulation import Simulation, TwinSetup
    from aifactories.twin.traces.federation_year import generate_federation_year

    catalogue = load_default_catalogue()
    extra = parse_catalogue(GIGAFACTORIES, "gigafactories").sites
    sites = tuple(s for s in catalogue.sites if s.operational) + extra
    total = sum(p.total_gpus for s in sites for p in s.partitions)
    speed = {**DEFAULT_SPEED, "B200": 4.0}
    # Load counts A100-hours: to keep the federation 85% busy in what its GPUs deliver, offer
    # 0.85 x their GPU-weighted mean speed; jobs four times the mixture's size (up to 16,384
    # GPUs) keep that to about a million jobs.
    delivered = sum(p.total_gpus * speed.get(p.gpu_model, 1.0) for s in sites for p in s.partitions)
    load = 0.85 * delivered / total
    trace = generate_federation_year(total, days=days, load=load, seed=0, size_factor=4)
    countries = sorted({s.country for s in sites})
    setup = TwinSetup(
        sites,
        policy,
        speed=speed,
        gpu_power_kw={**DEFAULT_GPU_POWER_KW, "B200": 1.0},
    )
    simulation = Simulation(trace, projects_for(trace, countries, 0), setup)
    started = time.perf_counter()
    run = simulation.run()
    wall = time.perf_counter() - started
    busy = sum(r.gpu_seconds for r in run.results) / (total * (run.horizon_end_s or 1))
    waited = sum(1 for r in run.results if r.start_s is not None and r.start_s > r.submit_s)
    return {
        "jobs": len(trace.jobs),
        "wall_s": wall,
        "queue": max(q for _, q in run.queue_samples),
        "check": f"{total:,} accelerators, load {load:.2f} A100-h per GPU-h, {busy:.0%} busy "
        f"over the run, {waited:,} jobs waited",
        "ok_check": True,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["nasa", "philly"])
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: case:policy, JSON out
    args = parser.parse_args()
    if args.one:
        case, policy = args.one.split(":")
        if case == "nasa":
            result = _nasa(policy)
        elif case == "philly":
            result = _philly(policy)
        else:
            result = _year(policy, args.days)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    for needed in ({"nasa": NASA, "philly": PHILLY}.get(c) for c in args.cases):
        if needed is not None and not needed.exists():
            print(f"trace not found: {needed} (the shared traces sit beside the repository)")
            return 2
    print(f"{'run':<24}{'jobs':>9}{'max queue':>10}{'wall s':>9}{'target':>8}{'peak MB':>9}  check")
    failed = False
    for name, target in TARGETS.items():
        case = name.split(":")[0]
        if case not in args.cases:
            continue
        command = [sys.executable, __file__, "--one", name, "--days", str(args.days)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        memory_target = MEMORY_TARGET_MB.get(case)
        ok = (
            r["wall_s"] < target
            and bool(r["ok_check"])
            and (memory_target is None or r["peak_mb"] < memory_target)
        )
        failed |= not ok
        memory = f"{r['peak_mb']:>9.0f}" + (f" (< {memory_target:.0f})" if memory_target else "")
        print(
            f"{name:<24}{r['jobs']:>9}{r['queue']:>10}{r['wall_s']:>9.2f}{'< ' + str(target):>8}"
            f"{memory}  {r['check']}" + ("" if ok else "  MISSED")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
