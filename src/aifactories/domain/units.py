"""Units: GPU time is stored as integer GPU-seconds; GPU-hours are for display only."""

from __future__ import annotations

import math
import re

from aifactories.domain.errors import InvalidInput

SECONDS_PER_HOUR = 3600
HOURS_PER_YEAR = 8766.0  # 365.25 days: the mean year, leap years included


def gpu_hours(gpu_seconds: int) -> float:
    return gpu_seconds / SECONDS_PER_HOUR


def reservation_gpu_seconds(gpus: int, time_limit_s: int, billing_weight: float) -> int:
    """What a job reserves at placement: GPUs x time limit x billing weight, rounded up."""
    return math.ceil(gpus * time_limit_s * billing_weight)


def charge_gpu_seconds(gpus: int, elapsed_s: float, billing_weight: float) -> int:
    """What a finished job is charged: GPUs x elapsed x billing weight, rounded up."""
    return math.ceil(gpus * max(0.0, elapsed_s) * billing_weight)


MAX_DURATION_S = 366 * 86400
"""The longest runtime a request may give in seconds (a year): longer is a typing error.
Time limits have their own, lower bound: the setting ``max_time_limit_s``."""

TIME_FORMATS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
# The leading number may be large (90 minutes, 48:00:00 hours); every later one is bounded
# by its unit: hours after days below 24, minutes and seconds below 60. Digits are ASCII
# only and few: no input reaches int() with thousands of digits, and the largest value
# (9999 days) still fits a 32-bit column; the caller bounds it further.
_SLURM_TIME = re.compile(
    r"(?:(?P<days>[0-9]{1,4})-(?P<dh>[0-9]{1,2})(?::(?P<dm>[0-9]{1,2})(?::(?P<ds>[0-9]{1,2}))?)?"
    r"|(?P<a>[0-9]{1,7})(?::(?P<b>[0-9]{1,2})(?::(?P<c>[0-9]{1,2}))?)?)"
)


def _problem(text: str, why: str) -> str:
    shown = text if len(text) <= 40 else text[:40] + "..."
    return (
        f"{shown!r} is not a time limit: {why}; write {TIME_FORMATS}"
        " (for example 2:00:00 for two hours, 1-12 for a day and a half)"
    )


def slurm_seconds(text: str) -> int:
    """Seconds of a Slurm time limit, strictly; ValueError saying why and giving the formats.

    Accepted, as ``sbatch --time``: ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
    ``days-hours``, ``days-hours:minutes``, ``days-hours:minutes:seconds``; every part after
    the first below its unit (``1:99:99`` is refused).
    """
    value = text.strip()
    match = _SLURM_TIME.fullmatch(value)
    if match is None:
        raise ValueError(_problem(text, "not one of the formats" if value else "it is empty"))
    g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in g:  # D-HH[:MM[:SS]]
        bounded = {"hours": g["dh"], "minutes": g.get("dm", 0), "seconds": g.get("ds", 0)}
        seconds = g["days"] * 86400 + g["dh"] * 3600 + g.get("dm", 0) * 60 + g.get("ds", 0)
    elif "c" in g:  # HH:MM:SS
        bounded = {"minutes": g["b"], "seconds": g["c"]}
        seconds = g["a"] * 3600 + g["b"] * 60 + g["c"]
    elif "b" in g:  # MM:SS
        bounded = {"seconds": g["b"]}
        seconds = g["a"] * 60 + g["b"]
    else:  # MM
        bounded = {}
        seconds = g["a"] * 60
    for unit, number in bounded.items():
        below = 24 if unit == "hours" else 60
        if number >= below:
            raise ValueError(_problem(text, f"{number} {unit} is not below {below}"))
    if seconds >= 2**31:
        raise ValueError(_problem(text, f"{seconds} s is more than 68 years"))
    return seconds


def parse_time_limit(text: str, field: str = "time_limit") -> int:
    """:func:`slurm_seconds`, its complaint an :class:`InvalidInput` naming ``field``. The
    API (its request models check the text early with the same function), the CLI and
    ``#SBATCH --time`` in scripts all read time limits here."""
    try:
        return slurm_seconds(text)
    except ValueError as exc:
        raise InvalidInput(field, str(exc), limit=TIME_FORMATS) from None


def format_duration(seconds: float) -> str:
    """Seconds as ``D-HH:MM:SS`` (days only when needed), the way Slurm prints them."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def human_duration(seconds: float | None) -> str:
    """``45 s``, ``2 min 5 s``, ``1 h 30 min``, ``3 d 4 h``: the two largest units (the CLI's
    tables and the portal's pages say a time limit or a run time the same way)."""
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    days, rest = divmod(total, 86400)
    hours_, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours_, "h"), (minutes, "min"), (secs, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return " ".join(f"{n} {unit}" for n, unit in parts[first : first + 2] if n)
