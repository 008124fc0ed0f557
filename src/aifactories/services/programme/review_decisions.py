"""The panel of a peer-reviewed call: the ranking of its proposals within their cut-off, and
the decisions (by the operator, or by the call's min_average_score), stored with the score and
the rank, audited, and told to the applicant.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import OrganisationRow
from aifactories.db.programme_models import CallRow, ProposalRow, ReviewRow
from aifactories.domain.errors import Conflict, InvalidInput, InvalidTransition
from aifactories.programme.modes import CallRules
from aifactories.programme.ranking import (
    ProposalReviews,
    RankedProposal,
    rank_proposals,
    review_score,
)
from aifactories.programme.states import ProposalStatus, check_transition
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.calls import iso, rules_of
from aifactories.services.programme.review_common import (
    REVIEWED,
    R,
    S,
    call_cutoff,
    criteria_json,
    peer_call,
    proposals_of,
    required_text,
    reviews_of,
    usernames_of,
)


class Outcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


@dataclass(frozen=True)
class Decision:
    """An operator's decision on one proposal."""

    proposal_id: int
    outcome: str
    reason: str


# --------------------------------------------------------------------------- ranking


def _rank(
    proposals: Sequence[ProposalRow], reviews: dict[int, list[ReviewRow]], rules: CallRules
) -> dict[int, RankedProposal]:
    """Ranks within each cut-off: proposals compete with those of their own cut-off."""
    groups: dict[float | None, list[ProposalRow]] = defaultdict(list)
    for p in proposals:
        groups[p.cutoff_at].append(p)
    out: dict[int, RankedProposal] = {}
    for members in groups.values():
        items = [
            ProposalReviews(
                p.id,
                p.submitted_at,
                tuple(r.scores for r in reviews[p.id] if r.status == R.SUBMITTED.value),
            )
            for p in members
        ]
        out.update({r.proposal_id: r for r in rank_proposals(items, rules.criteria)})
    return out


