"""Jobs that wait for something other than capacity: a ``--dependency`` not yet met, or an
array's ``%N`` throttle already reached. Worked out before each cycle, so the scheduling
policies never see such jobs (they stay pure and shared with the twin, which has neither).

A dependency that can never be met (``afterok`` on a job that failed) cancels the job with
Slurm's reason, as sites with ``kill_invalid_depend`` do, rather than leaving it pending for
ever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import job_mail
from aifactories.db.jobs import ACTIVE_STATES
from aifactories.db.models import JobRow, table_of
from aifactories.domain.jobs import FINAL_STATES, JobState

_JOBS = table_of(JobRow)
_FINAL = tuple(s.value for s in FINAL_STATES)


@dataclass
class Holds:
    """Pending jobs to leave out of this cycle, with their reason; jobs to cancel."""

    waiting: dict[int, str] = field(default_factory=dict)
    never: dict[int, str] = field(default_factory=dict)


def _condition(kind: str, ids: Iterable[int], states: Mapping[int, tuple[str, int | None]]) -> str:
    """ "ok", "wait" or "never" for one condition."""
    outcome = "ok"
    for job_id in ids:
        state, _code = states.get(job_id, (JobState.CANCELLED.value, None))
        if state not in _FINAL:
            outcome = "wait"
        elif (state == JobState.COMPLETED.value) == (kind == "afternotok") and kind != "afterany":
            return "never"  # afterok on a job that did not complete, or the reverse
    return outcome


def dependency_outcome(
    dependency: Mapping[str, object],
    states: Mapping[int, tuple[str, int | None]],
    singleton_waits: bool,
) -> tuple[str, str]:
    """("ok" | "wait" | "never", the reason to show) for a job's dependency column."""
    raw = dependency.get("conditions")
    conditions = raw if isinstance(raw, list) else []
    outcomes: list[tuple[str, str]] = []
    for kind, ids in conditions:
        if kind == "singleton":
            outcomes.append(("wait" if singleton_waits else "ok", "singleton"))
        else:
            outcomes.append((_condition(kind, ids, states), f"{kind}:{':'.join(map(str, ids))}"))
    results = [o for o, _ in outcomes]
    if dependency.get("any"):
        overall = "ok" if "ok" in results else ("wait" if "wait" in results else "never")
    else:
        overall = "never" if "never" in results else ("wait" if "wait" in results else "ok")
    shown = ",".join(text for outcome, text in outcomes if outcome == overall) or "dependency"
    return overall, shown


def find_holds(session: Session) -> Holds:
    holds = Holds()
    pending = _JOBS.c.state == JobState.PENDING.value
    dependent = session.execute(
        select(_JOBS.c.id, _JOBS.c.user_id, _JOBS.c.name, _JOBS.c.dependency).where(
            pending, _JOBS.c.dependency.is_not(None), _JOBS.c.cancel_requested.is_(False)
        )
    ).all()
    if dependent:
        wanted = {
            int(job_id)
            for _, _, _, dep in dependent
            for kind, ids in dep.get("conditions", [])
            if kind != "singleton"
            for job_id in ids
        }
        states = (
            {
                r.id: (r.state, r.exit_code)
                for r in session.execute(
                    select(_JOBS.c.id, _JOBS.c.state, _JOBS.c.exit_code).where(
                        _JOBS.c.id.in_(wanted)
                    )
                )
            }
            if wanted
            else {}
        )
        for job_id, user_id, name, dep in dependent:
            singleton = any(kind == "singleton" for kind, _ in dep.get("conditions", []))
            waits = singleton and _earlier_namesake_running(session, job_id, user_id, name)
            outcome, shown = dependency_outcome(dep, states, waits)
            if outcome == "wait":
                holds.waiting[job_id] = f"Dependency: waiting for {shown}"
            elif outcome == "never":
                holds.never[job_id] = f"DependencyNeverSatisfied: {shown} can no longer be met"
    _throttled(session, holds)
    return holds


def _earlier_namesake_running(session: Session, job_id: int, user_id: int, name: str) -> bool:
    """singleton: an earlier job of the same user and name that has not ended."""
    return (
        session.execute(
            select(_JOBS.c.id)
            .where(
                _JOBS.c.user_id == user_id,
                _JOBS.c.name == name,
                _JOBS.c.id < job_id,
                _JOBS.c.state.not_in(_FINAL),
            )
            .limit(1)
        ).first()
        is not None
    )


def _throttled(session: Session, holds: Holds) -> None:
    """``--array=...%N``: at most N tasks of the array placed or running at once."""
    tasks = session.execute(
        select(_JOBS.c.id, _JOBS.c.array_job_id, _JOBS.c.slurm)
        .where(_JOBS.c.state == JobState.PENDING.value, _JOBS.c.array_job_id.is_not(None))
        .order_by(_JOBS.c.array_job_id, _JOBS.c.array_task_id)
    ).all()
    limits = {
        r.array_job_id: int(r.slurm["array_throttle"])
        for r in tasks
        if r.slurm and r.slurm.get("array_throttle")
    }
    if not limits:
        return
    # a comprehension, not dict(result): a Result has keys() and is taken for a mapping
    active = {
        array_job_id: count
        for array_job_id, count in session.execute(
            select(_JOBS.c.array_job_id, func.count())
            .where(_JOBS.c.array_job_id.in_(list(limits)), _JOBS.c.state.in_(ACTIVE_STATES))
            .group_by(_JOBS.c.array_job_id)
        )
    }
    room = {array: limit - active.get(array, 0) for array, limit in limits.items()}
    for task in tasks:
        limit = limits.get(task.array_job_id)
        if limit is None or task.id in holds.waiting:
            continue
        if room[task.array_job_id] > 0:
            room[task.array_job_id] -= 1  # may be placed this cycle
        else:
            holds.waiting[task.id] = f"JobArrayTaskLimit: at most {limit} tasks at once"


def apply_holds(sessions: sessionmaker[Session], now: float) -> Holds:
    """Find the holds; cancel the jobs whose dependency can never be met."""
    with sessions() as session, session.begin():
        holds = find_holds(session)
        for job_id, reason in holds.never.items():
            session.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id, _JOBS.c.state == JobState.PENDING.value)
                .values(state=JobState.CANCELLED.value, ended_at=now, reason=reason)
            )
            job_mail.dependency_never_met(session, job_id, now)
    return holds
