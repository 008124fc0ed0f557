"""Proposals: an applicant drafts, edits, submits and may withdraw; the automated checks run
at submission, and what follows depends on the call's mode (accepted at once, a site
operator's technical check, or peer review until the cut-off)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import UserRow
from aifactories.db.programme_models import CallRow, ProposalRow, SiteOperatorRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.organisations import CRITICAL_DOMAINS, Domain
from aifactories.programme.eligibility import (
    CheckResult,
    automated_checks,
    candidate_sites,
)
from aifactories.programme.modes import ReviewKind, rules_from_json
from aifactories.programme.states import EDITABLE, ProposalStatus, check_transition
from aifactories.services.core import idempotency
from aifactories.services.core.auth import forget_cached_principals
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import (
    Abstract,
    Code,
    CountryCode,
    Instant,
    Title,
    Username,
)
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.calls import accepts_submissions, call_by_ref, iso, next_cutoff
from aifactories.services.programme.fcfs import award_first_come, budget_check

# reading proposals lives in proposal_views; its callers have imported it from here
from aifactories.services.programme.proposal_views import (
    DECIDED_FOR_APPLICANT as DECIDED_FOR_APPLICANT,
)
from aifactories.services.programme.proposal_views import candidates_of as candidates_of
from aifactories.services.programme.proposal_views import facts as proposal_facts
from aifactories.services.programme.proposal_views import get_proposal as get_proposal
from aifactories.services.programme.proposal_views import list_proposals as list_proposals
from aifactories.services.programme.proposal_views import may_see as may_see
from aifactories.services.programme.proposal_views import proposal_view as proposal_view
from aifactories.services.programme.proposal_views import visible_proposal as visible_proposal

S = ProposalStatus


class ProposalFields(BaseModel):
    """Every field an applicant fills in. On an edit, only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    abstract: Abstract | None = None
    domain: Domain | None = None
    industrial: StrictBool | None = None
    requested_gpu_hours: Annotated[
        StrictFloat | None, Field(gt=0, le=10_000_000, allow_inf_nan=False)
    ] = None
    gpu_model: Code | None = None  # None or "any": any model
    min_gpu_memory_gb: Annotated[StrictInt | None, Field(ge=0, le=1024)] = None
    largest_job_gpus: Annotated[StrictInt | None, Field(ge=1, le=100_000)] = None
    preferred_sites: Annotated[list[Code] | None, Field(max_length=20)] = None
    residency: Annotated[list[CountryCode] | None, Field(max_length=40)] = None
    period_months: Annotated[StrictInt | None, Field(ge=1, le=24)] = None
    starts_at: Annotated[
        Instant | None, Field(description="ISO 8601 date or date-time (UTC), or epoch seconds")
    ] = None
    members: Annotated[list[Username] | None, Field(max_length=1000)] = None


REQUIRED = ("title", "abstract", "domain", "requested_gpu_hours", "period_months")


def _apply_fields(
    ctx: ServiceContext, session: Session, row: ProposalRow, body: ProposalFields
) -> None:
    from aifactories.services.programme.calls import parse_time

    given = body.model_dump(exclude_unset=True)
    for name in REQUIRED:
        if name in given and given[name] is None:
            raise InvalidInput(name, "is required and cannot be cleared")
    if "title" in given:
        row.title = given["title"].strip()
    if "abstract" in given:
        row.abstract = given["abstract"].strip()
    if "domain" in given:
        domain = Domain(given["domain"])
        row.domain = domain.value
        row.critical_domain = domain in CRITICAL_DOMAINS
    if given.get("industrial") is not None:
        row.industrial = bool(given["industrial"])
    if "requested_gpu_hours" in given:
        row.requested_gpu_hours = float(given["requested_gpu_hours"])
    if "gpu_model" in given:
        model = given["gpu_model"]
        if model is None or str(model).lower() == "any":
            row.gpu_model = None
        else:
            known = {m.lower(): m for m in ctx.catalogue.gpu_models}
            if str(model).lower() not in known:
                raise InvalidInput(
                    "gpu_model",
                    f"unknown GPU model {model!r}; the catalogue has "
                    f"{', '.join(sorted(known.values()))} (or 'any')",
                )
            row.gpu_model = known[str(model).lower()]
    if given.get("min_gpu_memory_gb") is not None:
        row.min_gpu_memory_gb = int(given["min_gpu_memory_gb"])
    if given.get("largest_job_gpus") is not None:
        row.largest_job_gpus = int(given["largest_job_gpus"])
    if given.get("preferred_sites") is not None:
        sites = [str(s) for s in given["preferred_sites"]]
        for i, site in enumerate(sites):
            if ctx.catalogue.site(site) is None:
                raise InvalidInput(
                    f"preferred_sites[{i}]", f"unknown site {site!r}; 'aif sites' lists them"
                )
        row.preferred_sites = list(dict.fromkeys(sites))
    if given.get("residency") is not None:
        codes = [str(c).strip().upper() for c in given["residency"]]
        for i, code in enumerate(codes):
            if len(code) != 2 or not code.isalpha():
                raise InvalidInput(
                    f"residency[{i}]", f"{code!r} is no ISO country code; write e.g. DE or FI"
                )
        row.residency = sorted(set(codes))
    if "period_months" in given:
        row.period_months = int(given["period_months"])
    if "starts_at" in given:
        value = given["starts_at"]
        row.starts_at = parse_time(value, "starts_at") if value is not None else None
    if given.get("members") is not None:
        names = list(dict.fromkeys(str(m) for m in given["members"]))
        found = set(session.scalars(select(UserRow.username).where(UserRow.username.in_(names))))
        for i, name in enumerate(names):
            if name not in found:
                raise InvalidInput(
                    f"members[{i}]",
                    f"no user {name!r}; team members must have an aifactories account",
                )
        row.members = names


