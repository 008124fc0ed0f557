"""Standard Workload Format (SWF) of the Parallel Workloads Archive, plain or gzip.

One job per line, 18 whitespace-separated numbers, ``-1`` meaning unknown; header lines start
with ``;`` (``; MaxProcs: 128`` ...). Reference: Feitelson et al., "Experience with using the
Parallel Workloads Archive", JPDC 2014, and the archive's SWF page.

=====  ======================  ================  =============================================
field  SWF meaning             TraceJob field    mapping
=====  ======================  ================  =============================================
1      job number              job_id            as written
2      submit time (s)         submit_s          as written: SWF counts from the log start
3      wait time (s)           recorded_wait_s   None when -1
4      run time (s)            runtime_s         -1 or 0: skipped (see below)
5      allocated processors    gpus              if -1, field 8 (requested processors) is used
8      requested processors    gpus (fallback)   both -1 or 0: skipped
9      requested time (s)      time_limit_s      None when -1
11     status                  extra "status"    see below
12     user id                 user              None when -1
13     group id                group             the Unix group, closest to an account
14     executable id           workload_class    ``app<N>``, None when -1
15     queue id                extra "queue"
16     partition id            extra "partition"
=====  ======================  ================  =============================================

Fields 6, 7, 10, 17 and 18 (CPU time, memory, requested memory, preceding job, think time) are
not kept. SWF logs come from CPU machines, so ``gpus`` holds *processors*: the twin then treats
one processor as one accelerator slot, which keeps the log's shape (sizes, arrivals, runtimes)
but not its hardware. ``nodes`` and ``gpu_model`` are None.

Status (field 11): 1 completed, 0 failed and -1 unknown are kept (the job ran and held its
processors); 5 cancelled is kept if it ran (run time > 0) and otherwise skipped as ``cancelled
before start``; 2, 3 and 4 mark *partial executions* of a checkpointed job whose whole job also
has its own summary line, so they are skipped (``partial execution record``) to avoid counting
the work twice. Other skip reasons: ``unknown runtime`` (-1), ``zero runtime`` (0), ``unknown
processors`` (fields 5 and 8 both -1 or 0).

Some logs (e.g. NASA iPSC/860 1993) record start times as submit times (field 3 is -1): usable
as an arrival stream, not to measure the original queueing delay.
"""

from __future__ import annotations

from pathlib import Path

from aifactories.twin.traces._common import (
    Collector,
    Row,
    extras,
    open_text,
    parse_float,
    text_lines,
)
from aifactories.twin.traces.model import Trace, TraceJob

FIELDS = (
    "job_number",
    "submit_time",
    "wait_time",
    "run_time",
    "allocated_processors",
    "average_cpu_time",
    "used_memory",
    "requested_processors",
    "requested_time",
    "requested_memory",
    "status",
    "user_id",
    "group_id",
    "executable_id",
    "queue_id",
    "partition_id",
    "preceding_job",
    "think_time",
)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_PARTIAL = (2, 3, 4)
_CANCELLED = 5


def read_swf(path: Path | str, *, limit: int | None = None) -> Trace:
    """Read an SWF log (plain or .gz) into a :class:`Trace` (see the module docstring)."""
    path = Path(path)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for line_number, text in text_lines(path, stream):
            if jobs.full:
                break
            if not text or text.startswith(";"):
                continue
            values = text.split()
            row = Row(path, line_number, values, _INDEX)
            if len(values) != len(FIELDS):
                raise row.error("row", f"expected {len(FIELDS)} fields, got {len(values)}")
            _read_job(row, jobs)
    return jobs.trace(path.name, path)


def _known(row: Row, field: str) -> float | None:
    """The field's value, None for SWF's -1 (unknown); other negatives are errors."""
    value = parse_float(row, field, row.text(field), minimum=None)
    if value == -1:
        return None
    if value < 0:
        raise row.error(field, f"{row.text(field)!r} is negative (only -1, unknown, may be)")
    return value


def _whole(row: Row, field: str) -> int | None:
    value = _known(row, field)
    if value is not None and not value.is_integer():
        raise row.error(field, f"{row.text(field)!r} is not a whole number")
    return None if value is None else int(value)


def _read_job(row: Row, jobs: Collector) -> None:
    job_number = _whole(row, "job_number")
    submit = _known(row, "submit_time")
    if job_number is None or submit is None:
        field = "job_number" if job_number is None else "submit_time"
        raise row.error(field, "is -1 (unknown), but every job needs it")
    status = row.text("status")
    status_code = _whole(row, "status")
    runtime = _known(row, "run_time")
    processors = _whole(row, "allocated_processors") or _whole(row, "requested_processors")
    if status_code in _PARTIAL:
        jobs.skip("partial execution record")
        return
    if runtime is None:
        jobs.skip("unknown runtime")
        return
    if runtime == 0:
        jobs.skip("cancelled before start" if status_code == _CANCELLED else "zero runtime")
        return
    if not processors:
        jobs.skip("unknown processors")
        return
    executable = _whole(row, "executable_id")
    jobs.add(
        row,
        TraceJob(
            job_id=str(job_number),
            submit_s=submit,
            runtime_s=runtime,
            gpus=processors,
            user=_text_id(row, "user_id"),
            group=_text_id(row, "group_id"),
            time_limit_s=_known(row, "requested_time") or None,
            workload_class=None if executable is None else f"app{executable}",
            recorded_wait_s=_known(row, "wait_time"),
            extra=extras(
                status=status,
                queue=_text_id(row, "queue_id"),
                partition=_text_id(row, "partition_id"),
            ),
        ),
    )


def _text_id(row: Row, field: str) -> str | None:
    value = _whole(row, field)
    return None if value is None else str(value)
