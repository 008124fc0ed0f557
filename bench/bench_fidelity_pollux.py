"""Fidelity, Pollux (OSDI'21): its 8 Philly workloads through the twin, beside its published JCTs.

    python bench/bench_fidelity_pollux.py [--workloads 1,2,...,8]
        [--policies fifo,easy_backfill,tiresias_las,gavel_las]

Each run is a scenario, as a user would write it: the workload file with its profiles named
(``workload: {trace: {path, format: pollux, profiles: .../sia-hetero/profiles}}``), the
trace's own cluster (``sites: auto``: Pollux's 16 nodes of 4 T4), and for ``tiresias_las``
the settings of Pollux's Tiresias baseline (petuum/adaptdl, osdi21-artifact,
``simulator/tiresias.py`` and ``simulator.py``): 2 queues split at 16 GPU-hours, no
starvation promotion, a scheduling interval of 60 s, 30 s of rescale on each (re)start.

Published (the artifact's ``simulator/results-jobload/*-1.0/summary.json``, the data of the
paper's Section 5.3 and Fig. 8a at relative job load 1.0): average JCT per workload, seconds.
Tiresias+TunedJobs is the comparable baseline: rigid jobs (the rows' GPUs and batch size), as
the twin runs every job. Pollux and Optimus+Oracle resize jobs and batch sizes as they run,
which the twin does not model; they are printed for reference. The gate: the twin's
``tiresias_las`` within 10% of Tiresias' mean over the workloads; gaps are explained in
docs/twin.md ("Fidelity: Tiresias, Pollux/Sia").
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from aifactories.catalogue.loader import Catalogue
from aifactories.services.twin.simulate import prepare, simulate
from aifactories.twin.scenario import Scenario, validate_spec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
WORKLOADS = SHARED / "philly-pollux" / "pollux-workloads"
PROFILES = SHARED / "sia-hetero" / "profiles"
GATED = "tiresias_las"
PUBLISHED_S = {  # policy -> workload -> average JCT in seconds (results-jobload, load 1.0)
    "tiresias": {
        1: 2473.7, 2: 5145.0, 3: 3876.3, 4: 3280.3,
        5: 3501.0, 6: 3469.7, 7: 5479.9, 8: 5079.7,
    },
    "pollux": {
        1: 2088.8, 2: 3322.9, 3: 2188.5, 4: 2721.0,
        5: 2673.7, 6: 2446.1, 7: 3616.1, 8: 2951.9,
    },
    "optimus": {
        1: 4087.1, 2: 6913.9, 3: 3944.0, 4: 5967.8,
        5: 5656.2, 6: 5301.9, 7: 7290.9, 8: 6293.8,
    },
}  # fmt: skip
POLLUX_TIRESIAS = {"queue_thresholds_h": [16.0], "round_s": 60.0, "starve_limit": 0.0}


def _no_catalogue() -> Catalogue:
    raise SystemExit("the Pollux workload brings its own cluster; no catalogue is read")


def scenario(workload: int, policies: Sequence[str]) -> Scenario:
    data = {
        "name": f"pollux workload-{workload}",
        "policies": list(policies),
        "workload": {
            "trace": {
                "path": str(WORKLOADS / f"workload-{workload}.csv"),
                "format": "pollux",
                "profiles": str(PROFILES),
            }
        },
        "tiresias": POLLUX_TIRESIAS,
        "restart_cost_s": 30.0,
        "time_limit_factor": 100.0,  # Pollux's jobs have no time limit
    }
    return Scenario(validate_spec(data, "bench_fidelity_pollux"), "bench_fidelity_pollux")


def mean_jcts_s(workload: int, policies: Sequence[str]) -> dict[str, float]:
    runs, _ = simulate(prepare(scenario(workload, policies), _no_catalogue))
    means = {}
    for run in runs:
        jcts = [r.end_s - r.submit_s for r in run.results if r.end_s is not None]
        if len(jcts) != len(run.results):
            raise SystemExit(f"workload-{workload} {run.policy}: some jobs did not finish")
        means[run.policy] = statistics.fmean(jcts)
    return means


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workloads", default="1,2,3,4,5,6,7,8")
    parser.add_argument("--policies", default="fifo,easy_backfill,tiresias_las,gavel_las")
    args = parser.parse_args(argv)
    if not (WORKLOADS.is_dir() and PROFILES.is_dir()):
        print(f"Pollux workloads or profiles not found under {SHARED}")
        return 2
    policies = args.policies.split(",")
    workloads = [int(w) for w in args.workloads.split(",")]
    print("Pollux's 8 workloads on its 64 T4 (16 x 4), average JCT in seconds")
    header = "".join(f"{p:>15}" for p in policies)
    print(f"{'workload':<10}{header}{'Tiresias*':>11}{'Pollux*':>9}{'Optimus*':>10}  wall")
    twin: dict[str, list[float]] = {p: [] for p in policies}
    for workload in workloads:
        started = time.perf_counter()
        means = mean_jcts_s(workload, policies)
        for policy in policies:
            twin[policy].append(means[policy])
        cells = "".join(f"{means[p]:>15.0f}" for p in policies)
        published = "".join(
            f"{PUBLISHED_S[k][workload]:>{w}.0f}"
            for k, w in (("tiresias", 11), ("pollux", 9), ("optimus", 10))
        )
        print(f"workload-{workload:<1}{cells}{published}  {time.perf_counter() - started:.0f} s")
    mean_of = {p: statistics.fmean(v) for p, v in twin.items()}
    published_mean = {k: statistics.fmean(v[w] for w in workloads) for k, v in PUBLISHED_S.items()}
    cells = "".join(f"{mean_of[p]:>15.0f}" for p in policies)
    print(
        f"{'mean':<10}{cells}{published_mean['tiresias']:>11.0f}"
        f"{published_mean['pollux']:>9.0f}{published_mean['optimus']:>10.0f}"
    )
    print(
        "* published, Pollux artifact (results-jobload, load 1.0); Pollux and Optimus resize jobs"
    )
    failed = False
    if GATED in mean_of:
        diff = mean_of[GATED] / published_mean["tiresias"] - 1
        failed = abs(diff) > 0.10
        print(f"gate: {GATED} {diff:+.1%} from Tiresias' published mean (within 10%: {not failed})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
