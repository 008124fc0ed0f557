"""Jobs as users name them -- ``123`` (a job, or a whole array) and ``123_4`` (one task of an
array), as in Slurm -- and the use cases that read or cancel them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from aifactories.broker import job_mail
from aifactories.db.accounts import project_by_ref
from aifactories.db.models import JobRow
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.domain.jobs import JobState, check_transition
from aifactories.services.core.auth import require_can_cancel, require_project_access
from aifactories.services.core.context import Principal, ServiceContext

_REF = re.compile(r"^(\d{1,10})(?:_(\d{1,7}))?$")
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class JobRef:
    """``123`` or ``123_4``; ``task`` None names the job, or every task of array 123."""

    job_id: int
    task: int | None = None

    def __str__(self) -> str:
        return f"{self.job_id}" if self.task is None else f"{self.job_id}_{self.task}"


def parse_job_ref(text: str) -> JobRef:
    match = _REF.fullmatch(text.strip())
    if match is None or int(match.group(1)) > MAX_ID:
        raise InvalidInput(
            "job_id",
            f"{text!r} is not a job id",
            limit="a job id such as 123, or an array task such as 123_4",
        )
    task = match.group(2)
    return JobRef(int(match.group(1)), None if task is None else int(task))


def _visible(principal: Principal, row: JobRow | None) -> bool:
    return row is not None and (
        principal.role_in(row.project_id) is not None or principal.is_operator
    )


def _not_found(ref: JobRef | str) -> NotFound:
    return NotFound(f"job {ref} does not exist or is not in one of your projects")


def get_job(ctx: ServiceContext, principal: Principal, ref: str | int) -> JobRow:
    """One job: ``123`` is job 123 (for an array, its first task), ``123_4`` a task."""
    job_ref = parse_job_ref(str(ref))
    with ctx.reads() as session:
        if job_ref.task is None:
            row = session.get(JobRow, job_ref.job_id)
        else:
            row = session.execute(
                select(JobRow).where(
                    JobRow.array_job_id == job_ref.job_id,
                    JobRow.array_task_id == job_ref.task,
                )
            ).scalar_one_or_none()
    if row is None or not _visible(principal, row):
        raise _not_found(job_ref)
    return row


def array_tasks(ctx: ServiceContext, principal: Principal, array_job_id: int) -> list[JobRow]:
    """Every task of an array, by task id."""
    with ctx.reads() as session:
        rows = list(
            session.execute(
                select(JobRow)
                .where(JobRow.array_job_id == array_job_id)
                .order_by(JobRow.array_task_id)
            ).scalars()
        )
    if not rows or not _visible(principal, rows[0]):
        raise _not_found(str(array_job_id))
    return rows


def list_jobs(
    ctx: ServiceContext,
    principal: Principal,
    project: str | None = None,
    states: Sequence[str] = (),
    limit: int = 100,
) -> list[JobRow]:
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit", f"{limit}", limit="1 to 10000")
    for state in states:
        if state not in {s.value for s in JobState}:
            raise InvalidInput(
                "state",
                f"unknown state {state!r}",
                limit="one of " + ", ".join(s.value for s in JobState),
            )
    with ctx.reads() as session:
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if project is not None:
            row = project_by_ref(session, project)
            if row is None:
                raise NotFound(f"project {project!r} does not exist or you are not a member of it")
            require_project_access(principal, row.id, project)
            query = query.where(JobRow.project_id == row.id)
        elif not principal.is_operator:
            query = query.where(JobRow.project_id.in_(list(principal.roles)))
        if states:
            query = query.where(JobRow.state.in_(list(states)))
        return list(session.execute(query).scalars())


def cancel_job(ctx: ServiceContext, principal: Principal, ref: str | int) -> JobRow:
    """Cancel a job, an array task, or (``123`` of an array) every task of the array, as
    scancel does. A pending job is cancelled at once; one at a site by the broker. Returns
    the job named (for an array, its first task)."""
    job_ref = parse_job_ref(str(ref))
    named = get_job(ctx, principal, str(job_ref))
    whole_array = job_ref.task is None and named.array_job_id == named.id
    with ctx.sessions() as session, session.begin():
        if whole_array:
            rows = list(
                session.execute(
                    select(JobRow).where(JobRow.array_job_id == named.id).with_for_update()
                ).scalars()
            )
        else:
            one = session.get(JobRow, named.id, with_for_update=True)
            assert one is not None
            rows = [one]
        for row in rows:
            require_can_cancel(principal, row.project_id, row.user_id, row.id)
        for row in rows:
            if _cancel_one(ctx, principal, row):
                # ended here, not by the broker: --mail-type=END is sent from here
                job_mail.ended(session, row, JobState.PENDING.value, ctx.clock.now())
        return next(r for r in rows if r.id == named.id)


def _cancel_one(ctx: ServiceContext, principal: Principal, row: JobRow) -> bool:
    """Cancel one job; True if it ended here (it was pending)."""
    state = JobState(row.state)
    if state.final:
        return False  # cancelling a finished job changes nothing, like scancel
    if state is JobState.PENDING:
        check_transition(row.id, state, JobState.CANCELLED)
        row.state = JobState.CANCELLED.value
        row.ended_at = ctx.clock.now()
        row.reason = f"cancelled by {principal.username}"
        return True
    row.cancel_requested = True
    row.reason = f"cancel requested by {principal.username}"
    return False
