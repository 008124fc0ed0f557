"""Jobs as the portal shows them: a page of the caller's jobs (newest first, with the total
for the pager) and one job with its array, owner and options, as plain views.

The visibility is the API's (``job_queries``): a job of a project the caller is not in is
the same 404 as a job that does not exist; a programme operator sees every job. The views
carry no database rows, so the portal (which never imports the database) can render them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from aifactories.db.accounts import project_by_ref
from aifactories.db.models import JobRow, ProjectRow, UserRow
from aifactories.domain.batch import dependency_text
from aifactories.domain.errors import InvalidInput, NotFound
from aifactories.domain.jobs import JobState, job_ref
from aifactories.domain.projects import Role
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.fund.valuation import job_euros
from aifactories.services.jobs.job_queries import array_tasks, get_job

MAX_PER_PAGE = 200
MAX_TASKS_SHOWN = 500  # a 10,000-task array: the page lists the first ones, in order


@dataclass(frozen=True)
class JobLine:
    """One job in a list: what ``aif jobs`` shows."""

    id: int
    ref: str
    name: str
    project: str
    owner: str
    state: JobState
    reason: str | None
    gpus: int
    nodes: int | None
    gpu_model: str
    site_id: str | None
    partition_id: str | None
    time_limit_s: int
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    charged_gpu_hours: float
    reserved_gpu_hours: float
    exit_code: int | None

    @property
    def live(self) -> bool:
        """Still changing: a page showing it keeps looking."""
        return not self.state.final


@dataclass(frozen=True)
class JobsPage:
    lines: list[JobLine]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def live(self) -> bool:
        return any(line.live for line in self.lines)


@dataclass(frozen=True)
class JobDetail:
    """One job with everything its page shows."""

    line: JobLine
    project_id: int
    allocated_gpus: int | None
    placed_at: float | None
    elapsed_s: float | None
    site_job_id: str | None
    requeues: int
    cancel_requested: bool
    command: list[str]
    script: str | None
    countries: list[str]
    min_gpu_memory_gb: int
    array_job_id: int | None
    array_task_count: int | None
    tasks: list[JobLine]  # every task of its array (the first MAX_TASKS_SHOWN), else empty
    dependency: str | None
    warnings: list[str]
    options: list[tuple[str, str]]  # the sbatch options honoured, as sbatch writes them
    may_cancel: bool
    may_read_output: bool
    separate_error: bool  # the site keeps standard error in a file of its own
    charged_eur: float | None = None  # the charge in euros (docs/fund.md); None: unpriced


@dataclass(frozen=True)
class ProjectChoice:
    code: str
    title: str
    member: bool  # the caller has a role in it (may submit under it)


def project_choices(ctx: ServiceContext, principal: Principal) -> list[ProjectChoice]:
    """The projects whose jobs the caller sees (an operator: every project), by code: for
    the filter and the submit form (one query; ``list_projects`` also sums the books)."""
    with ctx.reads() as session:
        query = select(ProjectRow.id, ProjectRow.code, ProjectRow.title).order_by(ProjectRow.code)
        if not principal.is_operator:
            query = query.where(ProjectRow.id.in_([int(p) for p in principal.roles]))
        return [
            ProjectChoice(code, title, principal.role_in(project_id) is not None)
            for project_id, code, title in session.execute(query)
        ]


def _line(row: JobRow, owner: str) -> JobLine:
    return JobLine(
        id=row.id,
        ref=job_ref(row.id, row.array_job_id, row.array_task_id),
        name=row.name,
        project=row.project.code,
        owner=owner,
        state=JobState(row.state),
        reason=row.reason,
        gpus=row.gpus,
        nodes=row.nodes,
        gpu_model=row.gpu_model,
        site_id=row.site_id,
        partition_id=row.partition_id,
        time_limit_s=row.time_limit_s,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        charged_gpu_hours=row.charged_gpu_seconds / 3600,
        reserved_gpu_hours=row.reserved_gpu_seconds / 3600,
        exit_code=row.exit_code,
    )


def _usernames(ctx: ServiceContext, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    with ctx.reads() as session:
        found = session.execute(
            select(UserRow.id, UserRow.username).where(UserRow.id.in_(sorted(user_ids)))
        )
        return {user_id: name for user_id, name in found}


def jobs_page(
    ctx: ServiceContext,
    principal: Principal,
    project: str | None = None,
    states: Sequence[str] = (),
    page: int = 1,
    per_page: int = 50,
) -> JobsPage:
    """Page ``page`` (from 1) of the jobs ``GET /jobs`` lists, newest first."""
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput("per_page", f"{per_page}", limit=f"1 to {MAX_PER_PAGE}")
    if page < 1:
        raise InvalidInput("page", f"{page}", limit="1 or more")
    known = {s.value for s in JobState}
    for state in states:
        if state not in known:
            raise InvalidInput(
                "state", f"unknown state {state!r}", limit="one of " + ", ".join(sorted(known))
            )
    with ctx.reads() as session:
        where: list[Any] = []
        if project is not None:
            found = project_by_ref(session, project)
            if found is None:
                raise NotFound(f"project {project!r} does not exist or you are not a member of it")
            require_project_access(principal, found.id, project)
            where.append(JobRow.project_id == found.id)
        elif not principal.is_operator:
            where.append(JobRow.project_id.in_([int(p) for p in principal.roles]))
        if states:
            where.append(JobRow.state.in_(list(states)))
        total = session.execute(select(func.count(JobRow.id)).where(*where)).scalar_one()
        rows = list(
            session.execute(
                select(JobRow)
                .where(*where)
                .order_by(JobRow.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).scalars()
        )
    names = _usernames(ctx, {r.user_id for r in rows})
    lines = [_line(r, names.get(r.user_id, "?")) for r in rows]
    return JobsPage(lines, int(total), page, per_page)


def job_detail(ctx: ServiceContext, principal: Principal, ref: str) -> JobDetail:
    """The job ``ref`` names (``123`` or ``123_4``), as ``GET /jobs/{ref}`` finds it."""
    row = get_job(ctx, principal, ref)
    tasks: list[JobRow] = []
    if row.array_job_id is not None:
        tasks = array_tasks(ctx, principal, row.array_job_id)[:MAX_TASKS_SHOWN]
    names = _usernames(ctx, {row.user_id} | {t.user_id for t in tasks})
    slurm: dict[str, Any] = row.slurm or {}
    batch: dict[str, Any] = slurm.get("batch") or {}
    array = batch.get("array")
    role = principal.role_in(row.project_id)
    return JobDetail(
        line=_line(row, names.get(row.user_id, "?")),
        project_id=row.project_id,
        allocated_gpus=row.shape_nodes * row.shape_gpus_per_node
        if row.shape_nodes is not None and row.shape_gpus_per_node is not None
        else None,
        placed_at=row.placed_at,
        elapsed_s=row.elapsed_s,
        site_job_id=row.site_job_id,
        requeues=row.requeues,
        cancel_requested=row.cancel_requested,
        command=list(row.command or []),
        script=row.script,
        countries=list(row.countries or []),
        min_gpu_memory_gb=row.min_gpu_memory_gb,
        array_job_id=row.array_job_id,
        array_task_count=int(array[2]) if isinstance(array, list) and len(array) > 2 else None,
        tasks=[_line(t, names.get(t.user_id, "?")) for t in tasks],
        dependency=dependency_text(row.dependency),
        warnings=list(row.warnings or []),
        options=honoured_options(slurm),
        # as require_can_cancel decides (the cancel itself checks again)
        may_cancel=principal.is_operator
        or role is Role.PI
        or (role is not None and row.user_id == principal.user_id),
        may_read_output=role is not None,  # as job_output.find_readable_job
        separate_error=row.error_path is not None or batch.get("error") is not None,
        charged_eur=job_euros(ctx.catalogue, row).charged,
    )


_PLAIN = (
    ("partitions", "--partition"),
    ("ntasks", "--ntasks"),
    ("ntasks_per_node", "--ntasks-per-node"),
    ("cpus_per_task", "--cpus-per-task"),
)
_BATCH = (
    ("output", "--output"),
    ("error", "--error"),
    ("signal", "--signal"),
    ("mail_types", "--mail-type"),
    ("mail_user", "--mail-user"),
)


def honoured_options(slurm: dict[str, Any]) -> list[tuple[str, str]]:
    """The job's ``slurm`` options (db/convert.py) as sbatch options and their values."""
    out: list[tuple[str, str]] = []
    for key, option in _PLAIN:
        value = slurm.get(key)
        if value is not None:
            out.append((option, ",".join(value) if isinstance(value, list) else str(value)))
    if slurm.get("mem_per_node_mb") is not None:
        out.append(("--mem", f"{slurm['mem_per_node_mb']:,} MB per node"))
    if slurm.get("mem_per_gpu_mb") is not None:
        out.append(("--mem-per-gpu", f"{slurm['mem_per_gpu_mb']:,} MB"))
    if slurm.get("exclusive"):
        out.append(("--exclusive", "whole nodes"))
    batch: dict[str, Any] = slurm.get("batch") or {}
    for key, option in _BATCH:
        value = batch.get(key)
        if value is not None:
            out.append((option, ",".join(value) if isinstance(value, list) else str(value)))
    if batch.get("requeue") is not None:
        out.append(("--requeue" if batch["requeue"] else "--no-requeue", "yes"))
    return out
