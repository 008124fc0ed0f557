"""Job e-mails, as ``sbatch --mail-type``/``--mail-user`` promise them: one message in the
notification outbox, written in the transaction that changes the job's state (so a rolled-back
change mails nothing and a committed one is delivered, see docs/notifications-and-audit.md).

Which message, as Slurm decides it (``job_completion_logger`` in slurmctld):

- **BEGIN** when the job starts running;
- at its end **one** message: **FAIL** if it failed (failed, which includes Slurm's NODE_FAIL
  and OUT_OF_MEMORY, timeout, or cancelled because its dependency can never be met) and FAIL
  was asked for, else **END** if END was asked for. A failed job with ``--mail-type=ALL``
  gets one FAIL message, not END and FAIL;
- **REQUEUE** when the site requeues the job (a node failure, preemption). The broker's own
  requeues of jobs that never started (a site that never got them or lost them from its
  queue, a move away from an unreachable site) are not the user's news: no message.

A job array is mailed **as a whole**, as Slurm does unless ``--mail-type`` has ARRAY_TASKS
(which the platform does not offer): BEGIN when its first task starts, one END or FAIL when
its last task ends (summing up the tasks), no REQUEUE of single tasks. A thousand-task array
sends two messages, not two thousand.

The recipient is ``--mail-user``, or the job's owner's address. The message functions below
are pure (a job's facts in, subject and body out); the functions at the end read the row and
queue the message (db/outbox.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import JobRow
from aifactories.db.outbox import queue_email, user_email
from aifactories.domain.batch import BatchOptions, MailType, batch_options_from_dict
from aifactories.domain.clock import to_datetime
from aifactories.domain.jobs import FINAL_STATES, JobState, job_ref
from aifactories.domain.units import format_duration, gpu_hours

_FAILING = frozenset({JobState.FAILED.value, JobState.TIMEOUT.value})
_FINAL = frozenset(s.value for s in FINAL_STATES)
# holds.py cancels with this reason a job whose --dependency can never be met
DEPENDENCY_NEVER = "DependencyNeverSatisfied"
_EVENTS: dict[MailType, str] = {
    "BEGIN": "job.began",
    "END": "job.ended",
    "FAIL": "job.failed",
    "REQUEUE": "job.requeued",
}


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What a job e-mail says about one job or array task."""

    label: str  # "123", or "123_4" for an array task
    name: str
    project: str
    state: str
    partition: str | None  # "site/partition"
    submitted_at: float
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    charged_gpu_seconds: int = 0
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JobMail:
    kind: MailType
    subject: str
    body: str

    @property
    def event(self) -> str:
        return _EVENTS[self.kind]


# -- which message ----------------------------------------------------------------------------


def failing(state: str, reason: str | None) -> bool:
    """Whether Slurm would call this end a failure (FAIL rather than END)."""
    return state in _FAILING or (
        state == JobState.CANCELLED.value and (reason or "").startswith(DEPENDENCY_NEVER)
    )


def end_kind(wanted: frozenset[MailType], failed: bool) -> MailType | None:
    """The one message for a job's end: FAIL for a failure if asked for, else END if asked."""
    if failed and "FAIL" in wanted:
        return "FAIL"
    return "END" if "END" in wanted else None


# -- what it says -----------------------------------------------------------------------------


