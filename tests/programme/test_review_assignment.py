"""Reviewer assignment (conflicts of interest, expertise, load balance, shortfalls) and the
panel's scores and ranking: pure functions, no database."""

from __future__ import annotations

import itertools

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.programme.modes import DEFAULT_CRITERIA, Criterion
from aifactories.programme.ranking import (
    ProposalReviews,
    check_scores,
    proposal_score,
    rank_proposals,
    review_score,
)
from aifactories.programme.review_assignment import (
    DeclaredConflict,
    Exclusion,
    ProposalProfile,
    ReviewerProfile,
    assign_reviewers,
    exclusions,
)

ALL = frozenset({"health", "climate", "energy", "language", "manufacturing", "science"})


def reviewer(
    user_id: int,
    org: int | None = None,
    country: str | None = None,
    expertise: frozenset[str] = ALL,
    load: int = 0,
) -> ReviewerProfile:
    return ReviewerProfile(
        user_id,
        org if org is not None else 100 + user_id,
        country or f"C{user_id}",
        expertise,
        load,
    )


def proposal(
    pid: int,
    org: int = 1,
    country: str = "ES",
    domain: str = "health",
    team: frozenset[int] = frozenset({900}),
    **kw: frozenset[int],
) -> ProposalProfile:
    return ProposalProfile(pid, org, country, domain, team, **kw)


def test_every_kind_of_conflict_excludes_the_reviewer() -> None:
    p = proposal(7, org=1, country="ES", team=frozenset({900, 5}))
    same_org = reviewer(1, org=1, country="ES")
    same_country = reviewer(2, org=2, country="es")
    declared_org = reviewer(3, org=3, country="DE")
    declared_prop = reviewer(4, org=4, country="IT")
    team = reviewer(5, org=5, country="FR")
    free = reviewer(6, org=6, country="NO")
    declared = [DeclaredConflict(3, organisation_id=1), DeclaredConflict(4, proposal_id=7)]
    assert exclusions(p, same_org, declared) == (Exclusion.SAME_ORGANISATION,)
    assert exclusions(p, same_country, declared) == ()  # the rule is off
    assert exclusions(p, same_country, declared, same_country_conflict=True) == (
        Exclusion.SAME_COUNTRY,
    )
    assert exclusions(p, declared_org, declared) == (Exclusion.DECLARED_ORGANISATION,)
    assert exclusions(p, declared_prop, declared) == (Exclusion.DECLARED_PROPOSAL,)
    assert exclusions(p, team, declared) == (Exclusion.TEAM,)
    assert exclusions(p, free, declared, same_country_conflict=True) == ()
    # a conflict with another proposal or organisation changes nothing here
    assert exclusions(p, free, [DeclaredConflict(6, proposal_id=8)]) == ()
    assert exclusions(p, free, [DeclaredConflict(6, organisation_id=2)]) == ()

    pool = [same_org, same_country, declared_org, declared_prop, team, free]
    plan = assign_reviewers([p], pool, declared, per_proposal=3, same_country_conflict=True)
    assert [a.reviewer_id for a in plan.assignments] == [6]
    (short,) = plan.shortfalls
    assert (short.proposal_id, short.wanted, short.reviewers, short.missing) == (7, 3, 1, 2)
    assert short.excluded == {
        Exclusion.SAME_ORGANISATION: 1,
        Exclusion.SAME_COUNTRY: 1,
        Exclusion.DECLARED_ORGANISATION: 1,
        Exclusion.DECLARED_PROPOSAL: 1,
        Exclusion.TEAM: 1,
    }
    assert "1 of 3 reviewers" in short.reason and "same_country_conflict" in short.reason
    assert "aif reviews pool add" in short.reason
    # without the country rule, the Spanish reviewer of another organisation may review it
    plan = assign_reviewers([p], pool, declared, per_proposal=3)
    assert sorted(a.reviewer_id for a in plan.assignments) == [2, 6]


