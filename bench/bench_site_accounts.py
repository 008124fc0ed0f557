"""Reconcile time of the accounts agent for 1,000 projects against a real local slurmdbd site.

Starts one local site with slurmdbd and MariaDB (needs root and Debian's Slurm: see
``python -m aifactories.localslurm install``) on free loopback ports, and a SQLite ledger
with --projects projects (two members and one pool allocation each), then times passes of
``reconcile_site_accounts`` and prints each figure beside its target:

- first sync: the parent, every account with its limit and 3 users each, created (one
  ``sacctmgr load``);
- no change: reads only (one ``sacctmgr show assoc`` and the used GPU-minutes);
- 10% used: a tenth of the projects used GPU-hours, their limits are rewritten;
- 10% closed: a tenth of the allocations closed and a tenth of the projects lost a member,
  accounts and associations removed (batched ``sacctmgr remove``).

    .venv/bin/python bench/bench_site_accounts.py --projects 1000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, select

from aifactories.db.models import (
    AllocationRow,
    MembershipRow,
    OrganisationRow,
    ProjectRow,
    UserRow,
)
from aifactories.localslurm import LocalSlurm, SiteRequest, free_port_base
from aifactories.localslurm.sites_file import write_sites_file
from aifactories.services.core.context import ServiceContext
from aifactories.services.platform import Platform
from aifactories.services.sites.site_accounts import reconcile_site_accounts
from aifactories.settings import Settings

# Targets for 1,000 projects on the 2-core machine (scaled linearly for other sizes). The
# changing passes are bound by slurmdbd itself: about 0.13 s per limit it modifies and
# 0.05-0.1 s per association or user it deletes (it renumbers its association tree), however
# the commands are batched; a no-change pass by its ``show assoc`` of the subtree.
TARGETS_S = {"first sync": 60.0, "no change": 5.0, "10% used": 20.0, "10% closed": 45.0}


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


def _use_some(ctx: ServiceContext) -> None:
    with ctx.sessions() as session, session.begin():
        for allocation in session.execute(select(AllocationRow)).scalars():
            if allocation.project_id % 10 == 0:
                allocation.used_gpu_seconds += 10 * 3600


def _close_some(ctx: ServiceContext) -> None:
    with ctx.sessions() as session, session.begin():
        for allocation in session.execute(select(AllocationRow)).scalars():
            if allocation.project_id % 10 == 1:
                allocation.status = "closed"
        leaving = [
            m.id
            for m in session.execute(select(MembershipRow)).scalars()
            if m.project_id % 10 == 2 and m.user_id % 2 == 0
        ]
        session.execute(delete(MembershipRow).where(MembershipRow.id.in_(leaving)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    args = parser.parse_args()
    scale = args.projects / 1000
    base = Path(tempfile.mkdtemp(prefix="aifb-", dir="/tmp"))  # munge's socket path is short
    cluster = LocalSlurm(base, port0=free_port_base(16), dbd=True)
    figures: dict[str, tuple[float, int]] = {}
    try:
        layouts = cluster.start([SiteRequest(nodes=1, gpus_per_node=4)])
        sites_file = write_sites_file(base / "sites.yaml", layouts, "cli")
        platform = Platform(
            Settings(data_dir=base / "data", catalogue=sites_file, run_broker=False)
        )
        try:
            platform.migrate()
            _ledger(platform.ctx, args.projects)
            users = {layouts[0].name: "root"}
            before: dict[str, Callable[[ServiceContext], None]] = {
                "10% used": _use_some,
                "10% closed": _close_some,
            }
            for label in TARGETS_S:
                if label in before:
                    before[label](platform.ctx)
                started = time.perf_counter()
                result = reconcile_site_accounts(platform.ctx, service_users=users).sites[0]
                figures[label] = (time.perf_counter() - started, len(result.actions))
                assert result.error is None, result.error
                assert not result.drift and not result.pending, (result.drift, result.pending)
                print(f"  {label}: {len(result.actions)} actions", flush=True)
            again = reconcile_site_accounts(platform.ctx, service_users=users).sites[0]
            assert again.actions == [], again.actions[:5]  # converged after the changes
        finally:
            platform.stop()
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nAccounts reconcile, {args.projects} projects, 1 local site with slurmdbd")
    print(f"{'pass':12} {'actions':>8} {'measured s':>11} {'target s':>9}  verdict")
    for label, (seconds, actions) in figures.items():
        target = TARGETS_S[label] * max(scale, 0.1)
        verdict = "ok" if seconds <= target else "ABOVE TARGET"
        print(f"{label:12} {actions:>8} {seconds:>11.1f} {target:>9.0f}  {verdict}")


if __name__ == "__main__":
    main()
