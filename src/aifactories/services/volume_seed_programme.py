"""The access programme's part of the volume seed (services/volume_seed.py): calls of every
access mode, proposals in every state their mode allows, and what each state implies: the
automated checks once submitted, a site operator's technical check once decided (Fast Lane,
Education), reviewer assignments and scores (peer modes), a score and rank once decided,
the PI's project once awarded, the audit entries and the applicant's notifications."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.models import MembershipRow, UserRow, table_of
from aifactories.db.programme_models import (
    AuditRow,
    CallRow,
    NotificationRow,
    ProposalRow,
    ReviewerRow,
    ReviewRow,
    SiteOperatorRow,
    TechnicalCheckRow,
)
from aifactories.domain.organisations import Domain
from aifactories.programme.modes import AccessMode, CallRules, ReviewKind, call_rules
from aifactories.programme.periods import regular_cutoffs
from aifactories.services.core.context import ServiceContext

DAY_S = 86400.0
PROPOSALS_PER_CALL_SET = 1_000  # one call of each mode per started thousand proposals
# the states a proposal reaches under each kind of review, with their shares
STATES: dict[ReviewKind, list[tuple[str, float]]] = {
    ReviewKind.NONE: [("draft", 0.1), ("checks_failed", 0.1), ("withdrawn", 0.05), ("awarded", 1)],
    ReviewKind.TECHNICAL: [
        ("draft", 0.1),
        ("checks_failed", 0.05),
        ("technical_check", 0.2),
        ("revision", 0.05),
        ("rejected", 0.1),
        ("withdrawn", 0.05),
        ("awarded", 1),
    ],
    ReviewKind.PEER: [
        ("draft", 0.1),
        ("checks_failed", 0.05),
        ("under_review", 0.35),
        ("accepted", 0.1),
        ("rejected", 0.2),
        ("withdrawn", 0.05),
        ("awarded", 1),
    ],
}
DECIDED = ("accepted", "awarded", "rejected")


@dataclass(frozen=True)
class ProgrammeSeeded:
    calls: int
    proposals: int
    reviews: int
    technical_checks: int
    audit_entries: int
    notifications: int


@dataclass(frozen=True)
class _Applicant:
    user_id: int
    username: str
    email: str
    organisation_id: int
    project_id: int  # their demo project: what an award of theirs points at


@dataclass
class _World:
    applicants: list[_Applicant]
    reviewers: list[tuple[int, int | None]]  # user id, organisation id
    checkers: list[tuple[int, str]]  # site operator user id, site id
    operator_id: int
    usernames: dict[int, str]
    now: float


def _world(session: Session, ctx: ServiceContext) -> _World:
    applicants = [
        _Applicant(u.id, u.username, u.email, u.organisation_id or 0, m.project_id)
        for u, m in session.execute(
            select(UserRow, MembershipRow)
            .join(MembershipRow, MembershipRow.user_id == UserRow.id)
            .where(MembershipRow.role == "pi")
            .order_by(UserRow.id)
        )
    ]
    reviewers = [
        (user_id, org)
        for user_id, org in session.execute(
            select(ReviewerRow.user_id, UserRow.organisation_id)
            .join(UserRow, UserRow.id == ReviewerRow.user_id)
            .where(ReviewerRow.active)
            .order_by(ReviewerRow.user_id)
        )
    ]
    checkers = [
        (user_id, site)
        for user_id, site in session.execute(
            select(SiteOperatorRow.user_id, SiteOperatorRow.site_id).order_by(
                SiteOperatorRow.user_id, SiteOperatorRow.site_id
            )
        )
    ]
    operator_id = session.scalar(select(UserRow.id).where(UserRow.is_operator).limit(1))
    if not applicants or not reviewers or not checkers or operator_id is None:
        raise RuntimeError("seed_volume needs the demo's users: load the demo first")
    usernames = {uid: name for uid, name in session.execute(select(UserRow.id, UserRow.username))}
    return _World(applicants, reviewers, checkers, operator_id, usernames, ctx.clock.now())


def seed_proposals(
    session: Session, ctx: ServiceContext, rng: random.Random, count: int
) -> ProgrammeSeeded:
    if count <= 0:
        return ProgrammeSeeded(0, 0, 0, 0, 0, 0)
    world = _world(session, ctx)
    calls = _seed_calls(session, world, rng, -(-count // PROPOSALS_PER_CALL_SET))
    rows: list[dict[str, Any]] = []
    for n in range(count):
        call_id, rules, call = calls[n % len(calls)]
        rows.append(_proposal(rng, n, call_id, rules, call, rng.choice(world.applicants), world))
    _rank(rows)
    proposals = table_of(ProposalRow)
    ids = list(
        session.execute(
            proposals.insert().returning(proposals.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    reviews: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    emails = {a.user_id: a.email for a in world.applicants}
    by_call = {call_id: rules for call_id, rules, _ in calls}
    for proposal_id, row in zip(ids, rows, strict=True):
        rules = by_call[row["call_id"]]
        reviews += _reviews(rng, proposal_id, row, rules, world)
        checks += _technical_check(rng, proposal_id, row, rules, world)
        audit += _audit(proposal_id, row, world)
        notes += _notifications(proposal_id, row, emails[row["pi_user_id"]])
    for table, batch in (
        (table_of(ReviewRow), reviews),
        (table_of(TechnicalCheckRow), checks),
        (table_of(AuditRow), audit),
        (table_of(NotificationRow), notes),
    ):
        if batch:
            session.execute(table.insert(), batch)
    return ProgrammeSeeded(len(calls), len(rows), len(reviews), len(checks), len(audit), len(notes))


def _seed_calls(
    session: Session, world: _World, rng: random.Random, sets: int
) -> list[tuple[int, CallRules, dict[str, Any]]]:
    """``sets`` calls of each mode: the older ones closed, the newest open."""
    first = int(session.scalar(select(func.count()).select_from(CallRow)) or 0)
    out: list[tuple[int, CallRules, dict[str, Any]]] = []
    for k in range(sets):
        for mode in AccessMode:
            rules = call_rules(mode, {})
            closed = k < sets - 1
            opens = world.now - (120 + 60 * (sets - k)) * DAY_S
            closes = world.now + (-DAY_S if closed else 60 * DAY_S)
            row = {
                "code": f"volume-{first + len(out) + 1}-{mode.value.replace('_', '-')}",
                "title": f"{rules.title}, round {k + 1}",
                "mode": mode.value,
                "status": "closed" if closed else "open",
                "rules": rules.to_json(),
                "budget_gpu_hours": {"pool": 50 * rules.max_gpu_hours},
                "opens_at": opens,
                "closes_at": closes,
                "cutoffs": regular_cutoffs(opens, closes, rules.cutoffs_per_month)
                if rules.review is ReviewKind.PEER
                else [],
                "course_ends_at": closes + 120 * DAY_S if mode is AccessMode.EDUCATION else None,
                "created_by": world.operator_id,
                "created_at": opens,
            }
            calls = table_of(CallRow)
            call_id = session.execute(calls.insert().returning(calls.c.id), row).scalar_one()
            out.append((call_id, rules, row))
    rng.shuffle(out)
    return out


def _state(rng: random.Random, review: ReviewKind) -> str:
    roll = rng.random()
    for state, share in STATES[review]:
        if roll < share:
            return state
        roll -= share
    return "awarded"


def _proposal(
    rng: random.Random,
    n: int,
    call_id: int,
    rules: CallRules,
    call: dict[str, Any],
    pi: _Applicant,
    world: _World,
) -> dict[str, Any]:
    status = _state(rng, rules.review)
    created = call["opens_at"] + rng.random() * (
        min(world.now, call["closes_at"]) - call["opens_at"]
    )
    submitted = None if status == "draft" else created + rng.uniform(DAY_S / 24, 5 * DAY_S)
    decided = None
    if status in (*DECIDED, "withdrawn"):
        decided = min(world.now, (submitted or created) + rng.uniform(DAY_S, 30 * DAY_S))
    failed = status == "checks_failed"
    domain = rng.choice(list(Domain))
    return {
        "call_id": call_id,
        "organisation_id": pi.organisation_id,
        "pi_user_id": pi.user_id,
        "status": status,
        "title": f"{domain.value.replace('-', ' ').capitalize()} models, study {n}",
        "abstract": "We train and evaluate models on our data set. " * 8,
        "domain": domain.value,
        "critical_domain": domain in (Domain.HEALTH, Domain.CLIMATE, Domain.ENERGY),
        "industrial": rng.random() < 0.4,
        "requested_gpu_hours": round(rng.uniform(rules.min_gpu_hours, rules.max_gpu_hours)),
        "gpu_model": None,
        "min_gpu_memory_gb": 0,
        "largest_job_gpus": rng.choice((1, 4, 8)),
        "preferred_sites": [rng.choice(world.checkers)[1]],
        "residency": [],
        "period_months": rng.choice(rules.durations_months),
        "starts_at": None,
        "members": [],
        "checks": []
        if submitted is None
        else [
            {"name": "eligibility", "passed": True, "message": "the organisation may apply"},
            {
                "name": "request",
                "passed": not failed,
                "message": "more GPU-hours than the call allows" if failed else "within limits",
            },
        ],
        "cutoff_at": call["closes_at"] if rules.review is ReviewKind.PEER and submitted else None,
        "score": round(rng.uniform(3, 9.5), 2)
        if rules.review is ReviewKind.PEER and status in DECIDED
        else None,
        "rank": None,
        "decision_reason": {
            "awarded": "awarded",
            "accepted": "accepted by the panel",
            "rejected": "below the call's threshold",
            "withdrawn": "withdrawn by the applicant",
        }.get(status),
        "project_id": pi.project_id if status == "awarded" else None,
        "created_at": created,
        "updated_at": decided or submitted or created,
        "submitted_at": submitted,
        "decided_at": decided,
        "version": 1,
    }


def _rank(rows: list[dict[str, Any]]) -> None:
    """Peer-reviewed decided proposals ranked by score within their call."""
    by_call: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["score"] is not None:
            by_call.setdefault(row["call_id"], []).append(row)
    for ranked in by_call.values():
        for position, row in enumerate(sorted(ranked, key=lambda r: -r["score"]), start=1):
            row["rank"] = position


def _reviews(
    rng: random.Random, proposal_id: int, row: dict[str, Any], rules: CallRules, world: _World
) -> list[dict[str, Any]]:
    """A peer-reviewed proposal's panel, from reviewers of other organisations: all
    submitted once decided; under review, some submitted and some still to do."""
    if rules.review is not ReviewKind.PEER or row["status"] not in (*DECIDED, "under_review"):
        return []
    pool = [uid for uid, org in world.reviewers if org != row["organisation_id"]]
    panel = rng.sample(pool, min(rules.reviewers_per_proposal, len(pool)))
    out = []
    for reviewer in panel:
        done = row["status"] in DECIDED or rng.random() < 0.4
        out.append(
            {
                "proposal_id": proposal_id,
                "reviewer_id": reviewer,
                "status": "submitted" if done else "assigned",
                "scores": {c.name: float(rng.randint(3, 10)) for c in rules.criteria}
                if done
                else {},
                "comment": "A sound plan; the data management section is thin." if done else "",
                "assigned_at": row["submitted_at"] + DAY_S,
                "submitted_at": row["submitted_at"] + 5 * DAY_S if done else None,
            }
        )
    return out


def _technical_check(
    rng: random.Random, proposal_id: int, row: dict[str, Any], rules: CallRules, world: _World
) -> list[dict[str, Any]]:
    if rules.review is not ReviewKind.TECHNICAL or row["status"] not in (
        "awarded",
        "rejected",
        "revision",
    ):
        return []
    site = row["preferred_sites"][0]
    operator = next(uid for uid, s in world.checkers if s == site)
    outcome = {"awarded": "accept", "rejected": "reject", "revision": "revise"}[row["status"]]
    return [
        {
            "proposal_id": proposal_id,
            "site_id": site,
            "operator_id": operator,
            "outcome": outcome,
            "reason": "the software stack and data fit the site" if outcome == "accept" else "",
            "at": row["decided_at"] or row["submitted_at"] + rng.uniform(DAY_S, 5 * DAY_S),
        }
    ]


def _audit(proposal_id: int, row: dict[str, Any], world: _World) -> list[dict[str, Any]]:
    subject = f"proposal:{proposal_id}"
    entries = [(row["created_at"], row["pi_user_id"], "proposal.draft", row["title"])]
    if row["submitted_at"] is not None:
        entries.append((row["submitted_at"], row["pi_user_id"], "proposal.submit", "submitted"))
    action = {"awarded": "proposal.award", "rejected": "proposal.reject"}.get(row["status"])
    if row["status"] == "withdrawn":
        entries.append((row["decided_at"], row["pi_user_id"], "proposal.withdraw", "withdrawn"))
    elif action is not None:
        entries.append((row["decided_at"], world.operator_id, action, row["decision_reason"]))
    return [
        {
            "at": at,
            "actor_id": actor,
            "actor": world.usernames[actor],
            "action": name,
            "subject": subject,
            "reason": reason or "",
            "details": {},
        }
        for at, actor, name, reason in entries
    ]


def _notifications(proposal_id: int, row: dict[str, Any], email: str) -> list[dict[str, Any]]:
    if row["submitted_at"] is None:
        return []
    events = [("proposal.submitted", row["submitted_at"], "submitted")]
    if row["decided_at"] is not None:
        events.append(("proposal.decided", row["decided_at"], row["status"]))
    return [
        {
            "channel": "email",
            "user_id": row["pi_user_id"],
            "recipient": email,
            "event": event,
            "subject": f"[aifactories] proposal {proposal_id}: {what}",
            "body": f"Your proposal '{row['title']}' is {what}.",
            "payload": {"proposal": proposal_id},
            "status": "sent",
            "attempts": 1,
            "last_error": None,
            "created_at": at,
            "next_attempt_at": at,
            "sent_at": at,
        }
        for event, at, what in events
    ]
