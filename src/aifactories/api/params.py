"""Path and query parameters, bounded as request bodies are (services.input_types): an id
within the id columns (32 bits on PostgreSQL), a page size within its stated range, text of
a stated length with no NUL, control character or lone surrogate. A 20-digit id once reached
SQLite and overflowed."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator

from aifactories.services.core.input_types import ID_MAX, check_line, check_ref, check_text


def _line(value: str | None) -> str | None:
    return None if value is None else check_line(value)


def _ref(value: str | None) -> str | None:
    return None if value is None else check_ref(value)


# an object's id in the path: /jobs/{job_id}, /proposals/{proposal_id}, ...
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]
# a job as Slurm names it: 123, or 123_4 for a task of array 123


def check_job_ref(value: str) -> str:
    if not _JOB_REF.fullmatch(value):
        raise ValueError(f"{value[:40]!r} is not a job id: write 123, or 123_4 for an array task")
    return value


_JOB_REF = re.compile(r"[0-9]{1,10}(_[0-9]{1,7})?")
PathJobRef = Annotated[
    str,
    AfterValidator(check_job_ref),
    Path(
        min_length=1,
        max_length=18,
        description="a job id (123) or an array task (123_4)",
        examples=["123", "123_4"],
    ),
]
# a project or call named in the path by code or by id
PathRef = Annotated[str, AfterValidator(check_ref), Path(min_length=1, max_length=64)]
PathUsername = Annotated[str, AfterValidator(check_line), Path(min_length=1, max_length=64)]

# pagination: ids below this one (the next page), and how many at most
BeforeQ = Annotated[
    int | None, Query(ge=1, le=ID_MAX, description="ids below this one: the next page")
]
RefQ = Annotated[str | None, AfterValidator(_ref), Query(min_length=1, max_length=64)]
# a short word or name in a query: a status, a state, an event, a username, a cut-off date
WordQ = Annotated[str | None, AfterValidator(_line), Query(max_length=64)]


def word_query(description: str) -> Any:
    """WordQ's Query with a description (the last Query in an Annotated wins, so a
    description given apart would drop the length)."""
    return Query(max_length=64, description=description)


TextQ = Annotated[str | None, AfterValidator(_line), Query(max_length=1024)]
ReasonQ = Annotated[str, AfterValidator(check_text), Query(max_length=2000)]
