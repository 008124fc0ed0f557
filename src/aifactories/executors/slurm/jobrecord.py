"""A Slurm job record (openapi v0.0.38: ``squeue --json`` and REST ``/job/{id}`` share it)
read as a :class:`SiteJobStatus`.

Fields used: ``job_id``, ``job_state``, ``state_reason``, ``exit_code`` (the *raw wait
status*: exit 3 is 768, SIGTERM is 15), ``start_time``/``end_time`` (epoch s; 0 when unset;
for a pending job ``start_time`` is only the scheduler's estimate and ``end_time`` of a
running job is its expected end), ``comment``, ``name``, ``node_count``, ``gres_detail``,
``tres_alloc_str``, ``tres_per_node`` and ``tres_per_job``; for the output paths of a job
that started, ``standard_output``, ``standard_error``, ``current_working_directory``,
``user_name``, ``batch_host`` and the array ids (:mod:`.output`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from aifactories.domain.errors import ProtocolError
from aifactories.domain.jobs import JobState
from aifactories.executors.base import TAG_PREFIX, SiteJobStatus
from aifactories.executors.slurm.output import stdio_paths
from aifactories.executors.slurm.states import is_hopeless_pending, map_state, reason_code

# What the common pending reasons mean, for the person watching the queue.
_PENDING_TEXT = {
    "Resources": "waiting for free GPUs",
    "Priority": "higher-priority jobs first",
    "Dependency": "waiting for a dependency",
    "BeginTime": "waiting for its begin time",
    "ReqNodeNotAvail": "requested nodes not available",
    "PartitionDown": "partition down",
    "JobHeldAdmin": "held by an administrator",
    "JobHeldUser": "held",
}
_NO_REASON = {"", "None"}
HOPELESS_PREFIX = "Slurm would never start the job: "
_TAG = re.compile(rf"^({re.escape(TAG_PREFIX)}(?:[0-9a-f]+-)?\d+)(?:_|$)")
_GPU_COUNT = re.compile(r"(?:^|[,\s])gres[/:]gpu(?::[^:=,\s]+)?[:=](\d+)")


def parse_duration(text: str) -> float:
    """Seconds in a Slurm duration: ``[D-]HH:MM:SS``, ``D-HH[:MM]``, ``MM:SS``, ``MM:SS.mmm``
    (sacct's TotalCPU), plain minutes (as ``--time=10``), or ``UNLIMITED`` (infinity)."""
    value = text.strip()
    if value.upper() in ("UNLIMITED", "INFINITE"):
        return math.inf
    match = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2}(?:\.\d+)?)", value)
    if not match:
        raise ProtocolError(f"unreadable Slurm duration {text!r}")
    days = int(match.group(1) or 0)
    parts = [float(p) for p in match.group(2).split(":")]
    if match.group(1):  # after 'D-' the fields are hours[:minutes[:seconds]]
        parts += [0.0] * (3 - len(parts))
    elif len(parts) == 1:
        parts = [0.0, parts[0], 0.0]  # bare number: minutes
    elif len(parts) == 2:
        parts = [0.0, *parts]  # MM:SS
    hours, minutes, seconds = parts
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def decode_exit(raw: int) -> int:
    """The exit code in a raw wait status: 768 -> 3; killed by signal N -> 128 + N."""
    signal = raw & 0x7F
    if signal:
        return 128 + signal
    return (raw >> 8) & 0xFF


def _int(value: Any, field: str) -> int:
    # v0.0.38 gives plain ints; later versions wrap numbers as {"set":..,"number":..}.
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return 0
        value = value.get("number", 0)
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"Slurm job record: {field} is not a number: {value!r}") from exc


def _raw_exit(value: Any) -> int:
    if isinstance(value, Mapping):  # newer APIs: {"status": ..., "return_code": N, "signal": ..}
        signal = value.get("signal", {})
        sig = _int(signal.get("id", signal.get("signal_id", 0)), "exit_code.signal")
        if sig:
            return sig
        return (_int(value.get("return_code", 0), "exit_code.return_code") & 0xFF) << 8
    return _int(value, "exit_code")


def gpus_in_tres(tres: str | None) -> int | None:
    """GPUs in a TRES string (``...,gres/gpu=2`` or ``gres:gpu:a100:2``); None if absent."""
    if not tres:
        return None
    total = None
    generic = re.search(r"(?:^|,)gres/gpu=(\d+)", tres)
    if generic:  # 'gres/gpu=4,gres/gpu:a100=4' counts the GPUs once
        return int(generic.group(1))
    for match in _GPU_COUNT.finditer(tres):
        total = (total or 0) + int(match.group(1))
    return total