def test_reviewers_already_on_it_or_who_declined_are_not_asked_again() -> None:
    p = proposal(1, reviewers=frozenset({1}), declined=frozenset({2}))
    pool = [reviewer(i) for i in (1, 2, 3, 4)]
    plan = assign_reviewers([p], pool, per_proposal=3)
    assert sorted(a.reviewer_id for a in plan.assignments) == [3, 4]
    assert plan.shortfalls == ()
    plan = assign_reviewers([p], pool[:3], per_proposal=3)
    (short,) = plan.shortfalls
    assert short.reviewers == 2
    assert short.excluded == {Exclusion.ALREADY_REVIEWING: 1, Exclusion.DECLINED: 1}
    # a proposal that has its reviewers gets none
    full = proposal(2, reviewers=frozenset({1, 2, 3}))
    assert assign_reviewers([full], pool, per_proposal=3).assignments == ()


def test_experts_come_first_even_when_busier() -> None:
    expert = reviewer(1, expertise=frozenset({"climate"}), load=6)
    others = [reviewer(i, expertise=frozenset({"language"})) for i in (2, 3, 4)]
    plan = assign_reviewers([proposal(1, domain="climate")], [*others, expert], per_proposal=2)
    got = {a.reviewer_id: a.expert for a in plan.assignments}
    assert got[1] is True and len(got) == 2 and sum(got.values()) == 1


def test_the_load_is_spread_evenly() -> None:
    # 10 proposals x 3 reviewers over 6 reviewers: 5 each
    pool = [reviewer(i) for i in range(1, 7)]
    props = [proposal(i, org=1, domain="health") for i in range(1, 11)]
    plan = assign_reviewers(props, pool, per_proposal=3)
    assert len(plan.assignments) == 30 and plan.shortfalls == ()
    assert sorted(plan.loads.values()) == [5] * 6
    for pid in range(1, 11):
        assert len({a.reviewer_id for a in plan.assignments if a.proposal_id == pid}) == 3
    # reviewers busy from before get fewer new reviews
    busy = [reviewer(i, load=4 if i <= 2 else 0) for i in range(1, 7)]
    plan = assign_reviewers(props, busy, per_proposal=3)
    assert sorted(plan.loads.values()) == [6, 6, 6, 6, 7, 7]  # 38 reviews over 6
    new = {r.user_id: plan.loads[r.user_id] - r.load for r in busy}
    assert max(new[1], new[2]) < min(new[i] for i in (3, 4, 5, 6))


def test_balance_with_conflicts_is_as_even_as_possible() -> None:
    """Brute force on a small case: the plan minimises the sum of squared loads among the
    plans that fill every fillable slot with as many experts as possible."""
    pool = [
        reviewer(1, org=1),
        reviewer(2, org=2, expertise=frozenset({"health"})),
        reviewer(3, org=3),
        reviewer(4, org=4, expertise=frozenset({"energy"})),
    ]
    props = [
        proposal(1, org=1, domain="health"),
        proposal(2, org=2, domain="energy"),
        proposal(3, org=3, domain="health"),
        proposal(4, org=9, domain="climate"),
        proposal(5, org=9, domain="health"),
    ]
    plan = assign_reviewers(props, pool, per_proposal=2)
    assert plan.shortfalls == ()

    def best() -> tuple[int, int]:
        options = []
        for p in props:
            ok = [r for r in pool if not exclusions(p, r)]
            options.append(
                [
                    (c, sum(p.domain in r.expertise for r in c))
                    for c in itertools.combinations(ok, 2)
                ]
            )
        top = None
        for choice in itertools.product(*options):
            experts = sum(e for _, e in choice)
            loads = [sum(r in c for c, _ in choice) for r in pool]
            key = (-experts, sum(x * x for x in loads))
            top = key if top is None or key < top else top
        assert top is not None
        return top

    experts = sum(a.expert for a in plan.assignments)
    squares = sum(v * v for v in plan.loads.values())
    assert (-experts, squares) == best()


