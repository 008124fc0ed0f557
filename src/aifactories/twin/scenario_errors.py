"""Pydantic's validation errors of a scenario as one line a person can act on: where in the
file (or which command-line option), what is wrong, what is expected, and "did you mean"
for a mistyped key. Generic over the model, so it knows nothing of the scenario's keys."""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from aifactories.domain.errors import InvalidInput


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for key in loc:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _unwrap(annotation: Any) -> Any:
    """The model or container inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else annotation
            if len(options) != 1:
                return annotation
        else:
            return annotation


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys ``model`` accepts at ``loc`` (for "did you mean" and the expected list)."""
    node: Any = model
    for key in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel) and isinstance(key, str):
            field = node.model_fields.get(key)
            node = field.annotation if field else None
        elif get_origin(node) in (list, dict):
            node = get_args(node)[-1]
        else:
            return []
    node = _unwrap(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def invalid(
    model: type[BaseModel], error: ErrorDetails, source: str, options: Mapping[str, str]
) -> InvalidInput:
    """The error as :class:`InvalidInput`: ``source`` names the file, ``options`` maps dotted
    keys to the command-line options that set them."""
    loc = tuple(error["loc"])
    where = _where(loc)
    context = error.get("ctx", {})
    expected = context.get("expected")
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        allowed = _keys_at(model, loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        message = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        expected = "one of " + ", ".join(allowed) if allowed else None
    elif error["type"] == "missing":
        message = "this key is required"
    elif error["type"] == "literal_error" or error["type"] == "enum":
        message = f"{_short(error['input'])} is not accepted"
    elif expected is not None:
        message = error["msg"]
    else:
        text = error["msg"]
        message = f"{text[:1].lower()}{text[1:]}, got {_short(error['input'])}"
    # A command-line option is named as the person typed it: --jobs, not workload.generator.
    name = next((o for k, o in options.items() if where == k or where.startswith(k + "[")), None)
    field = name if name is not None else (f"{source}: {where}" if where else source)
    return InvalidInput(field, message, limit=str(expected) if expected is not None else None)