def gres_gpu_count(gres: str | None) -> int:
    """GPUs in a node's or job's GRES text: ``gpu:a100:4(S:0-1)``, ``gpu:4``,
    ``gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:3)`` (summed), ``(null)`` -> 0."""
    total = 0
    # Commas inside '(IDX:0,2)' do not separate entries.
    for entry in re.split(r",(?![^(]*\))", gres or ""):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", entry.strip())
        if match:
            total += int(match.group(1))
    return total


def _gres_detail_gpus(details: Any) -> int | None:
    if not details:
        return None
    # one 'gpu:a100:2(IDX:0-1)' per node
    return sum(gres_gpu_count(str(entry)) for entry in details) or None


def allocated_gpus(record: Mapping[str, Any]) -> int:
    """GPUs the job holds: ``tres_alloc_str`` (gres/gpu appears only with slurmdbd), else the
    running job's ``gres_detail``, else what it asked per node x nodes (or per job)."""
    for found in (
        gpus_in_tres(record.get("tres_alloc_str")),
        _gres_detail_gpus(record.get("gres_detail")),
    ):
        if found is not None:
            return found
    per_node = gpus_in_tres(record.get("tres_per_node"))
    if per_node is not None:
        return per_node * max(1, _int(record.get("node_count"), "node_count"))
    return gpus_in_tres(record.get("tres_per_job")) or 0


def tag_of(record: Mapping[str, Any]) -> str | None:
    """The broker's tag carried by the job: its comment, or the ``aif-<id>`` name prefix."""
    for field in ("comment", "name"):
        match = _TAG.match(str(record.get(field) or "").strip())
        if match:
            return match.group(1)
    return None


def _pending_reason(reason: str) -> str:
    code = reason_code(reason)
    if code in _NO_REASON:
        return "queued at site"
    text = _PENDING_TEXT.get(code)
    return f"queued at site: {reason}" + (f" ({text})" if text else "")


def status_from_record(record: Mapping[str, Any], now: float) -> SiteJobStatus:
    """The job as the broker sees it (see the module doc for the fields read)."""
    try:
        job_id = str(record["job_id"])
        slurm_state = str(record["job_state"])
    except KeyError as exc:
        raise ProtocolError(f"Slurm job record without {exc.args[0]!r}: {dict(record)}") from exc
    reason = str(record.get("state_reason") or "")
    start = _int(record.get("start_time"), "start_time")
    end = _int(record.get("end_time"), "end_time")
    pending_like = map_state(slurm_state, reason, started=True) is JobState.SUBMITTED
    # A pending job's start_time is only an estimate; a final job that never ran has no
    # nodes (Slurm sets start = end = cancel time for a job cancelled while queued).
    started = start > 0 and not pending_like and bool(record.get("nodes") or "")
    state = map_state(slurm_state, reason, started=started)
    tag = tag_of(record) or ""
    if state is JobState.SUBMITTED:
        return SiteJobStatus(job_id, tag, state, reason=_pending_reason(reason))
    output_path, error_path = stdio_paths(record)
    if state is JobState.RUNNING:
        began = float(start) if start > 0 else now
        return SiteJobStatus(
            job_id,
            tag,
            state,
            started_at=began,
            elapsed_s=max(0.0, now - began),
            allocated_gpus=allocated_gpus(record),
            output_path=output_path,
            error_path=error_path,
        )
    gpus = allocated_gpus(record) if started else 0
    ended = float(end) if end > 0 else now
    if state is JobState.CANCELLED and not started and is_hopeless_pending(reason):
        # The executor cancelled it because it would never start: Slurm keeps the pending
        # reason on the cancelled job, so every later look still says why it failed.
        state, reason = JobState.FAILED, f"{HOPELESS_PREFIX}{reason}"
    elif state is JobState.CANCELLED and not started:
        reason = ""  # the pending reason it had is no reason for the cancellation
    elif state is JobState.PENDING and reason_code(reason) in _NO_REASON:
        reason = f"{slurm_state.lower()} at the site: requeue elsewhere"
    return SiteJobStatus(
        site_job_id=job_id,
        tag=tag,
        state=state,
        started_at=float(start) if started else None,
        ended_at=ended,
        elapsed_s=max(0.0, ended - start) if started else 0.0,
        exit_code=decode_exit(_raw_exit(record.get("exit_code"))) if started else None,
        reason=None if reason_code(reason) in _NO_REASON else reason,
        allocated_gpus=gpus,
        output_path=output_path if started else None,
        error_path=error_path if started else None,
    )
