"""Assigning reviewers to a peer-reviewed call's proposals under review: the plan itself (no
conflicts of interest, experts first, loads balanced) is programme.review_assignment; this
module reads the pool, the conflicts and the loads, stores the reviews and tells the reviewers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from aifactories.db.models import OrganisationRow, UserRow
from aifactories.db.programme_models import ConflictRow, ProposalRow, ReviewerRow, ReviewRow
from aifactories.programme.review_assignment import (
    DeclaredConflict,
    ProposalProfile,
    ReviewerProfile,
)
from aifactories.programme.review_assignment import assign_reviewers as plan_assignment
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.calls import rules_of
from aifactories.services.programme.review_common import (
    OPEN,
    R,
    S,
    call_cutoff,
    peer_call,
    proposals_of,
    reviews_of,
)

# --------------------------------------------------------------------------- assignment


def assign_reviewers(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    cutoff_at: float | str | None = None,
) -> dict[str, Any]:
    """Give each proposal under review in the call (of one cut-off, or all) the reviewers it
    lacks, avoiding conflicts of interest (see programme.review_assignment). Running it again
    fills the places of declined and withdrawn reviews; a full proposal gets no one."""
    require_programme_operator(principal, "assign reviewers")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = peer_call(session, call_ref, lock=True)
        rules = rules_of(call)
        cutoff = call_cutoff(call, cutoff_at)
        proposals = proposals_of(session, call, cutoff, [S.UNDER_REVIEW.value], lock=False)
        reviews = reviews_of(session, [p.id for p in proposals])
        pool = session.execute(
            select(ReviewerRow, UserRow)
            .join(UserRow, UserRow.id == ReviewerRow.user_id)
            .where(ReviewerRow.active)
            .order_by(UserRow.id)
        ).all()
        countries = dict(session.execute(select(OrganisationRow.id, OrganisationRow.country)).all())
        loads = dict(
            session.execute(
                select(ReviewRow.reviewer_id, func.count())
                .join(ProposalRow, ProposalRow.id == ReviewRow.proposal_id)
                .where(
                    ReviewRow.status.in_(OPEN),
                    ProposalRow.status == S.UNDER_REVIEW.value,
                )
                .group_by(ReviewRow.reviewer_id)
            ).all()
        )
        reviewer_ids = [user.id for _, user in pool]
        declared = [
            DeclaredConflict(c.reviewer_id, c.organisation_id, c.proposal_id)
            for c in session.scalars(
                select(ConflictRow).where(ConflictRow.reviewer_id.in_(reviewer_ids))
            )
        ]
        member_names = {name for p in proposals for name in p.members}
        user_ids = dict(
            session.execute(
                select(UserRow.username, UserRow.id).where(UserRow.username.in_(member_names))
            ).all()
        )
        profiles = [
            ProposalProfile(
                proposal_id=p.id,
                organisation_id=p.organisation_id,
                country=countries.get(p.organisation_id, ""),
                domain=p.domain,
                team=frozenset({p.pi_user_id, *(user_ids[m] for m in p.members if m in user_ids)}),
                reviewers=frozenset(r.reviewer_id for r in reviews[p.id] if r.status in OPEN),
                declined=frozenset(
                    r.reviewer_id for r in reviews[p.id] if r.status == R.DECLINED.value
                ),
            )
            for p in proposals
        ]
        reviewers = [
            ReviewerProfile(
                user_id=user.id,
                organisation_id=user.organisation_id,
                country=countries.get(user.organisation_id) if user.organisation_id else None,
                expertise=frozenset(rev.expertise or ()),
                load=int(loads.get(user.id, 0)),
            )
            for rev, user in pool
        ]
        plan = plan_assignment(
            profiles,
            reviewers,
            declared,
            per_proposal=rules.reviewers_per_proposal,
            same_country_conflict=rules.same_country_conflict,
        )
        names = {user.id: user.username for _, user in pool}
        titles = {p.id: p.title for p in proposals}
        created: list[tuple[ReviewRow, bool]] = []
        for a in plan.assignments:
            row = ReviewRow(
                proposal_id=a.proposal_id,
                reviewer_id=a.reviewer_id,
                status=R.ASSIGNED.value,
                scores={},
                comment="",
                assigned_at=now,
            )
            session.add(row)
            created.append((row, a.expert))
        session.flush()
        for row, expert in created:
            record(
                session,
                at=now,
                actor=principal,
                action="review.assign",
                subject=f"proposal:{row.proposal_id}",
                details={
                    "review_id": row.id,
                    "reviewer": names[row.reviewer_id],
                    "call": call.code,
                    "expert": expert,
                },
            )
        by_reviewer: dict[int, list[ReviewRow]] = defaultdict(list)
        for row, _ in created:
            by_reviewer[row.reviewer_id].append(row)
        for reviewer_id, rows in sorted(by_reviewer.items()):
            lines = "\n".join(
                f"- review {r.id}: proposal {r.proposal_id} '{titles[r.proposal_id]}'" for r in rows
            )
            notify_user(
                session,
                at=now,
                user_id=reviewer_id,
                event="review.assigned",
                subject=f"[aifactories] {len(rows)} proposal(s) of call {call.code} to review",
                body=f"You are asked to review, for call {call.code} ({call.title}):\n{lines}\n"
                "Read them with 'aif reviews list' and 'aif reviews show ID'; score every "
                f"criterion ({', '.join(c.name for c in rules.criteria)}) from 0 to 10 with "
                "'aif reviews score ID --score NAME=VALUE ... --comment TEXT', or decline with "
                "'aif reviews decline ID --reason TEXT'. If you have a conflict of interest, "
                "declare it: 'aif reviews conflict --proposal ID --reason TEXT'.\n",
                payload={"call": call.code, "reviews": [r.id for r in rows]},
            )
        return {
            "call": call.code,
            "cutoff_at": cutoff,
            "reviewers_per_proposal": rules.reviewers_per_proposal,
            "proposals": len(proposals),
            "assigned": [
                {
                    "review_id": row.id,
                    "proposal_id": row.proposal_id,
                    "reviewer": names[row.reviewer_id],
                    "expert": expert,
                }
                for row, expert in created
            ],
            "shortfalls": [
                {
                    "proposal_id": s.proposal_id,
                    "wanted": s.wanted,
                    "reviewers": s.reviewers,
                    "missing": s.missing,
                    "reason": s.reason,
                    "excluded": {k.value: n for k, n in s.excluded.items()},
                }
                for s in plan.shortfalls
            ],
            "loads": {names[uid]: n for uid, n in sorted(plan.loads.items())},
        }
