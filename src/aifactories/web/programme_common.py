"""What every programme operator's page shares: the role check, the service context, and
form errors put next to the field they name.

The services check the role themselves on every write and most reads; some reads (the list of
calls, of proposals, of allocation requests) answer anyone with what they may see, so these
pages check the role first: an applicant who types a programme URL gets 403, as the API's
operator-only endpoints answer."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from aifactories.domain.errors import AifError, InvalidInput
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.core.input_types import Comment, Reason
from aifactories.web.session import context

__all__ = ["FieldErrors", "comment", "context", "field_errors", "form_text", "operator"]

FieldErrors = dict[str, str]
_INDEX = re.compile(r"\[\d+\]")


def operator(request: Request, principal: Principal, action: str) -> ServiceContext:
    """The service context, once ``principal`` is known to be a programme operator."""
    require_programme_operator(principal, action)
    return context(request)


def _key(loc: Iterable[object]) -> str:
    """A field path as the forms name their inputs: rules.max_gpu_hours, cutoffs (one input
    holds every cut-off, so an index names the whole list)."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return _INDEX.sub("", ".".join(parts))


def field_errors(error: Exception) -> FieldErrors:
    """Each message keyed by the field it names (a pydantic ValidationError or a service's
    InvalidInput); anything else under "" (shown above the form)."""
    if isinstance(error, InvalidInput):
        return {_key([error.field]): error.beside_field()}
    if isinstance(error, AifError):
        return {"": error.message}
    found: FieldErrors = {}
    errors = getattr(error, "errors", None)
    if callable(errors):
        for item in errors():
            key = _key(item.get("loc", ()))
            text = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
            found.setdefault(key, text)
        return found
    return {"": str(error)}


def placed(errors: FieldErrors, known: Iterable[str]) -> FieldErrors:
    """Errors keyed by an input of the form: a deeper path goes to its nearest named input
    (rules.criteria.weight -> rules.criteria), an unknown one to "" (above the form)."""
    names = set(known)
    out: FieldErrors = {}
    for key, message in errors.items():
        while key not in names and "." in key:
            key = key.rsplit(".", 1)[0]
        key = key if key in names else ""
        out[key] = f"{out[key]}; {message}" if key in out else message
    return out


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


_REASON: TypeAdapter[str] = TypeAdapter(Reason)
_COMMENT: TypeAdapter[str] = TypeAdapter(Comment)


def _checked(adapter: TypeAdapter[str], raw: str, field: str) -> str:
    try:
        return adapter.validate_python(raw)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        raise InvalidInput(field, str(first.get("msg", "is not valid"))) from None


def reason(raw: str, field: str = "reason") -> str:
    """A reason someone must give, checked as the API checks it (services' Reason type)."""
    if not raw.strip():
        raise InvalidInput(field, "give a reason: the people it affects read it")
    return _checked(_REASON, raw.strip(), field)


def comment(raw: str, field: str = "reason") -> str:
    """Free text that may be empty, checked as the API checks it (Comment)."""
    return _checked(_COMMENT, raw.strip(), field)
