"""The accounts reconcile agent against a real slurmdbd with enforced associations."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import delete, select

from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow, UserRow
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.services.site_accounts import reconcile_site_accounts
from tests.slurm.platform_on_slurm import start_platform


def _slurm(cluster: LocalSlurm, layout: SiteLayout, *args: str, ok: bool = True) -> str:
    out = subprocess.run(
        list(args), env=cluster.env(layout), capture_output=True, text=True, timeout=60
    )
    if ok:
        assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout + out.stderr


def _associations(cluster: LocalSlurm, layout: SiteLayout) -> dict[str, tuple[str, set[str]]]:
    """Account under aifactories -> (GrpTRESMins, users)."""
    rows = _slurm(
        cluster,
        layout,
        "sacctmgr",
        "-n",
        "-P",
        "show",
        "assoc",
        "format=account,user,parentname,grptresmins",
    )
    accounts: dict[str, tuple[str, set[str]]] = {}
    users: dict[str, set[str]] = {}
    for line in rows.splitlines():
        account, user, parent, limit = line.split("|")[:4]
        if not user and parent == "aifactories":
            accounts[account] = (limit, set())
        elif user:
            users.setdefault(account, set()).add(user)
    return {a: (limit, users.get(a, set())) for a, (limit, _u) in accounts.items()}


def test_accounts_follow_the_ledger_and_hand_made_drift_is_corrected(
    tmp_path: Path,
    database_url: str,
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    site = slurm_dbd_sites[0]
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, [site])
    ctx = sp.platform.ctx
    try:
        report = reconcile_site_accounts(ctx, service_users={site.name: "root"})
        result = report.sites[0]
        assert result.error is None and result.actions and not result.drift
        seen = _associations(slurm_dbd_cluster, site)
        # The demo's pool allocations: every project with one is an account here.
        assert set(seen) == {"aurora-vision", "kalevala-mri", "ejemplo-llm", "climat-downscale"}
        assert seen["aurora-vision"] == ("gres/gpu=1200000", {"alice", "bob", "root"})
        assert seen["climat-downscale"] == ("gres/gpu=60000", {"fabien", "root"})

        # A job of a member's account runs; one of no account is refused by Slurm.
        _slurm(
            slurm_dbd_cluster,
            site,
            "sbatch",
            "--wait",
            "--account=aurora-vision",
            "--gres=gpu:1",
            "--time=1",
            "-o",
            "/dev/null",
            "--wrap",
            "true",
        )
        refused = _slurm(
            slurm_dbd_cluster,
            site,
            "sbatch",
            "--account=no-such-project",
            "--wrap",
            "true",
            ok=False,
        )
        assert "Invalid account" in refused

        again = reconcile_site_accounts(ctx, service_users={site.name: "root"}).sites[0]
        assert again.actions == [] and again.drift == []  # idempotent

        # Drift by hand: a limit raised, an account deleted, a stray account added.
        _slurm(
            slurm_dbd_cluster,
            site,
            "sacctmgr",
            "-i",
            "modify",
            "account",
            "where",
            "name=aurora-vision",
            "set",
            "GrpTRESMins=gres/gpu=99999999",
        )
        _slurm(
            slurm_dbd_cluster,
            site,
            "sacctmgr",
            "-i",
            "remove",
            "user",
            "where",
            "name=fabien",
            "account=climat-downscale",
        )
        _slurm(
            slurm_dbd_cluster,
            site,
            "sacctmgr",
            "-i",
            "add",
            "account",
            "sneaky",
            "parent=aifactories",
        )
        fixed = reconcile_site_accounts(ctx, service_users={site.name: "root"}).sites[0]
        assert sorted(fixed.drift) == [
            "account sneaky was added under aifactories at the site",
            "the limit of aurora-vision was changed at the site to 99999999 GPU-minutes",
            "user fabien was removed from climat-downscale at the site",
        ]
        seen = _associations(slurm_dbd_cluster, site)
        assert "sneaky" not in seen and "fabien" in seen["climat-downscale"][1]
        assert seen["aurora-vision"][0] == "gres/gpu=1200000"

        # The ledger moves: a closed allocation, a removed member, GPU-hours used.
        with ctx.sessions() as session, session.begin():
            projects = dict(session.execute(select(ProjectRow.code, ProjectRow.id)).all())
            for allocation in session.execute(
                select(AllocationRow).where(AllocationRow.project_id == projects["ejemplo-llm"])
            ).scalars():
                allocation.status = "closed"
            bob = session.execute(select(UserRow.id).where(UserRow.username == "bob")).scalar_one()
            session.execute(
                delete(MembershipRow).where(
                    MembershipRow.user_id == bob,
                    MembershipRow.project_id == projects["aurora-vision"],
                )
            )
            pool = session.execute(
                select(AllocationRow).where(AllocationRow.project_id == projects["aurora-vision"])
            ).scalar_one()
            pool.used_gpu_seconds += 600 * 3600  # 600 GPU-hours used elsewhere
        moved = reconcile_site_accounts(ctx, service_users={site.name: "root"}).sites[0]
        assert moved.drift == [] and moved.pending == []
        seen = _associations(slurm_dbd_cluster, site)
        assert "ejemplo-llm" not in seen
        assert seen["aurora-vision"][1] == {"alice", "root"}
        limit = int(seen["aurora-vision"][0].split("=")[1])
        # Slurm's own use (the 1-GPU job above, under a minute) plus the ledger's remainder.
        assert limit in (1200000 - 36000, 1200000 - 36000 + 1)
        final = reconcile_site_accounts(ctx, service_users={site.name: "root"}).sites[0]
        assert final.actions == [] and final.drift == []
    finally:
        sp.platform.stop()


def test_the_broker_runs_jobs_at_a_site_that_enforces_accounts_once_synced(
    tmp_path: Path,
    database_url: str,
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    site = slurm_dbd_sites[0]
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, [site])
    try:
        reconcile_site_accounts(sp.platform.ctx, service_users={site.name: "root"})
        job_id = sp.submit(project="kalevala-mri", user="carol", gpus=2, runtime=1)
        sp.cycle_until(lambda: sp.all_final([job_id]))
        row = sp.job(job_id)
        assert row.state == "completed", row.reason
        assert row.charged_gpu_seconds >= 2
    finally:
        sp.platform.stop()


def test_a_job_over_the_sites_limit_fails_with_slurms_reason_and_releases(
    tmp_path: Path,
    database_url: str,
    slurm_dbd_cluster: LocalSlurm,
    slurm_dbd_sites: list[SiteLayout],
) -> None:
    site = slurm_dbd_sites[0]
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, [site])
    try:
        reconcile_site_accounts(sp.platform.ctx, service_users={site.name: "root"})
        # The site's limit cut by hand below what the job needs (4 GPUs x 10 minutes).
        _slurm(
            slurm_dbd_cluster,
            site,
            "sacctmgr",
            "-i",
            "modify",
            "account",
            "where",
            "name=climat-downscale",
            "set",
            "GrpTRESMins=gres/gpu=5",
        )
        job_id = sp.submit(
            project="climat-downscale", user="fabien", gpus=4, time_limit=600, runtime=1
        )
        sp.cycle_until(lambda: sp.all_final([job_id]), timeout_s=60)
        row = sp.job(job_id)
        assert row.state == "failed" and row.reason is not None
        assert "AssocGrpGRESMinutes" in row.reason, row.reason
        with sp.platform.ctx.reads() as session:
            pool = session.execute(
                select(AllocationRow)
                .join(ProjectRow, ProjectRow.id == AllocationRow.project_id)
                .where(ProjectRow.code == "climat-downscale")
            ).scalar_one()
            assert (pool.reserved_gpu_seconds, pool.used_gpu_seconds) == (0, 0)
    finally:
        reconcile_site_accounts(sp.platform.ctx, service_users={site.name: "root"})
        sp.platform.stop()