def create_draft(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    body: ProposalFields,
    key: str | None = None,
) -> ProposalRow:
    """A draft proposal; a retry with the same idempotency ``key`` gets the first draft."""
    once = idempotency.once(principal, key, "proposals.draft", call_ref, body)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _create_draft(ctx, principal, call_ref, body, once),
        lambda proposal_id: idempotency.stored(ctx, ProposalRow, proposal_id),
    )


def _create_draft(
    ctx: ServiceContext,
    principal: Principal,
    call_ref: str,
    body: ProposalFields,
    once: idempotency.Once | None,
) -> ProposalRow:
    for name in REQUIRED:
        if getattr(body, name) is None:
            raise InvalidInput(name, "is required")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        call = call_by_ref(session, call_ref)
        why_not = accepts_submissions(call, now)
        if why_not:
            raise Conflict(f"{why_not}: no new proposals; 'aif calls list' shows open calls")
        if principal.organisation_id is None:
            raise PermissionDenied(
                "your account belongs to no organisation; proposals are made on behalf of one "
                "(ask the programme to link your account to your organisation)"
            )
        row = ProposalRow(
            call_id=call.id,
            organisation_id=principal.organisation_id,
            pi_user_id=int(principal.user_id),
            status=S.DRAFT.value,
            industrial=False,
            critical_domain=False,
            min_gpu_memory_gb=0,
            largest_job_gpus=1,
            preferred_sites=[],
            residency=[],
            members=[],
            checks=[],
            created_at=now,
            updated_at=now,
            version=1,
        )
        _apply_fields(ctx, session, row, body)
        session.add(row)
        session.flush()
        idempotency.record(session, once, row.id, now)
        record(
            session,
            at=now,
            actor=principal,
            action="proposal.draft",
            subject=f"proposal:{row.id}",
            details={"call": call.code},
        )
        session.expunge(row)
        return row


def _own(session: Session, principal: Principal, proposal_id: int) -> ProposalRow:
    row = session.get(ProposalRow, proposal_id, with_for_update=True)
    if row is None or row.pi_user_id != principal.user_id:
        raise NotFound(f"proposal {proposal_id} does not exist or is not yours")
    return row


def update_draft(
    ctx: ServiceContext, principal: Principal, proposal_id: int, body: ProposalFields
) -> ProposalRow:
    with ctx.sessions() as session, session.begin():
        row = _own(session, principal, proposal_id)
        if S(row.status) not in EDITABLE:
            raise Conflict(
                f"proposal {proposal_id} is {row.status}: it can be edited only as a draft, "
                "after failed checks or when a revision is asked for"
            )
        _apply_fields(ctx, session, row, body)
        row.updated_at = ctx.clock.now()
        row.version += 1
        session.flush()
        session.expunge(row)
        return row


