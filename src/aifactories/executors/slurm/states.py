"""Slurm job states mapped onto the job state machine, and pending reasons that never clear.

Every state Slurm 22.05 reports (``squeue --json`` ``job_state``, REST v0.0.38, ``sacct``,
``squeue -o %T`` long names and ``%t`` short codes) maps onto :class:`JobState`:

==============================  =========  ===================================================
Slurm state (short code)        JobState   why
==============================  =========  ===================================================
PENDING (PD)                    SUBMITTED  queued at the site
CONFIGURING (CF)                SUBMITTED  nodes allocated but booting: user code not started
POWER_UP_NODE                   SUBMITTED  same as CONFIGURING
REQUEUED (RQ)                   SUBMITTED  the site requeued it itself and keeps it queued
REQUEUE_HOLD (RH)               SUBMITTED  requeued and held: still the site's job
REQUEUE_FED (RF)                SUBMITTED  requeued by the federation: still queued
RESV_DEL_HOLD (RD)              SUBMITTED  held because its reservation was deleted
RUNNING (R)                     RUNNING
SUSPENDED (S)                   RUNNING    holds its nodes; resumes at the site
STOPPED (ST)                    RUNNING    SIGSTOPped, still holds its allocation
RESIZING (RS)                   RUNNING    changing size while running
SIGNALING (SI)                  RUNNING    being signalled, still running
STAGE_OUT (SO)                  RUNNING    burst-buffer stage-out after the run
COMPLETING (CG)                 RUNNING    ends but still holds its nodes (if it had started;
                                           otherwise its final state if known, else SUBMITTED)
COMPLETED (CD)                  COMPLETED
FAILED (F)                      FAILED
LAUNCH_FAILED                   FAILED     the batch script could not be launched
RECONFIG_FAIL                   FAILED     the node's configuration failed for the job
SPECIAL_EXIT (SE)               FAILED     exit with the special requeue code; held at the site
BOOT_FAIL (BF)                  FAILED     a node failed to boot
NODE_FAIL (NF)                  FAILED     a node of the job failed
OUT_OF_MEMORY (OOM)             FAILED
CANCELLED (CA), "CANCELLED by"  CANCELLED  ``sacct`` writes ``CANCELLED by <uid>``
REVOKED (RV)                    CANCELLED  a federation sibling started elsewhere
TIMEOUT (TO)                    TIMEOUT
DEADLINE (DL)                   TIMEOUT    its --deadline passed
PREEMPTED (PR)                  PENDING    ended by preemption: the broker requeues it
                                           elsewhere (a site that requeues preempted jobs
                                           itself reports REQUEUED/PENDING instead)
UPDATE_DB                       (flag)     ignored: only pending accounting bookkeeping
anything else                   ProtocolError naming the state
==============================  =========  ===================================================

A state may come with flags, as ``RUNNING,COMPLETING``, ``CANCELLED+`` (truncated ``sacct``)
or a JSON list (newer API versions, given here joined by commas): flags that mean "still in
progress" (COMPLETING, CONFIGURING, REQUEUE*, STAGE_OUT, ...) win over the base state, because
the job still holds its resources.

Pending reasons that never clear by waiting (:func:`is_hopeless_pending`): the job's account
or QOS is invalid or not allowed, a *cumulative* usage limit is exhausted
(``AssocGrp*Minutes``/``QOSGrp*Minutes[Limit]``, but not ``*RunMinutes``, which frees as
running jobs end), a per-job maximum or minimum is violated (``*MaxWallDurationPerJobLimit``,
``*Max*PerJob*``, ``QOSMin*``), the request exceeds the partition (``PartitionNodeLimit``,
``PartitionTimeLimit``, ``PartitionConfig``), ``BadConstraints``, or a dependency can never
be satisfied. Transient reasons (``Resources``, ``Priority``, ``ReqNodeNotAvail``,
``PartitionDown``, ``AssocGrpGRES``, ``*MaxJobs*``, held jobs, ...) are not hopeless.
"""

from __future__ import annotations

import re

from aifactories.domain.errors import ProtocolError
from aifactories.domain.jobs import JobState

_BASE: dict[str, JobState] = {
    "PENDING": JobState.SUBMITTED,
    "RUNNING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "CANCELLED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "NODE_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.PENDING,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.FAILED,
}

