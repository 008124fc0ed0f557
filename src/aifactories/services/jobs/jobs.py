"""Job use cases: submit (validate, admit against the budget, write the job or the tasks of
its array in one transaction). Listing, showing and cancelling are in job_queries.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Connection, insert, update

from aifactories.db.accounts import project_and_allocations
from aifactories.db.convert import slurm_options
from aifactories.db.models import JobRow, ProjectRow, table_of
from aifactories.domain.batch import ArraySpec, ArrayTask
from aifactories.domain.errors import BudgetExceeded, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.fit import shape_fitting
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobSpec, JobState
from aifactories.domain.projects import Allocation
from aifactories.domain.units import gpu_hours, reservation_gpu_seconds
from aifactories.services.core import idempotency
from aifactories.services.core.auth import require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.jobs.dependencies import resolve_dependencies
from aifactories.services.jobs.job_queries import get_job
from aifactories.services.jobs.job_spec import CheckedRequest, JobRequest, build_spec, candidates
from aifactories.services.programme.member_caps import check_member_cap

__all__ = ["JobRequest", "build_spec", "submit_job"]

# One statement, parameters passed apart: compiled once, not per submission.
_JOBS = table_of(JobRow)
_INSERT_JOB = insert(_JOBS).returning(_JOBS.c.id)


def _needs(ctx: ServiceContext, spec: JobSpec) -> list[tuple[SiteId, int]]:
    """(site, GPU-seconds the job reserves there) for every partition that could run it."""
    out = []
    for partition in candidates(ctx, spec):
        shape = shape_fitting(spec, partition)
        assert shape is not None
        need = reservation_gpu_seconds(
            shape.allocated_gpus, spec.time_limit_s, partition.billing_weight
        )
        out.append((SiteId(partition.site_id), need))
    return out


def _check_budget(
    ctx: ServiceContext, allocations: list[Allocation], spec: JobSpec, project: ProjectRow
) -> None:
    now = ctx.clock.now()
    needs = _needs(ctx, spec)
    most_left = 0
    for site_id, need in needs:
        usable = [a for a in allocations if a.usable_at(site_id, now)]
        left = max((a.left_gpu_seconds for a in usable), default=0)
        if usable and need <= left:
            return
        most_left = max(most_left, left)
    least_need = min(need for _, need in needs)
    if not any(a.status.value == "open" and a.starts_at <= now < a.ends_at for a in allocations):
        raise BudgetExceeded(
            f"project {project.code} has no open allocation valid now; ask the programme for one",
            needed_gpu_seconds=least_need,
            left_gpu_seconds=0,
        )
    # The most left at any site where the job could run: what `aif balance` shows for the
    # allocation that would pay, not the remainder at the cheapest site (often none there).
    raise BudgetExceeded(
        f"budget: this job reserves at least {gpu_hours(least_need):,.2f} GPU-hours "
        f"({spec.gpus} GPUs x {spec.time_limit_s / 3600:g} h x billing weight) but project "
        f"{project.code} has {gpu_hours(most_left):,.2f} GPU-hours left where it could "
        "run; shorten --time, use fewer GPUs or a lower-weight GPU model",
        needed_gpu_seconds=least_need,
        left_gpu_seconds=most_left,
    )


def _admit(
    ctx: ServiceContext, conn: Connection, principal: Principal, spec: JobSpec, project_ref: str
) -> ProjectRow:
    found = project_and_allocations(conn, project_ref, member_id=principal.user_id)
    if found is None:
        raise NotFound(f"project {project_ref!r} does not exist or you are not a member of it")
    project, allocations, member_cap = found
    require_project_access(principal, project.id, project_ref)
    if principal.role_in(project.id) is None:
        # an operator can see the project (so no 404) but is not in it
        raise PermissionDenied(
            f"project {project_ref!r}: only its members can submit jobs to it; its PI or a "
            f"programme operator can add you ('aif projects add-member {project_ref} USER')"
        )
    _check_budget(ctx, allocations, spec, project)
    # Education: a member's own cap in the project, read with the project above; the sums
    # over the member's jobs are asked for only when there is a cap
    if member_cap is not None:
        check_member_cap(ctx, conn, principal, project, lambda: _least_reservation(ctx, spec))
    return project


def _least_reservation(ctx: ServiceContext, spec: JobSpec) -> int:
    """The least the job can reserve on any partition that could run it."""
    return min(need for _, need in _needs(ctx, spec))


def _row_values(
    ctx: ServiceContext,
    principal: Principal,
    spec: JobSpec,
    project: ProjectRow,
    checked: CheckedRequest,
    dependency: dict[str, object] | None,
) -> dict[str, object]:
    # Core INSERT values, not the ORM unit of work: submission is the hot path
    # (docs/benchmarks.md); an array writes all its tasks in one executemany.
    return {
        "project_id": project.id,
        "user_id": principal.user_id,
        "name": spec.name,
        "state": JobState.PENDING.value,
        "gpus": spec.gpus,
        "nodes": spec.nodes,
        "gpu_model": spec.gpu_model,
        "min_gpu_memory_gb": spec.min_gpu_memory_gb,
        "time_limit_s": spec.time_limit_s,
        "command": list(spec.command),
        "script": spec.script,
        "workdir": spec.workdir,
        "countries": sorted(spec.countries),
        "runtime_s": spec.runtime_s,
        "slurm": slurm_options(spec),
        "array_job_id": None,
        "array_task_id": None,
        "dependency": dependency,
        "warnings": list(checked.warnings) or None,
        "output_path": None,
        "error_path": None,
        "submitted_at": ctx.clock.now(),
        "placed_at": None,
        "started_at": None,
        "ended_at": None,
        "site_id": None,
        "partition_id": None,
        "shape_nodes": None,
        "shape_gpus_per_node": None,
        "shape_exclusive": None,
        "allocation_id": None,
        "billing_weight": None,
        "elapsed_s": None,
        "site_job_id": None,
        "exit_code": None,
        "reason": "waiting for the broker's next cycle",
        "reserved_gpu_seconds": 0,
        "charged_gpu_seconds": 0,
        "requeues": 0,
        "cancel_requested": False,
    }


def _task_slurm(
    spec: JobSpec, array: ArraySpec, array_job_id: int, task_id: int
) -> dict[str, object]:
    """A task's ``slurm`` column: the job's options, its SLURM_ARRAY_* and the throttle."""
    options = slurm_options(_task_spec(spec, array, array_job_id, task_id)) or {}
    if array.throttle is not None:
        options["array_throttle"] = array.throttle  # read by broker/holds.py
    return options


def _task_spec(spec: JobSpec, array: ArraySpec, array_job_id: int, task_id: int) -> JobSpec:
    task = ArrayTask(
        array_job_id=array_job_id,
        task_id=task_id,
        task_count=len(array.task_ids),
        task_min=array.task_ids[0],
        task_max=array.task_ids[-1],
        task_step=array.step,
    )
    return replace(spec, batch=replace(spec.batch, array=task))


def _insert(
    conn: Connection, values: dict[str, object], spec: JobSpec, array: ArraySpec | None
) -> dict[str, object]:
    """Write the job, or every task of its array; the first task's id is the array's id
    (Slurm's ArrayJobId), so "123" names the array and "123_4" one task. Returns the
    columns of the job written (of the array's first task)."""
    first_id: int = conn.execute(_INSERT_JOB, values).scalar_one()
    if array is None:
        return values | {"id": first_id}
    first_task, *other_tasks = array.task_ids
    first = {
        "array_job_id": first_id,
        "array_task_id": first_task,
        "slurm": _task_slurm(spec, array, first_id, first_task),
    }
    conn.execute(update(_JOBS).where(_JOBS.c.id == first_id).values(**first))
    if other_tasks:
        conn.execute(
            insert(_JOBS),
            [
                values
                | {
                    "array_job_id": first_id,
                    "array_task_id": task_id,
                    "slurm": _task_slurm(spec, array, first_id, task_id),
                }
                for task_id in other_tasks
            ],
        )
    return values | first | {"id": first_id}


def submit_job(
    ctx: ServiceContext, principal: Principal, req: JobRequest, key: str | None = None
) -> JobRow:
    """Submit a job (or a job array: the answer is its first task); with an idempotency
    ``key``, a retry of the same request gets the job the first one made
    (services/core/idempotency.py)."""
    once = idempotency.once(principal, key, "jobs.submit", req)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _submit_job(ctx, principal, req, once),
        lambda job_id: get_job(ctx, principal, str(job_id)),
    )


def _submit_job(
    ctx: ServiceContext, principal: Principal, req: JobRequest, once: idempotency.Once | None
) -> JobRow:
    checked = build_spec(ctx, req)
    spec = checked.spec
    project_ref = req.project or checked.account or req.default_project
    if not project_ref:
        raise InvalidInput(
            "project", "say which project the job runs under (--account CODE or -A CODE)"
        )

    def write(conn: Connection, project: ProjectRow) -> JobRow:
        dependency = resolve_dependencies(conn, principal, checked.dependency, spec.name)
        values = _row_values(ctx, principal, spec, project, checked, dependency)
        # the job as written, built here rather than read back: submission is the hot path
        row = JobRow(**_insert(conn, values, spec, checked.array))
        idempotency.record(conn, once, row.id, ctx.clock.now())
        row.project = project  # detached: lets front-ends name the project without a query
        return row

    return _in_transaction(ctx, principal, spec, project_ref, write)


def _in_transaction(
    ctx: ServiceContext,
    principal: Principal,
    spec: JobSpec,
    project_ref: str,
    write: Callable[[Connection, ProjectRow], JobRow],
) -> JobRow:
    if ctx.read_engine is ctx.write_engine:
        # A database server: the checks and the insert share one connection and transaction
        # (fewer round trips; the conditional reservation at placement stays the atomic one).
        with ctx.write_engine.begin() as conn:
            return write(conn, _admit(ctx, conn, principal, spec, project_ref))
    # SQLite: the checks read outside the write transaction, so that the write lock is
    # held for the insert alone. The budget check is admission advice: the broker's
    # reservation at placement is the atomic one, so a balance that moves in between
    # overdraws nothing.
    with ctx.read_engine.connect() as conn:
        project = _admit(ctx, conn, principal, spec, project_ref)
    with ctx.write_engine.begin() as conn:
        return write(conn, project)
