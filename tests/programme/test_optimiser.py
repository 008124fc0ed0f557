"""The allocation optimiser and the committee's greedy rule on small rounds whose best plan is
known by reasoning, and on seeded synthetic rounds (feasibility, optimiser >= greedy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.programme.award_compare import compare, jain_index
from aifactories.programme.award_model import (
    AwardPlan,
    BudgetLine,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
    RoundArrays,
)
from aifactories.programme.greedy import greedy_awards
from aifactories.programme.optimiser import optimise_awards
from aifactories.programme.synthetic_demand import synthetic_round

TOL = 1e-3  # GPU-hours


def demand(
    pid: int,
    rank: int,
    request: float,
    *,
    fraction: float = 1.0,
    parts: tuple[str, ...] = ("a/gpu",),
    preferred: tuple[str, ...] = (),
    first: int = 0,
    last: int = 0,
    industrial: bool = False,
    critical: bool = False,
    kind: str = "academia",
    country: str = "DE",
) -> ProposalDemand:
    return ProposalDemand(
        proposal_id=pid,
        rank=rank,
        score=10.0 - rank,
        requested_gpu_hours=request,
        min_award_fraction=fraction,
        eligible_partitions=parts,
        preferred_sites=preferred,
        first_month=first,
        last_month=last,
        industrial=industrial,
        critical_domain=critical,
        organisation_kind=kind,
        country=country,
    )


def partition(pid: str, *hours: float, country: str = "DE") -> PartitionCapacity:
    return PartitionCapacity(pid, pid.split("/")[0], country, tuple(hours))


def awarded(plan: AwardPlan) -> dict[int, float]:
    return {o.proposal_id: o.awarded for o in plan.outcomes}


def outcome(plan: AwardPlan, pid: int) -> tuple[str | None, str]:
    found = next(o for o in plan.outcomes if o.proposal_id == pid)
    return found.reason, found.explanation


def assert_feasible(
    plan: AwardPlan, demands: list[ProposalDemand], parts: list[PartitionCapacity], months: int
) -> None:
    """Every rule: capacity per partition-month, eligibility, period, monthly cap, request,
    minimum fraction; and the outcomes agree with the lines."""
    r = RoundArrays.build(demands, parts, months=months, spread_factor=2.0)
    x = r.dense(plan.lines)
    assert (x.sum(axis=0) <= r.capacity + TOL).all(), "a partition-month is over capacity"
    assert not (x * ~r.eligible[:, :, None]).any(), "a line on an ineligible partition"
    assert not (x * ~r.in_period[:, None, :]).any(), "a line outside the proposal's period"
    assert (x.sum(axis=1) <= r.month_cap[:, None] + TOL).all(), "a month over the spread cap"
    total = x.sum(axis=(1, 2))
    assert (total <= r.request + TOL).all()
    some = total > TOL
    minimum = r.request * r.min_fraction * (1 - 1e-6)  # HiGHS' feasibility tolerance
    assert (total[some] >= minimum[some] - TOL).all(), "below minimum"
    assert np.allclose(total, [o.awarded for o in plan.outcomes])
    assert all(line.gpu_hours > 0 for line in plan.lines)


def test_better_ranked_proposal_displaces_a_worse_one() -> None:
    demands = [demand(1, 2, 100.0), demand(2, 1, 100.0)]
    parts = [partition("a/gpu", 100.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    assert awarded(plan) == pytest.approx({1: 0.0, 2: 100.0})
    assert plan.status == "optimal" and plan.mip_gap == pytest.approx(0.0, abs=1e-9)
    reason, why = outcome(plan, 1)
    assert reason == "rank" and "worth more" in why
    assert outcome(plan, 2) == (None, "")


def test_minimum_fraction_is_all_or_nothing() -> None:
    # The LP would give B the 20 hours A leaves; B's minimum is 25, so B gets nothing.
    demands = [demand(1, 1, 80.0), demand(2, 2, 50.0, fraction=0.5)]
    parts = [partition("a/gpu", 100.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    assert awarded(plan) == pytest.approx({1: 80.0, 2: 0.0})
    reason, why = outcome(plan, 2)
    assert reason == "rank" and "below its minimum of 25" in why
    assert_feasible(plan, demands, parts, 1)


def test_partial_award_down_to_the_minimum() -> None:
    demands = [demand(1, 1, 100.0, fraction=0.5), demand(2, 2, 100.0, fraction=0.5)]
    parts = [partition("a/gpu", 150.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    # Both fit only if one takes 50-100 and the other the rest: the better one gets all.
    assert awarded(plan) == pytest.approx({1: 100.0, 2: 50.0})
    assert outcome(plan, 2)[0] == "rank"


def test_a_minimum_beats_a_better_partial_when_worth_more() -> None:
    # 100 hours. A (rank 1, 3 points) needs all 100 or nothing; B (1 point) and C (1 point,
    # worst ranks) need 60 each in full. A alone: 3 points; B + C cannot both fit; so A.
    demands = [
        demand(1, 1, 100.0),
        demand(2, 3, 60.0),
        demand(3, 3, 60.0, fraction=0.5),
    ]
    plan = optimise_awards(demands, [partition("a/gpu", 100.0)], ProgrammeWeights(), months=1)
    assert awarded(plan) == pytest.approx({1: 100.0, 2: 0.0, 3: 0.0})
    # With 190 hours: A and B in full (4 points), and C at its 30-hour minimum (0.5).
    plan = optimise_awards(demands, [partition("a/gpu", 190.0)], ProgrammeWeights(), months=1)
    assert awarded(plan) == pytest.approx({1: 100.0, 2: 60.0, 3: 30.0})


def test_lines_only_on_eligible_partitions_and_in_the_period() -> None:
    demands = [demand(1, 1, 90.0, parts=("b/gpu",), first=1, last=3)]
    parts = [partition("a/gpu", *[1000.0] * 6), partition("b/gpu", *[1000.0] * 6)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=6)
    assert awarded(plan) == pytest.approx({1: 90.0})
    assert {line.partition_id for line in plan.lines} == {"b/gpu"}
    assert {line.month for line in plan.lines} <= {1, 2, 3}
    assert all(line.site_id == "b" for line in plan.lines)
    assert_feasible(plan, demands, parts, 6)


def test_a_project_cannot_take_its_request_in_one_month() -> None:
    # 12-month period, capacity only in month 0: at most 2 x 1200/12 = 200 hours.
    demands = [demand(1, 1, 1200.0, fraction=0.05, last=11)]
    parts = [partition("a/gpu", 5000.0, *[0.0] * 11)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=12)
    assert awarded(plan) == pytest.approx({1: 200.0})
    assert outcome(plan, 1)[0] == "capacity"
    tighter = optimise_awards(demands, parts, ProgrammeWeights(spread_factor=1.0), months=12)
    assert awarded(tighter) == pytest.approx({1: 100.0})


def test_industrial_and_critical_weights_change_who_wins() -> None:
    demands = [
        demand(1, 1, 100.0),
        demand(2, 2, 100.0, industrial=True, critical=True, kind="startup"),
    ]
    parts = [partition("a/gpu", 100.0)]
    # Default: 1 + 2 (rank 1) = 3 against 1 + 0.5 + 0.5 + 0.25 = 2.25.
    assert awarded(optimise_awards(demands, parts, ProgrammeWeights(), months=1))[1] == 100.0
    policy = ProgrammeWeights(industrial=1.0, critical_domain=1.0)  # 3.25 against 3
    assert awarded(optimise_awards(demands, parts, policy, months=1))[2] == 100.0
    # Greedy follows the ranking whatever the weights.
    assert awarded(greedy_awards(demands, parts, months=1))[1] == 100.0


def test_per_request_value_favours_many_small_proposals_unless_told_otherwise() -> None:
    demands = [demand(1, 1, 100.0), demand(2, 2, 50.0), demand(3, 3, 50.0)]
    parts = [partition("a/gpu", 100.0)]
    # Rank weight 1.9: the best is worth 2.9 points, the two small ones 1.95 + 1 = 2.95.
    shares = optimise_awards(demands, parts, ProgrammeWeights(rank=1.9), months=1)
    assert awarded(shares) == pytest.approx({1: 0.0, 2: 50.0, 3: 50.0})
    hours = optimise_awards(
        demands, parts, ProgrammeWeights(rank=1.9, request_exponent=0), months=1
    )
    assert awarded(hours) == pytest.approx({1: 100.0, 2: 0.0, 3: 0.0})


def test_preferred_site_breaks_a_tie() -> None:
    demands = [demand(1, 1, 100.0, parts=("a/gpu", "b/gpu"), preferred=("b",))]
    parts = [partition("a/gpu", 100.0), partition("b/gpu", 100.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    assert {line.partition_id for line in plan.lines} == {"b/gpu"}
    greedy = greedy_awards(demands, parts, months=1)
    assert {line.partition_id for line in greedy.lines} == {"b/gpu"}


def test_reasons_capacity_rank_and_constraint() -> None:
    demands = [
        demand(1, 1, 300.0, fraction=0.1, last=1),  # only 200 free at all: capacity
        demand(2, 2, 50.0, parts=("z/none",)),  # no eligible partition: constraint
        demand(3, 3, 50.0, first=5, last=6),  # period outside the 2-month horizon
        demand(4, 4, 120.0, fraction=0.1, last=11, parts=("b/gpu",)),  # spread cap
        demand(5, 5, 500.0, fraction=0.1),  # proposal 1 is worth more per hour: rank
    ]
    parts = [partition("a/gpu", 100.0, 100.0), partition("b/gpu", 1000.0, 1000.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=2)
    assert awarded(plan) == pytest.approx({1: 200.0, 2: 0.0, 3: 0.0, 4: 40.0, 5: 0.0})
    assert outcome(plan, 1)[0] == "capacity"
    assert outcome(plan, 2) == ("constraint", outcome(plan, 2)[1])
    assert "hardware and residency" in outcome(plan, 2)[1]
    assert "outside the horizon" in outcome(plan, 3)[1] and outcome(plan, 3)[0] == "constraint"
    assert outcome(plan, 4)[0] == "constraint" and "At most 40 GPU-hours" in outcome(plan, 4)[1]
    assert outcome(plan, 5)[0] == "rank"
    greedy = greedy_awards(demands, parts, months=2)
    assert [o.reason for o in greedy.outcomes] == [o.reason for o in plan.outcomes]
    assert "better-ranked" in outcome(greedy, 5)[1]


def test_country_balance_penalty() -> None:
    # DE's proposal can use the big partition; FR's only a small one. DE asks half the
    # hours, so gets at most 62.5% of the total before the penalty bites.
    demands = [
        demand(1, 1, 100.0, fraction=0.1, parts=("a/gpu", "b/gpu")),
        demand(2, 2, 100.0, fraction=0.1, parts=("b/gpu",), country="FR"),
    ]
    parts = [partition("a/gpu", 1000.0), partition("b/gpu", 20.0)]
    free = optimise_awards(demands, parts, ProgrammeWeights(country_balance=0.0), months=1)
    assert awarded(free) == pytest.approx({1: 100.0, 2: 20.0})
    strict = ProgrammeWeights(country_balance=100.0, country_tolerance=0.0)
    plan = optimise_awards(demands, parts, strict, months=1)
    # DE's share may not pass FR's 20 hours: it is held at 20, the rest of a/gpu idle.
    assert awarded(plan) == pytest.approx({1: 20.0, 2: 20.0})
    reason, why = outcome(plan, 1)
    assert reason == "constraint" and why.startswith("Country balance: DE")


def test_months_outside_a_partitions_series_have_no_capacity() -> None:
    demands = [demand(1, 1, 100.0, fraction=0.1, last=3)]
    plan = optimise_awards(demands, [partition("a/gpu", 30.0)], ProgrammeWeights(), months=4)
    assert awarded(plan) == pytest.approx({1: 30.0})


def test_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput, match="min_award_fraction"):
        demand(1, 1, 10.0, fraction=0.0)
    with pytest.raises(InvalidInput, match="last_month"):
        demand(1, 1, 10.0, first=3, last=2)
    with pytest.raises(InvalidInput, match="unique"):
        optimise_awards([demand(1, 1, 1.0), demand(1, 2, 1.0)], [partition("a/gpu", 1.0)], months=1)
    with pytest.raises(InvalidInput, match="spread_factor"):
        ProgrammeWeights(spread_factor=0.5)


def test_an_empty_round() -> None:
    plan = optimise_awards([], [partition("a/gpu", 10.0)], ProgrammeWeights(), months=1)
    assert plan.lines == () and plan.outcomes == () and plan.objective_value == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_optimiser_beats_greedy_on_synthetic_rounds(seed: int) -> None:
    rnd = synthetic_round(60 + 20 * seed, seed=seed, months=6)
    demands, parts = list(rnd.demands), list(rnd.partitions)
    weights = ProgrammeWeights(request_exponent=[1.0, 0.0, 0.5][seed % 3])
    plan = optimise_awards(demands, parts, weights, months=rnd.months)
    greedy = greedy_awards(demands, parts, months=rnd.months, weights=weights)
    assert_feasible(plan, demands, parts, rnd.months)
    assert_feasible(greedy, demands, parts, rnd.months)
    assert plan.status == "optimal" and plan.mip_gap is not None and plan.mip_gap <= 1e-4
    assert plan.objective_value >= greedy.objective_value - 1e-6 * abs(greedy.objective_value)
    # The reported objective is the one compare computes from the lines.
    table = compare(plan, greedy, demands, parts, weights, months=rnd.months)
    assert table.a.objective_value == pytest.approx(plan.objective_value)
    assert table.gain_percent >= -1e-4
    for outcome_ in plan.outcomes:
        if outcome_.awarded < outcome_.requested - TOL:
            assert outcome_.reason in {"capacity", "rank", "constraint"} and outcome_.explanation


def test_optimal_on_a_round_that_needs_branching() -> None:
    # Several proposals compete for leftovers they cannot use below their minimum: the
    # plan must match an exhaustive search over who is funded.
    rng = np.random.default_rng(3)
    demands = [
        demand(i, i, float(rng.integers(20, 80)), fraction=float(rng.choice([0.5, 0.8, 1.0])))
        for i in range(1, 9)
    ]
    parts = [partition("a/gpu", 170.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    assert_feasible(plan, demands, parts, 1)
    best = _exhaustive(demands, 170.0, ProgrammeWeights())
    assert plan.objective_value == pytest.approx(best, abs=1e-6)


def _exhaustive(demands: list[ProposalDemand], capacity: float, weights: ProgrammeWeights) -> float:
    """One partition, one month: for each funded set, fill by value per hour."""
    worst = max(d.rank for d in demands)
    value = [weights.proposal_value(d, worst) / d.requested_gpu_hours for d in demands]
    best = 0.0
    for mask in range(1 << len(demands)):
        chosen = [i for i in range(len(demands)) if mask >> i & 1]
        need = sum(demands[i].requested_gpu_hours * demands[i].min_award_fraction for i in chosen)
        if need > capacity:
            continue
        left, total = capacity - need, 0.0
        for i in sorted(chosen, key=lambda i: -value[i]):
            d = demands[i]
            extra = min(left, d.requested_gpu_hours * (1 - d.min_award_fraction))
            left -= extra
            total += value[i] * (d.requested_gpu_hours * d.min_award_fraction + extra)
        best = max(best, total)
    return best


def test_time_limit_still_gives_a_feasible_plan() -> None:
    rnd = synthetic_round(400, seed=11, months=12)
    plan = optimise_awards(
        rnd.demands, rnd.partitions, ProgrammeWeights(), months=12, time_limit_s=0.001
    )
    assert plan.status in {"optimal", "time_limit"}
    assert_feasible(plan, list(rnd.demands), list(rnd.partitions), 12)


def test_compare_fairness_measures() -> None:
    assert jain_index(np.array([0.5, 0.5, 0.5])) == pytest.approx(1.0)
    assert jain_index(np.array([1.0, 0.0, 0.0, 0.0])) == pytest.approx(0.25)
    demands = [
        demand(1, 1, 100.0, kind="startup", country="DE"),
        demand(2, 2, 100.0, kind="academia", country="FR"),
    ]
    parts = [partition("a/gpu", 100.0)]
    plan = optimise_awards(demands, parts, ProgrammeWeights(), months=1)
    nothing = dataclasses.replace(plan, lines=(), objective_value=0.0)
    table = compare(plan, nothing, demands, parts, ProgrammeWeights())
    assert table.a.share_by_kind == {"academia": 0.0, "startup": 1.0}
    assert table.a.jain_countries == pytest.approx(0.5)
    assert (table.a.funded, table.a.partial, table.a.unfunded) == (1, 0, 1)
    assert table.a.unused_gpu_hours == pytest.approx(0.0)
    assert table.b.unused_percent == pytest.approx(100.0)
    labels = [row[0] for row in table.table_rows()]
    assert "objective (points)" in labels and "unused capacity" in labels


def test_a_budget_line_caps_its_partitions_over_the_whole_horizon() -> None:
    # a and b share a 300 GPU-hour line over 12 months; c has no line. Three-month proposals
    # must be able to use all of the line (an even split over 12 months would give 75).
    line = BudgetLine("pool", ("a/gpu", "b/gpu"), 300.0)
    parts = [
        partition("a/gpu", *[100.0] * 12),
        partition("b/gpu", *[100.0] * 12),
        partition("c/gpu", *[50.0] * 12),
    ]
    demands = [
        demand(1, 1, 200.0, fraction=0.5, parts=("a/gpu", "b/gpu"), first=0, last=2),
        demand(2, 2, 200.0, fraction=0.5, parts=("a/gpu", "b/gpu"), first=3, last=5),
        demand(3, 3, 120.0, fraction=0.5, parts=("a/gpu", "b/gpu", "c/gpu"), first=0, last=2),
    ]
    for plan in (
        optimise_awards(demands, parts, ProgrammeWeights(), months=12, budget_lines=[line]),
        greedy_awards(demands, parts, months=12, budget_lines=[line]),
    ):
        assert_feasible(plan, demands, parts, 12)
        on_line = sum(x.gpu_hours for x in plan.lines if x.partition_id != "c/gpu")
        assert on_line == pytest.approx(300.0, abs=TOL), plan.solver
        got = awarded(plan)
        assert got[1] == pytest.approx(200.0, abs=TOL)  # the best rank is funded in full
        assert 100.0 - TOL <= got[2] <= 100.0 + TOL  # the line's rest, at its minimum
        assert got[3] == pytest.approx(120.0, abs=TOL)  # fully, on c (outside the line)
        assert "pool: 300" in plan.objective_text
    table = compare(
        optimise_awards(demands, parts, ProgrammeWeights(), months=12, budget_lines=[line]),
        greedy_awards(demands, parts, months=12, budget_lines=[line]),
        demands,
        parts,
        months=12,
        budget_lines=[line],
    )
    assert table.a.capacity_gpu_hours == pytest.approx(300.0 + 600.0)  # line + c's 12 x 50


def test_budget_lines_are_checked() -> None:
    parts = [partition("a/gpu", 10.0)]
    with pytest.raises(InvalidInput, match="two budget lines"):
        optimise_awards(
            [demand(1, 1, 5.0)],
            parts,
            months=1,
            budget_lines=[BudgetLine("x", ("a/gpu",), 1.0), BudgetLine("y", ("a/gpu",), 1.0)],
        )
    with pytest.raises(InvalidInput, match="negative"):
        BudgetLine("x", ("a/gpu",), -1.0)
