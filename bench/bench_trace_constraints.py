"""Constraints and zero-length jobs of real traces, measured (issue 14).

    python bench/bench_trace_constraints.py

1. Alibaba GPU 2023, gpuspec33 (whole file) on its own machine (the node list: 1,213 nodes,
   6,212 GPUs by model): the pods that name the GPU models they accept (2,092) and how many
   ran on another one, per policy; target 0. Beside it, the same pods with their constraints
   dropped, the twin as it was before (the issue counted 1,737 of 2,092): the check is not
   vacuous.
2. NASA iPSC/860 at doubled load, one 128-node site, FIFO and EASY: mean wait of the jobs
   that ran more than 0 s, with the log's 173 zero-length jobs kept (they take their turn)
   and dropped (as the readers did before); and the start times against the independent
   reference of tests/twin/test_fidelity_nasa.py (target: every job equal).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.twin.test_fidelity_nasa import IPSC, reference_starts  # noqa: E402

from aifactories.twin.federation import projects_for  # noqa: E402
from aifactories.twin.metrics.constraints import violations  # noqa: E402
from aifactories.twin.metrics.results import PolicyRun  # noqa: E402
from aifactories.twin.simulation import Simulation, TwinSetup  # noqa: E402
from aifactories.twin.trace_sites import trace_machine  # noqa: E402
from aifactories.twin.traces import read_trace  # noqa: E402
from aifactories.twin.traces.model import Trace  # noqa: E402
from aifactories.twin.traces.transform import scale_load  # noqa: E402

TRACES = ROOT.parent / "shared" / "traces"
ALIBABA = TRACES / "alibaba-gpu-2023" / "openb_pod_list_gpuspec33.csv"
NASA = TRACES / "pwa-nasa-ipsc-1993" / "NASA-iPSC-1993-3.1-cln.swf.gz"


def alibaba() -> None:
    trace = read_trace(ALIBABA, "alibaba")
    machine = trace_machine(ALIBABA, "alibaba")
    assert machine is not None
    sites = machine.catalogue.sites
    stripped = Trace(
        trace.name,
        None,
        tuple(dataclasses.replace(j, gpu_models=frozenset()) for j in trace.jobs),
    )
    print(f"{trace.summary()}\nsites: {machine.description}")
    print(
        f"{'policy':<15} {'constrained':>11} {'violations':>10} {'target':>6} "
        f"{'no constraints':>14} {'wall s':>7}"
    )
    for policy in ("first_fit", "fifo", "easy_backfill"):
        started = time.perf_counter()
        run = Simulation(trace, projects_for(trace, ["CN"], 0), TwinSetup(sites, policy)).run()
        wall = time.perf_counter() - started
        before = Simulation(stripped, projects_for(trace, ["CN"], 0), TwinSetup(sites, policy))
        counted, dropped = violations(trace, run, sites), violations(trace, before.run(), sites)
        print(
            f"{policy:<15} {counted.constrained:>11,} {counted.jobs:>10} {0:>6} "
            f"{dropped.jobs:>14,} {wall:>7.1f}"
        )


def _nasa_run(trace: Trace, policy: str) -> PolicyRun:
    setup = TwinSetup(IPSC, policy, time_limit_factor=1.0)
    return Simulation(trace, projects_for(trace, ["US"], 0), setup).run()


def nasa() -> None:
    kept = scale_load(read_trace(NASA, "swf"), 2.0)
    dropped = Trace(kept.name, None, tuple(j for j in kept.jobs if j.runtime_s > 0))
    zero = {j.job_id for j in kept.jobs if j.runtime_s == 0}
    print(f"\n{kept.summary()}, arrivals x2; {len(zero)} zero-length jobs")
    print(
        f"{'policy':<15} {'wait kept h':>11} {'wait dropped h':>14} {'change':>7} "
        f"{'starts != ref':>13} {'target':>6} {'wall s':>7}"
    )
    for policy, easy in (("fifo", False), ("easy_backfill", True)):
        started = time.perf_counter()
        run = _nasa_run(kept, policy)
        wall = time.perf_counter() - started
        expected = reference_starts(kept, easy)
        starts = {r.job_id: r.start_s for r in run.results}
        differ = sum(1 for j, e in zip(kept.jobs, expected, strict=True) if starts[j.job_id] != e)

        def mean_wait(result: PolicyRun) -> float:
            waits = [r.wait_s for r in result.results if r.job_id not in zero]
            return statistics.fmean(w for w in waits if w is not None) / 3600

        with_zero, without = mean_wait(run), mean_wait(_nasa_run(dropped, policy))
        print(
            f"{policy:<15} {with_zero:>11.2f} {without:>14.2f} "
            f"{(with_zero / without - 1) * 100:>+6.1f}% {differ:>13} {0:>6} {wall:>7.1f}"
        )


if __name__ == "__main__":
    if not (ALIBABA.is_file() and NASA.is_file()):
        sys.exit(f"the traces are not in {TRACES} (the shared folder beside the repository)")
    alibaba()
    nasa()
