"""What the programme operator's overview reads: how many proposals are at each stage, and
the last award run. Counted in the database, so that the overview costs the same with five
thousand proposals as with five (the lists of proposals build a full view of each)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from aifactories.db.programme_models import AwardRunRow, ProposalRow
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.programme.award_runs import run_view

HEAVY = ("lines", "optimiser", "greedy")  # what a run's summary leaves out (as list_runs does)


def proposal_counts(ctx: ServiceContext, principal: Principal) -> dict[str, int]:
    """Proposals by status, every call (an operator sees every submitted one)."""
    require_programme_operator(principal, "see the programme's overview")
    with ctx.reads() as session:
        rows = session.execute(
            select(ProposalRow.status, func.count()).group_by(ProposalRow.status)
        ).all()
        return {str(status): int(count) for status, count in rows}


def latest_run(ctx: ServiceContext, principal: Principal) -> dict[str, Any] | None:
    """The last award run of any call, as GET /calls/{call}/award-runs lists it."""
    require_programme_operator(principal, "read award runs")
    with ctx.reads() as session:
        run = session.scalar(select(AwardRunRow).order_by(AwardRunRow.id.desc()).limit(1))
        if run is None:
            return None
        return {k: v for k, v in run_view(session, run).items() if k not in HEAVY}
