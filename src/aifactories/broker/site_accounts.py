"""Accounts at a Slurm site as the ledger wants them: desired state, plan, drift, apply.

The pure part of the accounts reconcile agent (the service reads the ledger, the executor
talks to ``sacctmgr``). Rules of the desired state at one site:

- **Subtree.** Every managed account hangs under one parent account, ``aifactories``
  (created under ``root`` if missing). Accounts outside that subtree are never written; a
  project whose account name is already taken outside it is reported, not managed.
- **Accounts.** Each project holding an open allocation usable at the site (its ``site_id``
  is the site, or ``None`` for a pool usable everywhere or at the sites of its
  ``pool_sites``; status ``open`` and ``starts_at <= now < ends_at``, as the ledger admits
  jobs) is a Slurm account named by its code in lower case (Slurm lowercases account
  names). A code Slurm cannot carry safely (anything but ``a-z 0-9 _ . -`` after
  lowercasing, a leading ``.``/``-``, over 64 characters, ``root`` or ``aifactories``, or two
  codes equal once lowercased) is reported and skipped.
- **Associations.** Each project member (username, lowercased likewise) is an association
  (user, account), and so is the site's submitting service user: the broker submits the
  project's jobs as that user with ``--account=<code>``. Nothing else: users on the parent
  itself and accounts nested deeper in the subtree are strays, removed.
- **Limit.** The project's remaining GPU-seconds usable at the site (granted - used, summed
  over those allocations) become ``GrpTRESMins=gres/gpu=N``. Slurm counts raw GPU-minutes,
  the ledger GPU-seconds x the partition's billing weight, so ``N = floor(remaining /
  weight / 60)`` with the *lowest* weight of the site's partitions: Slurm cannot tell
  partitions apart in one limit, so it is lenient on dearer ones and the ledger still
  enforces the exact budget for every job the broker places. Reservations are *not*
  subtracted: with ``safe`` enforcement Slurm itself counts a queued or running job's whole
  time limit against the limit, so subtracting the broker's reservation too would keep the
  broker's own jobs from starting. Slurm checks the limit against the account's accumulated
  (decayed) use, so the limit written is that use plus N. It is rewritten only when at
  least ``tolerance`` minutes off, so a converged site gets no writes. (Where the site decays
  usage, PriorityDecayHalfLife, the use shrinks between passes and active accounts' limits
  are lowered with it each pass, as they must be to stay a budget; sites that keep budgets
  in GrpTRESMins usually set PriorityDecayHalfLife=0, and then only real use moves them.)
  A pool's remainder is offered at every site at once: a member spending it by hand at two
  sites between two passes can overrun it (usage import reports the overrun); broker jobs
  cannot.
- **Removals.** A project with no open usable allocation left loses its account at the site
  (with its associations); a member removed from the project loses the association. Slurm
  refuses to remove what active jobs use ("Job(s) active"): that stays *pending* and is
  tried again on the next pass; jobs are never cancelled here.

Drift: the caller remembers what each pass left at the site (:func:`expected_state`, kept
with the pending removals). On the next pass, a difference that needs correcting *and* is
not explained by the ledger (an account or association we had that is gone, a limit that is
not the one we left, an account or user under ``aifactories`` we never put there) is drift:
a change made by hand at the site, reported and corrected. Without a memory (the first pass)
nothing is called drift.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aifactories.executors.slurm.sacctmgr import PARENT, ObservedSite, SlurmAccountsClient

_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,63}$")
RESERVED = frozenset({"root", PARENT})

# What a pass leaves at a site: account -> {"users": [...], "limit": N or None}.
Memory = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class LedgerAllocation:
    site_id: str | None  # None: a pool allocation, usable at every site (or at pool_sites)
    granted_gpu_seconds: int
    used_gpu_seconds: int
    status: str
    starts_at: float
    ends_at: float
    pool_sites: frozenset[str] | None = None  # a pool's sites; None: every site

    def usable_at(self, site_id: str, now: float) -> bool:
        return (
            self.status == "open"
            and self.site_id in (site_id, None)
            and (self.site_id is not None or self.pool_sites is None or site_id in self.pool_sites)
            and self.starts_at <= now < self.ends_at
        )


@dataclass(frozen=True, slots=True)
class LedgerProject:
    code: str
    members: frozenset[str]
    allocations: tuple[LedgerAllocation, ...]


@dataclass(frozen=True, slots=True)
class DesiredAccount:
    name: str
    users: frozenset[str]
    remaining_minutes: int


@dataclass
class DesiredSite:
    accounts: dict[str, DesiredAccount] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def slurm_name(text: str, account: bool = True) -> str | None:
    """``text`` as Slurm stores it (lowercased), or None if it cannot be an account (or, with
    ``account=False``, a user) name that every sacctmgr/sbatch command line carries safely."""
    name = text.strip().lower()
    if not _NAME.match(name) or (account and name in RESERVED):
        return None
    return name


def remaining_minutes(remaining_gpu_seconds: int, billing_weight: float) -> int:
    """Raw GPU-minutes Slurm may still grant for the ledger's remaining GPU-seconds."""
    if billing_weight <= 0:
        raise ValueError(f"a billing weight is positive, not {billing_weight}")
    # the epsilon keeps an exact quotient (36000 / 1.2 / 60 = 500) from flooring to 499
    return max(0, math.floor(max(0, remaining_gpu_seconds) / billing_weight / 60 + 1e-9))


