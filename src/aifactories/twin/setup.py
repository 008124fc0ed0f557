"""What a twin run is set up with (:class:`TwinSetup`) and how a trace job runs on a GPU:
its time limit, its speed on a GPU model (the speed matrix), its runtime there."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Site
from aifactories.scheduling.policies.tiresias_las import TiresiasSettings
from aifactories.twin.events import TwinEvent
from aifactories.twin.federation import DEFAULT_GPU_POWER_KW, DEFAULT_PUE, DEFAULT_SPEED
from aifactories.twin.traces.model import TraceJob


@dataclass(frozen=True)
class TwinSetup:
    sites: tuple[Site, ...]
    policy: str
    half_life_s: float = 7 * 86400
    # The time limit a job asks for: its runtime at reference speed times this factor (users
    # overestimate; 1.0 would be perfect estimates). A job on a slower GPU may hit it.
    time_limit_factor: float = 1.5
    speed: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEED))
    gpu_power_kw: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_GPU_POWER_KW))
    pue: float = DEFAULT_PUE
    # Workload class -> GPU model -> speed, for jobs whose trace gives a class; ``speed`` is
    # the row for every other job (see docs/twin.md, "Speed matrix").
    speed_by_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Seconds of work lost each time a job is preempted, migrated or restarted after an
    # outage (reloading the last checkpoint and warming up); Gavel and Tiresias charge
    # a comparable cost per restart. Not added after an outage while jobs restart from the
    # beginning: the lost run already includes its warm-up.
    restart_cost_s: float = 30.0
    # Outages and capacity changes, in virtual seconds; ties at one instant keep this order.
    events: tuple[TwinEvent, ...] = ()
    seed: int = 0
    # Tiresias' queue thresholds, round length and starvation promotion (tiresias_las only).
    tiresias: TiresiasSettings = field(default_factory=TiresiasSettings)


def time_limit_of(job: TraceJob, setup: TwinSetup) -> int:
    """The time limit a trace job asks for: the trace's, else its runtime x the factor."""
    limit = job.time_limit_s or max(1, math.ceil(job.runtime_s)) * setup.time_limit_factor
    return max(1, math.ceil(limit))


def speed_of(job: TraceJob, gpu_model: str, setup: TwinSetup) -> float:
    """How fast ``job`` runs on ``gpu_model`` relative to its trace runtime: the speed
    matrix's row for the job's workload class if there is one, else the default row."""
    row = setup.speed_by_class.get(job.workload_class or "", setup.speed)
    return row.get(gpu_model, setup.speed.get(gpu_model, 1.0))


NOWHERE = "none (zero throughput on every GPU model)"
"""The GPU model a job with no positive speed anywhere asks for: no partition has it, so the
job waits for good instead of starting where it cannot progress."""


class RunnableModels:
    """The GPU models a job can run on, for its spec (``gpu_models``): those where its speed
    is positive. A speed of 0 means it cannot run there (Gavel: out of memory), so no policy
    may be offered such a GPU, in a cycle or in a round. Empty (no restriction) when every
    model of the federation will do. Kept per workload class: the speed depends on nothing
    else."""

    def __init__(self, sites: Iterable[Site], setup: TwinSetup) -> None:
        self._models = sorted({p.gpu_model for site in sites for p in site.partitions})
        self._setup = setup
        self._of: dict[str | None, frozenset[str]] = {}

    def of(self, job: TraceJob) -> frozenset[str]:
        known = self._of.get(job.workload_class)
        if known is None:
            runnable = [m for m in self._models if speed_of(job, m, self._setup) > 0]
            if len(runnable) == len(self._models):
                known = frozenset()
            else:
                known = frozenset(runnable) or frozenset({NOWHERE})
            self._of[job.workload_class] = known
        return known


def run_on(
    job: TraceJob, gpu_model: str, time_limit_s: int, setup: TwinSetup
) -> tuple[float, JobState]:
    """How long the job runs on that GPU model, and how it ends (a slow GPU may time out)."""
    runtime = job.runtime_s / speed_of(job, gpu_model, setup)
    if runtime > time_limit_s:
        return float(time_limit_s), JobState.TIMEOUT
    return runtime, JobState.COMPLETED
