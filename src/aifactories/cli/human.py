"""Numbers, times and structures as people read them: plurals, units, the local time zone,
and an audit entry's details as "key: value" text. The standard library and the domain's
units only: every command imports it, and it must cost nothing at start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aifactories.domain.units import human_duration

duration = human_duration  # the portal says times the same way (domain/units.py)


def _many(noun: str) -> str:
    """English plural of a noun (its last word): entry -> entries, match -> matches."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "o", "u", ""):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``1 GPU``, ``2 GPUs``, ``0 jobs``, ``6 audit entries``; ``many`` for an irregular
    plural."""
    word = noun if count == 1 else (many or _many(noun))
    number = f"{count:,}" if isinstance(count, int) else f"{count:,g}"
    return f"{number} {word}"


def hours(value: float | None, digits: int = 2) -> str:
    """GPU-hours with their unit: ``1,234.50 h``."""
    return "-" if value is None else f"{value:,.{digits}f} h"


def gb(value: float | None) -> str:
    return "-" if value is None else f"{value:,g} GB"


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} %"


def _moment(value: str | float | None) -> datetime | None:
    """An API time (ISO text, with or without offset, or epoch seconds) as an aware datetime
    in the local time zone (TZ, else the system's)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:  # the API speaks UTC
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone()


def local_time(value: str | float | None, seconds: bool = True) -> str:
    """``2026-12-06 15:30:42 CET``: local time with its zone, never epoch seconds or +00:00."""
    moment = _moment(value)
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def local_day(value: str | float | None) -> str:
    """The local date of a time: ``2026-12-06``."""
    moment = _moment(value)
    return "-" if moment is None else moment.strftime("%Y-%m-%d")


def zone() -> str:
    """The local time zone's name now, e.g. ``CET``, for a column header."""
    return datetime.now(UTC).astimezone().strftime("%Z")


def value_text(key: str, value: Any) -> str:
    """One value of a structure as text, with the unit its key implies."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return (
            "; ".join(f"{label(str(k))}: {value_text(str(k), v)}" for k, v in value.items()) or "-"
        )
    if isinstance(value, list | tuple):
        return ", ".join(value_text(key, v) for v in value) or "-"
    if isinstance(value, int | float):
        if key.endswith("_at") or key.endswith("_at_iso") or key == "at":
            return local_time(value)
        if key.endswith("gpu_hours") or key.endswith("_hours") or key == "gpu_hours":
            return hours(value)
        if key.endswith("gpu_seconds"):
            return hours(value / 3600)
        if key.endswith("_s") or key.endswith("_seconds"):
            return duration(value)
        if key.endswith("percent"):
            return percent(value)
        return f"{value:,}" if isinstance(value, int) else f"{value:,g}"
    text = str(value)
    if key.endswith("_at") and "T" in text:
        try:
            return local_time(text)
        except ValueError:
            return text
    return text


def label(key: str) -> str:
    """A field name as words: ``gpu_hours`` -> ``GPU-hours``, ``allocation_id`` ->
    ``allocation``."""
    words = key.removesuffix("_iso").removesuffix("_id").replace("_", " ")
    return (
        words.replace("gpu hours", "GPU-hours")
        .replace("gpu seconds", "GPU-hours")
        .replace("gpus", "GPUs")
        .replace("gpu", "GPU")
    )


def details_text(details: dict[str, Any] | None) -> str:
    """An audit entry's details as lines of "key: value", sorted by key; a list of records
    (the checks of a proposal, the allocations of an award) one record a line."""
    if not details:
        return ""
    lines = []
    for key in sorted(details):
        value = details[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{label(key)}:")
            lines += [f"  - {value_text(key, item)}" for item in value]
        else:
            lines.append(f"{label(key)}: {value_text(key, value)}")
    return "\n".join(lines)
