"""The applicant's pages in words: a proposal's status, domain, access mode and automated
checks as people say them, its history, and the caller's notifications without the
duplicates of one event sent by e-mail and webhook.

Nothing here decides what the caller may read: the pages hand it what the services return
for the signed-in principal (the same calls as the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aifactories.domain.organisations import Domain
from aifactories.programme.modes import AccessMode, ReviewKind, mode_defaults
from aifactories.programme.states import EDITABLE, ProposalStatus
from aifactories.services.notifications.notify_delivery import NotificationView

S = ProposalStatus
STATUS_WORDS = {
    S.DRAFT.value: "draft",
    S.CHECKS_FAILED.value: "automated checks failed",
    S.TECHNICAL_CHECK.value: "waiting for a site's technical check",
    S.REVISION_REQUESTED.value: "revision requested",
    S.UNDER_REVIEW.value: "under peer review",
    S.ACCEPTED.value: "accepted",
    S.AWARDED.value: "awarded",
    S.REJECTED.value: "rejected",
    S.WITHDRAWN.value: "withdrawn",
}
STATUS_NEXT = {
    S.DRAFT.value: "Only you see it. Check it, then submit it: the automated checks run at once.",
    S.CHECKS_FAILED.value: "The automated checks refused it: change what they name, then submit "
    "it again.",
    S.TECHNICAL_CHECK.value: "It passed the automated checks; an operator of a site that can "
    "host it checks it next.",
    S.REVISION_REQUESTED.value: "A site operator asked for changes (see the reason): edit it, "
    "then submit it again.",
    S.UNDER_REVIEW.value: "It passed the automated checks; reviewers score it for the cut-off. "
    "You read the reviews once it is decided.",
    S.ACCEPTED.value: "Accepted: the GPU-hours are granted at the next award round.",
    S.AWARDED.value: "Awarded: its project can run jobs.",
    S.REJECTED.value: "Rejected (see the reason).",
    S.WITHDRAWN.value: "You withdrew it.",
}
DOMAIN_WORDS = {
    Domain.HEALTH.value: "Health",
    Domain.ENERGY.value: "Energy",
    Domain.CLIMATE.value: "Climate",
    Domain.MOBILITY.value: "Mobility",
    Domain.MANUFACTURING.value: "Manufacturing",
    Domain.AGRI_FOOD.value: "Agriculture and food",
    Domain.SECURITY.value: "Security",
    Domain.PUBLIC_SECTOR.value: "Public sector",
    Domain.LANGUAGE.value: "Language",
    Domain.SCIENCE.value: "Science",
    Domain.FINANCE.value: "Finance",
    Domain.MEDIA.value: "Media",
    Domain.EDUCATION.value: "Education",
    Domain.OTHER.value: "Other",
}
CHECK_WORDS = {
    "organisation_kind": "Who may apply",
    "establishment": "Country of establishment",
    "request_within_limits": "GPU-hours within the call's limits",
    "period": "Period",
    "team_size": "Team size",
    "hardware": "Hardware",
    "residency": "Data residency",
    "call_budget": "The call's budget",
}
FINAL = frozenset({S.AWARDED.value, S.REJECTED.value, S.WITHDRAWN.value})
DECIDED = frozenset({S.ACCEPTED.value, S.AWARDED.value, S.REJECTED.value})


def words(table: dict[str, str], value: str | None) -> str:
    """A code in words; a code this table does not know, with its underscores as spaces."""
    if value is None:
        return "-"
    return table.get(value, value.replace("_", " "))


def mode_words(mode: str) -> str:
    try:
        return mode_defaults(AccessMode(mode)).title
    except ValueError:
        return mode.replace("_", " ")


def peer_reviewed(mode: str) -> bool:
    """Whether the calls of this access mode have reviewers (else no Reviews section)."""
    try:
        return mode_defaults(AccessMode(mode)).review is ReviewKind.PEER
    except ValueError:
        return False


def check_words(name: str) -> str:
    return CHECK_WORDS.get(name, name.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Actions:
    """What the signed-in principal may do to a proposal now: the services check again."""

    edit: bool
    submit: bool
    withdraw: bool


def actions_for(proposal: dict[str, Any], username: str) -> Actions:
    """Only the applicant (the PI) edits, submits or withdraws: team members read."""
    mine = proposal["pi"] == username
    editable = mine and S(proposal["status"]) in EDITABLE
    return Actions(
        edit=editable, submit=editable, withdraw=mine and proposal["status"] not in FINAL
    )


@dataclass(frozen=True)
class Moment:
    at: float
    text: str


def history(proposal: dict[str, Any], notes: list[NotificationView]) -> list[Moment]:
    """The proposal's life as its applicant may read it: its own dates, and the messages
    the platform sent about it to the caller."""
    moments = [Moment(proposal["created_at"], "Drafted")]
    if proposal["submitted_at"] is not None:
        moments.append(Moment(proposal["submitted_at"], "Submitted (last time)"))
    if proposal["decided_at"] is not None:
        moments.append(
            Moment(proposal["decided_at"], f"Now {words(STATUS_WORDS, proposal['status'])}")
        )
    for note in notes:
        if note.payload.get("proposal_id") == proposal["id"]:
            moments.append(Moment(note.created_at, subject_words(note.subject)))
    return sorted(moments, key=lambda m: m.at)


def subject_words(subject: str) -> str:
    return subject.removeprefix("[aifactories] ").strip()


@dataclass(frozen=True)
class Notice:
    """One event told to the caller, however many channels carried it."""

    at: float
    event: str
    subject: str
    body: str
    channels: tuple[str, ...]
    delivery: str  # in words: sent / waiting to be sent / could not be sent
    proposal_id: int | None
    project: str | None


_DELIVERY = {"sent": "sent", "pending": "waiting to be sent", "sending": "being sent"}


def notices(views: list[NotificationView]) -> list[Notice]:
    """Newest first; one event sent by e-mail and webhook is one notice."""
    grouped: dict[tuple[float, str, str], list[NotificationView]] = {}
    for view in views:
        grouped.setdefault((view.created_at, view.event, view.subject), []).append(view)
    out = []
    for (at, event, subject), group in grouped.items():
        first = group[0]
        proposal_id = first.payload.get("proposal_id")
        project = first.payload.get("project")
        states = {v.status for v in group}
        delivery = (
            "could not be sent"
            if "failed" in states
            else _DELIVERY.get(sorted(states)[0], sorted(states)[0])
        )
        out.append(
            Notice(
                at=at,
                event=event,
                subject=subject_words(subject),
                body=first.body,
                channels=tuple(
                    sorted({"e-mail" if v.channel == "email" else v.channel for v in group})
                ),
                delivery=delivery,
                proposal_id=proposal_id if isinstance(proposal_id, int) else None,
                project=project if isinstance(project, str) else None,
            )
        )
    return sorted(out, key=lambda n: -n.at)
