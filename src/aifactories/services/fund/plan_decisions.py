"""Each access mode's time from submission to decision, for the plan checked in the twin.

The twin simulates no calls and no reviews (twin/plan_access.py); this is where the figure it
adds to each job's wait comes from: the programme's own median, measured in its books (the
``time_to_access`` figures' ``submission_to_decision`` stage, services/fund/programme_figures.py)
for each mode with decided proposals submitted in the last ``days`` up to ``as_of``; the
published target (programme/access_modes.yaml) for a mode with none, or when the books
cannot be read. ``DecisionTimes.source`` says which, in one line the report and the CLI show.

Read locally, like ``aif programme seed-history``: whoever runs ``aif invest --check`` on the
platform's machine reads its database, as its figures would be read by a programme operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from aifactories.db.migrate import current_revision, head_revision
from aifactories.domain.clock import to_datetime
from aifactories.services.core.context import ServiceContext
from aifactories.services.fund.programme_figures import STAGES, time_to_access
from aifactories.services.fund.programme_figures_books import read_books
from aifactories.twin.plan_access import DecisionTime, mode_titles, published_decision_times

DAY_S = 86400.0
DECISION = STAGES[0]  # submission_to_decision


@dataclass(frozen=True)
class DecisionTimes:
    times: Mapping[str, DecisionTime]  # by access mode
    source: str  # which figures were used, in one line


def published(reason: str) -> DecisionTimes:
    """The published targets for every mode, and why they were used."""
    return DecisionTimes(published_decision_times(), f"published access-mode targets ({reason})")


def decision_times_from_books(
    ctx: ServiceContext, *, as_of: float | None = None, days: float = 365.0
) -> DecisionTimes:
    """The books' median time from submission to decision per mode, for the proposals
    submitted in the ``days`` before ``as_of`` (default: now); a mode with no decided proposal
    keeps its published target."""
    url = ctx.settings.resolved_database_url
    end = ctx.clock.now() if as_of is None else as_of
    start = end - days * DAY_S
    try:
        if current_revision(url) != head_revision():
            return published("the database is not at the current schema: 'aif db upgrade'")
        with ctx.reads() as session:
            books = read_books(session, start, end, end, [s.id for s in ctx.catalogue.sites])
    except SQLAlchemyError as exc:
        return published(f"the database could not be read: {type(exc).__name__}")
    measured = {d.mode: d for d in time_to_access(books) if d.stage == DECISION and d.count > 0}
    times = dict(published_decision_times())
    titles = mode_titles()
    used = []
    for mode in times:
        found = measured.get(mode)
        if found is None:
            continue
        times[mode] = DecisionTime(
            found.median_days * 24.0,
            f"the programme's median over {found.count} decided proposals "
            f"({to_datetime(start):%Y-%m-%d} to {to_datetime(end):%Y-%m-%d})",
        )
        used.append(titles[mode])
    if not used:
        return published(
            f"no decided proposal in the books from {to_datetime(start):%Y-%m-%d} "
            f"to {to_datetime(end):%Y-%m-%d}"
        )
    rest = [titles[m] for m in times if titles[m] not in used]
    source = f"the programme's measured medians for {', '.join(used)}" + (
        f"; published targets for {', '.join(rest)}" if rest else ""
    )
    return DecisionTimes(times, source)
