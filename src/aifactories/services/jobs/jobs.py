"""Job use cases: submit (validate, admit against the budget), list, show, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import Connection, insert, select

from aifactories.db.accounts import project_and_allocations, project_by_ref
from aifactories.db.models import JobRow, ProjectRow, table_of
from aifactories.domain.errors import (
    BudgetExceeded,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import ANY_GPU_MODEL, JobSpec, JobState, check_transition, shape_on
from aifactories.domain.projects import Allocation
from aifactories.domain.sites import Partition
from aifactories.domain.units import (
    TIME_FORMATS,
    gpu_hours,
    parse_time_limit,
    reservation_gpu_seconds,
)
from aifactories.services.core import idempotency
from aifactories.services.core.auth import require_can_cancel, require_project_access
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import (
    Argument,
    Code,
    Name,
    Ref,
    Runtime,
    Script,
    TimeLimit,
    Workdir,
)
from aifactories.services.jobs.job_script import parse_script
from aifactories.services.programme.member_caps import check_member_cap

MAX_NAME = 200
# One statement, parameters passed apart: compiled once, not per submission.
_INSERT_JOB = insert(table_of(JobRow)).returning(table_of(JobRow).c.id)


class JobRequest(BaseModel):
    """A job submission. A ``script`` may carry #SBATCH directives; explicit fields win.
    Every field is bounded here (docs/api-and-cli.md, "Input rules"); the rules that need the
    catalogue or the settings (GPU models, partition sizes, the longest time limit) follow in
    :func:`build_spec`."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[Ref | None, Field(description="project code or id")] = None
    gpus: Annotated[StrictInt | None, Field(ge=1, le=1_000_000)] = None
    nodes: Annotated[StrictInt | None, Field(ge=1, le=100_000)] = None
    gpu_model: Annotated[
        Code | None, Field(description="a GPU model of the catalogue or 'any'")
    ] = None
    min_gpu_memory_gb: Annotated[StrictInt | None, Field(ge=0, le=1_000_000)] = None
    time_limit: Annotated[
        TimeLimit | None,
        Field(description=f"seconds, or Slurm's {TIME_FORMATS}"),
    ] = None
    name: Name | None = None
    command: Annotated[list[Argument], Field(max_length=1000)] = []
    script: Script | None = None
    workdir: Workdir | None = None
    countries: Annotated[
        list[Code], Field(max_length=50, description="ISO 3166-1 alpha-2 codes: DE, FI")
    ] = []
    runtime: Annotated[
        Runtime | None,
        Field(description="emulated sites only: how long the job really runs"),
    ] = None


