"""Decision quality: each broker policy against ``slurm_siblings`` on contended heterogeneous
federations, through the twin.

    python bench/bench_decision_quality.py [--jobs 1500] [--seeds 0,1]
        [--scenarios catalogue,gavel,gavel-v100-first]
        [--policies expected_completion,first_fit,...]

Three federations:

* ``catalogue``: the embedded catalogue's operational partitions, each scaled down to
  ``max(1, round(nodes / 500))`` nodes (132 GPUs of five models), with the default speed row
  (``twin.federation.DEFAULT_SPEED``: A100 1.0 ... H200 2.3) and the Gavel/Philly mixture of
  1 to 8 GPU jobs (``generate_gavel_mixture``);
* ``gavel``: Gavel's three GPU types as three sites of 36 GPUs (9 nodes of 4) each, K80, P100
  and V100 in that catalogue order, Gavel's 1-GPU continuous workload
  (``generate_gavel_continuous``) and the speed matrix of its measured throughputs
  (``gavel-throughputs`` of the shared traces, found beside the project as
  ``../shared/traces``), each job type's own row;
* ``gavel-v100-first``: the same with the catalogue order reversed. First fit and the
  sibling rule take the first site in catalogue order that has room, so with the slowest
  GPU first they place most jobs on it at low load; the reversed order shows how much of
  the gain is that order.

Requested times are each job's reference runtime x 1.5 / the slowest speed in the matrix, so
no job times out on a slow GPU (a time-out would end it early and flatter the policy that
put it there); every policy sees the same requests.

Saturation load of a policy: the arrival rate it sustains, measured under overload (twice the
nominal capacity): the reference work its placements deliver per hour (GPU-seconds x the
speed of the GPU each job ran on, counted between the arrival of the first quarter of the
jobs and the last arrival, while the queue is deep), divided by the mean reference work of a
job. Then every policy runs at 0.5, 0.7, 0.9 and 1.0 of ``slurm_siblings``' saturation load
(the same traces for all), and the table gives mean and 95th-percentile completion time
(end - submit, all jobs) and the ratio to ``slurm_siblings``. The row at 1.2 shows what the
goal below means: there the sibling rule's queue keeps growing and a policy that sustains
20% more does not.

The most any policy could sustain is printed beside them: the LP that gives each workload
class a share of each GPU model's GPUs so that every class's work, arriving at rate x,
is done, and maximises x (Gavel's max-throughput allocation, over the trace's job mix;
packing ignored, so an upper bound). On the catalogue federation every job has the same
speed row and the sibling rule already keeps nearly every GPU busy under overload, so no
policy can sustain much more there; on Gavel's GPUs the classes differ in what they lose
on a slow GPU, and giving each GPU type the classes that lose least there gains.

Goal (issue 14): at 0.9 of the saturation load, a mean completion time 1.3x lower than
``slurm_siblings``'; and a saturation load 20% higher. Printed beside the figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import highspy
import numpy as np
import yaml

from aifactories.catalogue.loader import load_default_catalogue, parse_catalogue
from aifactories.domain.sites import Site
from aifactories.scheduling import POLICY_NAMES
from aifactories.scheduling.lp_solver import new_highs
from aifactories.twin.federation import DEFAULT_SPEED, projects_for
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.simulation import Simulation, TwinSetup, speed_of
from aifactories.twin.traces.gavel import (
    gavel_speed_matrix,
    generate_gavel_continuous,
    load_gavel_throughputs,
)
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.synthetic import generate_gavel_mixture

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUTS = (
    ROOT.parent / "shared" / "traces" / "gavel-throughputs" / "simulation_throughputs.json"
)
BASELINE = "slurm_siblings"
CANDIDATE = "expected_completion"
LOADS = (0.5, 0.7, 0.9, 1.0, 1.2)
OVERLOAD = 2.0  # x the nominal capacity, for the saturation run
GOAL_MEAN_RATIO = 1.3  # baseline's mean completion / the candidate's, at 0.9 load
GOAL_SATURATION = 1.2  # the candidate's saturation load / the baseline's
CATALOGUE_SCALE = 500  # nodes per node kept
GAVEL_SITES = """
sites:
  - {id: k80, name: K80 site, country: US, supercomputer: Gavel K80, status: operational,
     partitions: [{name: k80, gpu_model: K80, gpu_memory_gb: 12, gpus_per_node: 4, nodes: 9}]}
  - {id: p100, name: P100 site, country: US, supercomputer: Gavel P100, status: operational,
     partitions: [{name: p100, gpu_model: P100, gpu_memory_gb: 16, gpus_per_node: 4, nodes: 9}]}
  - {id: v100, name: V100 site, country: US, supercomputer: Gavel V100, status: operational,
     partitions: [{name: v100, gpu_model: V100, gpu_memory_gb: 16, gpus_per_node: 4, nodes: 9}]}
