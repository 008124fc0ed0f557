"""``--dependency`` at submission: every job it names must exist and be visible to the
submitter; an array named by its id stands for all its tasks (as in Slurm). The broker
holds the job until the condition is met (broker/holds.py)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from aifactories.db.models import JobRow, table_of
from aifactories.domain.batch import Dependencies
from aifactories.domain.errors import InvalidInput
from aifactories.services.core.context import Principal
from aifactories.services.jobs.job_queries import parse_job_ref

_JOBS = table_of(JobRow)


def resolve_dependencies(
    conn: Connection, principal: Principal, dependencies: Dependencies | None, name: str
) -> dict[str, object] | None:
    """The ``dependency`` column: ``{"any": bool, "conditions": [[kind, [job ids]], ...]}``."""
    if dependencies is None:
        return None
    conditions: list[list[object]] = []
    for condition in dependencies.conditions:
        ids: list[int] = []
        for text in condition.job_refs:
            ids.extend(_job_ids(conn, principal, text))
        conditions.append([condition.kind, sorted(set(ids))])
    return {"any": dependencies.any_of, "conditions": conditions, "name": name}


def _job_ids(conn: Connection, principal: Principal, text: str) -> list[int]:
    ref = parse_job_ref(text)
    query = select(_JOBS.c.id, _JOBS.c.project_id)
    if ref.task is None:
        # job 123, or every task of array 123
        query = query.where((_JOBS.c.id == ref.job_id) | (_JOBS.c.array_job_id == ref.job_id))
    else:
        query = query.where(_JOBS.c.array_job_id == ref.job_id, _JOBS.c.array_task_id == ref.task)
    rows = [
        (job_id, project_id)
        for job_id, project_id in conn.execute(query)
        if principal.is_operator or principal.role_in(project_id) is not None
    ]
    if not rows:
        raise InvalidInput(
            "dependency",
            f"job {ref} does not exist or is not in one of your projects",
            limit="a job of yours, e.g. afterok:123 or afterok:123_4",
        )
    return [job_id for job_id, _ in rows]
