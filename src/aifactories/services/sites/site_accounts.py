"""The accounts reconcile agent: every Slurm site's accounts and limits follow the ledger.

Which sites: the operational sites whose catalogue ``executor`` options name a
``slurm_conf`` (both Slurm back-ends keep one) and whose ``scontrol show config`` says
``AccountingStorageType=accounting_storage/slurmdbd``; any other site is skipped with the
reason in the report. Who submits: ``service_users[site]`` if given, else the site's
``submit_user`` option, else the REST back-end's ``user`` option, else the OS user running
this process (the CLI back-end runs ``sbatch`` as it).

One pass: read the ledger once (projects, members, allocations; one read transaction), then
per site read it (``sacctmgr``), plan (:mod:`aifactories.broker.site_accounts`, whose
docstring states the rules), apply, and remember what the pass left (``platform_meta``
``accounts:<site>``) for the next pass's drift check, in one short write transaction.
Idempotent: a converged site gets reads only. Drift is logged at WARNING. A removal Slurm
refuses because jobs still run is reported as pending and tried again next pass; jobs are
never cancelled here. One site failing (unreachable, refusing) does not stop the others.
"""

from __future__ import annotations

import getpass
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from aifactories.broker.site_accounts import (
    ApplyOutcome,
    LedgerAllocation,
    LedgerProject,
    apply_plan,
    desired_site,
    expected_state,
    plan_site,
)
from aifactories.db.models import (
    AllocationRow,
    MembershipRow,
    PlatformMetaRow,
    ProjectRow,
    UserRow,
)
from aifactories.domain.errors import AifError, NotFound
from aifactories.domain.sites import Site
from aifactories.executors.slurm.sacctmgr import SlurmAccountsClient
from aifactories.services.core.context import ServiceContext

log = logging.getLogger(__name__)


@dataclass
class SiteAccountsResult:
    site_id: str
    skipped: str | None = None  # why the site is not managed
    actions: list[str] = field(default_factory=list)  # done (or, in a dry run, to do)
    drift: list[str] = field(default_factory=list)  # hand-made changes found (and corrected)
    pending: list[str] = field(default_factory=list)  # removals kept by active jobs
    problems: list[str] = field(default_factory=list)  # ledger facts Slurm cannot carry
    error: str | None = None  # the pass failed at this site; retried next pass
    accounts: int = 0  # managed accounts the ledger wants here


@dataclass
class AccountsReport:
    sites: list[SiteAccountsResult]
    dry_run: bool = False

    @property
    def converged(self) -> bool:
        """Whether every managed site already matched the ledger (nothing done, no error)."""
        return all(not s.actions and not s.error for s in self.sites if s.skipped is None)

    def site(self, site_id: str) -> SiteAccountsResult:
        for result in self.sites:
            if result.site_id == site_id:
                return result
        raise NotFound(f"site {site_id} is not in this report")


def _memory_key(site_id: str) -> str:
    return f"accounts:{site_id}"


def service_user(site: Site) -> str:
    """Who submits the site's jobs (see the module docstring)."""
    options = site.executor.as_dict() if site.executor is not None else {}
    for name in ("submit_user", "user"):
        value = options.get(name)
        if isinstance(value, str) and value:
            return value
    return getpass.getuser()


def read_ledger(ctx: ServiceContext) -> list[LedgerProject]:
    """Every project with an open allocation: code, members' usernames, open allocations."""
    allocations: dict[int, list[LedgerAllocation]] = defaultdict(list)
    members: dict[int, set[str]] = defaultdict(set)
    with ctx.reads() as session, session.begin():
        for row in session.execute(
            select(AllocationRow).where(AllocationRow.status == "open")
        ).scalars():
            allocations[row.project_id].append(
                LedgerAllocation(
                    row.site_id,
                    row.granted_gpu_seconds,
                    row.used_gpu_seconds,
                    row.status,
                    row.starts_at,
                    row.ends_at,
                    None if row.pool_sites is None else frozenset(row.pool_sites),
                )
            )
        ids = list(allocations)
        codes = dict(
            session.execute(
                select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(ids))
            ).all()
        )
        for project_id, username in session.execute(
            select(MembershipRow.project_id, UserRow.username)
            .join(UserRow, UserRow.id == MembershipRow.user_id)
            .where(MembershipRow.project_id.in_(ids))
        ):
            members[project_id].add(username)
    return [
        LedgerProject(codes[pid], frozenset(members[pid]), tuple(rows))
        for pid, rows in sorted(allocations.items())
        if pid in codes
    ]


