"""Reconcile time for 1,000 projects against a real local Slurm site with slurmdbd.

Starts one local site with slurmdbd and MariaDB (root; Debian's Slurm is installed if
missing), a SQLite ledger with --projects projects (two members and one pool allocation
each), then times the accounts agent: the first sync (everything created), a sync with no
change (idempotent: reads only), and a sync after a tenth of the projects used GPU-hours
(their limits are rewritten). Prints each figure next to its target.

    .venv/bin/python bench/bench_site_accounts.py --projects 1000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from aifactories.db.models import (
    AllocationRow,
    MembershipRow,
    OrganisationRow,
    ProjectRow,
    UserRow,
)
from aifactories.localslurm import LocalSlurm, SiteRequest, free_port_base
from aifactories.localslurm.sites_file import write_sites_file
from aifactories.services.context import ServiceContext
from aifactories.services.platform import Platform
from aifactories.services.site_accounts import reconcile_site_accounts
from aifactories.settings import Settings

TARGETS_S = {"first sync": 60.0, "no change": 10.0, "10% changed": 15.0}


def _ledger(ctx: ServiceContext, projects: int) -> None:
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        org = OrganisationRow(name="Bench Org", kind="startup", country="DE")
        session.add(org)
        session.flush()
        users = [
            UserRow(username=f"u{k}", full_name=f"User {k}", email=f"u{k}@example.eu")
            for k in range(2 * projects)
        ]
        session.add_all(users)
        rows = [
            ProjectRow(
                code=f"bench-{k:05d}",
                title=f"Bench {k}",
                organisation_id=org.id,
                domain="other",
                industrial=False,
                priority_weight=1.0,
            )
            for k in range(projects)
        ]
        session.add_all(rows)
        session.flush()
        for k, project in enumerate(rows):
            for user in users[2 * k : 2 * k + 2]:
                session.add(MembershipRow(project_id=project.id, user_id=user.id, role="member"))
            session.add(
                AllocationRow(
                    project_id=project.id,
                    site_id=None,
                    granted_gpu_seconds=(1000 + k) * 3600,
                    reserved_gpu_seconds=0,
                    used_gpu_seconds=0,
                    starts_at=now - 86400,
                    ends_at=now + 365 * 86400,
                    status="open",
                )
            )


def _use_some(ctx: ServiceContext, share: int) -> None:
    with ctx.sessions() as session, session.begin():
        for allocation in session.execute(select(AllocationRow)).scalars():
            if allocation.project_id % share == 0:
                allocation.used_gpu_seconds += 10 * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aifa-", dir="/tmp"))
    cluster = LocalSlurm(base, port0=free_port_base(16), dbd=True)
    try:
        layouts = cluster.start([SiteRequest(nodes=1, gpus_per_node=4)])
        sites_file = write_sites_file(base / "sites.yaml", layouts, "cli")
        platform = Platform(
            Settings(data_dir=base / "data", catalogue=sites_file, run_broker=False)
        )
        platform.migrate()
        _ledger(platform.ctx, args.projects)
        users = {layouts[0].name: "root"}
        figures: dict[str, float] = {}
        for label in TARGETS_S:
            if label == "10% changed":
                _use_some(platform.ctx, 10)
            started = time.perf_counter()
            report = reconcile_site_accounts(platform.ctx, service_users=users)
            figures[label] = time.perf_counter() - started
            result = report.sites[0]
            assert result.error is None, result.error
            print(f"  {label}: {len(result.actions)} actions", flush=True)
        platform.stop()
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nAccounts reconcile, {args.projects} projects, 1 local site with slurmdbd")
    print(f"{'pass':14} {'seconds':>8} {'target':>7}  verdict")
    for label, seconds in figures.items():
        target = TARGETS_S[label]
        verdict = "PASS" if seconds <= target else "ABOVE TARGET"
        print(f"{label:14} {seconds:>8.1f} {target:>7.0f}  {verdict}")


if __name__ == "__main__":
    main()
