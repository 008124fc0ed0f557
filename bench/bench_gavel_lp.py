"""Benchmark Gavel's allocation LPs (gavel_las, gavel_ftf) over the catalogue's columns.

    python bench/bench_gavel_lp.py [--jobs 1000 5000] [--reps 5] [--seed 7] [--strict]

Columns are the default catalogue's operational (site, partition) pairs, capacities their GPU
counts. Each job's throughput on a column is the column's GPU-model speed (the twin's
DEFAULT_SPEED, 1.0 for a model it does not list) times a per-job factor, one per model, drawn
from U(0.5, 1.5), seeded; scale factors follow Gavel's Philly mix (1, 2, 4, 8 GPUs with
p = 0.7, 0.1, 0.15, 0.05). The catalogue holds tens of thousands of GPUs, so a few thousand
jobs leave it idle; the ``contended`` scenario shrinks every column in proportion until the
jobs ask for three times the GPUs there are, the regime where the LP has to trade. For FTF the
remaining work, waits and banked isolated time are drawn too. The figure is the wall-clock
median of one allocation (model building and every LP solve), next to the target per round.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.scheduling.gavel import Allocation, finish_time_fairness, max_min_fairness
from aifactories.twin.federation import DEFAULT_SPEED

TARGET_S = {1000: 1.0, 5000: 5.0}
SCALE_MIX = ((1, 0.7), (2, 0.1), (4, 0.15), (8, 0.05))


def columns() -> tuple[list[str], list[str], np.ndarray]:
    names: list[str] = []
    models: list[str] = []
    caps: list[int] = []
    for site in load_default_catalogue().sites:
        if not site.operational:
            continue
        for partition in site.partitions:
            names.append(f"{site.id}/{partition.name}")
            models.append(partition.gpu_model)
            caps.append(partition.total_gpus)
    return names, models, np.asarray(caps, dtype=np.float64)


def jobs(count: int, models: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    kinds = sorted(set(models))
    factor = rng.uniform(0.5, 1.5, size=(count, len(kinds)))
    speed = np.array([DEFAULT_SPEED.get(model, 1.0) for model in models])
    column_kind = np.array([kinds.index(model) for model in models])
    sizes = np.array([size for size, _ in SCALE_MIX], dtype=np.float64)
    probabilities = np.array([p for _, p in SCALE_MIX])
    return {
        "throughputs": speed[None, :] * factor[:, column_kind],
        "scale_factors": rng.choice(sizes, size=count, p=probabilities),
        "weights": rng.choice([1.0, 1.25, 1.5], size=count),
        "remaining": 3600.0 * 10.0 ** rng.uniform(0.5, 2.5, size=count),
        "waited": rng.uniform(0.0, 86400.0, size=count),
        "banked": rng.uniform(0.0, 3600.0, size=count),
    }


def policies(data: dict[str, np.ndarray], caps: np.ndarray) -> dict[str, Callable[[], Allocation]]:
    return {
        "gavel_las": lambda: max_min_fairness(
            data["throughputs"], data["scale_factors"], caps, data["weights"]
        ),
        "gavel_las_agnostic": lambda: max_min_fairness(
            data["throughputs"],
            data["scale_factors"],
            caps,
            data["weights"],
            heterogeneity_aware=False,
        ),
        "gavel_ftf": lambda: finish_time_fairness(
            data["throughputs"],
            data["scale_factors"],
            caps,
            data["remaining"],
            data["waited"],
            data["banked"],
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    names, models, caps = columns()
    print(f"{len(names)} columns, {int(caps.sum()):,} GPUs: " + ", ".join(names))
    header = ("LPs", 5), ("median s", 10), ("max s", 8), ("used GPUs", 11), ("target s", 10)
    print(f"{'scenario':<11}{'jobs':>6}  {'policy':<20}" + "".join(f"{t:>{w}}" for t, w in header))
    failed = False
    for count in args.jobs:
        data = jobs(count, models, np.random.default_rng(args.seed))
        demand = float(data["scale_factors"].sum())
        contended = caps * min(1.0, demand / 3.0 / float(caps.sum()))
        for scenario, capacity in (("catalogue", caps), ("contended", contended)):
            for name, solve in policies(data, capacity).items():
                timings: list[float] = []
                for _ in range(args.reps):
                    gc.collect()
                    started = time.perf_counter()
                    allocation = solve()
                    timings.append(time.perf_counter() - started)
                used = float((allocation.fractions * data["scale_factors"][:, None]).sum())
                target = TARGET_S.get(count, count / 1000.0)
                median = statistics.median(timings)
                verdict = "PASS" if median < target else "FAIL"
                failed = failed or verdict == "FAIL"
                print(
                    f"{scenario:<11}{count:>6}  {name:<20}{allocation.lp_solves:>5}"
                    f"{median:>10.3f}{max(timings):>8.3f}{used:>11,.0f}{target:>10.1f}  {verdict}"
                )
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