def submit(ctx: ServiceContext, principal: Principal, proposal_id: int) -> ProposalRow:
    """Run the automated checks and move the proposal on. In one transaction: a Playground
    proposal that passes is awarded here, so its project can take jobs at once."""
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = _own(session, principal, proposal_id)
        if S(row.status) not in EDITABLE:
            raise Conflict(f"proposal {proposal_id} is {row.status}: it was submitted already")
        call = session.get(CallRow, row.call_id, with_for_update=True)
        assert call is not None
        why_not = accepts_submissions(call, now)
        if why_not:
            raise Conflict(f"{why_not}: the proposal stays a draft")
        rules = rules_from_json(call.rules)
        facts = proposal_facts(session, row)
        checks = automated_checks(rules, facts, ctx.catalogue)
        sites = candidate_sites(ctx.catalogue, facts)
        if rules.review is not ReviewKind.PEER and all(c.passed for c in checks):
            checks.append(budget_check(session, call, row, sites))
        row.checks = [c.to_json() for c in checks]
        row.submitted_at = now
        row.updated_at = now
        failed = [c for c in checks if not c.passed]
        if failed:
            new = S.CHECKS_FAILED
        elif rules.review is ReviewKind.NONE:
            new = S.AWARDED
        elif rules.review is ReviewKind.TECHNICAL:
            new = S.TECHNICAL_CHECK
        else:
            new = S.UNDER_REVIEW
        check_transition(S(row.status), new, row.id)
        record(
            session,
            at=now,
            actor=principal,
            action="proposal.submit",
            subject=f"proposal:{row.id}",
            reason="; ".join(c.message for c in failed) or "automated checks passed",
            details={"checks": row.checks, "call": call.code},
        )
        if new is S.AWARDED:
            award_first_come(
                session,
                ctx,
                row,
                call,
                sites,
                actor=None,
                reason="Playground: automated checks passed, first come first served",
            )
        else:
            row.status = new.value
            if new is S.UNDER_REVIEW:
                row.cutoff_at = next_cutoff(call, now)
            _tell_applicant(session, now, row, call, new, failed)
            if new is S.TECHNICAL_CHECK:
                _tell_site_operators(session, now, row, sites)
        session.flush()
        session.expunge(row)
    if row.status == S.AWARDED.value:
        # new memberships: the members' cached roles would hide the project for a few seconds
        forget_cached_principals()
    return row


def _tell_applicant(
    session: Session,
    now: float,
    row: ProposalRow,
    call: CallRow,
    status: ProposalStatus,
    failed: list[CheckResult],
) -> None:
    if status is S.CHECKS_FAILED:
        subject = f"[aifactories] proposal {row.id}: automated checks failed"
        body = (
            "The automated checks refused the proposal:\n"
            + "\n".join(f"- {c.name}: {c.message}" for c in failed)
            + "\nEdit it and submit again.\n"
        )
    elif status is S.TECHNICAL_CHECK:
        subject = f"[aifactories] proposal {row.id} received: technical check"
        body = (
            f"Your proposal '{row.title}' passed the automated checks; "
            "a site operator checks it next.\n"
        )
    else:
        subject = f"[aifactories] proposal {row.id} received: peer review"
        body = (
            f"Your proposal '{row.title}' passed the automated checks and will be reviewed "
            f"for the cut-off of {iso(row.cutoff_at or call.closes_at)}.\n"
        )
    notify_user(
        session,
        at=now,
        user_id=row.pi_user_id,
        event=f"proposal.{status.value}",
        subject=subject,
        body=body,
        payload={"proposal_id": row.id, "status": status.value},
    )


def _tell_site_operators(session: Session, now: float, row: ProposalRow, sites: list[str]) -> None:
    operators = set(
        session.scalars(select(SiteOperatorRow.user_id).where(SiteOperatorRow.site_id.in_(sites)))
    )
    for user_id in sorted(operators):
        notify_user(
            session,
            at=now,
            user_id=user_id,
            event="proposal.technical_check",
            subject=f"[aifactories] technical check asked: proposal {row.id}",
            body=f"Proposal {row.id} '{row.title}' can run at {', '.join(sites)} and waits for "
            f"a technical check: aif proposals check {row.id} --accept|--reject|--revise\n",
            payload={"proposal_id": row.id, "sites": sites},
        )


def withdraw(
    ctx: ServiceContext, principal: Principal, proposal_id: int, reason: str
) -> ProposalRow:
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = _own(session, principal, proposal_id)
        check_transition(S(row.status), S.WITHDRAWN, row.id)
        row.status = S.WITHDRAWN.value
        row.decision_reason = reason
        row.decided_at = now
        row.updated_at = now
        record(
            session,
            at=now,
            actor=principal,
            action="proposal.withdraw",
            subject=f"proposal:{row.id}",
            reason=reason,
        )
        session.flush()
        session.expunge(row)
        return row
