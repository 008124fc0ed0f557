"""A platform whose sites are real local Slurm clusters, driven cycle by cycle from a test."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.executors.base import job_tag
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import write_sites_file
from aifactories.services.core.auth import authenticate
from aifactories.services.demo import load_demo
from aifactories.services.jobs.jobs import JobRequest, submit_job
from aifactories.services.platform import Platform
from aifactories.settings import Settings

FINAL = {"completed", "failed", "cancelled", "timeout"}


@dataclass
class SlurmPlatform:
    platform: Platform
    tokens: dict[str, str]
    cluster: LocalSlurm
    layouts: list[SiteLayout]

    def submit(self, user: str = "alice", **fields: object) -> int:
        body: dict[str, object] = {"project": "aurora-vision", "gpus": 1, "time_limit": 600}
        body.update(fields)
        principal = authenticate(self.platform.ctx, self.tokens[user])
        return int(submit_job(self.platform.ctx, principal, JobRequest(**body)).id)

    def tag(self, job_id: int) -> str:
        return job_tag(job_id, self.platform.broker.instance)

    def job(self, job_id: int) -> JobRow:
        with self.platform.ctx.reads() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            session.expunge(row)
            return row

    def cycle_until(
        self, done: Callable[[], bool], timeout_s: float = 60, pause_s: float = 0.3
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.platform.broker.run_once()
            if done():
                return
            assert time.monotonic() < deadline, "timed out waiting for the platform"
            time.sleep(pause_s)

    def all_final(self, ids: Sequence[int]) -> bool:
        return all(self.job(i).state in FINAL for i in ids)


def start_platform(
    tmp_path: Path,
    database_url: str,
    cluster: LocalSlurm,
    layouts: list[SiteLayout],
    backend: str = "cli",
    **settings: object,
) -> SlurmPlatform:
    sites_file = write_sites_file(tmp_path / "sites.yaml", layouts, backend)
    platform = make_platform(tmp_path, database_url, sites_file, **settings)
    tokens = load_demo(platform.ctx).tokens
    return SlurmPlatform(platform, tokens, cluster, layouts)


def make_platform(
    tmp_path: Path, database_url: str, sites_file: Path, **settings: object
) -> Platform:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "catalogue": sites_file,
        "run_broker": False,
        "policy": "first_fit",
    }
    values.update(settings)
    platform = Platform(Settings(**values))  # type: ignore[arg-type]
    platform.migrate()
    return platform


def slurm_jobs(cluster: LocalSlurm, layout: SiteLayout) -> list[dict[str, object]]:
    """Every job the site knows (MinJobAge keeps finished ones for a day)."""
    out = subprocess.run(
        ["squeue", "--json", "-t", "all"],
        env=cluster.env(layout),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    jobs: list[dict[str, object]] = json.loads(out.stdout)["jobs"]
    return jobs


def runs_by_tag(cluster: LocalSlurm, layouts: Sequence[SiteLayout]) -> dict[str, int]:
    """How many Slurm jobs of each tag *started* at any site (a start_time and a state past
    pending, cancelled-before-start excluded). Tags are ``aif-<instance>-<job id>``: sites
    shared by several tests' platforms tell them apart by the instance."""
    counts: dict[str, int] = {}
    for layout in layouts:
        for job in slurm_jobs(cluster, layout):
            tag = str(job.get("comment") or "")
            started = job.get("job_state") != "PENDING" and int(str(job.get("start_time") or 0))
            never_ran = job.get("job_state") == "CANCELLED" and job.get("nodes") in ("", None)
            if tag.startswith("aif-") and started and not never_ran:
                counts[tag] = counts.get(tag, 0) + 1
    return counts


def assert_books_balance(platform: Platform) -> None:
    """No reservation left, every allocation's use equals its charge entries and the jobs'."""
    with platform.ctx.reads() as session:
        for allocation in session.execute(select(AllocationRow)).scalars():
            assert allocation.reserved_gpu_seconds == 0, allocation.id
            charged = session.execute(
                select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                    LedgerEntryRow.allocation_id == allocation.id,
                    LedgerEntryRow.kind == "charge",
                )
            ).scalar_one()
            assert allocation.used_gpu_seconds == charged
        jobs = session.execute(select(func.sum(JobRow.charged_gpu_seconds))).scalar_one()
        used = session.execute(select(func.sum(AllocationRow.used_gpu_seconds))).scalar_one()
        assert jobs == used
