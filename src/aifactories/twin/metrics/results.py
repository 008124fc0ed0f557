"""What one simulated run hands to the metrics: one :class:`JobResult` per job, wrapped with the
run's samples in a :class:`PolicyRun`.

Times are virtual seconds of the twin's clock. The simulator fills these records; the metrics only
read them, so both sides agree on one shape and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

UtilisationSample = tuple[float, str, int, int]
"""``(time_s, site_id, busy_gpus, total_gpus)``: a site's state from ``time_s`` until its next
sample (a step function)."""

QueueSample = tuple[float, int]
"""``(time_s, queued_jobs)``: the number of queued jobs from ``time_s`` until the next sample."""


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job in one run.

    ``start_s`` and ``end_s`` are ``None`` when the job did not start, or did not end, within the
    run. ``runtime_s`` is the time it actually ran (after the speed-up of the GPU it got);
    ``requested_runtime_s`` is its run time at reference speed, the trace's figure.

    A job an outage cut short restarts from the beginning: ``restarts`` counts those restarts,
    ``start_s``, ``runtime_s`` and the site are those of its last run (so its wait includes the
    lost runs), while ``gpu_seconds``, ``energy_kwh`` and ``carbon_kg`` cover every run, as its
    project was charged and the sites were busy; ``lost_gpu_seconds`` is the lost runs' part.
    """

    job_id: str
    project: str
    organisation_kind: str
    domain: str
    country: str
    site_id: str | None
    partition_id: str | None
    gpu_model: str | None
    gpus: int
    submit_s: float
    start_s: float | None
    end_s: float | None
    runtime_s: float
    requested_runtime_s: float
    gpu_seconds: float
    energy_kwh: float
    carbon_kg: float
    restarts: int = 0
    lost_gpu_seconds: float = 0.0

    @property
    def completed(self) -> bool:
        """Started and ended within the run: only such jobs have a completion time."""
        return self.start_s is not None and self.end_s is not None

    @property
    def jct_s(self) -> float | None:
        """Job completion time ``end - submit``, or ``None`` if the job did not complete."""
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.submit_s

    @property
    def wait_s(self) -> float | None:
        """Queueing delay ``start - submit``, or ``None`` if the job did not complete.

        A job that started but did not end has no wait here either: every job statistic is taken
        over the same set of completed jobs, so waits and completion times stay comparable.
        """
        if self.start_s is None or self.end_s is None:
            return None
        return self.start_s - self.submit_s


@dataclass(frozen=True)
class PolicyRun:
    """Everything one policy produced over one trace in the twin.

    ``cycle_runtimes_s`` holds the wall-clock time of each scheduling cycle (the only wall-clock
    figure here: it measures the policy's cost, not the simulated federation). The horizon is the
    virtual time span the utilisation and queue samples are integrated over. ``restarts`` and
    ``lost_gpu_hours`` sum the jobs' restarts after outages and the GPU time lost with them.
    """

    policy: str
    results: tuple[JobResult, ...]
    cycle_runtimes_s: tuple[float, ...]
    utilisation_samples: tuple[UtilisationSample, ...]
    queue_samples: tuple[QueueSample, ...]
    horizon_start_s: float
    horizon_end_s: float
    restarts: int = 0
    lost_gpu_hours: float = 0.0
