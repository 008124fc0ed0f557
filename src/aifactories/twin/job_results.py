"""A job's line in a twin run's results: when it ended, or that it never started, with what
it lost to outages added to what its last run used."""

from __future__ import annotations

import dataclasses

from aifactories.twin.disruptions import Lost
from aifactories.twin.federation import TwinProject
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.traces.model import TraceJob


def ended(
    job: TraceJob,
    project: TwinProject,
    *,
    where: tuple[str, str, str],
    gpus: int,
    times: tuple[float, float, float, float],
    used: tuple[float, float, float, int],
    lost: Lost,
) -> JobResult:
    """``where``: site, partition, GPU model; ``times``: submitted, first started, ended,
    seconds run; ``used``: GPU-seconds, kWh, kg CO2e and restarts of its own runs."""
    site_id, partition_id, gpu_model = where
    submit_s, start_s, end_s, ran_s = times
    gpu_seconds, energy_kwh, carbon_kg, restarts = used
    return JobResult(
        job_id=job.job_id,
        project=project.name,
        organisation_kind=project.organisation_kind,
        domain=project.domain,
        country=project.country,
        site_id=site_id,
        partition_id=partition_id,
        gpu_model=gpu_model,
        gpus=gpus,
        submit_s=submit_s,
        start_s=start_s,
        end_s=end_s,
        runtime_s=ran_s,
        requested_runtime_s=job.runtime_s,
        gpu_seconds=gpu_seconds + lost.gpu_seconds,
        energy_kwh=energy_kwh + lost.energy_kwh,
        carbon_kg=carbon_kg + lost.carbon_kg,
        restarts=lost.restarts + restarts,
        lost_gpu_seconds=lost.gpu_seconds,
    )


def never_started(job: TraceJob, project: TwinProject, submit_s: float, lost: Lost) -> JobResult:
    """A job still pending at the end (it fits nowhere, or waits for good); it may have run
    before an outage, which ``lost`` counts."""
    line = ended(
        job,
        project,
        where=("", "", ""),
        gpus=job.gpus,
        times=(submit_s, 0.0, 0.0, 0.0),
        used=(0.0, 0.0, 0.0, 0),
        lost=lost,
    )
    return dataclasses.replace(
        line, site_id=None, partition_id=None, gpu_model=None, start_s=None, end_s=None
    )
