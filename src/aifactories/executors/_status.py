"""How the emulated site reports its jobs: pure functions of a job record and the time."""

from __future__ import annotations

from aifactories.domain.jobs import JobState
from aifactories.executors._sitestate import JobRecord
from aifactories.executors.base import SiteJobStatus
from aifactories.executors.nodes import gpus_needed, held_gpus

OUTCOMES = {
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "timeout": JobState.TIMEOUT,
    "cancelled": JobState.CANCELLED,
}


def queue_positions(jobs: list[JobRecord]) -> dict[str, int]:
    """For each queued job, how many queued jobs of its partition come first."""
    ahead: dict[str, int] = {}
    seen: dict[str, int] = {}
    for job in jobs:
        if job.phase == "queued":
            ahead[job.id] = seen.get(job.partition, 0)
            seen[job.partition] = ahead[job.id] + 1
    return ahead


def live_status(job: JobRecord, gpus_per_node: int, ahead: int, now: float) -> SiteJobStatus:
    if job.phase == "queued":
        reason = f"queued at site: waiting for {gpus_needed(job.shape, gpus_per_node)} free GPUs"
        if job.shape.exclusive:
            reason += f" on {job.shape.nodes} whole nodes"
        if ahead:
            reason += f" ({ahead} earlier jobs first)"
        return SiteJobStatus(job.id, job.tag, JobState.SUBMITTED, reason=reason)
    started = job.started_at if job.started_at is not None else now
    elapsed = min(max(0.0, now - started) * job.time_factor, float(job.time_limit_s))
    return SiteJobStatus(
        job.id,
        job.tag,
        JobState.RUNNING,
        started_at=started,
        elapsed_s=elapsed,
        allocated_gpus=held_gpus(job.grants),
        output_path=job.output_path,
        error_path=job.error_path,
    )


def final_status(
    job: JobRecord,
    state: JobState,
    exit_code: int | None,
    reason: str | None,
    real_elapsed_s: float | None,
    now: float,
) -> SiteJobStatus:
    """The job's last word. ``real_elapsed_s`` is the runner's measure, None when the site
    ended the job itself (cancel, node failure) and measures it on the injected clock."""
    started = job.started_at if job.phase != "queued" else None
    limit = float(job.time_limit_s)
    if started is None:
        elapsed = 0.0
    elif state is JobState.TIMEOUT:
        elapsed = limit  # what Slurm charges: the job ran to its limit
    elif state is JobState.COMPLETED and not job.command and job.runtime_s is not None:
        elapsed = float(job.runtime_s)  # a sleep-job ran exactly its runtime
    elif real_elapsed_s is not None:
        elapsed = min(real_elapsed_s * job.time_factor, limit)
    else:
        elapsed = min(max(0.0, now - started) * job.time_factor, limit)
    return SiteJobStatus(
        site_job_id=job.id,
        tag=job.tag,
        state=state,
        started_at=started,
        # Site time runs f times faster than the clock: never report an end still to come.
        ended_at=now if started is None else min(now, started + elapsed),
        elapsed_s=elapsed,
        exit_code=exit_code,
        reason=reason,
        allocated_gpus=held_gpus(job.grants) if started is not None else 0,
        output_path=job.output_path,
        error_path=job.error_path,
    )