# Flags that keep the job at the site whatever its base state says.
_QUEUED_FLAGS = {
    "CONFIGURING",
    "POWER_UP_NODE",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
}
_RUNNING_FLAGS = {"STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
_ENDING_FLAGS = {
    "SPECIAL_EXIT": JobState.FAILED,
    "LAUNCH_FAILED": JobState.FAILED,
    "RECONFIG_FAIL": JobState.FAILED,
    "REVOKED": JobState.CANCELLED,
}
_IGNORED_FLAGS = {"UPDATE_DB"}
_FLAGS = _QUEUED_FLAGS | _RUNNING_FLAGS | set(_ENDING_FLAGS) | {"COMPLETING"}

_SHORT: dict[str, str] = {
    "PD": "PENDING",
    "R": "RUNNING",
    "S": "SUSPENDED",
    "CD": "COMPLETED",
    "CA": "CANCELLED",
    "F": "FAILED",
    "TO": "TIMEOUT",
    "NF": "NODE_FAIL",
    "PR": "PREEMPTED",
    "BF": "BOOT_FAIL",
    "DL": "DEADLINE",
    "OOM": "OUT_OF_MEMORY",
    "CG": "COMPLETING",
    "CF": "CONFIGURING",
    "RQ": "REQUEUED",
    "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED",
    "RD": "RESV_DEL_HOLD",
    "RS": "RESIZING",
    "RV": "REVOKED",
    "SE": "SPECIAL_EXIT",
    "SI": "SIGNALING",
    "SO": "STAGE_OUT",
    "ST": "STOPPED",
}


def _tokens(slurm_state: str) -> list[str]:
    text = slurm_state.strip().upper()
    # 'CANCELLED by 0' (sacct): the words after the state name the user who cancelled.
    text = text.split(" ", 1)[0] if text else text
    parts = [p.strip().strip("[]'\"").rstrip("+") for p in re.split(r"[,|]", text)]
    return [_SHORT.get(p, p) for p in parts if p]


def map_state(slurm_state: str, reason: str | None = None, *, started: bool = True) -> JobState:
    """The job state for Slurm's ``slurm_state`` (with flags, short code or ``sacct`` form).

    ``started`` tells whether the job ever ran: a COMPLETING job that never started is not
    running. ``reason`` (Slurm's state reason) only goes into the error for an unknown state.
    Raises :class:`ProtocolError` for a state this module does not know.
    """
    tokens = _tokens(slurm_state)
    base: JobState | None = None
    flags: set[str] = set()
    for token in tokens:
        if token in _BASE:
            base = _BASE[token]
        elif token in _FLAGS:
            flags.add(token)
        elif token not in _IGNORED_FLAGS:
            detail = f" (reason {reason!r})" if reason else ""
            raise ProtocolError(f"unknown Slurm job state {slurm_state!r}{detail}")
    if not tokens or (base is None and not flags):
        raise ProtocolError(f"unknown Slurm job state {slurm_state!r}")
    if flags & _QUEUED_FLAGS:
        return JobState.SUBMITTED
    if flags & _RUNNING_FLAGS:
        return JobState.RUNNING
    if "COMPLETING" in flags:
        if started:
            return JobState.RUNNING
        return base if base is not None and base.final else JobState.SUBMITTED
    for flag, state in _ENDING_FLAGS.items():
        if flag in flags:
            return state
    assert base is not None
    return base


# Exact reasons that never clear by waiting.
_HOPELESS = {
    "InvalidAccount",
    "InvalidQOS",
    "AccountNotAllowed",
    "QOSNotAllowed",
    "BadConstraints",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "PartitionConfig",
    "DependencyNeverSatisfied",
    "AssocMaxWallDurationPerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
}
# Cumulative usage (GrpTRESMins) is spent: only an administrator can lift it. *RunMinutes
# limits count the remaining time of running jobs and free up as those end.
_USAGE_SPENT = re.compile(r"^(Assoc|QOS)Grp[A-Za-z]*Minutes(Limit)?$")
# Per-job maxima and minima: the job as submitted can never satisfy them.
_PER_JOB = re.compile(r"^(Assoc|QOS)Max[A-Za-z]*PerJob(Limit)?$|^QOSMin[A-Za-z]*$")


def reason_code(reason: str | None) -> str:
    """Slurm's reason word alone: ``'ReqNodeNotAvail, UnavailableNodes:n1'`` ->
    ``'ReqNodeNotAvail'``; ``'(InvalidAccount)'`` -> ``'InvalidAccount'``."""
    if not reason:
        return ""
    return re.split(r"[,\s]", reason.strip().strip("()"), maxsplit=1)[0]


def is_hopeless_pending(reason: str) -> bool:
    """True if a job pending for ``reason`` will never start by waiting (see module doc)."""
    code = reason_code(reason)
    if code in _HOPELESS:
        return True
    if "RunMinutes" in code:
        return False
    return bool(_USAGE_SPENT.match(code) or _PER_JOB.match(code))


# Node states in which a node may start new jobs (sinfo's long names, REST's lowercase
# state); any other base state, a drain flag or '*' (not responding) leaves it no free GPU.
_NODE_USABLE = {"idle", "mixed", "mix", "allocated", "alloc", "planned", "completing", "comp"}


def node_takes_work(state: str, flags: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether a node in ``state`` (``idle``, ``mixed-``, ``idle*``, ``drained``, ...; REST
    v0.0.38 passes ``state`` plus ``state_flags``) can take new jobs."""
    text = state.strip().lower()
    if "*" in text or "drain" in text or "drng" in text:
        return False
    markers = {f.strip().upper() for f in flags}
    if markers & {"DRAIN", "DRAINING", "DRAINED", "NOT_RESPONDING", "FAIL", "MAINTENANCE"}:
        return False
    base = re.split(r"[^a-z_]", text, maxsplit=1)[0]
    return base in _NODE_USABLE
