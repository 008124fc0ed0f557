"""Accounts at a site, as the ledger wants them: the plan that converges a site, and its drift.

The desired state of one site, from the ledger:

- every project with an open allocation usable at the site (the site's own, or a pool) is a
  Slurm account named by its code, lowercased (Slurm lowercases account names), under the
  parent account ``aifactories``;
- its members are associations (user, account), and so is the site's submitting user (the
  broker submits the project's jobs as that user with ``--account=<code>``);
- the project's remaining GPU-hours there become ``GrpTRESMins=gres/gpu=N``. Slurm counts raw
  GPU-minutes where the ledger charges GPU-seconds x billing weight, so remaining GPU-seconds
  are divided by the site's lowest billing weight (lenient where a site has several
  partitions: the ledger still enforces the exact budget) and by 60, rounded up. Slurm checks
  the limit against the association's *accumulated* use, so the written limit is that use
  plus the ledger's remainder. Remainder means granted minus used: jobs holding reservations
  are counted by Slurm itself while they queue and run (``safe`` enforcement), and
  subtracting them here too would keep the broker's own jobs from starting.

Anything under ``aifactories`` the ledger does not want is removed; a limit is rewritten only
when it is at least a minute off, so a converged site sees no writes. What differs from what
the last pass left (remembered by the caller) and was not asked by the ledger is *drift*: a
change made by hand at the site, reported and corrected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from aifactories.executors.slurm.sacctmgr import ObservedSite


@dataclass(frozen=True, slots=True)
class DesiredAccount:
    name: str
    users: frozenset[str]
    remaining_minutes: int


@dataclass
class AccountsPlan:
    add_parent: bool = False
    add_accounts: list[str] = field(default_factory=list)
    add_users: dict[str, set[str]] = field(default_factory=dict)  # user -> accounts
    set_limits: dict[str, int] = field(default_factory=dict)
    remove_users: list[tuple[str, str]] = field(default_factory=list)  # (user, account)
    remove_accounts: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.add_parent
            or self.add_accounts
            or self.add_users
            or self.set_limits
            or self.remove_users
            or self.remove_accounts
        )

    def actions(self) -> list[str]:
        """What the plan does, one line each, for reports and ``--dry-run``."""
        out = ["add parent account aifactories"] if self.add_parent else []
        out += [f"add account {a}" for a in self.add_accounts]
        out += [
            f"add user {u} to {a}"
            for u, accounts in sorted(self.add_users.items())
            for a in sorted(accounts)
        ]
        out += [f"set {a} GrpTRESMins=gres/gpu={m}" for a, m in sorted(self.set_limits.items())]
        out += [f"remove user {u} from {a}" for u, a in self.remove_users]
        out += [f"remove account {a}" for a in self.remove_accounts]
        return out


def remaining_minutes(remaining_gpu_seconds: int, billing_weight: float) -> int:
    """GPU-minutes Slurm may still grant for ``remaining_gpu_seconds`` of the ledger."""
    return max(0, math.ceil(max(0, remaining_gpu_seconds) / billing_weight / 60))


def plan_site(
    desired: Mapping[str, DesiredAccount],
    observed: ObservedSite,
    last_applied: Mapping[str, Mapping[str, object]] | None = None,
) -> AccountsPlan:
    """The actions that make ``observed`` what ``desired`` says. ``last_applied`` is what the
    previous pass left (account -> {"users": [...], "limit": N}): differences from it that the
    ledger did not ask for are reported as drift."""
    plan = AccountsPlan(add_parent=not observed.parent_exists)
    last = last_applied or {}
    for name, want in sorted(desired.items()):
        have = observed.accounts.get(name)
        before = last.get(name)
        if have is None:
            plan.add_accounts.append(name)
            if before is not None:
                plan.drift.append(f"account {name} was removed at the site")
            for user in want.users:
                plan.add_users.setdefault(user, set()).add(name)
            plan.set_limits[name] = want.remaining_minutes
            continue
        for user in sorted(want.users - have.users):
            plan.add_users.setdefault(user, set()).add(name)
            if before is not None and user in _users(before):
                plan.drift.append(f"user {user} was removed from {name} at the site")
        for user in sorted(have.users - want.users):
            plan.remove_users.append((user, name))
            if before is not None and user not in _users(before):
                plan.drift.append(f"user {user} was added to {name} at the site")
        limit = have.used_minutes + want.remaining_minutes
        if have.limit_minutes is None or abs(have.limit_minutes - limit) >= 1:
            plan.set_limits[name] = limit
            if before is not None and have.limit_minutes != before.get("limit"):
                plan.drift.append(
                    f"the limit of {name} was changed at the site to "
                    f"{'none' if have.limit_minutes is None else have.limit_minutes} GPU-minutes"
                )
    for name in sorted(set(observed.accounts) - set(desired)):
        plan.remove_accounts.append(name)
        if name not in last:
            plan.drift.append(f"account {name} was added under aifactories at the site")
    return plan


def _users(entry: Mapping[str, object]) -> set[str]:
    users = entry.get("users")
    return {str(u) for u in users} if isinstance(users, list) else set()


def applied_state(
    desired: Mapping[str, DesiredAccount], observed: ObservedSite
) -> dict[str, dict[str, object]]:
    """What the site holds after the plan ran: remembered for the next pass's drift check."""
    out: dict[str, dict[str, object]] = {}
    for name, want in desired.items():
        have = observed.accounts.get(name)
        used = have.used_minutes if have is not None else 0
        out[name] = {"users": sorted(want.users), "limit": used + want.remaining_minutes}
    return out
