"""Job starts as they were on record at ``as_of``, for the programme's waits and time to access.

A job's ``started_at`` is the site's time, which the broker learns at a later poll
(``start_recorded_at``); a requeue clears it and keeps it in ``requeued_starts``. So the starts
on record at ``as_of`` are:

- a job's current start, if learnt at or before ``as_of`` (a start the site reports late does
  not change an old ``as_of``);
- a start a requeue cleared, if learnt at or before ``as_of`` and cleared after it (an old
  ``as_of`` still sees the start that was then on record; one cleared by then is gone, as it
  was then).

Both at the site's time, and only if that is at or before ``as_of`` too (a site's clock ahead
of ours must not count a start that had not happened). Starts requeued before migration 0010
left no trace and are gone for every ``as_of`` (docs/fund.md says so).
"""

from __future__ import annotations

from sqlalchemy import Subquery, select, union_all

from aifactories.db.models import JobRow, RequeuedStartRow


def starts_on_record(as_of: float) -> Subquery:
    """(job_id, project_id, site_id, submitted_at, started_at) of every start on record at
    ``as_of``: at most one per job (a job's current start and one a requeue cleared are never
    both on record at the same time: the requeue cleared one before the other was learnt)."""
    current = select(
        JobRow.id.label("job_id"),
        JobRow.project_id,
        JobRow.site_id,
        JobRow.submitted_at,
        JobRow.started_at,
    ).where(
        JobRow.started_at.is_not(None),
        JobRow.start_recorded_at <= as_of,
        JobRow.started_at <= as_of,
    )
    cleared = (
        select(
            RequeuedStartRow.job_id,
            JobRow.project_id,
            RequeuedStartRow.site_id,
            JobRow.submitted_at,
            RequeuedStartRow.started_at,
        )
        .join(JobRow, JobRow.id == RequeuedStartRow.job_id)
        .where(
            RequeuedStartRow.recorded_at <= as_of,
            RequeuedStartRow.requeued_at > as_of,
            RequeuedStartRow.started_at <= as_of,
        )
    )
    return union_all(current, cleared).subquery("starts")
