"""The shapes request fields are checked against at the boundary (docs/api-and-cli.md, "Input
rules"): whole numbers within 64 bits, finite floats within stated ranges, text without NUL
or lone surrogates and with a stated maximum length, and no boolean taken for a number.

A value that passes here can be stored in SQLite and PostgreSQL alike and read back: without
these checks a 20-digit id overflowed SQLite, a NUL made PostgreSQL refuse a row, and a NaN
budget, once stored, made every read of its call fail.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

from aifactories.domain.units import MAX_DURATION_S, TIME_FORMATS, slurm_seconds

INT64_MAX = 2**63 - 1
"""The largest whole number a 64-bit column holds (SQLite's INTEGER, PostgreSQL's BIGINT)."""
ID_MAX = 2**31 - 1
"""The largest id: id columns are INTEGER, 32 bits on PostgreSQL (schemathesis found a
2^33 id that SQLite looked up and PostgreSQL refused with a 500)."""
MAX_EPOCH_S = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the last instant a date can be written for."""
MAX_GPU_HOURS = 1e9
"""Far above any budget of the programme, far below where GPU-seconds lose exactness."""

# C0 controls but tab, LF and CR, DEL, and the surrogate range (a lone surrogate cannot be
# encoded as UTF-8: neither database can store it)
_BAD_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# in one-line fields (names, codes, paths), line breaks and tabs too
_BAD_IN_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# The fast path: the UTF-8 bytes with every allowed byte deleted leave nothing (about ten
# times faster than the regular expression, which then only says where the fault is).
_UTF8_TAIL = bytes(range(0x80, 0x100))
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r" + _UTF8_TAIL
_LINE_BYTES = bytes(range(0x20, 0x7F)) + _UTF8_TAIL
_DIGITS = re.compile("[0-9]+")


def _describe(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate (U+{ord(char):04X}), which is not UTF-8"
    return f"a control character (U+{ord(char):04X})"


def _check(value: str, allowed: bytes, bad: re.Pattern[str]) -> str:
    try:
        if not value.encode("utf-8").translate(None, allowed):
            return value
    except UnicodeEncodeError:
        pass  # a lone surrogate: the expression below finds it
    found = bad.search(value)
    if found is not None:
        raise ValueError(f"contains {_describe(found.group())} at position {found.start()}")
    return value


def check_text(value: str) -> str:
    """Multi-line text (abstracts, reasons, scripts): no NUL, control characters but tab and
    line breaks, or lone surrogates."""
    return _check(value, _TEXT_BYTES, _BAD_IN_TEXT)


def check_line(value: str) -> str:
    """One-line text (names, titles, codes, paths): no control characters at all."""
    return _check(value, _LINE_BYTES, _BAD_IN_LINE)


def check_ref(value: str) -> str:
    """A project or call named by code or by id: an id must fit in 64 bits."""
    check_line(value)
    if _DIGITS.fullmatch(value) and (len(value) > 10 or int(value) > ID_MAX):
        raise ValueError(f"{value[:30]} is no id: ids are at most {ID_MAX}")
    return value


def check_path(value: str) -> str:
    """A working folder: one line, and no component longer than a file system takes."""
    check_line(value)
    for part in value.split("/"):
        if len(part.encode("utf-8")) > 255:
            raise ValueError(f"the component {part[:30]}... is longer than 255 bytes")
    return value


# ids: strict (no "3", no 3.0, no true), within the id columns
Id = Annotated[StrictInt, Field(ge=1, le=ID_MAX)]


def _shown(number: float) -> str:
    """A number for a message: a huge one (thousands of digits) by its size only."""
    if isinstance(number, int) and number.bit_length() > 64:
        return f"a {number.bit_length()}-bit number"
    return str(number)


def _duration(low: int, high: int, what: str, bounds: str) -> Any:
    """A duration: whole seconds from ``low`` to ``high``, or Slurm's text, checked by the
    parser the service, the CLI and ``#SBATCH --time`` use (domain.units). One type, not a
    union: a bad value gets one message, with the formats, not one per shape."""

    def check(value: object) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            if not low <= value <= high:
                raise ValueError(f"{_shown(value)} is not {what} in seconds: {bounds}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"give whole seconds, or Slurm's text: {TIME_FORMATS}")
        if len(value) > 32:
            raise ValueError(f"{len(value)} characters is not a time; write {TIME_FORMATS}")
        slurm_seconds(value)  # its ValueError says what is wrong and gives the formats
        return value

    schema = {
        "anyOf": [
            {"type": "integer", "minimum": low, "maximum": high},
            {"type": "string", "minLength": 1, "maxLength": 32},
        ]
    }
    return (PlainValidator(check, json_schema_input_type=int | str), WithJsonSchema(schema))


# A time limit's range is the setting max_time_limit_s, checked by the service with a
# message that gives it; here it is only kept within 64 bits.
TimeLimit = Annotated[
    int | str,
    *_duration(-INT64_MAX, INT64_MAX, "a time limit", "at most the setting max_time_limit_s"),
]
Runtime = Annotated[
    int | str, *_duration(0, MAX_DURATION_S, "a runtime", f"give 0 to {MAX_DURATION_S} seconds")
]
# GPU-hours in a request: finite, positive
GpuHours = Annotated[StrictFloat, Field(gt=0, le=MAX_GPU_HOURS, allow_inf_nan=False)]
# an instant given as epoch seconds (or, where the field says so, ISO 8601 text)
EpochSeconds = Annotated[StrictFloat, Field(ge=0, le=MAX_EPOCH_S, allow_inf_nan=False)]


def _check_instant(value: object) -> float | str:
    """Epoch seconds (0 to 9999-12-31), or ISO 8601 text that the service reads: one type,
    so that a bad value gets one message, not one per shape."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # NaN compares false; an int too large for a float compares exactly
        if not 0 <= value <= MAX_EPOCH_S:
            raise ValueError(
                f"{_shown(value)} is no time: give epoch seconds from 0 to {MAX_EPOCH_S:.0f} "
                "(9999-12-31) or an ISO 8601 date, e.g. 2027-01-15 or 2027-01-15T12:00"
            )
        return value
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ValueError(
            "give an ISO 8601 date, e.g. 2027-01-15 or 2027-01-15T12:00, or epoch seconds"
        )
    return check_line(value)


Instant = Annotated[
    float | str,
    PlainValidator(_check_instant, json_schema_input_type=float | str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_EPOCH_S},
                {"type": "string", "minLength": 1, "maxLength": 64},
            ]
        }
    ),
]

# text, by use: the maximum lengths are those of the database columns where they are stored
Code = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_line)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_ref)]
Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_line)
]
CountryCode = Annotated[str, StringConstraints(pattern="^[A-Za-z]{2}$")]
Name = Annotated[str, StringConstraints(max_length=200), AfterValidator(check_line)]
Title = Annotated[str, StringConstraints(min_length=3, max_length=300), AfterValidator(check_line)]
Abstract = Annotated[
    str, StringConstraints(min_length=20, max_length=10_000), AfterValidator(check_text)
]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(check_text)
]
"""A reason someone must give (closing, withdrawing, removing): read by the people it affects."""
LongReason = Annotated[
    str, StringConstraints(min_length=1, max_length=5000), AfterValidator(check_text)
]
Comment = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(check_text)]
"""Free text that may be empty: review comments, justifications, optional reasons."""
Workdir = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(check_path)
]
Argument = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(check_text)]
# below the API's body limit (max_body_bytes, 1 MiB by default) even with JSON's escapes
Script = Annotated[str, StringConstraints(max_length=500_000), AfterValidator(check_text)]
