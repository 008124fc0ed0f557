"""The accounts reconcile agent against real slurmdbd sites enforcing associations and limits.

Ledgers are the demo's (services/demo.py) plus, where a member must submit by hand, the OS
user ``aifjob`` as a member of aurora-vision. Every test leaves the site as it found it: the
``aifactories`` subtree is removed at the end (other tests expect a site with no accounts).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, select
from typer.testing import CliRunner

from aifactories.catalogue.loader import load_catalogue
from aifactories.cli.main import app
from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow, UserRow
from aifactories.executors.slurm.sacctmgr import SlurmAccountsClient
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.install import JOB_USER
from aifactories.localslurm.sites_file import catalogue_entry
from aifactories.services.core.context import ServiceContext
from aifactories.services.demo import load_demo
from aifactories.services.sites.site_accounts import reconcile_site_accounts
from tests.slurm.conftest import SlurmFactory
from tests.slurm.platform_on_slurm import make_platform, start_platform

H = 3600


def _slurm(cluster: LocalSlurm, layout: SiteLayout, *args: str, ok: bool = True) -> str:
    out = subprocess.run(
        list(args), env=cluster.env(layout), capture_output=True, text=True, timeout=90
    )
    if ok:
        assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout + out.stderr


def _sacctmgr(cluster: LocalSlurm, layout: SiteLayout, *args: str) -> None:
    _slurm(cluster, layout, "sacctmgr", "-i", *args)


def _subtree(cluster: LocalSlurm, layout: SiteLayout) -> dict[str, tuple[str, set[str]]]:
    """Account under aifactories (and aifactories itself) -> (GrpTRESMins, users)."""
    rows = _slurm(
        cluster,
        layout,
        "sacctmgr",
        "-n",
        "-P",
        "show",
        "assoc",
        f"cluster={layout.name}",
        "format=account,user,parentname,grptresmins",
    )
    accounts: dict[str, str] = {}
    users: dict[str, set[str]] = {}
    for line in rows.splitlines():
        account, user, parent, limit = line.split("|")[:4]
        if user:
            users.setdefault(account, set()).add(user)
        elif parent == "aifactories" or account == "aifactories":
            accounts[account] = limit
    return {a: (limit, users.get(a, set())) for a, limit in accounts.items()}


def _gpu_limit(entry: tuple[str, set[str]]) -> int:
    match = re.search(r"gres/gpu=(\d+)", entry[0])
    assert match, entry
    return int(match.group(1))


def _used_gpu_minutes(cluster: LocalSlurm, layout: SiteLayout, account: str) -> int:
    text = _slurm(
        cluster, layout, "scontrol", "show", "assoc_mgr", "flags=assoc", f"accounts={account}"
    )
    match = re.search(
        rf"Account={account} UserName= .*?GrpTRESMins=[^\n]*?gres/gpu=\w+\((\d+)\)", text, re.S
    )
    assert match, text
    return int(match.group(1))


def _clean(cluster: LocalSlurm, layout: SiteLayout) -> None:
    """Remove the whole aifactories subtree (and users left with no account), cancelling
    the jobs of its accounts first."""
    accounts = ",".join(_subtree(cluster, layout))
    if accounts:
        for job in _slurm(cluster, layout, "squeue", "-h", "-o", "%i", "-A", accounts).split():
            _slurm(cluster, layout, "scancel", job, ok=False)
    catalogue = load_catalogue(_sites_file(layout.root / "clean.yaml", [layout]))
    client = SlurmAccountsClient(catalogue.operational_sites[0], str(layout.slurm_conf))
    deadline = time.monotonic() + 30
    while client.remove_accounts(["aifactories"]):  # cancelled jobs end a moment later
        assert time.monotonic() < deadline, "the aifactories subtree stays busy"
        time.sleep(0.5)


def _sites_file(path: Path, layouts: list[SiteLayout], weight: float = 1.0) -> Path:
    entries = [catalogue_entry(layout, "cli", billing_weight=weight) for layout in layouts]
    path.write_text(yaml.safe_dump({"version": 1, "sites": entries}, sort_keys=False))
    return path


@pytest.fixture
def site(slurm_dbd_cluster: LocalSlurm, slurm_dbd_sites: list[SiteLayout]) -> Iterator[SiteLayout]:
    layout = slurm_dbd_sites[0]  # the usage import tests count the jobs of the other one
    _clean(slurm_dbd_cluster, layout)
    try:
        yield layout
    finally:
        _clean(slurm_dbd_cluster, layout)


def _add_os_member(ctx: ServiceContext, project: str) -> None:
    """The OS user aifjob joins ``project``: a member who can run sbatch at the site."""
    with ctx.sessions() as session, session.begin():
        user = UserRow(username=JOB_USER, full_name="Job User", email="aifjob@example.eu")
        session.add(user)
        session.flush()
        project_id = session.execute(
            select(ProjectRow.id).where(ProjectRow.code == project)
        ).scalar_one()
        session.add(MembershipRow(project_id=project_id, user_id=user.id, role="member"))


def _as_member(cluster: LocalSlurm, layout: SiteLayout, *args: str, ok: bool = True) -> str:
    return _slurm(
        cluster, layout, "runuser", "-u", JOB_USER, "--", "sbatch", "--chdir=/tmp", *args, ok=ok
    )


def _until_state(cluster: LocalSlurm, layout: SiteLayout, job_id: str, state: str) -> None:
    """Wait until accounting (slurmdbd, where removals are checked) has the job in ``state``
    (faster than ``sbatch --wait``, whose polling slows down to half a minute)."""
    deadline = time.monotonic() + 40
    while state not in _slurm(cluster, layout, "sacct", "-n", "-X", "-j", job_id, "-o", "state"):
        assert time.monotonic() < deadline, f"job {job_id} never {state} in accounting"
        time.sleep(0.3)


def test_accounts_follow_the_ledger_and_hand_made_drift_is_reported_and_corrected(
    tmp_path: Path, slurm_dbd_cluster: LocalSlurm, site: SiteLayout
) -> None:
    # SQLite only: this test's time goes to the Slurm site; the tests below run the same
    # ledger reads and memory writes on PostgreSQL too.
    database_url = f"sqlite:///{tmp_path / 'aif.db'}"
    cluster = slurm_dbd_cluster
    # Billing weight 2: a GPU-hour of the ledger is half an hour of raw GPU time here.
    sites_file = _sites_file(tmp_path / "sites.yaml", [site], weight=2.0)
    platform = make_platform(tmp_path, database_url, sites_file)
    ctx = platform.ctx
    load_demo(ctx)
    _add_os_member(ctx, "aurora-vision")
    users = {site.name: "root"}
    try:
        first = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert first.error is None and first.drift == [] and first.problems == []
        assert "add parent account aifactories" in first.actions
        seen = _subtree(cluster, site)
        # The demo's pool allocations are usable here; po-twin's and kalevala's own site
        # allocations are elsewhere. GPU-hours x 60 / weight 2, nothing used yet.
        assert seen == {
            "aifactories": ("", set()),
            "aurora-vision": ("gres/gpu=600000", {"alice", "bob", JOB_USER, "root"}),
            "kalevala-mri": ("gres/gpu=60000", {"carol", "root"}),
            "ejemplo-llm": ("gres/gpu=1500000", {"elena", "root"}),
            "climat-downscale": ("gres/gpu=30000", {"fabien", "root"}),
        }

        again = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert again.actions == [] and again.drift == []  # idempotent: nothing to do

        # A member runs a job under the project's account (4 GPUs x 16 s: a GPU-minute used);
        # an unknown account, or a project they are not in, is refused by Slurm.
        ran = _as_member(
            cluster,
            site,
            "--parsable",
            "--account=aurora-vision",
            "--gres=gpu:4",
            "--time=1",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 16",
        ).strip()
        _until_state(cluster, site, ran, "COMPLETED")
        refused = _as_member(cluster, site, "--account=no-such-project", "--wrap", "true", ok=False)
        assert "Invalid account" in refused
        refused = _as_member(
            cluster, site, "--account=climat-downscale", "--wrap", "true", ok=False
        )
        assert "Invalid account" in refused

        # Slurm counts that minute against GrpTRESMins: the limit follows, the ledger's
        # remainder on top of Slurm's use.
        deadline = time.monotonic() + 10
        while (used := _used_gpu_minutes(cluster, site, "aurora-vision")) < 1:
            assert time.monotonic() < deadline, "Slurm counted no use of the job"
            time.sleep(0.5)
        followed = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert followed.actions == [f"set aurora-vision GrpTRESMins=gres/gpu={600000 + used}"]
        assert followed.drift == []

        # Drift by hand: a limit raised, a member's association and a whole account deleted,
        # a stray account under aifactories, stray users on a project and on the parent.
        _sacctmgr(
            cluster,
            site,
            "modify",
            "account",
            "where",
            "name=aurora-vision",
            "set",
            "GrpTRESMins=gres/gpu=99999999",
        )
        _sacctmgr(
            cluster, site, "remove", "user", "where", "name=fabien", "account=climat-downscale"
        )
        _sacctmgr(cluster, site, "remove", "account", "where", "name=ejemplo-llm")
        _sacctmgr(cluster, site, "add", "account", "sneaky", "parent=aifactories")
        _sacctmgr(cluster, site, "add", "user", "mallory", "account=kalevala-mri")
        _sacctmgr(cluster, site, "add", "user", "eve", "account=aifactories")
        drift = [
            "account ejemplo-llm was removed at the site",
            "account sneaky was added under aifactories at the site",
            "the limit of aurora-vision was changed at the site to 99999999 GPU-minutes",
            "user eve was added to aifactories itself at the site",
            "user fabien was removed from climat-downscale at the site",
            "user mallory was added to kalevala-mri at the site",
        ]
        env = {
            "AIFACTORIES_DATABASE_URL": database_url,
            "AIFACTORIES_CATALOGUE": str(sites_file),
            "AIFACTORIES_DATA_DIR": str(tmp_path / "data"),
            "COLUMNS": "200",
        }
        shown = CliRunner().invoke(app, ["accounts", "sync", "--dry-run"], env=env)
        assert shown.exit_code == 0, shown.output
        assert "dry run" in shown.output and all(line in shown.output for line in drift)
        assert _subtree(cluster, site)["aurora-vision"][0] == "gres/gpu=99999999"  # untouched

        fixed = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert sorted(fixed.drift) == drift and fixed.pending == []
        now = _subtree(cluster, site)
        assert set(now) == set(seen) and now["aifactories"][1] == set()
        assert now["kalevala-mri"] == seen["kalevala-mri"]
        assert now["climat-downscale"] == seen["climat-downscale"]
        assert now["ejemplo-llm"] == seen["ejemplo-llm"]
        assert _gpu_limit(now["aurora-vision"]) == used + 600000
        assert reconcile_site_accounts(ctx, service_users=users).site(site.name).actions == []

        # The ledger moves: ejemplo-llm's allocation closes while a job still runs there,
        # bob leaves aurora-vision, which used 600 GPU-hours elsewhere.
        job = _slurm(
            cluster,
            site,
            "sbatch",
            "--parsable",
            "--account=ejemplo-llm",
            "--gres=gpu:1",
            "--time=5",
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 300",
        ).strip()
        _until_state(cluster, site, job, "RUNNING")
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
            pool.used_gpu_seconds += 600 * H
        moved = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert moved.drift == [] and moved.error is None
        assert moved.pending == ["remove account ejemplo-llm: jobs still active"]
        now = _subtree(cluster, site)
        assert "ejemplo-llm" in now  # Slurm keeps it while the job runs; never cancelled here
        assert now["aurora-vision"][1] == {"alice", JOB_USER, "root"}
        used = _used_gpu_minutes(cluster, site, "aurora-vision")
        assert _gpu_limit(now["aurora-vision"]) == used + (20_000 - 600) * 60 // 2

        _slurm(cluster, site, "scancel", job)
        deadline = time.monotonic() + 30
        while True:  # the next passes retry the removal until the job has ended
            retried = reconcile_site_accounts(ctx, service_users=users).site(site.name)
            assert retried.drift == [] and retried.error is None
            if not retried.pending:
                break
            assert time.monotonic() < deadline, retried.pending
            time.sleep(0.5)
        assert retried.actions == ["remove account ejemplo-llm"]
        assert "ejemplo-llm" not in _subtree(cluster, site)
        final = reconcile_site_accounts(ctx, service_users=users).site(site.name)
        assert final.actions == [] and final.drift == [] and final.pending == []
    finally:
        platform.stop()


def test_the_broker_runs_jobs_at_a_site_that_enforces_accounts_once_synced(
    tmp_path: Path, database_url: str, slurm_dbd_cluster: LocalSlurm, site: SiteLayout
) -> None:
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
    tmp_path: Path, database_url: str, slurm_dbd_cluster: LocalSlurm, site: SiteLayout
) -> None:
    sp = start_platform(tmp_path, database_url, slurm_dbd_cluster, [site])
    try:
        reconcile_site_accounts(sp.platform.ctx, service_users={site.name: "root"})
        # The site's limit cut by hand below what the job needs (4 GPUs x 10 minutes).
        _sacctmgr(
            slurm_dbd_cluster,
            site,
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
        sp.platform.stop()


def test_sites_without_slurmdbd_are_skipped_and_a_dead_slurmdbd_stops_only_its_site(
    tmp_path: Path, database_url: str, slurm_factory: SlurmFactory
) -> None:
    cluster, (live, dead) = slurm_factory(2, dbd=True)
    _plain_cluster, plain_layouts = slurm_factory(1)  # jobcomp only: no accounts to manage
    sites_file = _sites_file(tmp_path / "sites.yaml", [live, dead, *plain_layouts])
    data = yaml.safe_load(sites_file.read_text())
    data["sites"][2]["id"] = "plain"  # its own cluster calls it site1 too
    elsewhere = dict(data["sites"][0], id="elsewhere", name="No Slurm")
    del elsewhere["executor"]
    data["sites"].append(elsewhere)
    sites_file.write_text(yaml.safe_dump(data, sort_keys=False))
    platform = make_platform(tmp_path, database_url, sites_file)
    load_demo(platform.ctx)
    pid = int((dead.run / "slurmdbd.pid").read_text())
    os.kill(pid, signal.SIGTERM)  # a daemon of this test's own cluster
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "slurmdbd did not stop"
        time.sleep(0.1)
    try:
        report = reconcile_site_accounts(platform.ctx, service_users={live.name: "root"})
        assert report.site(live.name).error is None
        assert "add account aurora-vision" in report.site(live.name).actions
        assert "aurora-vision" in _subtree(cluster, live)
        failed = report.site(dead.name)
        assert failed.error is not None, failed
        assert "slurmdbd unreachable" in failed.error and "Connection refused" in failed.error
        assert failed.actions == [] and not report.converged
        assert report.site("plain").skipped == (
            "AccountingStorageType=accounting_storage/none: no slurmdbd, no accounts to manage"
        )
        assert report.site("elsewhere").skipped == (
            "no slurm_conf in its catalogue entry: not a Slurm site"
        )
        dry = reconcile_site_accounts(platform.ctx, sites=[live.name], dry_run=True)
        assert dry.dry_run and [r.site_id for r in dry.sites] == [live.name]
        assert dry.converged
    finally:
        platform.stop()
