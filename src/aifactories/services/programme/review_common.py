"""What the peer-review services share: the review statuses, the text and cut-off checks, a
peer-reviewed call, the queries of a call's proposals and their reviews, and telling the
programme operators.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import UserRow
from aifactories.db.programme_models import CallRow, ProposalRow, ReviewRow
from aifactories.domain.errors import Conflict, InvalidInput
from aifactories.programme.modes import CallRules, ReviewKind, criteria_weights_normalised
from aifactories.programme.states import ProposalStatus
from aifactories.services.notifications.audit import parse_time
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.calls import call_by_ref, iso, rules_of

S = ProposalStatus
MAX_TEXT = 20_000
# the proposals a panel ranks: those that went to peer review and were not withdrawn
REVIEWED = (S.UNDER_REVIEW.value, S.ACCEPTED.value, S.REJECTED.value, S.AWARDED.value)


class ReviewStatus(StrEnum):
    ASSIGNED = "assigned"
    SUBMITTED = "submitted"
    DECLINED = "declined"


R = ReviewStatus
OPEN = (R.ASSIGNED.value, R.SUBMITTED.value)  # a reviewer's load; declined ones do not count


def required_text(value: str | None, field: str, hint: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(field, f"is required: {hint}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(field, "is too long", f"at most {MAX_TEXT} characters")
    return text


def peer_call(session: Session, call_ref: str, *, lock: bool = False) -> CallRow:
    call = call_by_ref(session, call_ref)
    if lock:
        session.refresh(call, with_for_update=True)
    if rules_of(call).review is not ReviewKind.PEER:
        raise Conflict(
            f"call {call.code} is {rules_of(call).title}: its proposals are not peer reviewed "
            "(peer review is for Large Scale and AI for Science calls)"
        )
    return call


def call_cutoff(call: CallRow, value: float | str | None) -> float | None:
    """One of the call's cut-offs (or its closing time) from epoch seconds, an ISO time, or
    an ISO date when the call has one cut-off that day; None: every cut-off."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    when = float(value) if not isinstance(value, str) else parse_time(value, "cutoff_at")
    assert when is not None
    known = sorted({*call.cutoffs, call.closes_at})
    for cut in known:
        if abs(cut - when) < 1.0:
            return cut
    if isinstance(value, str) and len(value.strip()) == 10:  # a date: that day's cut-off
        same_day = [c for c in known if when <= c < when + 86400]
        if len(same_day) == 1:
            return same_day[0]
    raise InvalidInput(
        "cutoff_at",
        f"{value} is no cut-off of call {call.code}",
        ", ".join(iso(c) for c in known),
    )


def _operators(session: Session) -> list[int]:
    return list(session.scalars(select(UserRow.id).where(UserRow.is_operator).order_by(UserRow.id)))


def tell_operators(
    session: Session, now: float, event: str, subject: str, body: str, payload: dict[str, Any]
) -> None:
    for user_id in _operators(session):
        notify_user(
            session, at=now, user_id=user_id, event=event, subject=subject, body=body,
            payload=payload,
        )  # fmt: skip


def criteria_json(rules: CallRules) -> list[dict[str, Any]]:
    weights = criteria_weights_normalised(rules.criteria)
    return [
        {"name": c.name, "weight": c.weight, "normalised_weight": round(weights[c.name], 6)}
        for c in rules.criteria
    ]


def username_of(session: Session, user_id: int) -> str:
    user = session.get(UserRow, user_id)
    return user.username if user else f"user {user_id}"


def usernames_of(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """``username_of`` for many users in one query (a list would ask once per row)."""
    ids = set(user_ids)
    found: dict[int, str] = {}
    if ids:
        found = {
            i: name
            for i, name in session.execute(
                select(UserRow.id, UserRow.username).where(UserRow.id.in_(ids))
            )
        }
    return {i: found.get(i, f"user {i}") for i in ids}


def proposals_of(
    session: Session, call: CallRow, cutoff: float | None, statuses: Iterable[str], lock: bool
) -> list[ProposalRow]:
    query = select(ProposalRow).where(
        ProposalRow.call_id == call.id,
        ProposalRow.status.in_(list(statuses)),
        ProposalRow.cutoff_at.is_not(None),
    )
    if cutoff is not None:
        query = query.where(ProposalRow.cutoff_at == cutoff)
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query.order_by(ProposalRow.id)))


def reviews_of(session: Session, proposal_ids: Sequence[int]) -> dict[int, list[ReviewRow]]:
    out: dict[int, list[ReviewRow]] = defaultdict(list)
    if proposal_ids:
        for row in session.scalars(
            select(ReviewRow)
            .where(ReviewRow.proposal_id.in_(list(proposal_ids)))
            .order_by(ReviewRow.id)
        ):
            out[row.proposal_id].append(row)
    return out
