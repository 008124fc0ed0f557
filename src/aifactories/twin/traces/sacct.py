"""Slurm accounting exports: ``sacct --parsable2`` with a header line and ``|`` between fields.

Made with, for example::

    sacct --allusers --parsable2 --starttime 2025-01-01 --endtime 2025-02-01 \\
      --format=JobID,JobName,User,Account,Partition,Submit,Start,End,Elapsed,Timelimit,\\
AllocTRES,State,NNodes

Columns are found by their header names (any order); ``JobID``, ``Submit``, ``Start``,
``Elapsed`` and ``AllocTRES`` are required.

==========  ================  ================================================================
column      TraceJob field    mapping
==========  ================  ================================================================
JobID       job_id            as written (``123``, array task ``123_4``, het part ``123+0``);
                              job steps (``123.batch``, ``123.extern``, ``123.0``) are skipped
Submit      submit_s          ``YYYY-MM-DDTHH:MM:SS`` read as UTC (sacct prints the cluster's
                              local time without a zone), minus the earliest accepted submit
Start       recorded_wait_s   Start - Submit
Elapsed     runtime_s         ``[D-]HH:MM:SS`` (also ``MM:SS``)
Timelimit   time_limit_s      same format; ``UNLIMITED`` and ``Partition_Limit`` give None
AllocTRES   gpus, gpu_model   ``gres/gpu=N``; without it, the sum of typed ``gres/gpu:<type>=N``,
                              and the type becomes gpu_model when there is exactly one
NNodes      nodes             None when absent or 0
User        user
Account     group             the Slurm account, i.e. the project
Partition   extra
State       extra             first word (``CANCELLED by 1000`` -> ``CANCELLED``)
==========  ================  ================================================================

``JobName`` and ``End`` are read by sacct but not kept: names are free text, and Elapsed is
Slurm's own End - Start.

Skipped rows: ``job step``; ``cancelled before start`` (CANCELLED with no Start or zero
Elapsed); ``never started`` (no Start: ``Unknown`` or ``None``, e.g. PENDING); ``still running``
(RUNNING, REQUEUED or SUSPENDED: Elapsed is not final); ``zero runtime``; ``no GPU`` (no
gres/gpu in AllocTRES). A Start before Submit keeps no recorded wait (counted in ``notes``).
"""

from __future__ import annotations

import re
from pathlib import Path

from aifactories.twin.traces._common import Collector, Row, csv_rows, extras, open_text
from aifactories.twin.traces.model import Trace, TraceJob

REQUIRED = ("JobID", "Submit", "Start", "Elapsed", "AllocTRES")
_NO_TIME = frozenset({"", "Unknown", "None"})
_NO_LIMIT = frozenset({"", "UNLIMITED", "Partition_Limit", "NONE", "INVALID"})
_NOT_FINAL = frozenset({"RUNNING", "REQUEUED", "SUSPENDED", "RESIZING"})
_DURATION = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_DAYS_HOURS = re.compile(r"^(\d+)-(\d+)$")


def parse_slurm_duration(text: str) -> float | None:
    """Seconds from Slurm's ``[D-]HH:MM:SS``, ``MM:SS``, ``D-HH`` or ``MM``; None if malformed."""
    match = _DURATION.match(text)
    if match:
        days, hours, minutes, seconds = match.groups()
        return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    match = _DAYS_HOURS.match(text)
    if match:
        return int(match.group(1)) * 86400 + int(match.group(2)) * 3600
    return int(text) * 60.0 if text.isdigit() else None


def read_sacct(path: Path | str, *, limit: int | None = None) -> Trace:
    """Read a ``sacct --parsable2`` export into a :class:`Trace` (see the module docstring)."""
    path = Path(path)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for row in csv_rows(path, stream, REQUIRED, delimiter="|"):
            if jobs.full:
                break
            _read_job(row, jobs)
    return jobs.trace(path.name, path, rebase=True)


def _duration(row: Row, column: str) -> float:
    text = row.text(column)
    value = parse_slurm_duration(text)
    if value is None:
        raise row.error(column, f"{text!r} is not a Slurm duration ([D-]HH:MM:SS)")
    return value


def _read_job(row: Row, jobs: Collector) -> None:
    job_id = row.text("JobID")
    if not job_id:
        raise row.error("JobID", "is empty")
    if "." in job_id:
        jobs.skip("job step")
        return
    submit = row.time("Submit")
    state = (row.optional("State") or "").split(" ")[0].upper() or None
    cancelled = state == "CANCELLED"
    if row.text("Start") in _NO_TIME:
        jobs.skip("cancelled before start" if cancelled else "never started")
        return
    start = row.time("Start")
    if state in _NOT_FINAL:
        jobs.skip("still running")
        return
    runtime = _duration(row, "Elapsed")
    if runtime == 0:
        jobs.skip("cancelled before start" if cancelled else "zero runtime")
        return
    gpus, gpu_model = _gpus(row)
    if gpus == 0:
        jobs.skip("no GPU")
        return
    limit_text = row.optional("Timelimit") or ""
    nodes = row.integer("NNodes") if row.optional("NNodes") else None
    jobs.add(
        row,
        TraceJob(
            job_id=job_id,
            submit_s=submit,
            runtime_s=runtime,
            gpus=gpus,
            nodes=nodes or None,
            gpu_model=gpu_model,
            user=row.optional("User"),
            group=row.optional("Account"),
            time_limit_s=None if limit_text in _NO_LIMIT else _duration(row, "Timelimit") or None,
            recorded_wait_s=jobs.wait(start - submit),
            extra=extras(partition=row.optional("Partition"), state=state),
        ),
    )


def _gpus(row: Row) -> tuple[int, str | None]:
    """Total GPUs and, when the TRES names exactly one GPU type, that type."""
    total: int | None = None
    typed: dict[str, int] = {}
    for item in row.text("AllocTRES").split(","):
        key, _, value = item.strip().partition("=")
        if key != "gres/gpu" and not key.startswith("gres/gpu:"):
            continue
        if not value.isdigit():
            raise row.error("AllocTRES", f"{item.strip()!r}: GPU count is not a whole number")
        if key == "gres/gpu":
            total = int(value)
        else:
            typed[key.removeprefix("gres/gpu:")] = int(value)
    count = total if total is not None else sum(typed.values())
    model = next(iter(typed)) if len(typed) == 1 else None
    return count, model