def desired_site(
    projects: Iterable[LedgerProject],
    site_id: str,
    billing_weight: float,
    service_user: str,
    now: float,
) -> DesiredSite:
    """The accounts the ledger wants at ``site_id`` (see the module docstring)."""
    out = DesiredSite()
    submitter = slurm_name(service_user, account=False)
    if submitter is None:
        out.problems.append(f"service user {service_user!r} is no valid Slurm user name")
    by_name: dict[str, list[str]] = defaultdict(list)
    wanted: dict[str, tuple[LedgerProject, int]] = {}
    for project in projects:
        usable = [a for a in project.allocations if a.usable_at(site_id, now)]
        if not usable:
            continue
        name = slurm_name(project.code)
        if name is None:
            out.problems.append(
                f"project {project.code!r}: its code cannot be a Slurm account name "
                "(use a-z, 0-9, '_', '.', '-'; at most 64 characters; not root or "
                f"{PARENT}); not managed at {site_id}"
            )
            continue
        by_name[name].append(project.code)
        left = sum(max(0, a.granted_gpu_seconds - a.used_gpu_seconds) for a in usable)
        wanted[name] = (project, left)
    for name, codes in by_name.items():
        if len(codes) > 1:
            out.problems.append(
                f"projects {', '.join(sorted(map(repr, codes)))} are one Slurm account "
                f"{name!r} once lowercased; neither is managed at {site_id}"
            )
            continue
        project, left = wanted[name]
        users: set[str] = {submitter} if submitter else set()
        for member in project.members:
            user = slurm_name(member, account=False)
            if user is None:
                out.problems.append(
                    f"user {member!r} of {project.code!r} is no valid Slurm user name; left out"
                )
            else:
                users.add(user)
        out.accounts[name] = DesiredAccount(
            name, frozenset(users), remaining_minutes(left, billing_weight)
        )
    return out


@dataclass
class AccountsPlan:
    add_parent: bool = False
    add_accounts: list[str] = field(default_factory=list)
    add_users: dict[str, set[str]] = field(default_factory=dict)  # account -> users
    set_limits: dict[str, int] = field(default_factory=dict)  # account -> GPU-minutes
    remove_users: dict[str, set[str]] = field(default_factory=dict)  # account -> users
    remove_accounts: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # what the site holds once the plan ran: the next pass's drift reference
    expected: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.actions()

    def actions(self) -> list[str]:
        """What the plan does, one line each, for reports and ``--dry-run``."""
        out = [f"add parent account {PARENT}"] if self.add_parent else []
        out += [f"add account {a}" for a in self.add_accounts]
        out += [
            f"add user {u} to {a}"
            for a, users in sorted(self.add_users.items())
            for u in sorted(users)
        ]
        out += [f"set {a} GrpTRESMins=gres/gpu={m}" for a, m in sorted(self.set_limits.items())]
        out += [
            f"remove user {u} from {a}"
            for a, users in sorted(self.remove_users.items())
            for u in sorted(users)
        ]
        out += [f"remove account {a}" for a in self.remove_accounts]
        return out