def test_the_plan_is_deterministic() -> None:
    pool = [reviewer(i, expertise=frozenset({"health"}) if i % 2 else ALL) for i in range(1, 9)]
    props = [proposal(i, org=i % 3, domain="health") for i in range(1, 25)]
    first = assign_reviewers(props, pool, per_proposal=3)
    for _ in range(3):
        assert assign_reviewers(props, pool, per_proposal=3) == first


def test_an_empty_pool_is_a_shortfall_for_every_proposal() -> None:
    plan = assign_reviewers([proposal(1), proposal(2)], [], per_proposal=3)
    assert plan.assignments == ()
    assert [s.missing for s in plan.shortfalls] == [3, 3]
    assert "no active reviewer" in plan.shortfalls[0].reason


def test_review_score_weights_the_criteria() -> None:
    # default weights 0.4 / 0.4 / 0.2
    assert review_score({"excellence": 8, "impact": 6, "feasibility": 10}, DEFAULT_CRITERIA) == 7.6
    # weights are normalised: 2 / 1 is 2/3 and 1/3
    crit = (Criterion("a", 2), Criterion("b", 1))
    assert review_score({"a": 9, "b": 3}, crit) == 7.0


def test_scores_must_cover_every_criterion_in_range() -> None:
    with pytest.raises(InvalidInput) as missing:
        check_scores({"excellence": 5, "impact": 5}, DEFAULT_CRITERIA)
    assert missing.value.field == "scores.feasibility"
    assert "excellence, impact, feasibility" in missing.value.message
    with pytest.raises(InvalidInput) as high:
        check_scores({"excellence": 11, "impact": 5, "feasibility": 5}, DEFAULT_CRITERIA)
    assert high.value.field == "scores.excellence" and high.value.limit == "0 to 10"
    with pytest.raises(InvalidInput) as nan:
        check_scores({"excellence": float("nan"), "impact": 5, "feasibility": 5}, DEFAULT_CRITERIA)
    assert nan.value.field == "scores.excellence"
    with pytest.raises(InvalidInput) as unknown:
        check_scores({"excellence": 5, "impact": 5, "feasibility": 5, "x": 1}, DEFAULT_CRITERIA)
    assert unknown.value.field == "scores.x"
    assert check_scores({"excellence": 0, "impact": 10, "feasibility": 5.5}, DEFAULT_CRITERIA) == {
        "excellence": 0.0,
        "impact": 10.0,
        "feasibility": 5.5,
    }


def test_ranking_by_average_ties_by_submission() -> None:
    good = {"excellence": 9, "impact": 9, "feasibility": 9}
    fair = {"excellence": 6, "impact": 6, "feasibility": 6}
    poor = {"excellence": 2, "impact": 4, "feasibility": 6}  # 3.6
    ranked = rank_proposals(
        [
            ProposalReviews(1, 300.0, (fair, good)),  # 7.5, submitted last
            ProposalReviews(2, 100.0, (poor,)),
            ProposalReviews(3, 200.0, (good, fair)),  # 7.5, submitted earlier
            ProposalReviews(4, 50.0, ()),  # no review yet
            ProposalReviews(5, 400.0, (good, good, good)),
        ],
        DEFAULT_CRITERIA,
    )
    assert [(r.proposal_id, r.rank, r.score, r.reviews) for r in ranked] == [
        (5, 1, 9.0, 3),
        (3, 2, 7.5, 2),
        (1, 3, 7.5, 2),
        (2, 4, 3.6, 1),
        (4, None, None, 0),
    ]
    assert ranked[1].spread == 3.0 and ranked[0].spread == 0.0 and ranked[4].spread is None
    score, spread, each = proposal_score([good, fair, poor], DEFAULT_CRITERIA)
    assert each == (9.0, 6.0, 3.6) and score == 6.2 and spread == 5.4