def words(seconds: float) -> str:
    """A duration for a sentence: ``0 s``, ``1 min 2 s``, ``3 h 5 min``, ``2 d 4 h``."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n]
    return " ".join(shown[:2]) or "0 s"


def _when(at: float | None) -> str:
    return to_datetime(at).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


def _hours(gpu_seconds: int) -> str:
    return f"{gpu_hours(gpu_seconds):.2f} GPU-hours"


def _outcome(job: JobFacts) -> str:
    """``completed, exit code 0``, ``timeout``, ``cancelled, DependencyNeverSatisfied: ...``."""
    parts = [job.state]
    if job.exit_code is not None:
        parts.append(f"exit code {job.exit_code}")
    elif job.reason and job.state != JobState.COMPLETED.value:
        parts.append(job.reason)
    return ", ".join(parts)


def _failure(job: JobFacts) -> str:
    """What went wrong, short: ``exit code 1``, ``timeout``, ``cancelled, <reason>``."""
    if job.state == JobState.FAILED.value:
        if job.exit_code is not None:
            return f"exit code {job.exit_code}"
        return job.reason or "failed"
    return _outcome(job)


def _table(job: JobFacts) -> str:
    site, _, partition = (job.partition or "").partition("/")
    rows = [
        ("job", f"{job.label} ({job.name}), project {job.project}"),
        ("state", job.state),
        ("site", f"{site}, partition {partition}" if site else "-"),
        ("submitted", _when(job.submitted_at)),
    ]
    if job.started_at is not None:
        queued = words(job.started_at - job.submitted_at)
        rows.append(("started", f"{_when(job.started_at)} (queued {queued})"))
    if job.ended_at is not None:
        ran = job.ended_at - job.started_at if job.started_at is not None else 0.0
        rows.append(("ended", f"{_when(job.ended_at)} (run time {format_duration(ran)})"))
        rows.append(("exit code", "-" if job.exit_code is None else str(job.exit_code)))
        rows.append(("charged", _hours(job.charged_gpu_seconds)))
    if job.reason:
        rows.append(("reason", job.reason))
    return "\n".join(f"  {key:<10} {value}" for key, value in rows)


def _footer(label: str) -> str:
    return (
        f"\nIts output: aif logs {label} (standard error: aif logs {label} --error).\n"
        "You receive this because the job was submitted with --mail-type.\n"
    )


def began_mail(job: JobFacts, *, array: str | None = None) -> JobMail:
    """BEGIN; ``array``: the array's id when this is its first task to start."""
    queued = words((job.started_at or job.submitted_at) - job.submitted_at)
    if array:
        what = f"job array {array} ({job.name}) began: task {job.label}"
        intro = f"Job array {array} began: its first task, {job.label}, started."
    else:
        what = f"job {job.label} ({job.name}) began"
        intro = f"Job {job.label} started."
    subject = f"aifactories {what} at {job.partition}, queued {queued}"
    return JobMail("BEGIN", subject, f"{intro}\n\n{_table(job)}\n{_footer(array or job.label)}")


def ended_mail(job: JobFacts, kind: MailType) -> JobMail:
    """END or FAIL for a job that is not an array task."""
    if kind == "FAIL":
        subject = f"aifactories job {job.label} ({job.name}) failed: {_failure(job)}"
    else:
        charged = _hours(job.charged_gpu_seconds)
        subject = (
            f"aifactories job {job.label} ({job.name}) ended: {_outcome(job)}, {charged} charged"
        )
    return JobMail(kind, subject, f"Job {job.label} ended.\n\n{_table(job)}\n{_footer(job.label)}")


def requeued_mail(job: JobFacts) -> JobMail:
    subject = f"aifactories job {job.label} ({job.name}) requeued: {job.reason or 'requeued'}"
    body = (
        f"Job {job.label} went back to the queue; it runs again when it is placed.\n\n"
        f"{_table(job)}\n{_footer(job.label)}"
    )
    return JobMail("REQUEUE", subject, body)


def array_ended_mail(array: str, tasks: Sequence[JobFacts], kind: MailType) -> JobMail:
    """END or FAIL for a whole array, once its last task has ended."""
    states = Counter(t.state for t in tasks)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    charged = _hours(sum(t.charged_gpu_seconds for t in tasks))
    name = tasks[0].name if tasks else ""
    if kind == "FAIL":
        failed = [t for t in tasks if failing(t.state, t.reason)]
        codes = sorted({t.exit_code for t in failed if t.exit_code is not None})
        detail = f" (exit codes {', '.join(map(str, codes))})" if codes else ""
        subject = (
            f"aifactories job array {array} ({name}) failed: "
            f"{len(failed)} of {len(tasks)} tasks failed{detail}"
        )
    else:
        subject = f"aifactories job array {array} ({name}) ended: {counts}, {charged} charged"
    lines = [
        f"Job array {array} ended: all its {len(tasks)} tasks are done ({counts}).",
        f"Charged in all: {charged}.",
        "",
        f"  {'task':<10} {'state':<10} {'exit code':<10} {'run time':<12} reason",
    ]
    for t in tasks:
        ran = (t.ended_at or 0.0) - t.started_at if t.started_at is not None else 0.0
        code = "-" if t.exit_code is None else str(t.exit_code)
        lines.append(
            f"  {t.label:<10} {t.state:<10} {code:<10} {format_duration(ran):<12} {t.reason or ''}"
        )
    return JobMail(kind, subject, "\n".join(lines) + "\n" + _footer(f"{array}_<task>"))


