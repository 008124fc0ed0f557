"""Units: GPU time is stored as integer GPU-seconds; GPU-hours are for display only."""

from __future__ import annotations

import math
import re

from aifactories.domain.errors import InvalidInput

SECONDS_PER_HOUR = 3600


def gpu_hours(gpu_seconds: int) -> float:
    return gpu_seconds / SECONDS_PER_HOUR


def reservation_gpu_seconds(gpus: int, time_limit_s: int, billing_weight: float) -> int:
    """What a job reserves at placement: GPUs x time limit x billing weight, rounded up."""
    return math.ceil(gpus * time_limit_s * billing_weight)


def charge_gpu_seconds(gpus: int, elapsed_s: float, billing_weight: float) -> int:
    """What a finished job is charged: GPUs x elapsed x billing weight, rounded up."""
    return math.ceil(gpus * max(0.0, elapsed_s) * billing_weight)


_SLURM_TIME = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
    r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$"
)


def parse_time_limit(text: str, field: str = "time_limit") -> int:
    """Parse a Slurm time limit into seconds.

    Accepted, as ``sbatch --time``: ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
    ``days-hours``, ``days-hours:minutes``, ``days-hours:minutes:seconds``.
    """
    value = text.strip()
    match = _SLURM_TIME.match(value)
    if match is None:
        raise InvalidInput(
            field,
            f"{text!r} is not a time limit; write minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]"
            " (for example 2:00:00 for two hours)",
        )
    groups = match.groupdict()
    if groups["days"] is not None:
        seconds = (
            int(groups["days"]) * 86400
            + int(groups["dh"]) * 3600
            + int(groups["dm"] or 0) * 60
            + int(groups["ds"] or 0)
        )
    elif groups["c"] is not None:
        seconds = int(groups["a"]) * 3600 + int(groups["b"]) * 60 + int(groups["c"])
    elif groups["b"] is not None:
        seconds = int(groups["a"]) * 60 + int(groups["b"])
    else:
        seconds = int(groups["a"]) * 60
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as ``D-HH:MM:SS`` (days only when needed), the way Slurm prints them."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock
