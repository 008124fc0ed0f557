"""The accounts plan: desired (ledger) against observed (site), with drift."""

from __future__ import annotations

from aifactories.broker.site_accounts import (
    DesiredAccount,
    applied_state,
    plan_site,
    remaining_minutes,
)
from aifactories.executors.slurm.sacctmgr import ObservedAccount, ObservedSite


def _want(name: str, users: set[str], minutes: int) -> DesiredAccount:
    return DesiredAccount(name, frozenset(users), minutes)


def test_remaining_gpu_seconds_become_raw_gpu_minutes_by_billing_weight() -> None:
    assert remaining_minutes(3600 * 10, 1.0) == 600
    assert remaining_minutes(3600 * 10, 2.0) == 300  # an H100 hour costs two A100 hours
    assert remaining_minutes(61, 1.0) == 2  # rounded up: never below the ledger's promise
    assert remaining_minutes(-5, 1.0) == 0


def test_an_empty_site_gets_parent_accounts_users_and_limits() -> None:
    desired = {"p1": _want("p1", {"alice", "root"}, 600)}
    plan = plan_site(desired, ObservedSite(parent_exists=False, accounts={}))
    assert plan.add_parent and plan.add_accounts == ["p1"]
    assert plan.add_users == {"alice": {"p1"}, "root": {"p1"}}
    assert plan.set_limits == {"p1": 600} and plan.drift == []


def test_a_converged_site_needs_nothing() -> None:
    desired = {"p1": _want("p1", {"alice"}, 600)}
    observed = ObservedSite(True, {"p1": ObservedAccount("p1", {"alice"}, 700, used_minutes=100)})
    plan = plan_site(desired, observed, applied_state(desired, observed))
    assert plan.empty and plan.actions() == [] and plan.drift == []


def test_the_limit_is_slurms_use_plus_the_ledgers_remainder() -> None:
    desired = {"p1": _want("p1", set(), 500)}
    observed = ObservedSite(True, {"p1": ObservedAccount("p1", set(), 700, used_minutes=100)})
    assert plan_site(desired, observed).set_limits == {"p1": 600}


def test_removed_members_and_closed_projects_leave_the_site() -> None:
    desired = {"p1": _want("p1", {"alice"}, 10)}
    observed = ObservedSite(
        True,
        {
            "p1": ObservedAccount("p1", {"alice", "bob"}, 10),
            "p2": ObservedAccount("p2", {"carol"}, 5),
        },
    )
    last = {"p1": {"users": ["alice", "bob"], "limit": 10}, "p2": {"users": ["carol"], "limit": 5}}
    plan = plan_site(desired, observed, last)
    assert plan.remove_users == [("bob", "p1")] and plan.remove_accounts == ["p2"]
    assert plan.drift == []  # the ledger asked for both: no drift


def test_changes_made_by_hand_are_drift() -> None:
    desired = {"p1": _want("p1", {"alice"}, 100), "p2": _want("p2", set(), 50)}
    last = {"p1": {"users": ["alice"], "limit": 100}, "p2": {"users": [], "limit": 50}}
    observed = ObservedSite(
        True,
        {
            "p1": ObservedAccount("p1", {"mallory"}, 9999),  # alice removed, mallory added
            "p9": ObservedAccount("p9", set(), None),  # a stray account under aifactories
        },  # p2 deleted
    )
    plan = plan_site(desired, observed, last)
    assert sorted(plan.drift) == [
        "account p2 was removed at the site",
        "account p9 was added under aifactories at the site",
        "the limit of p1 was changed at the site to 9999 GPU-minutes",
        "user alice was removed from p1 at the site",
        "user mallory was added to p1 at the site",
    ]
    assert plan.set_limits == {"p1": 100, "p2": 50}
    assert plan.add_accounts == ["p2"] and plan.remove_accounts == ["p9"]