def plan_site(
    desired: DesiredSite,
    observed: ObservedSite,
    last: Memory | None = None,
    tolerance_minutes: int = 1,
) -> AccountsPlan:
    """The actions that make ``observed`` what ``desired`` says; ``last`` is the previous
    pass's :attr:`AccountsPlan.expected` (with its pending removals), for drift."""
    plan = AccountsPlan(add_parent=not observed.parent_exists, problems=list(desired.problems))

    def drift(what: str, known: bool) -> None:
        if last is not None and known:
            plan.drift.append(what)

    for name, want in sorted(desired.accounts.items()):
        if name in observed.outside:
            plan.problems.append(
                f"account {name} already exists outside {PARENT} at the site: not managed"
            )
            continue
        have = observed.accounts.get(name)
        before = (last or {}).get(name)
        if have is None:
            plan.add_accounts.append(name)
            drift(f"account {name} was removed at the site", before is not None)
            if want.users:
                plan.add_users[name] = set(want.users)
            plan.set_limits[name] = want.remaining_minutes
            plan.expected[name] = _entry(want.users, want.remaining_minutes)
            continue
        missing = want.users - have.users
        extra = have.users - want.users
        if missing:
            plan.add_users[name] = set(missing)
        for user in sorted(missing):
            drift(f"user {user} was removed from {name} at the site", user in _users(before))
        if extra:
            plan.remove_users[name] = set(extra)
        for user in sorted(extra):
            drift(
                f"user {user} was added to {name} at the site",
                before is not None and user not in _users(before),
            )
        limit = have.used_minutes + want.remaining_minutes
        if have.limit_minutes is None or abs(have.limit_minutes - limit) >= tolerance_minutes:
            plan.set_limits[name] = limit
            drift(
                f"the limit of {name} was changed at the site to "
                f"{'none' if have.limit_minutes is None else have.limit_minutes} GPU-minutes",
                before is not None and have.limit_minutes != before.get("limit"),
            )
        else:
            limit = have.limit_minutes
        plan.expected[name] = _entry(want.users, limit)
    for name in sorted(set(observed.accounts) - set(desired.accounts)):
        plan.remove_accounts.append(name)
        drift(f"account {name} was added under {PARENT} at the site", name not in (last or {}))
    for name in sorted(observed.nested):
        plan.remove_accounts.append(name)
        drift(f"account {name} was added inside {PARENT} at the site", name not in (last or {}))
    if observed.parent_users:
        plan.remove_users[PARENT] = set(observed.parent_users)
        for user in sorted(observed.parent_users):
            drift(
                f"user {user} was added to {PARENT} itself at the site",
                user not in _users((last or {}).get(PARENT)),
            )
    return plan


def _entry(users: Iterable[str], limit: int | None) -> dict[str, object]:
    return {"users": sorted(users), "limit": limit}


def _users(entry: Mapping[str, object] | None) -> set[str]:
    users = (entry or {}).get("users")
    return {str(u) for u in users} if isinstance(users, list) else set()


@dataclass
class ApplyOutcome:
    """Removals Slurm kept because jobs still use them, to try again on the next pass."""

    pending_accounts: list[str] = field(default_factory=list)
    pending_users: dict[str, list[str]] = field(default_factory=dict)  # account -> users

    def lines(self) -> list[str]:
        out = [f"remove account {a}: jobs still active" for a in self.pending_accounts]
        out += [
            f"remove user {u} from {a}: jobs still active"
            for a, users in sorted(self.pending_users.items())
            for u in users
        ]
        return out


def apply_plan(
    client: SlurmAccountsClient, plan: AccountsPlan, observed: ObservedSite
) -> ApplyOutcome:
    """Carry out ``plan`` on the site ``observed`` was read from: every addition and limit
    in one ``sacctmgr load``, then the removals in batches (associations first, then
    accounts). A removal Slurm refuses for active jobs is returned as pending; any other
    failure raises (an ExecutorError)."""
    outcome = ApplyOutcome()
    if plan.add_parent or plan.add_accounts or plan.add_users or plan.set_limits:
        limits: dict[str, int | None] = {a: None for a in plan.add_accounts}
        limits.update(plan.set_limits)
        client.load(plan.add_parent, limits, plan.add_users)
    leaving = set(plan.remove_accounts)
    remove = {a: u for a, u in plan.remove_users.items() if a not in leaving and u}
    if remove:
        present = {name: set(have.users) for name, have in observed.accounts.items()}
        present[PARENT] = set(observed.parent_users)
        outcome.pending_users = client.remove_users(remove, present)
    if plan.remove_accounts:
        outcome.pending_accounts = client.remove_accounts(plan.remove_accounts)
    return outcome


def expected_state(
    plan: AccountsPlan, observed: ObservedSite, outcome: ApplyOutcome
) -> dict[str, dict[str, object]]:
    """What the site holds after ``plan`` ran with ``outcome``: the managed accounts as the
    plan left them, plus what is still there because its removal is pending (so the next
    pass does not report it as drift again)."""
    state = {name: dict(entry) for name, entry in plan.expected.items()}
    for name in outcome.pending_accounts:
        have = observed.accounts.get(name)
        state[name] = _entry(have.users if have else (), have.limit_minutes if have else None)
    for account, users in outcome.pending_users.items():
        entry = state.setdefault(account, _entry((), None))
        entry["users"] = sorted(_users(entry) | set(users))
    return state
