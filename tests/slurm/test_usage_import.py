"""Usage import from a real slurmdbd: jobs members ran with sbatch themselves are charged once,
from Slurm's own GPU count and elapsed time; broker jobs are left to the broker."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from sqlalchemy import select

from aifactories.db.models import AllocationRow, LedgerEntryRow, SiteUsageRow
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.services.sites.usage_import import import_usage
from tests.slurm.platform_on_slurm import start_platform


def _slurm(cluster: LocalSlurm, layout: SiteLayout, *args: str) -> str:
    out = subprocess.run(
        list(args), env=cluster.env(layout), capture_output=True, text=True, timeout=60
    )
    # "Nothing new added": the site is shared by the SQLite and PostgreSQL runs of a test.
    assert out.returncode == 0 or "Nothing new added" in out.stdout, out.stderr
    return out.stdout


def _wait_in_sacct(cluster: LocalSlurm, layout: SiteLayout, ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        rows = _slurm(
            cluster, layout, "sacct", "-X", "-n", "-P", "-o", "jobid,state", "-j", ",".join(ids)
        )
        states = dict(line.split("|") for line in rows.splitlines() if line)
        if all(states.get(i) == "COMPLETED" for i in ids):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.3)


def test_direct_jobs_are_charged_once_from_slurm_accounting(
    tmp_path: Path,
    database_url: str,
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    site = slurm_dbd_sites[1]  # not the site the accounts tests converge
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, [site])
    try:
        code = "aurora-vision"
        # The site is shared with this test's other database run: look only at our jobs.
        began = time.time() - 1
        _slurm(slurm_dbd_cluster, site, "sacctmgr", "-i", "add", "account", code)
        _slurm(slurm_dbd_cluster, site, "sacctmgr", "-i", "add", "user", "root", f"account={code}")
        ids = [
            _slurm(
                slurm_dbd_cluster,
                site,
                "sbatch",
                "--parsable",
                f"--account={code}",
                *args,
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 2",
            ).strip()
            for args in (["--gres=gpu:a100:3"], ["-N2", "--exclusive", "--gres=gpu:a100:4"])
        ]
        _wait_in_sacct(slurm_dbd_cluster, site, ids)
        elapsed = {
            line.split("|")[0]: int(line.split("|")[1])
            for line in _slurm(
                slurm_dbd_cluster,
                site,
                "sacct",
                "-X",
                "-n",
                "-P",
                "-o",
                "jobid,elapsedraw",
                "-j",
                ",".join(ids),
            ).splitlines()
        }
        expected = 3 * elapsed[ids[0]] + 8 * elapsed[ids[1]]  # gang job: 2 nodes x 4 GPUs
        assert expected >= 2 * 11

        first = import_usage(sp.platform.ctx, sites=[site.name], since=began)[0]
        assert first.error is None and first.mode == "slurmdbd"
        assert (first.charged_jobs, first.charged_gpu_seconds) == (2, expected)
        again = import_usage(sp.platform.ctx, sites=[site.name], since=began)[0]
        assert (again.charged_jobs, again.already_imported) == (0, 2)  # charged once

        with sp.platform.ctx.reads() as session:
            rows = session.execute(select(SiteUsageRow)).scalars().all()
            assert sorted((r.site_job_id, r.gpus) for r in rows) == [(ids[0], 3), (ids[1], 8)]
            pool = session.execute(
                select(AllocationRow).where(AllocationRow.project_id == rows[0].project_id)
            ).scalar_one()
            charges = (
                session.execute(
                    select(LedgerEntryRow.gpu_seconds).where(
                        LedgerEntryRow.kind == "charge", LedgerEntryRow.job_id.is_(None)
                    )
                )
                .scalars()
                .all()
            )
            assert pool.used_gpu_seconds == sum(charges) == expected
    finally:
        sp.platform.stop()
