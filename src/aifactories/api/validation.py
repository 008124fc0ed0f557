"""A request that fails its declared shape, in the one error body (api/schemas.py ErrorBody).

A body that is not JSON at all answers 400 ``malformed_body``; a field out of its rules answers
422 ``invalid_input`` naming the field as the caller wrote it (``command[0]``,
``budget_gpu_hours.pool``, ``job_id``) and its limit (``at most 300 characters``). A field
that may take two shapes (seconds or Slurm text; epoch seconds or an ISO date) fails once,
with both shapes' complaints, not once per shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

_LOCATIONS = frozenset({"body", "path", "query", "header", "cookie"})
# the name pydantic gives each member of a union in an error's location: 'str', 'int',
# 'constrained-str', 'function-after[check_line(), constrained-str]', 'list[...]', ...
_UNION_TAG = re.compile(
    r"(?:str|int|float|bool|none|constrained-(?:str|int|float|list|dict)"
    r"|(?:function|lax|json|tagged|default|nullable|literal|list|dict|tuple|set|union|chain)"
    r"[a-z-]*\[.*\])"
)
_LIMITS: dict[str, str] = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "above {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "below {lt}",
    "string_too_long": "at most {max_length} characters",
    "string_too_short": "at least {min_length} characters",
    "too_long": "at most {max_length} items",
    "too_short": "at least {min_length} items",
    "string_pattern_mismatch": "matching {pattern}",
    "finite_number": "a finite number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "enum": "one of {expected}",
    "literal_error": "one of {expected}",
    "extra_forbidden": "not a field of this request",
    "missing": "required",
}


def field_name(loc: Sequence[int | str]) -> str:
    """``('body', 'command', 0)`` -> ``command[0]``; ``('query', 'limit')`` -> ``limit``."""
    parts = list(loc[1:] if loc and loc[0] in _LOCATIONS else loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not _UNION_TAG.fullmatch(part):
            name += f".{part}" if name else part
    return name or "body"


def _message(error: Mapping[str, Any]) -> str:
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _limit(error: Mapping[str, Any]) -> str | None:
    template = _LIMITS.get(str(error.get("type")))
    if template is None:
        return None
    context = {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in (error.get("ctx") or {}).items()
    }
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return None


def _malformed(error: Mapping[str, Any]) -> JSONResponse:
    where = error.get("loc", ("body",))[-1]
    at = f" at character {where}" if isinstance(where, int) else ""
    detail = (error.get("ctx") or {}).get("error") or error.get("msg")
    return JSONResponse(
        {
            "error": "malformed_body",
            "message": f"body: the request body is not JSON ({detail}{at}); send a JSON object "
            "with Content-Type: application/json",
            "field": "body",
            "limit": "a JSON object, UTF-8",
        },
        status_code=400,
    )


def validation_response(errors: Sequence[Mapping[str, Any]]) -> JSONResponse:
    """The 400 or 422 for a request's validation errors (FastAPI's or pydantic's)."""
    if not errors:
        errors = [{"loc": ("body",), "msg": "invalid request", "type": "value_error"}]
    for error in errors:
        if error.get("type") == "json_invalid":
            return _malformed(error)
    # one entry per field, in the order met: a union's members add to their field's entry
    messages: dict[str, list[str]] = {}
    limits: dict[str, list[str]] = {}
    for error in errors:
        field = field_name(error.get("loc", ()))
        text = _message(error)
        if text not in messages.setdefault(field, []):
            messages[field].append(text)
        limit = _limit(error)
        if limit is not None and limit not in limits.setdefault(field, []):
            limits[field].append(limit)
    first = next(iter(messages))
    message = "; ".join(f"{field}: {' or '.join(texts)}" for field, texts in messages.items())
    return JSONResponse(
        {
            "error": "invalid_input",
            "message": message,
            "field": first,
            "limit": " or ".join(limits.get(first, [])) or None,
        },
        status_code=422,
    )
