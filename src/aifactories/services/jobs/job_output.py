"""A job's standard output and error, read where its site keeps them (docs/job-output.md).

Only the job's project reads them: its members, whatever their role. A programme operator
sees the job but not what it printed (a project's output may hold its data): 403. Anyone
else gets the 404 of a job that does not exist, as for ``get_job``.

The read goes through the job's site executor, with the path the site reported (kept on the
job by the broker, so the output stays readable after the site forgets the job). A job that
ended longer ago than ``job_output_retention_s`` has no output any more: OutputExpired (the
API's 410); emulated sites delete the files then (executors/_output_sweep.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from aifactories.db.models import JobRow
from aifactories.domain.errors import InvalidInput, NotFound, PermissionDenied, SiteUnavailable
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState
from aifactories.executors.base import Executor, OutputStream
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.jobs.job_queries import get_job

MAX_READ = 1 << 20  # bytes per read from a site: a follower asks again for the rest


class OutputExpired(NotFound):
    """The job ended longer ago than the output's retention (the API's 410 Gone)."""

    code = "output_expired"


@dataclass(frozen=True, slots=True)
class OutputView:
    """``data`` from ``offset``; ``size`` is the file's size now (0 while there is none).
    ``final``: the job had ended before this read, so nothing more will be written: a
    follower stops once it has read up to ``size``."""

    job_id: int
    stream: OutputStream
    state: JobState
    data: bytes
    offset: int
    size: int
    exists: bool
    path: str | None
    # standard error asked for, but it goes into the output's file (no --error): there
    # will never be a file of its own
    with_output: bool = False

    @property
    def final(self) -> bool:
        return self.state.final


def find_readable_job(ctx: ServiceContext, principal: Principal, job_ref: str) -> JobRow:
    """The job ``job_ref`` names (``123`` or ``123_4``, as ``get_job``), if ``principal`` may
    read its output (see the module docstring)."""
    row = get_job(ctx, principal, job_ref)  # 404 unless a member or an operator
    if principal.role_in(row.project_id) is None:
        raise PermissionDenied(
            f"only members of project {row.project.code} may read the output of its jobs"
        )
    return row


def read_job_output(
    ctx: ServiceContext,
    principal: Principal,
    job_ref: str,
    stream: OutputStream,
    offset: int = 0,
    limit: int = MAX_READ,
    *,
    executors: Mapping[SiteId, Executor],
) -> OutputView:
    """Up to ``limit`` bytes of the job's output (or error) from ``offset``.

    ``executors`` are the platform's site back-ends (``Platform.executors()``): services
    reach no executor otherwise, and the caller (the API) holds the platform."""
    if offset < 0 or not 0 <= limit <= MAX_READ:
        raise InvalidInput("offset", f"offset {offset}, limit {limit}", limit=f"0 to {MAX_READ}")
    row = find_readable_job(ctx, principal, job_ref)
    state = JobState(row.state)  # before the read: if final, the file is complete
    check_retention(ctx, row)
    path = row.output_path if stream == "output" else row.error_path
    nothing = OutputView(row.id, stream, state, b"", offset, 0, False, path)
    if row.site_id is None or row.site_job_id is None:
        return nothing  # not at a site yet
    executor = executors.get(SiteId(row.site_id))
    if executor is None:
        raise SiteUnavailable(
            f"job {row.id} ran at site {row.site_id}, which this platform no longer has in its "
            "catalogue: its output cannot be read here"
        )
    chunk = executor.read_output(row.site_job_id, stream, offset, limit, known_path=path)
    if chunk is None:
        # the site reported the output's file and none of the error's: they are one
        shared = stream == "error" and row.output_path is not None and row.error_path is None
        return replace(nothing, with_output=shared)
    return OutputView(row.id, stream, state, chunk.data, offset, chunk.size, True, chunk.path)


def check_retention(ctx: ServiceContext, row: JobRow) -> None:
    keep = ctx.settings.job_output_retention_s
    if row.ended_at is not None and ctx.clock.now() - row.ended_at > keep:
        raise OutputExpired(
            f"the output of job {row.id} is no longer kept: it ended more than "
            f"{_span(keep)} ago (the platform's output retention, "
            "AIFACTORIES_JOB_OUTPUT_RETENTION_S)"
        )


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


def no_output_message(view: OutputView) -> str:
    """Why there is nothing to show, for a person."""
    what = "standard output" if view.stream == "output" else "standard error"
    if view.with_output:
        return (
            f"job {view.job_id} has no separate standard error: without --error it goes to "
            "its output (read that: without --error, or GET .../output)"
        )
    if view.state in (JobState.PENDING, JobState.PLACED, JobState.SUBMITTED):
        return f"job {view.job_id} is {view.state.value}: it has no {what} yet"
    if not view.final:
        return f"job {view.job_id} is {view.state.value} and has written no {what} yet"
    return f"job {view.job_id} ended ({view.state.value}) without a {what} file at its site"


TAIL_BLOCK = 64 * 1024
TAIL_SCAN_MAX = 16 << 20  # a file of endless lines without a newline: stop looking


def tail_start(read: Callable[[int, int], bytes], size: int, lines: int) -> int:
    """The offset of the last ``lines`` lines of a file of ``size`` bytes, read backwards
    in blocks with ``read(offset, length)``. A last line without its newline counts."""
    if lines <= 0 or size <= 0:
        return size
    position, found = size, 0
    first = True
    while position > 0 and size - position < TAIL_SCAN_MAX:
        start = max(0, position - TAIL_BLOCK)
        block = read(start, position - start)
        if not block:
            break
        if first and block.endswith(b"\n"):
            block = block[:-1]  # the newline that ends the last line starts no line
            position -= 1
        first = False
        at = len(block)
        while True:
            at = block.rfind(b"\n", 0, at)
            if at < 0:
                break
            found += 1
            if found == lines:
                return start + at + 1
        position = start
    return position
