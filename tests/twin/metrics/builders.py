"""A terse builder of job results for metric tests."""

from __future__ import annotations

from aifactories.twin.metrics import JobResult


def job(
    job_id: str,
    submit: float,
    start: float | None,
    end: float | None,
    *,
    runtime: float | None = None,
    requested: float | None = None,
    project: str = "p1",
    kind: str = "academia",
    domain: str = "health",
    country: str = "FI",
    site: str | None = "lumi",
    gpus: int = 1,
    gpu_seconds: float = 0.0,
    energy_kwh: float = 0.0,
    carbon_kg: float = 0.0,
    restarts: int = 0,
) -> JobResult:
    """A job result; its run time defaults to ``end - start`` (an uninterrupted run)."""
    if runtime is None:
        runtime = end - start if end is not None and start is not None else 0.0
    return JobResult(
        job_id=job_id,
        project=project,
        organisation_kind=kind,
        domain=domain,
        country=country,
        site_id=site,
        partition_id=None if site is None else f"{site}-gpu",
        gpu_model=None if site is None else "H100",
        gpus=gpus,
        submit_s=submit,
        start_s=start,
        end_s=end,
        runtime_s=runtime,
        requested_runtime_s=runtime if requested is None else requested,
        gpu_seconds=gpu_seconds,
        energy_kwh=energy_kwh,
        carbon_kg=carbon_kg,
        restarts=restarts,
    )
