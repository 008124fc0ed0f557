"""First come, first served awards (Playground, Fast Lane, Education): the request is granted
whole at one site, drawn from the call's budget line for that site or from its pool."""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.errors import Conflict
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.programme.eligibility import CheckResult
from aifactories.programme.periods import add_months
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.awarding import AwardedAllocation, award_proposal
from aifactories.services.programme.calls import POOL, budget_left_gpu_seconds


def _needed(row: ProposalRow) -> int:
    return round(row.requested_gpu_hours * SECONDS_PER_HOUR)


def pick_site(session: Session, call: CallRow, row: ProposalRow, sites: list[str]) -> str | None:
    """The first candidate site (preferred ones first) whose budget line, or the pool, still
    holds the whole request."""
    left = budget_left_gpu_seconds(session, call)
    need = _needed(row)
    for site in sites:
        if left.get(site, -1) >= need:
            return site
    if left.get(POOL, -1) >= need and sites:
        return sites[0]
    return None


def budget_check(
    session: Session, call: CallRow, row: ProposalRow, sites: list[str]
) -> CheckResult:
    site = pick_site(session, call, row, sites)
    if site is not None:
        return CheckResult(
            "call_budget",
            True,
            f"{row.requested_gpu_hours:,.0f} GPU-hours fit the budget at {site}",
        )
    left = budget_left_gpu_seconds(session, call)
    lines = ", ".join(f"{k}: {v / 3600:,.0f} h" for k, v in sorted(left.items()))
    return CheckResult(
        "call_budget",
        False,
        f"the call's budget left for the sites that can host this request ({lines}) is short "
        f"of {row.requested_gpu_hours:,.0f} GPU-hours; ask for less or wait for the next call",
    )


def award_first_come(
    session: Session,
    ctx: ServiceContext,
    row: ProposalRow,
    call: CallRow,
    sites: list[str],
    *,
    actor: Principal | None,
    reason: str,
) -> None:
    """Grant the whole request at the first site that can take it (the caller holds the
    call's row lock, so two awards cannot both draw the last of a budget line)."""
    site = pick_site(session, call, row, sites)
    if site is None:
        raise Conflict(
            f"the call {call.code} has no budget left for {row.requested_gpu_hours:,.0f} "
            f"GPU-hours at {', '.join(sites) or 'any site'}"
        )
    now = ctx.clock.now()
    start = max(now, row.starts_at or now)
    end = call.course_ends_at if call.course_ends_at else add_months(start, row.period_months)
    award_proposal(
        session,
        ctx,
        row,
        call,
        [AwardedAllocation(site, _needed(row), start, end)],
        actor=actor,
        reason=reason,
    )
