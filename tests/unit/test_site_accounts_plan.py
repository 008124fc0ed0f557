"""The accounts agent's pure part: desired state from ledger facts, the plan against an
observed site, drift, and the parsing of what sacctmgr/scontrol print (22.05 formats)."""

from __future__ import annotations

from aifactories.broker.site_accounts import (
    AccountsPlan,
    ApplyOutcome,
    DesiredAccount,
    DesiredSite,
    LedgerAllocation,
    LedgerProject,
    desired_site,
    expected_state,
    plan_site,
    remaining_minutes,
    slurm_name,
)
from aifactories.executors.slurm.sacctmgr import (
    ObservedAccount,
    ObservedSite,
    load_file,
    parse_associations,
    parse_used_minutes,
    refused_rows,
    removal_batches,
)

NOW = 1_000_000.0
H = 3600


def _alloc(
    hours: int,
    site: str | None = None,
    used_h: int = 0,
    status: str = "open",
    starts: float = NOW - 10,
    ends: float = NOW + 10,
) -> LedgerAllocation:
    return LedgerAllocation(site, hours * H, used_h * H, status, starts, ends)


def _project(code: str, members: set[str], *allocations: LedgerAllocation) -> LedgerProject:
    return LedgerProject(code, frozenset(members), tuple(allocations))


def _desired(*accounts: DesiredAccount) -> DesiredSite:
    return DesiredSite({a.name: a for a in accounts})


def _want(name: str, users: set[str], minutes: int) -> DesiredAccount:
    return DesiredAccount(name, frozenset(users), minutes)


# -- desired state ---------------------------------------------------------------------------


def test_remaining_gpu_seconds_become_raw_gpu_minutes_floored_by_billing_weight() -> None:
    assert remaining_minutes(10 * H, 1.0) == 600
    assert remaining_minutes(10 * H, 2.0) == 300  # an hour on a dearer GPU costs two
    assert remaining_minutes(10 * H, 1.2) == 500  # exact quotients do not lose a minute
    assert remaining_minutes(119, 1.0) == 1  # floored: Slurm never grants past the ledger
    assert remaining_minutes(-5, 1.0) == 0


def test_projects_with_an_open_usable_allocation_are_accounts_with_members_and_submitter() -> None:
    projects = [
        _project("Aurora-Vision", {"alice", "Bob"}, _alloc(100)),  # pool: every site
        _project("site-only", {"carol"}, _alloc(10, site="s1"), _alloc(5, site="s1", used_h=2)),
        _project("elsewhere", {"dario"}, _alloc(10, site="s2")),
        _project("closed", {"elena"}, _alloc(10, status="closed")),
        _project("expired", {"fabien"}, _alloc(10, ends=NOW - 1)),
        _project("future", {"gina"}, _alloc(10, starts=NOW + 1)),
    ]
    desired = desired_site(projects, "s1", 2.0, "root", NOW)
    assert desired.problems == []
    assert set(desired.accounts) == {"aurora-vision", "site-only"}
    assert desired.accounts["aurora-vision"].users == {"alice", "bob", "root"}
    assert desired.accounts["aurora-vision"].remaining_minutes == 100 * 60 // 2
    # several open allocations usable at the site add up: (10 + 5 - 2) hours at weight 2
    assert desired.accounts["site-only"].remaining_minutes == 13 * 60 // 2


def test_codes_slurm_cannot_take_are_reported_not_managed() -> None:
    assert slurm_name("Po-Twin") == "po-twin"
    assert slurm_name("root", account=False) == "root"  # a user, not an account
    for bad in ("a b", "a,b", "a=b", "a'b", "-x", "root", "AIFactories", "x" * 65, "ä"):
        assert slurm_name(bad) is None, bad
    projects = [
        _project("ok", {"alice", "bad user"}, _alloc(1)),
        _project("a,b", {"alice"}, _alloc(1)),
        _project("Twin", {"alice"}, _alloc(1)),
        _project("twin", {"alice"}, _alloc(1)),
    ]
    desired = desired_site(projects, "s1", 1.0, "root", NOW)
    assert set(desired.accounts) == {"ok"}
    assert desired.accounts["ok"].users == {"alice", "root"}
    assert len(desired.problems) == 3
    assert any("'a,b'" in p and "cannot be a Slurm account name" in p for p in desired.problems)
    assert any("'Twin', 'twin'" in p for p in desired.problems)
    assert any("'bad user'" in p for p in desired.problems)