# -- queueing it, in the caller's transaction ------------------------------------------------------


def _options(row: JobRow) -> BatchOptions | None:
    """The job's batch options if it asked for mail (most jobs did not: no parsing then)."""
    batch = (row.slurm or {}).get("batch")
    if not batch or not batch.get("mail_types"):
        return None
    return batch_options_from_dict(batch)


def _facts(row: JobRow) -> JobFacts:
    return JobFacts(
        label=job_ref(row.id, row.array_job_id, row.array_task_id),
        name=row.name,
        project=row.project.code,
        state=row.state,
        partition=row.partition_id,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        exit_code=row.exit_code,
        charged_gpu_seconds=row.charged_gpu_seconds or 0,
        reason=row.reason,
    )


def _queue(session: Session, row: JobRow, options: BatchOptions, mail: JobMail, at: float) -> None:
    recipient = options.mail_user or user_email(session, row.user_id)
    if not recipient:
        return  # an owner without an address: nobody to tell
    payload = {"job": _facts(row).label, "job_id": row.id, "mail_type": mail.kind}
    queue_email(
        session,
        at=at,
        user_id=row.user_id,
        recipient=recipient,
        event=mail.event,
        subject=mail.subject,
        body=mail.body,
        payload=payload,
    )


def _first_task_to_start(session: Session, row: JobRow) -> bool:
    other = session.scalar(
        select(JobRow.id)
        .where(
            JobRow.array_job_id == row.array_job_id,
            JobRow.id != row.id,
            JobRow.started_at.is_not(None),
        )
        .limit(1)
    )
    return other is None


def began(session: Session, row: JobRow, now: float) -> None:
    """``row`` has just started running (``started_at`` set)."""
    options = _options(row)
    if options is None or "BEGIN" not in options.mail_types:
        return
    if row.array_job_id is None:
        _queue(session, row, options, began_mail(_facts(row)), now)
    elif _first_task_to_start(session, row):
        _queue(session, row, options, began_mail(_facts(row), array=str(row.array_job_id)), now)


def ended(session: Session, row: JobRow, before: str, now: float) -> None:
    """``row`` has just reached its final state from ``before`` (its charge and end set). A job
    that started and ended between two polls was never seen running: its BEGIN goes first."""
    options = _options(row)
    if options is None:
        return
    if before != JobState.RUNNING.value and row.started_at is not None:
        began(session, row, now)
    if row.array_job_id is None:
        kind = end_kind(options.mail_types, failing(row.state, row.reason))
        if kind is not None:
            _queue(session, row, options, ended_mail(_facts(row), kind), now)
        return
    unfinished = session.scalar(
        select(JobRow.id)
        .where(JobRow.array_job_id == row.array_job_id, JobRow.state.not_in(_FINAL))
        .limit(1)
    )
    if unfinished is not None:
        return  # not the last task: the array's message waits for it (one probe, not a load)
    tasks = list(
        session.scalars(
            select(JobRow).where(JobRow.array_job_id == row.array_job_id).order_by(JobRow.id)
        )
    )
    kind = end_kind(options.mail_types, any(failing(t.state, t.reason) for t in tasks))
    if kind is not None:
        facts = [_facts(t) for t in tasks]
        _queue(session, row, options, array_ended_mail(str(row.array_job_id), facts, kind), now)


def requeued(session: Session, row: JobRow, now: float, reason: str) -> None:
    """The site put ``row`` back in its queue (node failure, preemption); called before the
    broker clears its placement, so the message still names where it ran."""
    if row.array_job_id is not None:
        return
    options = _options(row)
    if options is None or "REQUEUE" not in options.mail_types:
        return
    mail = requeued_mail(replace(_facts(row), reason=reason))
    _queue(session, row, options, mail, now)


def dependency_never_met(session: Session, job_id: int, now: float) -> None:
    """holds.py has just cancelled ``job_id`` (a pending job) with DEPENDENCY_NEVER."""
    row = session.get(JobRow, job_id, populate_existing=True)
    if row is not None and row.state == JobState.CANCELLED.value:
        ended(session, row, JobState.PENDING.value, now)