def _seconds(value: str | int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return parse_time_limit(value, field=field)


@dataclass(frozen=True)
class _Admission:
    spec: JobSpec
    project: ProjectRow


def _candidates(ctx: ServiceContext, spec: JobSpec) -> list[Partition]:
    """Partitions that could ever run the job: hardware, gang shape and residency."""
    out = []
    for site in ctx.catalogue.operational_sites:
        if spec.countries and site.country not in spec.countries:
            continue
        for p in site.partitions:
            if (
                spec.wants_model(p.gpu_model)
                and p.gpu_memory_gb >= spec.min_gpu_memory_gb
                and shape_on(spec, p.gpus_per_node, p.nodes) is not None
            ):
                out.append(p)
    return out


def _explain_no_candidate(ctx: ServiceContext, spec: JobSpec) -> InvalidInput:
    partitions = ctx.catalogue.operational_partitions
    models = [p for p in partitions if spec.wants_model(p.gpu_model)]
    if not models:
        return InvalidInput(
            "gpu_model",
            f"unknown GPU model {spec.gpu_model!r}",
            limit="one of: any, " + ", ".join(ctx.catalogue.gpu_models),
        )
    memory = [p for p in models if p.gpu_memory_gb >= spec.min_gpu_memory_gb]
    if not memory:
        most = max(p.gpu_memory_gb for p in models)
        return InvalidInput(
            "min_gpu_memory_gb",
            f"no {spec.gpu_model} partition has {spec.min_gpu_memory_gb} GB per GPU",
            limit=f"at most {most} GB",
        )
    country_of = {site.id: site.country for site in ctx.catalogue.sites}
    countries = {country_of[p.site_id] for p in memory}
    if spec.countries and not countries & spec.countries:
        return InvalidInput(
            "countries",
            f"no matching partition in {', '.join(sorted(spec.countries))}",
            limit="matching partitions are in " + ", ".join(sorted(countries)),
        )
    largest = max(p.total_gpus for p in memory)
    if spec.nodes is not None:
        return InvalidInput(
            "nodes",
            f"{spec.gpus} GPUs on {spec.nodes} node(s) fits no partition",
            limit="GPUs must divide evenly over the nodes, at most "
            f"{max(p.gpus_per_node for p in memory)} per node",
        )
    return InvalidInput(
        "gpus",
        f"{spec.gpus} GPUs is more than any matching partition has",
        limit=f"at most {largest} GPUs",
    )


def build_spec(ctx: ServiceContext, req: JobRequest) -> tuple[JobSpec, str | None]:
    """Validate a request into a JobSpec; returns it with the project named by the script."""
    directives = parse_script(req.script) if req.script is not None else None
    d = directives
    gpus = req.gpus if req.gpus is not None else (d.gpus if d else None)
    nodes = req.nodes if req.nodes is not None else (d.nodes if d else None)
    if gpus is None and d is not None and d.gpus_per_node is not None:
        gpus = d.gpus_per_node * (nodes or 1)
    if gpus is None:
        raise InvalidInput("gpus", "say how many GPUs the job needs (--gpus N)", limit="at least 1")
    if gpus < 1:
        raise InvalidInput("gpus", f"{gpus} is not a GPU count", limit="at least 1")
    if nodes is not None and not 1 <= nodes <= gpus:
        raise InvalidInput("nodes", f"{nodes} nodes for {gpus} GPUs", limit=f"1 to {gpus}")
    time_limit = _seconds(req.time_limit, "time_limit")
    if time_limit is None and d is not None:
        time_limit = d.time_limit_s
    if time_limit is None:
        raise InvalidInput("time_limit", "say how long the job may run (--time HH:MM:SS)")
    limit = ctx.settings.max_time_limit_s
    if not 0 < time_limit <= limit:
        raise InvalidInput(
            "time_limit",
            f"{time_limit} s is not an allowed time limit",
            limit=f"between 1 s and {limit} s ({limit / 3600:g} hours)",
        )
    model = req.gpu_model or (d.gpu_model if d else None) or ANY_GPU_MODEL
    if model.lower() == ANY_GPU_MODEL:
        model = ANY_GPU_MODEL
    else:
        known = {m.lower(): m for m in ctx.catalogue.gpu_models}
        if model.lower() not in known:
            raise InvalidInput(
                "gpu_model",
                f"unknown GPU model {model!r}",
                limit="one of: any, " + ", ".join(ctx.catalogue.gpu_models),
            )
        model = known[model.lower()]
    memory = req.min_gpu_memory_gb
    if memory is None:
        memory = d.min_gpu_memory_gb if d and d.min_gpu_memory_gb else 0
    if memory < 0:
        raise InvalidInput("min_gpu_memory_gb", f"{memory} GB", limit="0 or more")
    name = req.name or (d.name if d else None) or (req.command[0] if req.command else "job")
    if len(name) > MAX_NAME:
        raise InvalidInput("name", f"{len(name)} characters", limit=f"at most {MAX_NAME}")
    countries = [c.upper() for c in (req.countries or (d.countries if d else []))]
    for country in countries:
        if len(country) != 2 or not country.isalpha():
            raise InvalidInput(
                "countries",
                f"{country!r} is not a two-letter country code",
                limit="ISO 3166-1 alpha-2, for example DE, FI",
            )
    runtime = _seconds(req.runtime, "runtime")
    if runtime is None and d is not None:
        runtime = d.runtime_s
    if runtime is not None and runtime < 0:
        raise InvalidInput("runtime", f"{runtime} s", limit="0 or more")
    command = tuple(req.command)
    if not command and req.script is not None:
        command = ("bash", "-c", req.script)
    spec = JobSpec(
        gpus=gpus,
        time_limit_s=time_limit,
        gpu_model=model,
        min_gpu_memory_gb=memory,
        nodes=nodes,
        name=name,
        command=command,
        script=req.script,
        workdir=req.workdir,
        countries=frozenset(countries),
        runtime_s=runtime,
    )
    if not _candidates(ctx, spec):
        raise _explain_no_candidate(ctx, spec)
    return spec, (d.account if d else None)


def _check_budget(
    ctx: ServiceContext, allocations: list[Allocation], spec: JobSpec, project: ProjectRow
) -> None:
    now = ctx.clock.now()
    best_need: int | None = None
    best_left = 0
    for partition in _candidates(ctx, spec):
        shape = shape_on(spec, partition.gpus_per_node, partition.nodes)
        assert shape is not None
        need = reservation_gpu_seconds(
            shape.allocated_gpus, spec.time_limit_s, partition.billing_weight
        )
        usable = [a for a in allocations if a.usable_at(SiteId(partition.site_id), now)]
        left = max((a.left_gpu_seconds for a in usable), default=0)
        if usable and need <= left:
            return
        if best_need is None or need < best_need:
            best_need, best_left = need, left
    assert best_need is not None
    if not any(a.status.value == "open" and a.starts_at <= now < a.ends_at for a in allocations):
        raise BudgetExceeded(
            f"project {project.code} has no open allocation valid now; ask the programme for one",
            needed_gpu_seconds=best_need,
            left_gpu_seconds=0,
        )
    raise BudgetExceeded(
        f"budget: this job reserves at least {gpu_hours(best_need):,.2f} GPU-hours "
        f"({spec.gpus} GPUs x {spec.time_limit_s / 3600:g} h x billing weight) but project "
        f"{project.code} has at most {gpu_hours(best_left):,.2f} GPU-hours left where it could "
        "run; shorten --time, use fewer GPUs or a lower-weight GPU model",
        needed_gpu_seconds=best_need,
        left_gpu_seconds=best_left,
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
    needs = []
    for partition in _candidates(ctx, spec):
        shape = shape_on(spec, partition.gpus_per_node, partition.nodes)
        assert shape is not None
        needs.append(
            reservation_gpu_seconds(
                shape.allocated_gpus, spec.time_limit_s, partition.billing_weight
            )
        )
    return min(needs)


def _new_job_row(
    ctx: ServiceContext, principal: Principal, spec: JobSpec, project: ProjectRow
) -> JobRow:
    return JobRow(
        project_id=project.id,
        user_id=principal.user_id,
        name=spec.name,
        state=JobState.PENDING.value,
        gpus=spec.gpus,
        nodes=spec.nodes,
        gpu_model=spec.gpu_model,
        min_gpu_memory_gb=spec.min_gpu_memory_gb,
        time_limit_s=spec.time_limit_s,
        command=list(spec.command),
        script=spec.script,
        workdir=spec.workdir,
        countries=sorted(spec.countries),
        runtime_s=spec.runtime_s,
        submitted_at=ctx.clock.now(),
        reason="waiting for the broker's next cycle",
        reserved_gpu_seconds=0,
        charged_gpu_seconds=0,
        requeues=0,
        cancel_requested=False,
    )


def _values(row: JobRow) -> dict[str, object]:
    # A Core INSERT, not the ORM unit of work: submission is the hot path (docs/benchmarks.md)
    return {c.key: getattr(row, c.key) for c in table_of(JobRow).columns if c.key != "id"}


def submit_job(
    ctx: ServiceContext, principal: Principal, req: JobRequest, key: str | None = None
) -> JobRow:
    """Submit a job; with an idempotency ``key``, a retry of the same request gets the job the
    first one made (services/core/idempotency.py)."""
    once = idempotency.once(principal, key, "jobs.submit", req)
    return idempotency.replaying(
        ctx,
        once,
        lambda: _submit_job(ctx, principal, req, once),
        lambda job_id: get_job(ctx, principal, job_id),
    )


def _submit_job(
    ctx: ServiceContext, principal: Principal, req: JobRequest, once: idempotency.Once | None
) -> JobRow:
    spec, script_project = build_spec(ctx, req)
    project_ref = req.project or script_project
    if not project_ref:
        raise InvalidInput("project", "say which project the job runs under (--project CODE)")
    if ctx.read_engine is ctx.write_engine:
        # A database server: the checks and the insert share one connection and transaction
        # (fewer round trips; the conditional reservation at placement stays the atomic one).
        with ctx.write_engine.begin() as conn:
            project = _admit(ctx, conn, principal, spec, project_ref)
            row = _new_job_row(ctx, principal, spec, project)
            row.id = conn.execute(_INSERT_JOB, _values(row)).scalar_one()
            idempotency.record(conn, once, row.id, row.submitted_at)
    else:
        # SQLite: the checks read outside the write transaction, so that the write lock is
        # held for the insert alone. The budget check is admission advice: the broker's
        # reservation at placement is the atomic one, so a balance that moves in between
        # overdraws nothing.
        with ctx.read_engine.connect() as conn:
            project = _admit(ctx, conn, principal, spec, project_ref)
        row = _new_job_row(ctx, principal, spec, project)
        with ctx.write_engine.begin() as conn:
            row.id = conn.execute(_INSERT_JOB, _values(row)).scalar_one()
            idempotency.record(conn, once, row.id, row.submitted_at)
    row.project = project  # detached now: lets front-ends name the project without a query
    return row


def _visible_job(ctx: ServiceContext, principal: Principal, job_id: int) -> JobRow:
    with ctx.reads() as session:
        row = session.get(JobRow, job_id)
    if row is None or (principal.role_in(row.project_id) is None and not principal.is_operator):
        raise NotFound(f"job {job_id} does not exist or is not in one of your projects")
    return row


def get_job(ctx: ServiceContext, principal: Principal, job_id: int) -> JobRow:
    return _visible_job(ctx, principal, job_id)


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


def cancel_job(ctx: ServiceContext, principal: Principal, job_id: int) -> JobRow:
    """A pending job is cancelled at once; one at a site is cancelled there by the broker."""
    _visible_job(ctx, principal, job_id)
    with ctx.sessions() as session, session.begin():
        row = session.get(JobRow, job_id)
        assert row is not None
        require_can_cancel(principal, row.project_id, row.user_id, job_id)
        state = JobState(row.state)
        if state.final:
            return row  # cancelling a finished job changes nothing, like scancel
        if state is JobState.PENDING:
            check_transition(row.id, state, JobState.CANCELLED)
            row.state = JobState.CANCELLED.value
            row.ended_at = ctx.clock.now()
            row.reason = f"cancelled by {principal.username}"
        else:
            row.cancel_requested = True
            row.reason = f"cancel requested by {principal.username}"
        return row