# -- plan ------------------------------------------------------------------------------------


def test_an_empty_site_gets_parent_accounts_users_and_limits_in_one_plan() -> None:
    plan = plan_site(_desired(_want("p1", {"alice", "root"}, 600)), ObservedSite(False))
    assert plan.add_parent and plan.add_accounts == ["p1"]
    assert plan.add_users == {"p1": {"alice", "root"}}
    assert plan.set_limits == {"p1": 600} and plan.drift == []
    assert plan.actions() == [
        "add parent account aifactories",
        "add account p1",
        "add user alice to p1",
        "add user root to p1",
        "set p1 GrpTRESMins=gres/gpu=600",
    ]


def test_a_converged_site_needs_nothing_and_the_limit_is_slurms_use_plus_the_remainder() -> None:
    desired = _desired(_want("p1", {"alice"}, 600))
    observed = ObservedSite(True, {"p1": ObservedAccount("p1", {"alice"}, 700, used_minutes=100)})
    plan = plan_site(desired, observed, None)
    assert plan.empty and plan.actions() == []
    again = plan_site(desired, observed, expected_state(plan, observed, ApplyOutcome()))
    assert again.empty and again.drift == []
    used_more = ObservedSite(True, {"p1": ObservedAccount("p1", {"alice"}, 700, used_minutes=130)})
    assert plan_site(desired, used_more).set_limits == {"p1": 730}


def test_removed_members_and_closed_projects_leave_the_site_without_drift() -> None:
    desired = _desired(_want("p1", {"alice"}, 10))
    observed = ObservedSite(
        True,
        {
            "p1": ObservedAccount("p1", {"alice", "bob"}, 10),
            "p2": ObservedAccount("p2", {"carol"}, 5),
        },
    )
    last = {"p1": {"users": ["alice", "bob"], "limit": 10}, "p2": {"users": ["carol"], "limit": 5}}
    plan = plan_site(desired, observed, last)
    assert plan.remove_users == {"p1": {"bob"}} and plan.remove_accounts == ["p2"]
    assert plan.drift == []  # the ledger asked for both


def test_changes_made_by_hand_are_drift_and_are_corrected() -> None:
    desired = _desired(_want("p1", {"alice"}, 100), _want("p2", set(), 50))
    last = {"p1": {"users": ["alice"], "limit": 100}, "p2": {"users": [], "limit": 50}}
    observed = ObservedSite(
        True,
        {
            "p1": ObservedAccount("p1", {"mallory"}, 9999),  # alice removed, mallory added
            "p9": ObservedAccount("p9", set(), None),  # a stray account under aifactories
        },  # p2 deleted
        parent_users={"eve"},
        nested={"deep"},
    )
    plan = plan_site(desired, observed, last)
    assert sorted(plan.drift) == [
        "account deep was added inside aifactories at the site",
        "account p2 was removed at the site",
        "account p9 was added under aifactories at the site",
        "the limit of p1 was changed at the site to 9999 GPU-minutes",
        "user alice was removed from p1 at the site",
        "user eve was added to aifactories itself at the site",
        "user mallory was added to p1 at the site",
    ]
    assert plan.set_limits == {"p1": 100, "p2": 50}
    assert plan.add_accounts == ["p2"] and plan.remove_accounts == ["p9", "deep"]
    assert plan.remove_users == {"p1": {"mallory"}, "aifactories": {"eve"}}
    # Without a memory (a first pass) the same corrections are made, none called drift.
    first = plan_site(desired, observed, None)
    assert first.drift == [] and first.actions() == plan.actions()


def test_a_limit_within_the_tolerance_is_left_alone() -> None:
    desired = _desired(_want("p1", set(), 100))
    observed = ObservedSite(True, {"p1": ObservedAccount("p1", set(), 103, used_minutes=0)})
    assert plan_site(desired, observed, tolerance_minutes=5).set_limits == {}
    assert plan_site(desired, observed).set_limits == {"p1": 100}


def test_an_account_name_taken_outside_the_subtree_is_never_touched() -> None:
    desired = _desired(_want("physics", {"alice"}, 100))
    observed = ObservedSite(True, outside={"physics"})
    plan = plan_site(desired, observed)
    assert plan.empty
    assert plan.problems == [
        "account physics already exists outside aifactories at the site: not managed"
    ]


