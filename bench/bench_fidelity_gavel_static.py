"""Fidelity, full size: Gavel's makespan policy on its static multi-GPU trace, through the twin.

    python bench/bench_fidelity_gavel_static.py [--jobs 100,400,700] [--seeds 0,1,2]
        [--policies fifo,gavel_makespan] [--gpus-per-node 1]

Gavel's "makespan policy on static-multiple trace" (its EXPERIMENTS.md; run_sweep_static.py
with lam = 0): the first N jobs of Gavel's generator with multi-GPU jobs (1, 2, 4 or 8 GPUs),
every one at time 0, on 36 V100 + 36 P100 + 36 K80 GPUs, rounds of 6 minutes, no restart
cost; the makespan is the time the last job ends. Published (Gavel's repository,
scheduler/notebooks/figures/evaluation/makespan.ipynb, its stored output: the mean over seeds
0 to 2 of the figure's data), in hours:

    jobs   FIFO    Gavel (min_total_duration_perf)
    100    182.3   161.2
    400    350.5   161.3
    700    619.5   244.2

Gavel's sweeps put each GPU in its own server (``--num_gpus_per_server 1:1:1``), so a job's
gang is any GPUs of one type: ``--gpus-per-node 1`` (default) does the same; 4 gives 9
servers of 4 per type. The gate: the makespan policy within 10% of each published figure;
FIFO is printed beside its figure for reference (docs/twin.md, "Gavel fidelity", says why
Gavel's FIFO and the twin's differ).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

from aifactories.twin.federation import projects_for
from aifactories.twin.metrics import makespan
from aifactories.twin.simulation import Simulation, TwinSetup
from aifactories.twin.traces.gavel import (
    gavel_speed_matrix,
    generate_gavel_continuous,
    load_gavel_throughputs,
)
from aifactories.twin.traces.model import Trace
from bench_fidelity_gavel import THROUGHPUTS, gavel_sites

GATED = {"gavel_makespan"}
PUBLISHED_H = {  # policy -> jobs -> makespan in hours (mean over seeds 0-2)
    "fifo": {100: 182.3, 200: 229.4, 300: 295.6, 400: 350.5, 500: 426.6, 600: 506.2, 700: 619.5},
    "gavel_makespan": {
        100: 161.2,
        200: 161.2,
        300: 161.2,
        400: 161.3,
        500: 169.4,
        600: 195.0,
        700: 244.2,
    },
}


def static_trace(jobs: int, seed: int, throughputs_path: Path) -> Trace:
    """Gavel's static trace: its generator's first ``jobs`` multi-GPU jobs, all at time 0
    (lam = 0 draws no arrival gaps; the job stream is the continuous one's)."""
    throughputs = load_gavel_throughputs(throughputs_path)
    trace = generate_gavel_continuous(jobs, 1.0, seed, throughputs, scale_factor_one_only=False)
    at_zero = tuple(dataclasses.replace(job, submit_s=0.0) for job in trace.jobs)
    return dataclasses.replace(trace, name=f"gavel-static(n={jobs}, seed={seed})", jobs=at_zero)


def makespan_h(
    policy: str, jobs: int, seed: int, gpus_per_node: int, throughputs_path: Path
) -> float:
    throughputs = load_gavel_throughputs(throughputs_path)
    trace = static_trace(jobs, seed, throughputs_path)
    setup = TwinSetup(
        gavel_sites(gpus_per_node),
        policy,
        speed_by_class=gavel_speed_matrix(throughputs, (1, 2, 4, 8)),
        restart_cost_s=0.0,
    )
    run = Simulation(trace, projects_for(trace, ["US"], seed), setup).run()
    if any(r.end_s is None for r in run.results):
        raise SystemExit(f"{policy}: some jobs did not finish")
    return makespan(run.results) / 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="100,400,700")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--policies", default="fifo,gavel_makespan")
    parser.add_argument("--gpus-per-node", type=int, default=1, choices=(1, 2, 4))
    parser.add_argument("--throughputs", type=Path, default=THROUGHPUTS)
    args = parser.parse_args()
    if not args.throughputs.exists():
        print(f"throughputs not found: {args.throughputs}")
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"Gavel static-multiple, seeds {seeds}, {args.gpus_per_node} GPU(s) per server; "
        "makespan in hours; gate: within 10%"
    )
    print(f"{'policy':<24}{'jobs':>5}{'per seed h':>24}{'mean h':>8}{'published':>10}{'diff':>7}")
    failed = False
    for policy in args.policies.split(","):
        for jobs in (int(n) for n in args.jobs.split(",")):
            started = time.perf_counter()
            values = [
                makespan_h(policy, jobs, s, args.gpus_per_node, args.throughputs) for s in seeds
            ]
            mean = statistics.fmean(values)
            published = PUBLISHED_H.get(policy, {}).get(jobs)
            diff = "" if published is None else f"{mean / published - 1:+.0%}"
            if policy in GATED:
                failed |= published is not None and abs(mean / published - 1) > 0.10
            per_seed = " / ".join(f"{v:.1f}" for v in values)
            print(
                f"{policy:<24}{jobs:>5}{per_seed:>24}{mean:>8.1f}"
                f"{published if published is not None else '-':>10}{diff:>7}"
                f"   ({time.perf_counter() - started:.0f} s)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