"""


@dataclass(frozen=True)
class Federation:
    """A contended heterogeneous federation and the workload that loads it."""

    name: str
    sites: tuple[Site, ...]
    speed_by_class: dict[str, dict[str, float]]
    countries: tuple[str, ...]

    def trace(self, jobs: int, jobs_per_hour: float, seed: int) -> Trace:
        if self.name.startswith("gavel"):
            throughputs = load_gavel_throughputs(THROUGHPUTS)
            return generate_gavel_continuous(jobs, jobs_per_hour, seed, throughputs)
        return generate_gavel_mixture(jobs, jobs_per_hour, seed)

    def setup(self, policy: str) -> TwinSetup:
        rows = [DEFAULT_SPEED, *self.speed_by_class.values()]
        slowest = min(
            row.get(p.gpu_model, 1.0) for row in rows for s in self.sites for p in s.partitions
        )
        return TwinSetup(
            self.sites,
            policy,
            time_limit_factor=1.5 / slowest,
            speed_by_class=self.speed_by_class,
        )

    def nominal_rate(self, trace: Trace) -> float:
        """Jobs per hour the GPUs would take at their mean speed over the trace's classes."""
        setup = self.setup(BASELINE)
        speed = sum(
            p.total_gpus * statistics.fmean(speed_of(j, p.gpu_model, setup) for j in trace.jobs)
            for s in self.sites
            for p in s.partitions
        )
        return speed * 3600.0 / statistics.fmean(j.runtime_s * j.gpus for j in trace.jobs)


def catalogue_federation() -> Federation:
    sites = tuple(
        replace(
            site,
            partitions=tuple(
                replace(p, nodes=max(1, round(p.nodes / CATALOGUE_SCALE))) for p in site.partitions
            ),
        )
        for site in load_default_catalogue().operational_sites
    )
    return Federation("catalogue", sites, {}, tuple(sorted({s.country for s in sites})))


def gavel_federation(fast_first: bool = False) -> Federation:
    sites = parse_catalogue(yaml.safe_load(GAVEL_SITES), "gavel").sites
    matrix = gavel_speed_matrix(load_gavel_throughputs(THROUGHPUTS))
    if fast_first:
        return Federation("gavel-v100-first", sites[::-1], matrix, ("US",))
    return Federation("gavel", sites, matrix, ("US",))


def simulate(federation: Federation, policy: str, trace: Trace, seed: int) -> list[JobResult]:
    setup = federation.setup(policy)
    run = Simulation(trace, projects_for(trace, federation.countries, seed), setup).run()
    return list(run.results)