def panel_ranking(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """The call's reviewed proposals (one cut-off, or all), ranked within their cut-off,
    with each one's score, spread, reviews in and missing, and who reviews it."""
    require_programme_operator(principal, "read the panel's ranking")
    with ctx.reads() as session:
        call = peer_call(session, call_ref)
        rules = rules_of(call)
        cutoff = call_cutoff(call, cutoff_at)
        proposals = proposals_of(session, call, cutoff, REVIEWED, lock=False)
        reviews = reviews_of(session, [p.id for p in proposals])
        ranked = _rank(proposals, reviews, rules)
        orgs = {o.id: o.name for o in session.scalars(select(OrganisationRow))}
        names = usernames_of(session, {x.reviewer_id for rs in reviews.values() for x in rs})
        entries = []
        for p in proposals:
            r = ranked[p.id]
            counts = Counter(x.status for x in reviews[p.id])
            entries.append(
                {
                    "proposal_id": p.id,
                    "title": p.title,
                    "organisation": orgs.get(p.organisation_id, ""),
                    "domain": p.domain,
                    "status": p.status,
                    "cutoff_at": p.cutoff_at,
                    "submitted_at": p.submitted_at,
                    "rank": r.rank,
                    "score": r.score,
                    "spread": r.spread,
                    "reviews": r.reviews,
                    "assigned": counts[R.ASSIGNED.value],
                    "declined": counts[R.DECLINED.value],
                    "missing": max(0, rules.reviewers_per_proposal - r.reviews),
                    "reviewers": [
                        {
                            "review_id": x.id,
                            "reviewer": names[x.reviewer_id],
                            "status": x.status,
                            "score": review_score(x.scores, rules.criteria)
                            if x.status == R.SUBMITTED.value
                            else None,
                        }
                        for x in reviews[p.id]
                    ],
                }
            )
        entries.sort(
            key=lambda e: (
                e["cutoff_at"],
                e["rank"] is None,
                e["rank"] or 0,
                e["proposal_id"],
            )
        )
        return {
            "call": call.code,
            "cutoff_at": cutoff,
            "criteria": criteria_json(rules),
            "reviewers_per_proposal": rules.reviewers_per_proposal,
            "min_average_score": rules.min_average_score,
            "entries": entries,
        }


# --------------------------------------------------------------------------- decisions


def _score_text(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def decide(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    *,
    rule: bool = False,
    decisions: Sequence[Decision] = (),
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """Decide proposals under review: each as the operator says (accept or reject, with a
    reason), or all by the call's rule ``min_average_score``: every proposal whose cut-off
    has passed and whose reviews are all in (the call's number submitted, none pending) is
    accepted at or above the minimum and rejected below it. The score and the rank within
    the cut-off are stored with the decision; the applicant is told."""
    require_programme_operator(principal, "decide proposals")
    if rule == bool(decisions):
        raise InvalidInput(
            "decisions",
            "give a decision per proposal (accept or reject, with a reason), or rule: true "
            "to apply the call's min_average_score; one or the other",
        )
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = peer_call(session, call_ref, lock=True)
        rules = rules_of(call)
        cutoff = call_cutoff(call, cutoff_at)
        everyone = proposals_of(session, call, None, REVIEWED, lock=True)
        reviews = reviews_of(session, [p.id for p in everyone])
        ranked = _rank(everyone, reviews, rules)
        by_id = {p.id: p for p in everyone}
        chosen: list[tuple[ProposalRow, Outcome, str, dict[str, Any]]] = []
        skipped: list[dict[str, Any]] = []
        if rule:
            minimum = rules.min_average_score
            if minimum is None:
                raise InvalidInput(
                    "rule",
                    f"call {call.code} has no min_average_score rule; decide each proposal "
                    "with an explicit accept or reject and a reason",
                )
            for p in everyone:
                if p.status != S.UNDER_REVIEW.value or (
                    cutoff is not None and p.cutoff_at != cutoff
                ):
                    continue
                counts = Counter(x.status for x in reviews[p.id])
                submitted, pending = counts[R.SUBMITTED.value], counts[R.ASSIGNED.value]
                assert p.cutoff_at is not None
                if p.cutoff_at > now:
                    skipped.append(
                        {"proposal_id": p.id, "reason": f"its cut-off {iso(p.cutoff_at)} is ahead"}
                    )
                    continue
                if pending or submitted < rules.reviewers_per_proposal:
                    skipped.append(
                        {
                            "proposal_id": p.id,
                            "reason": f"{submitted} of {rules.reviewers_per_proposal} reviews "
                            f"submitted, {pending} pending; wait for them, assign more reviewers "
                            f"('aif reviews assign {call.code}') or decide it yourself",
                        }
                    )
                    continue
                score = ranked[p.id].score
                assert score is not None
                if score >= minimum:
                    outcome = Outcome.ACCEPT
                    why = (
                        f"average score {_score_text(score)} meets the call's minimum "
                        f"{_score_text(minimum)}"
                    )
                else:
                    outcome = Outcome.REJECT
                    why = (
                        f"average score {_score_text(score)} below the call's minimum "
                        f"{_score_text(minimum)}"
                    )
                chosen.append((p, outcome, why, {"by": "rule", "min_average_score": minimum}))
        else:
            seen: set[int] = set()
            for i, d in enumerate(decisions):
                try:
                    outcome = Outcome(str(d.outcome).strip().lower())
                except ValueError:
                    raise InvalidInput(
                        f"decisions[{i}].outcome",
                        f"unknown outcome {d.outcome!r}",
                        "accept or reject",
                    ) from None
                why = required_text(d.reason, f"decisions[{i}].reason", "the applicant reads why")
                p_row = by_id.get(d.proposal_id)
                if p_row is None:
                    raise InvalidInput(
                        f"decisions[{i}].proposal_id",
                        f"proposal {d.proposal_id} is not under peer review in call {call.code}; "
                        f"'aif reviews ranking {call.code}' lists them",
                    )
                if d.proposal_id in seen:
                    raise InvalidInput(
                        f"decisions[{i}].proposal_id",
                        f"proposal {d.proposal_id} is twice in the list",
                    )
                seen.add(d.proposal_id)
                if p_row.status != S.UNDER_REVIEW.value:
                    raise InvalidTransition(
                        f"proposal {p_row.id} is {p_row.status}: it was decided already"
                    )
                if outcome is Outcome.ACCEPT and ranked[p_row.id].reviews == 0:
                    raise Conflict(
                        f"proposal {p_row.id} has no submitted review: accept it once at least "
                        "one review is in (a rejection needs none)"
                    )
                chosen.append((p_row, outcome, why, {"by": "operator"}))

        decided = []
        for p, outcome, why, how in chosen:
            new = S.ACCEPTED if outcome is Outcome.ACCEPT else S.REJECTED
            check_transition(S(p.status), new, p.id)
            r = ranked[p.id]
            p.status = new.value
            p.score = r.score
            p.rank = r.rank
            p.decision_reason = why
            p.decided_at = now
            p.updated_at = now
            record(
                session,
                at=now,
                actor=principal,
                action=f"proposal.{outcome.value}",
                subject=f"proposal:{p.id}",
                reason=why,
                details={
                    "call": call.code,
                    "cutoff_at": p.cutoff_at,
                    "score": r.score,
                    "rank": r.rank,
                    "reviews": r.reviews,
                    **how,
                },
            )
            _tell_applicant(session, now, p, call, new, why, r)
            decided.append(
                {
                    "proposal_id": p.id,
                    "outcome": outcome.value,
                    "status": new.value,
                    "score": r.score,
                    "rank": r.rank,
                    "reviews": r.reviews,
                    "reason": why,
                }
            )
        session.flush()
        return {"call": call.code, "cutoff_at": cutoff, "decided": decided, "skipped": skipped}


def _tell_applicant(
    session: Session,
    now: float,
    row: ProposalRow,
    call: CallRow,
    status: ProposalStatus,
    reason: str,
    ranked: RankedProposal,
) -> None:
    accepted = status is S.ACCEPTED
    score = (
        f"Panel score: {_score_text(ranked.score)} of 10 from {ranked.reviews} review(s), "
        f"rank {ranked.rank} at its cut-off.\n"
        if ranked.score is not None
        else ""
    )
    notify_user(
        session,
        at=now,
        user_id=row.pi_user_id,
        event=f"proposal.{status.value}",
        subject=f"[aifactories] proposal {row.id} "
        + ("accepted after peer review" if accepted else "not accepted after peer review"),
        body=f"Your proposal '{row.title}' to call {call.code} was "
        + ("accepted" if accepted else "not accepted")
        + f" after peer review.\nReason: {reason}\n{score}"
        + "The reviewers' scores and comments (without their names): "
        + f"aif reviews proposal {row.id}\n"
        + ("GPU-hours are awarded after the cut-off's award run.\n" if accepted else ""),
        payload={
            "proposal_id": row.id,
            "status": status.value,
            "reason": reason,
            "score": ranked.score,
            "rank": ranked.rank,
        },
    )
