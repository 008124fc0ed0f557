"""Per-job CSVs of SenseTime Helios (Hu et al., SC'21) and Shanghai AI Lab Acme (Hu et al.,
NSDI'24).

Helios ``cluster_log.csv``: ``job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,
start_time,end_time,duration,queue``. Acme ``trace_seren.csv`` / ``trace_kalos.csv``: the same
without ``vc``, plus ``type`` and ``gpu_time`` (Kalos also ``mem_per_pod_GB``,
``shared_mem_per_pod``, ``fail_time``, ``stop_time``). Columns are found by name, so both read
alike; only ``job_id``, ``gpu_num`` and ``submit_time`` are required, plus either ``duration``
or both ``start_time`` and ``end_time``.

===========  ================  ==============================================================
column       TraceJob field    mapping
===========  ================  ==============================================================
job_id       job_id            as written
submit_time  submit_s          date-time (``2020-06-09 18:41:01``, ``...+08:00``) or epoch
                               seconds; minus the earliest accepted submit (``Trace.origin``)
duration     runtime_s         seconds; if absent or empty, end_time - start_time
queue        recorded_wait_s   seconds; if absent or empty, start_time - submit_time
gpu_num      gpus              whole number; 0 is a CPU job (skipped)
node_num     nodes             None when absent or 0
user         user              hashed user id
vc           group             hashed virtual cluster (Helios only)
type         workload_class    Acme workload type (Pretrain, SFT, Evaluation, Debug, Other)
state        extra "state"     COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL
cpu_num      extra "cpu_num"
===========  ================  ==============================================================

Date-times without a zone are read as UTC (see :func:`~._common.parse_time`). Neither trace
records a time limit, so ``time_limit_s`` is None; ``gpu_model`` is None (Helios does not say;
Acme is all A100).

Skipped rows: ``no GPU`` (gpu_num 0: Helios and Acme log CPU jobs too), ``cancelled before
start`` (CANCELLED with no start or zero duration), ``never started`` (other rows without a
start time or runtime) and ``zero runtime``. A recorded wait below zero (start before submit, a
clock glitch) is dropped and counted in ``notes``.
"""

from __future__ import annotations

from pathlib import Path

from aifactories.twin.traces._common import Collector, Row, csv_rows, extras, open_text
from aifactories.twin.traces.errors import TraceError
from aifactories.twin.traces.model import Trace, TraceJob

REQUIRED = ("job_id", "gpu_num", "submit_time")


def read_helios(path: Path | str, *, limit: int | None = None) -> Trace:
    """Read a Helios or Acme per-job CSV into a :class:`Trace` (see the module docstring)."""
    path = Path(path)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for row in csv_rows(path, stream, REQUIRED):
            if jobs.full:
                break
            if not (row.has("duration") or (row.has("start_time") and row.has("end_time"))):
                # A header problem, found with the first row: report it on the header line.
                problem = "missing column (and no start_time and end_time to compute it)"
                raise TraceError(path, 1, "duration", problem)
            _read_job(row, jobs)
    return jobs.trace(path.name, path, rebase=True)


def _read_job(row: Row, jobs: Collector) -> None:
    submit = row.time("submit_time")
    gpus = row.integer("gpu_num")
    start = row.time("start_time") if row.optional("start_time") else None
    runtime = _runtime(row, start)
    state = row.optional("state")
    if gpus == 0:
        jobs.skip("no GPU")
        return
    if runtime is None or runtime == 0:
        if state is not None and state.upper().startswith("CANCEL"):
            jobs.skip("cancelled before start")
        else:
            jobs.skip("never started" if runtime is None else "zero runtime")
        return
    nodes = row.integer("node_num") if row.optional("node_num") else None
    jobs.add(
        row,
        TraceJob(
            job_id=row.text("job_id"),
            submit_s=submit,
            runtime_s=runtime,
            gpus=gpus,
            nodes=nodes or None,
            user=row.optional("user"),
            group=row.optional("vc"),
            workload_class=row.optional("type"),
            recorded_wait_s=jobs.wait(_wait(row, submit, start)),
            extra=extras(state=state, cpu_num=row.optional("cpu_num")),
        ),
    )


def _runtime(row: Row, start: float | None) -> float | None:
    if row.optional("duration") is not None:
        return row.number("duration")
    if start is None or not row.optional("end_time"):
        return None
    end = row.time("end_time")
    if end < start:
        raise row.error("end_time", f"{row.text('end_time')!r} is before start_time")
    return end - start


def _wait(row: Row, submit: float, start: float | None) -> float | None:
    if row.optional("queue") is not None:
        return row.number("queue", minimum=None)
    return None if start is None else start - submit
