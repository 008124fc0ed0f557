"""Benchmark one scheduling cycle: 10,000 pending jobs over the full default catalogue.

    python bench/bench_cycle.py [--jobs 10000] [--reps 15] [--seed 7] [--strict]

Builds a seeded snapshot (every operational partition about 70% busy, with the active jobs that
hold those GPUs, a few hundred projects with site and pool allocations) and times ``run_cycle``
for each policy against its target (wall-clock median; the process CPU time is shown too, as
it is less disturbed by other processes). Standard library and the package only.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from types import MappingProxyType

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.domain.ids import AllocationId, JobId, ProjectId, SiteId, UserId
from aifactories.domain.jobs import ActiveJob, JobSpec, JobState, PendingJob, Shape
from aifactories.domain.projects import Allocation, AllocationStatus
from aifactories.domain.sites import Partition, Site
from aifactories.scheduling import POLICY_NAMES, get_policy, run_cycle
from aifactories.scheduling.snapshot import PartitionState, ProjectShare, Snapshot

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600
# The broker's targets; the baselines (fifo, easy_backfill, slurm_siblings, random) and
# Slurm's multifactor, used mostly in the twin, are held to the fair-share budget.
TARGET_MS = {"first_fit": 100.0, "earliest_start": 100.0, "fair_share": 300.0}
OTHER_TARGET_MS = 300.0
TIME_LIMITS = (1 * HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR)


def _running(partition: Partition, shape: Shape, job_id: int, rng: random.Random) -> ActiveJob:
    limit = rng.choice(TIME_LIMITS)
    return ActiveJob(
        id=JobId(job_id),
        project_id=ProjectId(rng.randrange(300)),
        site_id=partition.site_id,
        partition_id=partition.id,
        shape=shape,
        state=JobState.RUNNING,
        started_at=NOW - rng.uniform(0, limit),
        time_limit_s=limit,
    )


def busy_partitions(
    sites: tuple[Site, ...], rng: random.Random
) -> tuple[list[PartitionState], list[ActiveJob]]:
    """Each node: 22% idle, 55% full, else partly busy (about 70% of GPUs in use overall).

    Every busy GPU belongs to an active job, so expected starts can be estimated; runs of full
    nodes are sometimes one multi-node job, as on a real machine.
    """
    states: list[PartitionState] = []
    active: list[ActiveJob] = []
    for site in sites:
        if not site.operational:
            continue
        for partition in site.partitions:
            gpn = partition.gpus_per_node
            histogram = [0] * (gpn + 1)
            run = 0  # consecutive full nodes not yet given to a job
            for _ in range(partition.nodes):
                draw = rng.random()
                busy = 0 if draw < 0.22 else gpn if draw < 0.77 else rng.randint(1, gpn - 1)
                histogram[gpn - busy] += 1
                if busy == gpn:
                    run += 1
                    if run == 4 or rng.random() < 0.7:
                        shape = Shape(run, gpn, run > 1)
                        active.append(_running(partition, shape, 10_000_000 + len(active), rng))
                        run = 0
                elif busy:
                    shape = Shape(1, busy, False)
                    active.append(_running(partition, shape, 10_000_000 + len(active), rng))
            if run:
                shape = Shape(run, gpn, run > 1)
                active.append(_running(partition, shape, 10_000_000 + len(active), rng))
            states.append(
                PartitionState(
                    partition=partition,
                    country=site.country,
                    available=True,
                    free_nodes_by_free_gpus=tuple(histogram),
                )
            )
    return states, active


def allocations_and_shares(
    sites: tuple[Site, ...], projects: int, rng: random.Random
) -> tuple[list[Allocation], dict[ProjectId, ProjectShare]]:
    operational = [s.id for s in sites if s.operational]
    allocations: list[Allocation] = []
    shares: dict[ProjectId, ProjectShare] = {}
    for index in range(projects):
        project = ProjectId(index)
        for _ in range(rng.choice((1, 1, 2))):
            granted = int(rng.choice((2_000, 20_000, 50_000, 200_000)) * HOUR)
            site: SiteId | None = rng.choice(operational) if rng.random() < 0.4 else None
            allocations.append(
                Allocation(
                    id=AllocationId(len(allocations) + 1),
                    project_id=project,
                    site_id=site,
                    granted_gpu_seconds=granted,
                    reserved_gpu_seconds=0,
                    used_gpu_seconds=int(granted * rng.uniform(0, 0.9)),
                    starts_at=NOW - 30 * 86400,
                    ends_at=NOW + 300 * 86400,
                    status=AllocationStatus.OPEN,
                )
            )
        shares[project] = ProjectShare(
            project_id=project,
            priority_weight=rng.choice((1.0, 1.0, 1.25, 1.5, 1.875)),
            decayed_usage_gpu_seconds=rng.lognormvariate(12, 2),
        )
    return allocations, shares


def pending_jobs(
    sites: tuple[Site, ...], count: int, projects: int, rng: random.Random
) -> list[PendingJob]:
    models = sorted({p.gpu_model for s in sites if s.operational for p in s.partitions})
    countries = sorted({s.country for s in sites if s.operational})
    jobs: list[PendingJob] = []
    # Ids follow submission, as a database's would: the last day's submissions, in order.
    submitted = sorted(NOW - rng.uniform(0, 86400) for _ in range(count))
    for index in range(count):
        nodes: int | None = None
        if rng.random() < 0.08:
            nodes = rng.choice((2, 2, 4, 8, 16, 32))
            gpus = nodes * 4
        else:
            gpus = rng.choices((1, 2, 4, 8), weights=(30, 20, 30, 12))[0]
        spec = JobSpec(
            gpus=gpus,
            nodes=nodes,
            time_limit_s=rng.choice(TIME_LIMITS),
            gpu_model="any" if rng.random() < 0.4 else rng.choice(models),
            min_gpu_memory_gb=80 if rng.random() < 0.1 else 0,
            countries=frozenset(rng.sample(countries, 2)) if rng.random() < 0.05 else frozenset(),
        )
        jobs.append(
            PendingJob(
                id=JobId(index + 1),
                project_id=ProjectId(rng.randrange(projects)),
                user_id=UserId(rng.randrange(2_000)),
                spec=spec,
                submitted_at=submitted[index],
            )
        )
    return jobs


def build(jobs: int, projects: int, seed: int) -> tuple[Snapshot, list[PendingJob]]:
    rng = random.Random(seed)
    sites = load_default_catalogue().sites
    states, active = busy_partitions(sites, rng)
    allocations, shares = allocations_and_shares(sites, projects, rng)
    snapshot = Snapshot(
        taken_at=NOW,
        partitions=tuple(states),
        allocations=tuple(allocations),
        projects=MappingProxyType(shares),
        active_jobs=tuple(active),
    )
    return snapshot, pending_jobs(sites, jobs, projects, rng)


def _loop_ms() -> float:
    """A yardstick for the figures: how fast this interpreter on this machine is."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(1_000_000):
            pass
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _load() -> str:
    """The load average, since other processes competing for the CPU inflate the timings."""
    try:
        one_minute = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return "load average unknown"
    return f"load average {one_minute:.2f} on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    snapshot, pending = build(args.jobs, args.projects, args.seed)
    free = sum(p.free_gpus for p in snapshot.partitions)
    total = sum(p.partition.total_gpus for p in snapshot.partitions)
    print(
        f"{len(snapshot.partitions)} partitions, {total:,} GPUs ({free / total:.0%} free), "
        f"{len(snapshot.active_jobs):,} active jobs, {len(snapshot.allocations)} allocations, "
        f"{len(pending):,} pending jobs; {args.reps} repetitions"
    )
    print(f"machine: {_loop_ms():.1f} ms per million empty loop iterations; {_load()}")
    header = ("placed", 8), ("waits", 8), ("median ms", 11), ("p90 ms", 9), ("cpu ms", 9)
    print(f"{'policy':<16}" + "".join(f"{t:>{w}}" for t, w in header) + f"{'target':>8}")
    failed = False
    for name in POLICY_NAMES:
        policy = get_policy(name)
        timings: list[float] = []
        cpu: list[float] = []
        for _ in range(args.reps):
            # Start each repetition with the previous one's garbage collected, as a broker
            # cycle starts after idle time; the collector stays on while the cycle runs.
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            result = run_cycle(snapshot, pending, policy, NOW)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        median = statistics.median(timings)
        p90 = statistics.quantiles(timings, n=10)[-1] if len(timings) > 1 else timings[0]
        target = TARGET_MS.get(name, OTHER_TARGET_MS)
        verdict = "PASS" if median < target else "FAIL"
        failed = failed or verdict == "FAIL"
        print(
            f"{name:<16}{len(result.placements):>8}{len(result.waits):>8}"
            f"{median:>11.1f}{p90:>9.1f}{statistics.median(cpu):>9.1f}{target:>8.0f}  {verdict}"
        )
    print("sample wait reasons (last policy):")
    seen: set[str] = set()
    for wait in result.waits:
        kind = " ".join(wait.reason.split(" ")[:2])
        if kind not in seen:
            seen.add(kind)
            print(f"  job {wait.job_id}: {wait.reason}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
