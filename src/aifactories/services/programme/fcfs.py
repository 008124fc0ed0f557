"""First come, first served awards (Playground, Fast Lane, Education): the request is granted
whole, from the call's budget line of one candidate site (an allocation at that site) or else
from its pool (an allocation usable at every site the proposal allows: its hardware and
residency, see ``programme.eligibility.candidate_sites``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactories.catalogue.loader import Catalogue
from aifactories.db.programme_models import CallRow, ProposalRow
from aifactories.domain.errors import Conflict
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.programme.eligibility import CheckResult, matching_partitions
from aifactories.programme.periods import add_months
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.awarding import AwardedAllocation, award_proposal
from aifactories.services.programme.calls import POOL, budget_left_gpu_seconds


def _needed(row: ProposalRow) -> int:
    return round(row.requested_gpu_hours * SECONDS_PER_HOUR)


def allowed_sites(catalogue: Catalogue, row: ProposalRow) -> tuple[str, ...]:
    """The operational sites the proposal can run at (hardware and residency), sorted: where
    an award from the pool may be used, and nowhere else."""
    found = matching_partitions(
        catalogue,
        gpu_model=row.gpu_model,
        min_gpu_memory_gb=row.min_gpu_memory_gb,
        largest_job_gpus=row.largest_job_gpus,
        residency=tuple(row.residency),
    )
    return tuple(sorted({site.id for site, _ in found}))


def pick_line(session: Session, call: CallRow, row: ProposalRow, sites: list[str]) -> str | None:
    """The budget line that holds the whole request: the first candidate site's own line
    (preferred sites first), else the pool (``POOL``); None if neither does."""
    left = budget_left_gpu_seconds(session, call)
    need = _needed(row)
    for site in sites:
        if left.get(site, -1) >= need:
            return site
    if left.get(POOL, -1) >= need and sites:
        return POOL
    return None


def budget_check(
    session: Session, call: CallRow, row: ProposalRow, sites: list[str]
) -> CheckResult:
    line = pick_line(session, call, row, sites)
    if line is not None:
        where = f"the pool, usable at {', '.join(sorted(sites))}" if line == POOL else line
        return CheckResult(
            "call_budget",
            True,
            f"{row.requested_gpu_hours:,.0f} GPU-hours fit the budget at {where}",
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
    """Grant the whole request from the first budget line that can take it (the caller holds
    the call's row lock, so two awards cannot both draw the last of a line). ``sites`` are the
    sites whose own lines may fund it (for a technical check, the checking operator's); an
    award from the pool is usable at every site the proposal allows."""
    line = pick_line(session, call, row, sites)
    if line is None:
        raise Conflict(
            f"the call {call.code} has no budget left for {row.requested_gpu_hours:,.0f} "
            f"GPU-hours at {', '.join(sites) or 'any site'}"
        )
    now = ctx.clock.now()
    start = max(now, row.starts_at or now)
    end = call.course_ends_at if call.course_ends_at else add_months(start, row.period_months)
    if line == POOL:
        # every site the proposal allows, not only the candidates the caller narrowed to
        pool_sites = allowed_sites(ctx.catalogue, row) or tuple(sorted(sites))
        award = AwardedAllocation(None, _needed(row), start, end, pool_sites)
    else:
        award = AwardedAllocation(line, _needed(row), start, end)
    award_proposal(session, ctx, row, call, [award], actor=actor, reason=reason)
