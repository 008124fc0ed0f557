"""The accounts reconcile agent: every Slurm site's accounts and limits follow the ledger.

For each site whose catalogue entry names a ``slurm_conf`` and whose Slurm keeps accounting in
slurmdbd, read the desired state from the ledger (one read transaction), read the site
(``sacctmgr``), plan (``broker/site_accounts.py``), apply, and remember what was applied (for
the next pass's drift check) in one short write transaction. Idempotent: a converged site
gets no writes. A removal Slurm refuses because jobs still run is reported as pending and
tried again on the next pass; jobs are never cancelled here.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from aifactories.broker.site_accounts import (
    DesiredAccount,
    applied_state,
    plan_site,
    remaining_minutes,
)
from aifactories.db.models import (
    AllocationRow,
    MembershipRow,
    PlatformMetaRow,
    ProjectRow,
    UserRow,
)
from aifactories.domain.errors import ExecutorError, NotFound
from aifactories.domain.sites import Site
from aifactories.executors.slurm.sacctmgr import AccountsBusy, SlurmAccountsClient
from aifactories.services.context import ServiceContext

log = logging.getLogger(__name__)

_SLURM_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass
class SiteAccountsResult:
    site_id: str
    skipped: str | None = None
    actions: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class AccountsReport:
    sites: list[SiteAccountsResult]
    dry_run: bool = False

    @property
    def converged(self) -> bool:
        """Whether every managed site already matched the ledger (nothing to do, no error)."""
        return all(not s.actions and not s.error for s in self.sites if s.skipped is None)


def _key(site_id: str) -> str:
    return f"accounts:{site_id}"


def service_user(site: Site) -> str:
    """Who submits the site's jobs: the REST back-end's ``user``, else this process's user
    (the CLI back-end runs sbatch as it); ``submit_user`` overrides both."""
    options = site.executor.as_dict() if site.executor is not None else {}
    for name in ("submit_user", "user"):
        value = options.get(name)
        if isinstance(value, str) and value:
            return value
    return getpass.getuser()


def desired_accounts(
    ctx: ServiceContext, site: Site, extra_user: str
) -> tuple[dict[str, DesiredAccount], list[str]]:
    """The ledger's wishes for ``site``, and the projects it cannot express at the site."""
    weight = min((p.billing_weight for p in site.partitions), default=1.0)
    problems: list[str] = []
    remaining: dict[int, int] = defaultdict(int)
    with ctx.reads() as session:
        for allocation in session.execute(
            select(AllocationRow).where(
                AllocationRow.status == "open",
                (AllocationRow.site_id == site.id) | AllocationRow.site_id.is_(None),
            )
        ).scalars():
            left = allocation.granted_gpu_seconds - allocation.used_gpu_seconds
            remaining[allocation.project_id] += max(0, left)
        codes = dict(
            session.execute(
                select(ProjectRow.id, ProjectRow.code).where(ProjectRow.id.in_(list(remaining)))
            ).all()
        )
        members: dict[int, set[str]] = defaultdict(set)
        for project_id, username in session.execute(
            select(MembershipRow.project_id, UserRow.username)
            .join(UserRow, UserRow.id == MembershipRow.user_id)
            .where(MembershipRow.project_id.in_(list(remaining)))
        ).all():
            members[project_id].add(username)
    desired: dict[str, DesiredAccount] = {}
    for project_id, left in remaining.items():
        name = str(codes[project_id]).lower()
        if not _SLURM_NAME.match(name):
            problems.append(f"project code {codes[project_id]!r} is no valid Slurm account name")
            continue
        desired[name] = DesiredAccount(
            name,
            frozenset(members[project_id] | {extra_user}),
            remaining_minutes(left, weight),
        )
    return desired, problems


def reconcile_site_accounts(
    ctx: ServiceContext,
    *,
    sites: Sequence[str] | None = None,
    dry_run: bool = False,
    service_users: Mapping[str, str] | None = None,
) -> AccountsReport:
    """Converge every Slurm site with accounting (or only ``sites``) on the ledger."""
    chosen = [s for s in ctx.catalogue.operational_sites if sites is None or s.id in sites]
    unknown = set(sites or ()) - {s.id for s in chosen}
    if unknown:
        raise NotFound(f"no operational site {', '.join(sorted(unknown))} in the catalogue")
    results = []
    for site in chosen:
        user = (service_users or {}).get(site.id) or service_user(site)
        results.append(_reconcile(ctx, site, user, dry_run))
    return AccountsReport(results, dry_run)


def _reconcile(ctx: ServiceContext, site: Site, user: str, dry_run: bool) -> SiteAccountsResult:
    result = SiteAccountsResult(site.id)
    options = site.executor.as_dict() if site.executor is not None else {}
    slurm_conf = options.get("slurm_conf")
    if not isinstance(slurm_conf, str) or not slurm_conf:
        result.skipped = "no Slurm configuration in the catalogue entry"
        return result
    ssh_host = options.get("ssh_host")
    try:
        client = SlurmAccountsClient(
            site, slurm_conf, ssh_host if isinstance(ssh_host, str) else None
        )
        if client.accounting != "slurmdbd":
            result.skipped = "no slurmdbd: Slurm keeps no accounts to manage"
            return result
        desired, result.problems = desired_accounts(ctx, site, user)
        observed = client.observe()
        with ctx.reads() as session:
            mark = session.get(PlatformMetaRow, _key(site.id))
            last = json.loads(mark.value) if mark is not None else None
        plan = plan_site(desired, observed, last)
        result.actions = plan.actions()
        result.drift = plan.drift
        for line in plan.drift:
            log.warning("site %s: drift: %s (corrected)", site.id, line)
        if dry_run:
            return result
        if plan.add_parent or plan.add_accounts or plan.add_users or plan.set_limits:
            users: dict[str, set[str]] = defaultdict(set)
            for member, accounts in plan.add_users.items():
                for account in accounts:
                    users[account].add(member)
            limits: dict[str, int | None] = {a: None for a in plan.add_accounts}
            limits.update(plan.set_limits)
            client.load(limits, users)
        for member, account in plan.remove_users:
            try:
                client.remove_user(member, account)
            except AccountsBusy as exc:
                result.pending.append(f"remove user {member} from {account}: {exc}")
        if plan.remove_accounts:
            try:
                client.remove_accounts(plan.remove_accounts)
            except AccountsBusy as exc:
                result.pending.append(f"remove accounts {', '.join(plan.remove_accounts)}: {exc}")
    except ExecutorError as exc:
        result.error = exc.message
        return result
    with ctx.sessions() as session, session.begin():
        state = json.dumps(applied_state(desired, observed), sort_keys=True)
        mark = session.get(PlatformMetaRow, _key(site.id))
        if mark is None:
            session.add(PlatformMetaRow(key=_key(site.id), value=state))
        else:
            mark.value = state
    return result
