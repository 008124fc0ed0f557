"""The life of a proposal, as a state machine: every change is checked here."""

from __future__ import annotations

from enum import StrEnum

from aifactories.domain.errors import InvalidTransition


class ProposalStatus(StrEnum):
    DRAFT = "draft"  # editable, visible to its applicant only
    CHECKS_FAILED = "checks_failed"  # automated checks refused it at submission
    TECHNICAL_CHECK = "technical_check"  # waits for a site operator (Fast Lane, Education)
    REVISION_REQUESTED = "revision"  # back to the applicant: edit, then submit again
    UNDER_REVIEW = "under_review"  # peer review (Large Scale, AI for Science)
    ACCEPTED = "accepted"  # decided yes, waits for an award (peer modes)
    AWARDED = "awarded"  # project, members and allocations exist
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


S = ProposalStatus
_ALLOWED: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    S.DRAFT: frozenset(
        {S.CHECKS_FAILED, S.TECHNICAL_CHECK, S.UNDER_REVIEW, S.AWARDED, S.WITHDRAWN}
    ),
    # fixed and submitted again
    S.CHECKS_FAILED: frozenset(
        {S.CHECKS_FAILED, S.TECHNICAL_CHECK, S.UNDER_REVIEW, S.AWARDED, S.WITHDRAWN}
    ),
    S.REVISION_REQUESTED: frozenset(
        {S.CHECKS_FAILED, S.TECHNICAL_CHECK, S.UNDER_REVIEW, S.AWARDED, S.WITHDRAWN}
    ),
    S.TECHNICAL_CHECK: frozenset({S.AWARDED, S.REJECTED, S.REVISION_REQUESTED, S.WITHDRAWN}),
    S.UNDER_REVIEW: frozenset({S.ACCEPTED, S.REJECTED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.AWARDED, S.REJECTED, S.WITHDRAWN}),
    S.AWARDED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

EDITABLE = frozenset({S.DRAFT, S.CHECKS_FAILED, S.REVISION_REQUESTED})
DECIDED = frozenset({S.AWARDED, S.REJECTED, S.WITHDRAWN, S.ACCEPTED})


def check_transition(current: ProposalStatus, new: ProposalStatus, proposal_id: int) -> None:
    if new not in _ALLOWED[current]:
        raise InvalidTransition(
            f"proposal {proposal_id} is {current.value}: it cannot become {new.value}"
        )


class CallStatus(StrEnum):
    OPEN = "open"  # takes submissions
    CLOSED = "closed"  # no more submissions; reviews and awards may go on
