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
4      run time (s)            runtime_s         -1: skipped; 0: kept (see below)
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
processors`` (fields 5 and 8 both -1 or 0). A job that ran 0 s (``run time`` 0, any other
status) is kept as a zero-length job: it held its place in the queue (NASA iPSC/860 has 173).

The header's ``MaxNodes`` and ``MaxProcs`` describe the machine the log comes from:
:func:`read_swf_machine` reads them (with ``Computer`` and ``Installation``), and the twin
builds that machine as one site when a scenario asks for the trace's own sites.

Some logs (e.g. NASA iPSC/860 1993) record start times as submit times (field 3 is -1): usable
as an arrival stream, not to measure the original queueing delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aifactories.twin.traces._common import (
    Collector,
    Row,
    extras,
    open_text,
    parse_float,
    text_lines,
)
from aifactories.twin.traces.errors import TraceError
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


@dataclass(frozen=True, slots=True)
class SwfMachine:
    """The machine an SWF log describes in its header: ``nodes`` nodes of ``procs_per_node``
    processors (``MaxNodes``, ``MaxProcs`` / ``MaxNodes``), and its name."""

    name: str
    nodes: int
    procs_per_node: int

    @property
    def procs(self) -> int:
        return self.nodes * self.procs_per_node


def read_swf_machine(path: Path | str) -> SwfMachine | None:
    """The machine of the log's header, or None when it gives neither MaxProcs nor MaxNodes.

    Without ``MaxNodes`` every processor is a node; with both, ``MaxProcs`` must be a whole
    multiple of ``MaxNodes`` (SWF machines have identical nodes). Reads only the header.
    """
    path = Path(path)
    fields: dict[str, tuple[int, str]] = {}
    with open_text(path) as stream:
        for line_number, text in text_lines(path, stream):
            if text and not text.startswith(";"):
                break  # the header is over
            key, _, value = text.lstrip("; ").partition(":")
            if value.strip():
                fields.setdefault(key.strip(), (line_number, value.strip()))
    procs, nodes = _header_count(path, fields, "MaxProcs"), _header_count(path, fields, "MaxNodes")
    if procs is None and nodes is None:
        return None
    nodes = nodes or procs
    procs = procs or nodes
    assert nodes is not None and procs is not None
    if procs % nodes:
        line = fields["MaxProcs"][0]
        raise TraceError(path, line, "MaxProcs", f"{procs} is not a multiple of MaxNodes {nodes}")
    name = fields.get("Computer", (0, path.name))[1]
    if "Installation" in fields:
        name = f"{name} ({fields['Installation'][1]})"
    return SwfMachine(name=name, nodes=nodes, procs_per_node=procs // nodes)


def _header_count(path: Path, fields: dict[str, tuple[int, str]], key: str) -> int | None:
    if key not in fields:
        return None
    line, text = fields[key]
    if not text.isdigit() or int(text) < 1:
        raise TraceError(path, line, key, f"{text!r} is not a whole number >= 1")
    return int(text)


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
    if runtime == 0 and status_code == _CANCELLED:
        jobs.skip("cancelled before start")
        return
    if not processors:
        jobs.skip("unknown processors")
        return
    if runtime == 0:
        jobs.note("zero runtime (kept)")
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