def delivered_rate(federation: Federation, trace: Trace, results: Sequence[JobResult]) -> float:
    """Jobs per hour the placements sustain: reference work per hour / mean work per job."""
    setup = federation.setup(BASELINE)
    by_id = {j.job_id: j for j in trace.jobs}
    arrivals = sorted(j.submit_s for j in trace.jobs)
    begin, end = arrivals[len(arrivals) // 4], arrivals[-1]
    work = 0.0
    for r in results:
        if r.start_s is None or r.end_s is None or r.gpu_model is None:
            continue
        overlap = min(r.end_s, end) - max(r.start_s, begin)
        if overlap > 0:
            work += overlap * r.gpus * speed_of(by_id[r.job_id], r.gpu_model, setup)
    per_job = statistics.fmean(j.runtime_s * j.gpus for j in trace.jobs)
    return work / (end - begin) * 3600.0 / per_job


def sustainable_bound(federation: Federation, trace: Trace) -> float:
    """The highest arrival rate (jobs/h) any placement could sustain for ``trace``'s job mix:
    max x such that each class's GPUs x their speed do its work x its share of arrivals."""
    setup = federation.setup(BASELINE)
    partitions = [p for s in federation.sites for p in s.partitions]
    by_class: dict[str, list[TraceJob]] = {}
    for job in trace.jobs:
        by_class.setdefault(str(job.workload_class), []).append(job)
    classes, pools = len(by_class), len(partitions)
    # columns: x[class, partition] (GPUs given), then the rate; maximise the rate
    highs = new_highs()
    highs.addVars(
        classes * pools + 1,
        np.zeros(classes * pools + 1),
        np.full(classes * pools + 1, highspy.kHighsInf),
    )
    highs.changeColCost(classes * pools, -1.0)
    for k, jobs in enumerate(by_class.values()):
        work = sum(j.runtime_s * j.gpus for j in jobs) / len(trace.jobs)  # per arriving job
        index = [*(k * pools + m for m in range(pools)), classes * pools]
        value = [*(-speed_of(jobs[0], p.gpu_model, setup) for p in partitions), work / 3600.0]
        highs.addRow(
            -highspy.kHighsInf, 0.0, len(index), np.array(index, dtype=np.int32), np.array(value)
        )
    for m, partition in enumerate(partitions):
        column = np.array([k * pools + m for k in range(classes)], dtype=np.int32)
        highs.addRow(0.0, float(partition.total_gpus), classes, column, np.ones(classes))
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise SystemExit(f"the bound's LP did not solve: {highs.getModelStatus()}")
    return -float(highs.getInfo().objective_function_value)


def completion_times(results: Sequence[JobResult]) -> list[float]:
    times = [r.end_s - r.submit_s for r in results if r.end_s is not None]
    if len(times) != len(results):
        raise SystemExit(f"{len(results) - len(times)} jobs did not finish")
    return times


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def run_federation(
    federation: Federation, policies: Sequence[str], jobs: int, seeds: Sequence[int]
) -> tuple[bool, bool]:
    """Print the federation's table; whether each goal was met (mean at 0.9, saturation)."""
    gpus = sum(p.total_gpus for s in federation.sites for p in s.partitions)
    print(f"\n== {federation.name}: {gpus} GPUs")
    probe = federation.trace(jobs, 1.0, seeds[0])
    overload = OVERLOAD * federation.nominal_rate(probe)
    saturation: dict[str, float] = {}
    bound = statistics.fmean(
        sustainable_bound(federation, federation.trace(jobs, overload, seed)) for seed in seeds
    )
    for policy in policies:
        rates = []
        for seed in seeds:
            trace = federation.trace(jobs, overload, seed)
            rates.append(
                delivered_rate(federation, trace, simulate(federation, policy, trace, seed))
            )
        saturation[policy] = statistics.fmean(rates)
    base_rate = saturation[BASELINE]
    print(f"saturation load (jobs/h, offered {overload:.2f}/h):")
    print(
        f"  {'(most sustainable)':20} {bound:7.3f}  x{bound / base_rate:5.2f}"
        f" of {BASELINE}: the LP bound over the job mix, no policy does better"
    )
    for policy in policies:
        print(
            f"  {policy:20} {saturation[policy]:7.3f}  x{saturation[policy] / base_rate:5.2f}"
            f" of {BASELINE}"
        )
    means: dict[tuple[str, float], float] = {}
    print(f"{'load':>5} {'policy':20} {'mean h':>8} {'p95 h':>8} {'mean vs base':>13}")
    for load in LOADS:
        rate = load * base_rate
        for policy in policies:
            times: list[float] = []
            for seed in seeds:
                trace = federation.trace(jobs, rate, seed)
                times += completion_times(simulate(federation, policy, trace, seed))
            means[policy, load] = statistics.fmean(times)
            ratio = means[BASELINE, load] / means[policy, load] if (BASELINE, load) in means else 1
            print(
                f"{load:5.1f} {policy:20} {means[policy, load] / 3600:8.1f}"
                f" {p95(times) / 3600:8.1f} {ratio:12.2f}x"
            )
    if CANDIDATE not in policies:
        return False, False
    mean_ratio = means[BASELINE, 0.9] / means[CANDIDATE, 0.9]
    sat_ratio = saturation[CANDIDATE] / base_rate
    mean_met, sat_met = mean_ratio >= GOAL_MEAN_RATIO, sat_ratio >= GOAL_SATURATION
    print(
        f"goal: {CANDIDATE} mean completion at 0.9 load {mean_ratio:.2f}x lower than "
        f"{BASELINE} (target >= {GOAL_MEAN_RATIO}x): {'met' if mean_met else 'NOT met'}"
    )
    print(
        f"goal: {CANDIDATE} saturation load x{sat_ratio:.2f} of {BASELINE}'s "
        f"(target >= {GOAL_SATURATION}x): {'met' if sat_met else 'NOT met'}"
        + (
            f" (unreachable here: no policy can sustain more than x{bound / base_rate:.2f})"
            if bound < GOAL_SATURATION * base_rate
            else ""
        )
    )
    return mean_met, sat_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--scenarios", default="catalogue,gavel,gavel-v100-first")
    parser.add_argument("--policies", default=",".join(POLICY_NAMES))
    args = parser.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if BASELINE not in policies:
        policies.insert(0, BASELINE)
    else:  # the baseline first: every other row is compared to it
        policies.remove(BASELINE)
        policies.insert(0, BASELINE)
    seeds = [int(s) for s in args.seeds.split(",")]
    builders: dict[str, Callable[[], Federation]] = {
        "catalogue": catalogue_federation,
        "gavel": gavel_federation,
        "gavel-v100-first": lambda: gavel_federation(fast_first=True),
    }
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}; known: {', '.join(builders)}")
    started = time.monotonic()
    for name in names:
        if name.startswith("gavel") and not THROUGHPUTS.exists():
            print(f"\n== {name}: skipped, {THROUGHPUTS} is absent")
            continue
        run_federation(builders[name](), policies, args.jobs, seeds)
    print(f"\n{time.monotonic() - started:.0f} s on this machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
