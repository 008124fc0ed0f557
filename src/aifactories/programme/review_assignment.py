"""Who reviews which proposal: N reviewers per proposal (the call's ``reviewers_per_proposal``),
never one with a conflict of interest, domain experts first, the load spread evenly. Pure: the
service gives the proposals, the pool and the declared conflicts; this returns the plan and,
per proposal it could not fill, the shortfall and why.

Conflicts of interest (any one excludes the reviewer from the proposal):

- the reviewer is the proposal's PI or one of its team members;
- the reviewer's organisation is the applicant organisation;
- the reviewer declared a conflict with the applicant organisation, or with this proposal;
- with the call's rule ``same_country_conflict``: the reviewer's organisation is in the
  applicant organisation's country.

A reviewer already on the proposal (assigned or submitted) is not asked twice, and one who
declined it is not asked again.

How the plan is chosen (a small linear programme, solved with HiGHS). Per proposal the
reviewers are independent of one another (a reviewer has no capacity limit), so two of the
three aims can always be met in full: every slot that has an eligible reviewer is filled, and
each proposal gets as many domain experts as it can have (experts first, then the others).
What is left is *which* eligible experts and non-experts, and that is where the load comes
in: the plan minimises the sum of the squares of the reviewers' loads (their open reviews
before this run plus the new ones), which makes the loads as even as the conflicts allow.
The squares are written as a convex piecewise-linear cost (the k-th review of a reviewer who
had L costs 2(L+k)-1), so the model is a min-cost flow: its constraint matrix is totally
unimodular, and the simplex method returns a 0/1 vertex without any integer branching.
The lexicographic order of the aims is kept by weights: a filled slot and an expert are each
worth more than the largest change of load cost one review can make. Remaining ties go to
the reviewer listed first (a tiny cost by position, less than 1 in total), then to HiGHS,
which is deterministic: the same input gives the same plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import highspy
import numpy as np

from aifactories.domain.errors import AifError
from aifactories.scheduling.lp_solver import new_highs


class Exclusion(StrEnum):
    """Why a reviewer may not (or will not again) review a proposal."""

    TEAM = "team"
    SAME_ORGANISATION = "same_organisation"
    DECLARED_ORGANISATION = "declared_organisation"
    DECLARED_PROPOSAL = "declared_proposal"
    SAME_COUNTRY = "same_country"
    ALREADY_REVIEWING = "already_reviewing"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_conflict(self) -> bool:
        """A conflict of interest (the others are only 'not asked again')."""
        return self not in (Exclusion.ALREADY_REVIEWING, Exclusion.DECLINED)


_LABELS = {
    Exclusion.TEAM: "the PI or a team member",
    Exclusion.SAME_ORGANISATION: "of the applicant organisation",
    Exclusion.DECLARED_ORGANISATION: "declared a conflict with the applicant organisation",
    Exclusion.DECLARED_PROPOSAL: "declared a conflict with this proposal",
    Exclusion.SAME_COUNTRY: "in the applicant's country (the call's same_country_conflict rule)",
    Exclusion.ALREADY_REVIEWING: "already reviewing it",
    Exclusion.DECLINED: "declined it",
}


@dataclass(frozen=True, slots=True)
class ReviewerProfile:
    """A reviewer of the pool (active ones only) with their open reviews before this run."""

    user_id: int
    organisation_id: int | None
    country: str | None  # their organisation's country
    expertise: frozenset[str]
    load: int = 0


@dataclass(frozen=True, slots=True)
class ProposalProfile:
    proposal_id: int
    organisation_id: int
    country: str  # the applicant organisation's country
    domain: str
    team: frozenset[int]  # the PI and the team members (user ids)
    reviewers: frozenset[int] = frozenset()  # assigned or submitted already
    declined: frozenset[int] = frozenset()  # declined: never asked again


@dataclass(frozen=True, slots=True)
class DeclaredConflict:
    """A reviewer's declared conflict: with an organisation, or with one proposal."""

    reviewer_id: int
    organisation_id: int | None = None
    proposal_id: int | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    proposal_id: int
    reviewer_id: int
    expert: bool  # the reviewer's expertise includes the proposal's domain


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A proposal left with fewer reviewers than the call asks for, and why."""

    proposal_id: int
    wanted: int  # the call's reviewers_per_proposal
    reviewers: int  # after this run (the ones it had plus the new ones)
    excluded: dict[Exclusion, int]  # pool members left out, by their first reason
    reason: str

    @property
    def missing(self) -> int:
        return self.wanted - self.reviewers


@dataclass(frozen=True, slots=True)
class AssignmentPlan:
    assignments: tuple[Assignment, ...]
    shortfalls: tuple[Shortfall, ...]
    loads: dict[int, int] = field(default_factory=dict)  # reviewer -> open reviews after


class AssignmentSolverError(AifError):
    code = "assignment_solver_error"


@dataclass(frozen=True)
class _Conflicts:
    organisations: frozenset[tuple[int, int]]  # (reviewer, organisation)
    proposals: frozenset[tuple[int, int]]  # (reviewer, proposal)

    @classmethod
    def of(cls, declared: Iterable[DeclaredConflict]) -> _Conflicts:
        orgs, props = set(), set()
        for c in declared:
            if c.organisation_id is not None:
                orgs.add((c.reviewer_id, c.organisation_id))
            if c.proposal_id is not None:
                props.add((c.reviewer_id, c.proposal_id))
        return cls(frozenset(orgs), frozenset(props))


def exclusions(
    proposal: ProposalProfile,
    reviewer: ReviewerProfile,
    declared: Iterable[DeclaredConflict] | _Conflicts = (),
    *,
    same_country_conflict: bool = False,
) -> tuple[Exclusion, ...]:
    """Every reason why ``reviewer`` may not be given ``proposal`` (empty: they may)."""
    conflicts = declared if isinstance(declared, _Conflicts) else _Conflicts.of(declared)
    r = reviewer.user_id
    out: list[Exclusion] = []
    if r in proposal.team:
        out.append(Exclusion.TEAM)
    if (
        reviewer.organisation_id is not None
        and reviewer.organisation_id == proposal.organisation_id
    ):
        out.append(Exclusion.SAME_ORGANISATION)
    if (r, proposal.organisation_id) in conflicts.organisations:
        out.append(Exclusion.DECLARED_ORGANISATION)
    if (r, proposal.proposal_id) in conflicts.proposals:
        out.append(Exclusion.DECLARED_PROPOSAL)
    if (
        same_country_conflict
        and reviewer.country is not None
        and reviewer.country.upper() == proposal.country.upper()
    ):
        out.append(Exclusion.SAME_COUNTRY)
    if r in proposal.reviewers:
        out.append(Exclusion.ALREADY_REVIEWING)
    if r in proposal.declined:
        out.append(Exclusion.DECLINED)
    return tuple(out)


def assign_reviewers(
    proposals: Sequence[ProposalProfile],
    reviewers: Sequence[ReviewerProfile],
    declared: Iterable[DeclaredConflict] = (),
    *,
    per_proposal: int,
    same_country_conflict: bool = False,
) -> AssignmentPlan:
    """Assign reviewers so that each proposal has ``per_proposal`` (counting the ones it has):
    see the module docstring for the rules and the model. Reviewers are taken in the order
    given for ties; give them in a stable order (by user id) for a stable plan."""
    if per_proposal < 1:
        raise ValueError("per_proposal must be at least 1")
    conflicts = _Conflicts.of(declared)
    pairs: list[tuple[int, int, bool]] = []  # (proposal index, reviewer index, expert)
    need: list[int] = []
    excluded: list[Counter[Exclusion]] = []
    for pi, proposal in enumerate(proposals):
        need.append(max(0, per_proposal - len(proposal.reviewers)))
        counts: Counter[Exclusion] = Counter()
        for ri, reviewer in enumerate(reviewers):
            why = exclusions(
                proposal, reviewer, conflicts, same_country_conflict=same_country_conflict
            )
            if why:
                counts[why[0]] += 1
            elif need[pi] > 0:
                pairs.append((pi, ri, proposal.domain in reviewer.expertise))
        excluded.append(counts)

    chosen = _solve(pairs, need, [r.load for r in reviewers]) if pairs else []
    assignments = tuple(
        Assignment(proposals[pi].proposal_id, reviewers[ri].user_id, expert)
        for pi, ri, expert in sorted(chosen, key=lambda c: (c[0], c[1]))
    )
    got = Counter(a.proposal_id for a in assignments)
    shortfalls = []
    for pi, proposal in enumerate(proposals):
        have = len(proposal.reviewers) + got[proposal.proposal_id]
        if have < per_proposal:
            shortfalls.append(
                _shortfall(proposal, per_proposal, have, excluded[pi], len(reviewers))
            )
    loads = {r.user_id: r.load for r in reviewers}
    for a in assignments:
        loads[a.reviewer_id] += 1
    return AssignmentPlan(assignments, tuple(shortfalls), loads)


def _shortfall(
    proposal: ProposalProfile, wanted: int, have: int, counts: Counter[Exclusion], pool: int
) -> Shortfall:
    parts = [f"{n} {kind.label}" for kind, n in sorted(counts.items(), key=lambda kv: kv[0].value)]
    if pool == 0:
        why = "the reviewer pool has no active reviewer"
    else:
        why = f"every other reviewer of the pool ({pool} active) is left out: {', '.join(parts)}"
    reason = (
        f"{have} of {wanted} reviewers; {why}. Add reviewers of other organisations and "
        "countries to the pool ('aif reviews pool add'), then assign again"
    )
    return Shortfall(proposal.proposal_id, wanted, have, dict(counts), reason)


def _solve(
    pairs: list[tuple[int, int, bool]], need: list[int], loads: list[int]
) -> list[tuple[int, int, bool]]:
    """The min-cost flow of the module docstring, as an LP for HiGHS."""
    n_x = len(pairs)
    p_of = np.array([p for p, _, _ in pairs], dtype=np.int64)
    r_of = np.array([r for _, r, _ in pairs], dtype=np.int64)
    expert = np.array([e for _, _, e in pairs], dtype=np.float64)
    reviewers_used = np.unique(r_of)
    n_p = len(need)
    row_of_r = {int(r): n_p + i for i, r in enumerate(reviewers_used)}
    # the k-th new review of reviewer r (k = 1..pairs of r) costs 2 (load + k) - 1
    per_r = Counter(int(r) for r in r_of)
    y_r = np.concatenate([np.full(per_r[int(r)], r, dtype=np.int64) for r in reviewers_used])
    y_k = np.concatenate([np.arange(1, per_r[int(r)] + 1) for r in reviewers_used])
    load = np.asarray(loads, dtype=np.float64)
    y_cost = 2.0 * (load[y_r] + y_k) - 1.0
    biggest_step = float(y_cost.max())
    weight = biggest_step + 1.0  # a filled slot, and an expert, outweigh any one load step
    slots = max(1, sum(need))
    n_reviewers = max(1, len(loads))
    tie = r_of / (n_reviewers * (slots + 1.0))  # < 1 over any plan: only breaks exact ties
    x_cost = -(weight + weight * expert) + tie

    n_y = y_r.size
    n_cols = n_x + n_y
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_p + reviewers_used.size
    lp.col_cost_ = np.concatenate([x_cost, y_cost])
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.ones(n_cols)
    # rows: per proposal, new reviewers <= need; per reviewer, new reviews - sum of y = 0
    lp.row_lower_ = np.concatenate([np.full(n_p, -inf), np.zeros(reviewers_used.size)])
    lp.row_upper_ = np.concatenate(
        [np.asarray(need, dtype=np.float64), np.zeros(reviewers_used.size)]
    )
    x_rows = np.stack([p_of, np.array([row_of_r[int(r)] for r in r_of], dtype=np.int64)], 1)
    y_rows = np.array([row_of_r[int(r)] for r in y_r], dtype=np.int64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate(
        [np.arange(0, 2 * n_x, 2), 2 * n_x + np.arange(n_y + 1)]
    ).astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate([x_rows.reshape(-1), y_rows]).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate([np.ones(2 * n_x), -np.ones(n_y)])
    lp.sense_ = highspy.ObjSense.kMinimize

    highs = new_highs(solver="simplex")
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise AssignmentSolverError(
            f"HiGHS could not solve the reviewer assignment ({n_x} candidate pairs): "
            f"{highs.modelStatusToString(status)}"
        )
    x = np.asarray(highs.getSolution().col_value, dtype=np.float64)[:n_x]
    picked = np.rint(x)
    if np.abs(x - picked).max(initial=0.0) > 1e-6:  # cannot happen for a TU matrix
        raise AssignmentSolverError("the reviewer assignment LP returned a fractional plan")
    return [pairs[i] for i in np.flatnonzero(picked > 0.5)]
