"""The technical check of Fast Lane and Education proposals: an operator of a site that can
host the proposal accepts it (it is awarded at that site), rejects it with a reason, or asks
for a revision."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from aifactories.db.programme_models import CallRow, ProposalRow, TechnicalCheckRow
from aifactories.domain.errors import InvalidInput, NotFound, PermissionDenied
from aifactories.programme.states import ProposalStatus, check_transition
from aifactories.services.core.auth import forget_cached_principals
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record
from aifactories.services.notifications.notify import notify_user
from aifactories.services.programme.fcfs import award_first_come
from aifactories.services.programme.proposals import candidates_of


class CheckOutcome(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    REVISE = "revise"


def technical_check(
    ctx: ServiceContext,
    principal: Principal,
    proposal_id: int,
    outcome: str,
    reason: str,
    site_id: str | None = None,
) -> ProposalRow:
    try:
        verdict = CheckOutcome(outcome)
    except ValueError:
        raise InvalidInput("outcome", "use accept, reject or revise") from None
    if not reason.strip():
        raise InvalidInput("reason", "say why: the applicant reads it")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = session.get(ProposalRow, proposal_id, with_for_update=True)
        # Nobody but its applicant sees a draft: without this, an operator learnt that a
        # draft existed and its status from the 409 below (found by the role matrix).
        hidden_draft = (
            row is not None
            and row.status == ProposalStatus.DRAFT.value
            and row.pi_user_id != principal.user_id
        )
        if row is None or hidden_draft:
            raise NotFound(f"proposal {proposal_id} does not exist")
        sites = candidates_of(ctx, session, row)
        mine = [s for s in sites if s in principal.operated_sites]
        if not mine and not principal.is_operator:
            raise NotFound(f"proposal {proposal_id} does not exist or none of your sites hosts it")
        if site_id is not None:
            if site_id not in sites:
                raise InvalidInput(
                    "site_id", f"{site_id} cannot host this proposal; use one of {sites}"
                )
            if site_id not in principal.operated_sites and not principal.is_operator:
                raise PermissionDenied(f"you do not operate {site_id}")
            sites = [site_id]
        elif mine:
            sites = mine
        if row.status != ProposalStatus.TECHNICAL_CHECK.value:
            from aifactories.domain.errors import Conflict

            raise Conflict(
                f"proposal {proposal_id} is {row.status}: it waits for no technical check"
            )
        call = session.get(CallRow, row.call_id, with_for_update=True)
        assert call is not None
        session.add(
            TechnicalCheckRow(
                proposal_id=row.id,
                site_id=sites[0],
                operator_id=int(principal.user_id),
                outcome=verdict.value,
                reason=reason,
                at=now,
            )
        )
        record(
            session,
            at=now,
            actor=principal,
            action=f"proposal.technical_check.{verdict.value}",
            subject=f"proposal:{row.id}",
            reason=reason,
            details={"site_id": sites[0]},
        )
        if verdict is CheckOutcome.ACCEPT:
            award_first_come(
                session,
                ctx,
                row,
                call,
                sites,
                actor=principal,
                reason=f"technical check passed at {sites[0]}: {reason}",
            )
        else:
            new = (
                ProposalStatus.REJECTED
                if verdict is CheckOutcome.REJECT
                else ProposalStatus.REVISION_REQUESTED
            )
            check_transition(ProposalStatus(row.status), new, row.id)
            row.status = new.value
            row.decision_reason = reason
            row.updated_at = now
            if new is ProposalStatus.REJECTED:
                row.decided_at = now
            _tell(session, now, row, new, reason)
        session.flush()
        session.expunge(row)
    if row.status == ProposalStatus.AWARDED.value:
        forget_cached_principals()  # the new members' roles must show at once
    return row


def _tell(session: Session, now: float, row: ProposalRow, new: ProposalStatus, reason: str) -> None:
    what = "was rejected" if new is ProposalStatus.REJECTED else "needs a revision"
    notify_user(
        session,
        at=now,
        user_id=row.pi_user_id,
        event=f"proposal.{new.value}",
        subject=f"[aifactories] proposal {row.id} {what}",
        body=f"Your proposal '{row.title}' {what} after the technical check.\nReason: {reason}\n"
        + (
            "Edit it and submit again: aif proposals edit / submit.\n"
            if new is ProposalStatus.REVISION_REQUESTED
            else ""
        ),
        payload={"proposal_id": row.id, "status": new.value, "reason": reason},
    )