def test_pending_removals_are_remembered_so_they_are_not_drift_next_pass() -> None:
    desired = _desired(_want("p1", {"alice"}, 10))
    observed = ObservedSite(
        True,
        {"p1": ObservedAccount("p1", {"alice", "bob"}, 10), "p2": ObservedAccount("p2", set(), 5)},
    )
    last = {"p1": {"users": ["alice", "bob"], "limit": 10}, "p2": {"users": [], "limit": 5}}
    plan = plan_site(desired, observed, last)
    outcome = ApplyOutcome(pending_accounts=["p2"], pending_users={"p1": ["bob"]})
    assert outcome.lines() == [
        "remove account p2: jobs still active",
        "remove user bob from p1: jobs still active",
    ]
    again = plan_site(desired, observed, expected_state(plan, observed, outcome))
    assert again.remove_accounts == ["p2"] and again.remove_users == {"p1": {"bob"}}
    assert again.drift == []


def test_the_plan_type_reports_empty() -> None:
    assert AccountsPlan().empty


# -- what sacctmgr and scontrol print ----------------------------------------------------------


def test_associations_are_read_into_the_managed_subtree() -> None:
    text = "\n".join(
        [
            "root|||",
            "root|root||",
            "aifactories||root|",
            "aifactories|eve||",
            "p1||aifactories|gres/gpu=600",
            "p1|alice||",
            "p1|root||",
            "p2||aifactories|cpu=5,gres/gpu=7",
            "deep||p2|",
            "deep|mallory||",
            "physics||root|",
            "physics|zed||",
        ]
    )
    observed = parse_associations(text)
    assert observed.parent_exists and observed.parent_users == {"eve"}
    assert set(observed.accounts) == {"p1", "p2"}
    assert observed.accounts["p1"].users == {"alice", "root"}
    assert observed.accounts["p1"].limit_minutes == 600
    assert observed.accounts["p2"].limit_minutes == 7
    assert observed.nested == {"deep"} and observed.outside == {"root", "physics"}
    assert not parse_associations("root|||\n").parent_exists


def test_used_gpu_minutes_are_read_from_the_association_manager() -> None:
    text = """Current Association Manager state

Association Records

ClusterName=site1 Account=p1 UserName= Partition= Priority=0 ID=6
    GrpTRES=cpu=N(0),gres/gpu=N(0)
    GrpTRESMins=cpu=N(1),mem=N(109),billing=N(1),gres/gpu=8(2)
ClusterName=site1 Account=p1 UserName=root(0) Partition= Priority=0 ID=8
    GrpTRESMins=cpu=N(1),gres/gpu=N(2)
ClusterName=site1 Account=p2 UserName= Partition= Priority=0 ID=9
    GrpTRESMins=cpu=N(0),gres/gpu=N(0)
"""
    assert parse_used_minutes(text) == {"p1": 2, "p2": 0}


def test_refusals_name_the_accounts_and_users_kept() -> None:
    said = (
        " Error with request: Job(s) active, cancel job(s) before remove\n"
        "  JobID = 100007     C = site1      A = q2         U = root     \n"
    )
    assert refused_rows(said) == [("q2", "root")]
    assert refused_rows("  C = site1      A = q1 of aifactories") == [("q1", "")]


def test_the_load_file_adds_parent_accounts_limits_and_users() -> None:
    text = load_file("site1", True, {"p1": 600, "p2": None}, {"p1": ["root", "alice"]})
    assert text.splitlines() == [
        "Cluster - 'site1'",
        "Parent - 'root'",
        "Account - 'aifactories':Description='aifactories projects'",
        "Parent - 'aifactories'",
        "Account - 'p1':GrpTRESMins=gres/gpu=600",
        "Account - 'p2'",
        "Parent - 'p1'",
        "User - 'alice'",
        "User - 'root'",
    ]
    assert "Account - 'aifactories'" not in load_file("site1", False, {"p1": 1}, {})


def test_association_removals_share_a_call_only_where_the_cross_product_is_harmless() -> None:
    remove = {"p1": {"bob"}, "p2": {"carol"}, "p3": {"alice"}}
    present = {"p1": {"alice", "bob"}, "p2": {"carol"}, "p3": {"alice"}}
    # alice must stay in p1: removing {alice, bob} x {p1, p3} in one call would take her
    assert removal_batches(remove, present) == [
        (["bob", "carol"], ["p1", "p2"]),
        (["alice"], ["p3"]),
    ]
    many = {f"p{k}": {f"u{k}"} for k in range(250)}
    batches = removal_batches(many, {a: set(u) for a, u in many.items()})
    assert [len(accounts) for _users, accounts in batches] == [200, 50]
