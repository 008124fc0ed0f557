"""The proposal form: what a browser sends, read into the API's own input model
(ProposalFields), and every complaint (pydantic's, the service's InvalidInput) put next to
the field it names.

A form sends text; the API's model is strict (no "500" for a number), so numbers are read
here first, with a message in words when they are not numbers. Everything else (ranges,
lengths, known GPU models, sites and users) is checked by the model and the service, the
same checks the API makes, so the portal holds no rule of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData

from aifactories.domain.errors import InvalidInput
from aifactories.services.core.input_types import Reason
from aifactories.services.programme.proposals import ProposalFields

# the form's fields, in the order of the page (and of the error summary)
FIELDS = (
    "title",
    "abstract",
    "domain",
    "industrial",
    "requested_gpu_hours",
    "period_months",
    "starts_at",
    "gpu_model",
    "min_gpu_memory_gb",
    "largest_job_gpus",
    "preferred_sites",
    "residency",
    "members",
)
LABELS = {
    "title": "Title",
    "abstract": "Abstract",
    "domain": "Application domain",
    "industrial": "Industrial use",
    "requested_gpu_hours": "GPU-hours requested",
    "period_months": "Period",
    "starts_at": "Wished start",
    "gpu_model": "GPU model",
    "min_gpu_memory_gb": "Memory per GPU",
    "largest_job_gpus": "GPUs of the largest job",
    "preferred_sites": "Preferred sites",
    "residency": "Data residency",
    "members": "Team members",
    "form": "The form",
}
_LIST_SEPARATORS = re.compile(r"[\s,;]+")
_INDEX = re.compile(r"\[\d+\]$")
_reason = TypeAdapter(Reason)


@dataclass
class ProposalForm:
    """The form as shown: the values as the applicant wrote them, and the errors by field
    ("form" for what belongs to no field)."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    def fail(self, name: str, message: str) -> None:
        base = _INDEX.sub("", name)
        where = base if base in FIELDS else "form"
        text = message if where != "form" or base == "form" else f"{base}: {message}"
        self.errors.setdefault(where, text)

    def error_list(self) -> list[tuple[str, str, str]]:
        """(field, label, message), in the order of the page: the summary at the top."""
        order = [*FIELDS, "form"]
        return [(name, LABELS[name], self.errors[name]) for name in order if name in self.errors]


def blank_form() -> ProposalForm:
    return ProposalForm(
        values={
            "title": "",
            "abstract": "",
            "domain": "",
            "industrial": False,
            "requested_gpu_hours": "",
            "period_months": "",
            "starts_at": "",
            "gpu_model": "any",
            "min_gpu_memory_gb": "",
            "largest_job_gpus": "1",
            "preferred_sites": [],
            "residency": [],
            "members": "",
        }
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value}"


def form_of(proposal: dict[str, Any]) -> ProposalForm:
    """The form filled in with a proposal as the service shows it (to edit a draft)."""
    starts = proposal.get("starts_at")
    return ProposalForm(
        values={
            "title": proposal["title"],
            "abstract": proposal["abstract"],
            "domain": proposal["domain"],
            "industrial": bool(proposal["industrial"]),
            "requested_gpu_hours": _number(proposal["requested_gpu_hours"]),
            "period_months": str(proposal["period_months"]),
            "starts_at": datetime.fromtimestamp(starts, tz=UTC).date().isoformat()
            if starts is not None
            else "",
            "gpu_model": proposal["gpu_model"] or "any",
            "min_gpu_memory_gb": str(proposal["min_gpu_memory_gb"] or ""),
            "largest_job_gpus": str(proposal["largest_job_gpus"]),
            "preferred_sites": list(proposal["preferred_sites"]),
            "residency": list(proposal["residency"]),
            "members": ", ".join(proposal["members"]),
        }
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _read_number(shown: ProposalForm, name: str, text: str, *, whole: bool) -> float | int | None:
    """A number as people write it (1,000 or 1 000 or 1000), or None when empty."""
    if not text:
        return None
    cleaned = text.replace(",", "").replace("_", "").replace(" ", "").replace("\u202f", "")
    try:
        return int(cleaned) if whole else float(cleaned)
    except ValueError:
        example = "a whole number, e.g. 8" if whole else "a number, e.g. 500 or 1250.5"
        shown.fail(name, f"{text!r} is not a number: write {example}")
        return None


def read_form(form: FormData) -> tuple[ProposalFields | None, ProposalForm]:
    """The proposal's fields from a form, or None with the errors by field. Every field is
    sent: an empty optional one clears it (any GPU model, no memory floor, no start date)."""
    shown = ProposalForm(
        values={
            **{name: _text(form, name) for name in FIELDS},
            "industrial": _text(form, "industrial") in ("1", "on", "true", "yes"),
            "preferred_sites": _texts(form, "preferred_sites"),
            "residency": _texts(form, "residency"),
        }
    )
    values = shown.values
    gpu_hours = _read_number(
        shown, "requested_gpu_hours", values["requested_gpu_hours"], whole=False
    )
    period = _read_number(shown, "period_months", values["period_months"], whole=True)
    memory = _read_number(shown, "min_gpu_memory_gb", values["min_gpu_memory_gb"], whole=True)
    largest = _read_number(shown, "largest_job_gpus", values["largest_job_gpus"], whole=True)
    data: dict[str, Any] = {
        "title": values["title"] or None,
        "abstract": values["abstract"] or None,
        "domain": values["domain"] or None,
        "industrial": values["industrial"],
        "requested_gpu_hours": gpu_hours,
        "period_months": period,
        "starts_at": values["starts_at"] or None,
        "gpu_model": values["gpu_model"] or "any",
        "min_gpu_memory_gb": memory if memory is not None else 0,
        "largest_job_gpus": largest if largest is not None else 1,
        "preferred_sites": values["preferred_sites"],
        "residency": values["residency"],
        "members": [m for m in _LIST_SEPARATORS.split(values["members"]) if m],
    }
    for name in ("title", "abstract", "domain", "requested_gpu_hours", "period_months"):
        if data[name] is None and name not in shown.errors:
            shown.fail(name, "is required")
    try:
        body = ProposalFields.model_validate(data)
    except ValidationError as invalid:
        for error in invalid.errors():
            name = "".join(
                f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
                for i, part in enumerate(error["loc"])
            )
            if data.get(name) is None and name in shown.errors:
                continue  # already said: required, or not a number
            shown.fail(name, in_words(error))
        return None, shown
    if shown.errors:
        return None, shown
    return body, shown


def in_words(error: Any) -> str:
    """pydantic's message for one error, as a sentence for the applicant."""
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    # pydantic names the type ("String should have at least 3 characters"); the field's
    # label already says what it is
    for subject in ("String ", "Input ", "Value ", "List ", "Float ", "Integer "):
        if message.startswith(subject + "should"):
            message = message.removeprefix(subject)
            break
    return message[:1].lower() + message[1:]


def refused(shown: ProposalForm, error: InvalidInput) -> ProposalForm:
    """The service's complaint about one field, next to that field."""
    shown.fail(error.field, error.beside_field())
    return shown


def read_reason(form: FormData) -> tuple[str | None, str | None]:
    """A withdrawal's reason, or the complaint about it."""
    text = _text(form, "reason")
    if not text:
        return None, "say why you withdraw the proposal: the programme reads it"
    try:
        return _reason.validate_python(text), None
    except ValidationError as invalid:
        return None, in_words(invalid.errors()[0])