def reconcile_site_accounts(
    ctx: ServiceContext,
    *,
    sites: Sequence[str] | None = None,
    dry_run: bool = False,
    service_users: Mapping[str, str] | None = None,
) -> AccountsReport:
    """Converge every Slurm site with slurmdbd (or only ``sites``) on the ledger; with
    ``dry_run`` only report what would change. Raises NotFound for an unknown site."""
    chosen = [s for s in ctx.catalogue.operational_sites if sites is None or s.id in sites]
    unknown = set(sites or ()) - {s.id for s in chosen}
    if unknown:
        raise NotFound(f"no operational site {', '.join(sorted(unknown))} in the catalogue")
    projects = read_ledger(ctx)
    results = []
    for site in chosen:
        user = (service_users or {}).get(site.id) or service_user(site)
        results.append(_reconcile(ctx, site, projects, user, dry_run))
    return AccountsReport(results, dry_run)


def _client(site: Site) -> SlurmAccountsClient | str:
    """The site's accounts client, or why the site is skipped."""
    options = site.executor.as_dict() if site.executor is not None else {}
    slurm_conf = options.get("slurm_conf")
    if not isinstance(slurm_conf, str) or not slurm_conf:
        return "no slurm_conf in its catalogue entry: not a Slurm site"
    ssh_host = options.get("ssh_host")
    client = SlurmAccountsClient(site, slurm_conf, ssh_host if isinstance(ssh_host, str) else None)
    storage = client.config.accounting_storage
    if not client.config.slurmdbd:
        return f"AccountingStorageType={storage or 'none'}: no slurmdbd, no accounts to manage"
    return client


def _reconcile(
    ctx: ServiceContext,
    site: Site,
    projects: list[LedgerProject],
    user: str,
    dry_run: bool,
) -> SiteAccountsResult:
    result = SiteAccountsResult(site.id)
    try:
        client = _client(site)
        if isinstance(client, str):
            result.skipped = client
            return result
        weight = min((p.billing_weight for p in site.partitions), default=1.0)
        desired = desired_site(projects, site.id, weight, user, ctx.clock.now())
        result.accounts = len(desired.accounts)
        observed = client.observe(desired.accounts)
        with ctx.reads() as session:
            mark = session.get(PlatformMetaRow, _memory_key(site.id))
            last = json.loads(mark.value) if mark is not None else None
        plan = plan_site(desired, observed, last)
        result.actions = plan.actions()
        result.drift = plan.drift
        result.problems = plan.problems
        for line in plan.drift:
            log.warning(
                "site %s: drift: %s (%s)", site.id, line, "dry run" if dry_run else "corrected"
            )
        for line in plan.problems:
            log.warning("site %s: %s", site.id, line)
        if dry_run:
            return result
        outcome = apply_plan(client, plan, observed) if not plan.empty else ApplyOutcome()
        result.pending = outcome.lines()
        for line in result.pending:
            log.info("site %s: pending: %s (retried next pass)", site.id, line)
    except AifError as exc:  # SiteUnavailable, ProtocolError, ConfigurationError, ...
        result.error = exc.message
        log.warning("site %s: accounts not synced: %s", site.id, exc.message)
        return result
    state = json.dumps(expected_state(plan, observed, outcome), sort_keys=True)
    if last is None or state != json.dumps(last, sort_keys=True):
        with ctx.sessions() as session, session.begin():
            mark = session.get(PlatformMetaRow, _memory_key(site.id))
            if mark is None:
                session.add(PlatformMetaRow(key=_memory_key(site.id), value=state))
            else:
                mark.value = state
    return result
