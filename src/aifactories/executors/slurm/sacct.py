"""Finished jobs from Slurm accounting: ``sacct`` with slurmdbd, ``sacct -c`` without.

Used when ``squeue`` no longer knows a job (MinJobAge passed, the controller lost its state)
and to import usage. Two sources, read with the same columns::

    sacct [-c] -X -P -n -a -o jobid,state,exitcode,elapsedraw,alloctres,start,end,comment,
                            jobname,account,cluster,reason,nodelist [-j IDS] [-S START -E now]

- slurmdbd (``completion_file_mode=False``): AllocTRES carries ``gres/gpu=N`` when the site
  tracks GPUs (``AccountingStorageTRES=gres/gpu``); the comment is kept with
  ``AccountingStoreFlags=job_comment``.
- jobcomp/filetxt (``completion_file_mode=True``, ``sacct -c``): no database, one line per
  finished job. ``-S`` and ``-s`` are ignored there (every row comes back), so the time
  window is applied here; comments and GPU counts are not recorded, so the tag comes from
  the job name (``aif-<id>_<name>``) and ``allocated_gpus`` is None (unknown).

Times are read as epoch seconds when the caller sets ``SLURM_TIME_FORMAT=%s`` (the CLI
executor does), else as the ISO local time sacct prints by default.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aifactories.domain.errors import ProtocolError
from aifactories.domain.jobs import JobState
from aifactories.executors.base import SiteJobStatus
from aifactories.executors.slurm.jobrecord import gpus_in_tres, tag_of
from aifactories.executors.slurm.states import map_state, reason_code

FIELDS = (
    "jobid",
    "state",
    "exitcode",
    "elapsedraw",
    "alloctres",
    "start",
    "end",
    "comment",
    "jobname",
    "account",
    "cluster",
    "reason",
    "nodelist",
)
_UNSET = {"", "Unknown", "None", "N/A", "(null)", "None assigned"}


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    """One job as accounting saw it. ``allocated_gpus`` is None where the site does not
    record GPUs (jobcomp/filetxt); ``start``/``end`` are None if the job never ran/ended."""

    site_job_id: str
    tag: str | None
    state: JobState
    slurm_state: str
    exit_code: int | None
    start: float | None
    end: float | None
    elapsed_s: float
    allocated_gpus: int | None
    account: str
    reason: str | None
    name: str = ""
    cluster: str = ""

    @property
    def gpu_seconds(self) -> float:
        """What the job used: allocated GPUs x elapsed (0 when GPUs are unknown)."""
        return (self.allocated_gpus or 0) * self.elapsed_s

    def to_status(self, fallback_gpus: int = 0) -> SiteJobStatus:
        """The record as a poll result; ``fallback_gpus`` stands in for unknown GPUs."""
        started = self.start is not None
        gpus = self.allocated_gpus if self.allocated_gpus is not None else fallback_gpus
        return SiteJobStatus(
            site_job_id=self.site_job_id,
            tag=self.tag or "",
            state=self.state,
            started_at=self.start,
            ended_at=self.end,
            elapsed_s=self.elapsed_s,
            exit_code=self.exit_code if started and self.state.final else None,
            reason=self.reason,
            allocated_gpus=gpus if started else 0,
        )


def parse_exit_code(text: str) -> int | None:
    """``3:0`` -> 3; ``0:15`` (killed by signal 15) -> 143; empty -> None."""
    value = text.strip()
    if not value:
        return None
    code, _, signal = value.partition(":")
    try:
        sig = int(signal or 0)
        return 128 + sig if sig else int(code)
    except ValueError as exc:
        raise ProtocolError(f"sacct: unreadable exit code {text!r}") from exc


def parse_time(text: str) -> float | None:
    """Epoch seconds (``SLURM_TIME_FORMAT=%s``) or sacct's ISO local time; None if unset."""
    value = text.strip()
    if value in _UNSET:
        return None
    if value.isdigit():
        return float(value)
    try:
        return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%S"))
    except ValueError as exc:
        raise ProtocolError(f"sacct: unreadable time {text!r}") from exc


def parse_row(line: str) -> AccountingRecord:
    """One ``sacct -P`` row with the columns of :data:`FIELDS`."""
    cells = line.split("|")
    if len(cells) < len(FIELDS):
        raise ProtocolError(f"sacct: expected {len(FIELDS)} columns, got {line!r}")
    row = dict(zip(FIELDS, cells, strict=False))
    # A job cancelled while queued has Start = End = the cancel time but no nodes.
    started = row["nodelist"].strip() not in _UNSET
    start = parse_time(row["start"]) if started else None
    end = parse_time(row["end"])
    state = map_state(row["state"], row["reason"], started=started)
    if not state.final and state is not JobState.PENDING:
        end = None  # a running job's End is only its expected end
        start = start if state is JobState.RUNNING else None
    try:
        elapsed = float(row["elapsedraw"] or 0) if start is not None else 0.0
    except ValueError as exc:
        raise ProtocolError(f"sacct: unreadable ElapsedRaw {row['elapsedraw']!r}") from exc
    reason = row["reason"].strip()
    return AccountingRecord(
        site_job_id=row["jobid"].strip(),
        tag=tag_of({"comment": row["comment"], "name": row["jobname"]}),
        state=state,
        slurm_state=row["state"].strip(),
        exit_code=parse_exit_code(row["exitcode"]) if start is not None else None,
        start=start,
        end=end,
        elapsed_s=max(0.0, elapsed),
        allocated_gpus=gpus_in_tres(row["alloctres"]) if row["alloctres"].strip() else None,
        account=row["account"].strip(),
        reason=None if reason_code(reason) in _UNSET else reason,
        name=row["jobname"],
        cluster=row["cluster"].strip(),
    )


def sacct_command(
    job_ids: Sequence[str] | None, since: float | None, completion_file_mode: bool
) -> list[str]:
    args = ["sacct"]
    if completion_file_mode:
        args.append("-c")
    args += ["-X", "-P", "-n", "-a", "-o", ",".join(FIELDS)]
    if job_ids:
        args += ["-j", ",".join(job_ids)]
    if since is not None and not completion_file_mode:
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since))
        args += ["-S", start, "-E", "now"]
    return args


def read_accounting(
    run: Callable[[list[str]], str],
    job_ids: Sequence[str] | None,
    since: float | None,
    completion_file_mode: bool,
) -> list[AccountingRecord]:
    """Finished (or running, with slurmdbd) jobs from accounting, one per job id.

    ``run(argv)`` runs a command at the site and returns its standard output (raising the
    back-end's errors). ``job_ids`` limits the jobs (None: all); ``since`` keeps the jobs
    that ran or ended at or after that epoch time. A requeued job keeps its last row.
    """
    output = run(sacct_command(job_ids, since, completion_file_mode))
    wanted = set(job_ids) if job_ids else None
    records: dict[str, AccountingRecord] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        record = parse_row(line)
        if wanted is not None and record.site_job_id not in wanted:
            continue
        if since is not None and completion_file_mode:
            last = record.end if record.end is not None else record.start
            if last is not None and last < since:
                continue
        records.pop(record.site_job_id, None)
        records[record.site_job_id] = record
    return list(records.values())
