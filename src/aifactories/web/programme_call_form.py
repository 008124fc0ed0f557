"""The form that opens a call: every field of the API's call body (services.programme.calls
.CallIn), read from a browser's form into that body, with each error keyed by the field's name
so that the page shows it next to its input and keeps what was typed.

Input names are the API's field paths (``closes_at``, ``rules.max_gpu_hours``,
``budget_gpu_hours.pool``), so the services' own errors (``InvalidInput("rules.max_gpu_hours",
...)``) land on the right input without a table of aliases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aifactories.domain.organisations import OrganisationKind
from aifactories.programme.modes import AccessMode
from aifactories.services.programme.calls import POOL
from aifactories.web.programme_common import FieldErrors

Kind = Literal["float", "int", "text"]


@dataclass(frozen=True)
class RuleField:
    name: str  # the rule's key in CallRulesIn
    label: str
    kind: Kind
    hint: str


MODES = tuple(m.value for m in AccessMode)
ORGANISATION_KINDS = tuple(k.value for k in OrganisationKind)
RULES = (
    RuleField("min_gpu_hours", "Least GPU-hours per proposal", "float", "GPU-hours"),
    RuleField("max_gpu_hours", "Most GPU-hours per proposal", "float", "GPU-hours"),
    RuleField("durations_months", "Periods offered", "text", "months, e.g. 3, 6, 12"),
    RuleField(
        "country_list", "Countries that may apply", "text", "a list name, e.g. eu_and_associated"
    ),
    RuleField("reviewers_per_proposal", "Reviewers per proposal", "int", "1 to 10 (peer review)"),
    RuleField(
        "min_average_score", "Least average score to accept", "float", "0 to 10 (peer review)"
    ),
    RuleField(
        "min_award_fraction",
        "Least share of the request worth awarding",
        "float",
        "above 0, at most 1, e.g. 0.5",
    ),
    RuleField("max_members", "Most members per project", "int", "people"),
    RuleField(
        "cutoffs_per_month",
        "Regular cut-offs per month",
        "int",
        "0 to 4, when no cut-off dates are given",
    ),
    RuleField("member_cap_gpu_hours", "Cap per member", "float", "GPU-hours"),
)


def _number(raw: str, kind: Kind, name: str, errors: FieldErrors) -> float | int | None:
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        errors[name] = "a whole number" if kind == "int" else "a number, e.g. 5000 or 0.5"
        return None


def _durations(raw: str, errors: FieldErrors) -> list[int] | None:
    try:
        return [int(part) for part in raw.replace(",", " ").split()]
    except ValueError:
        errors["rules.durations_months"] = "whole months separated by commas, e.g. 3, 6, 12"
        return None


def _criteria(raw: str, errors: FieldErrors) -> list[dict[str, Any]] | None:
    criteria: list[dict[str, Any]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, _, weight = line.replace("=", " ").strip().partition(" ")
        try:
            criteria.append({"name": name, "weight": float(weight)})
        except ValueError:
            errors["rules.criteria"] = f"line {number}: a name and a weight, e.g. 'excellence 0.5'"
            return None
    return criteria


def call_budget(
    values: Mapping[str, Any], budget_keys: list[str]
) -> tuple[dict[str, float], FieldErrors]:
    """The budget lines typed (site id or pool -> GPU-hours; empty inputs left out)."""
    errors: FieldErrors = {}
    budget: dict[str, float] = {}
    for key in budget_keys:
        raw = str(values.get(f"budget_gpu_hours.{key}", ""))
        if raw:
            hours = _number(raw, "float", f"budget_gpu_hours.{key}", errors)
            if hours is not None:
                budget[key] = float(hours)
    if not budget and not errors:
        errors["budget_gpu_hours"] = f"give GPU-hours for at least one site or for {POOL!r}"
    return budget, errors


def values_of(form: Mapping[str, Any], kinds: list[str]) -> dict[str, Any]:
    """What the operator typed, kept to show the form again (checkboxes as a list)."""
    values: dict[str, Any] = {
        k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf"
    }
    values["rules.organisation_kinds"] = kinds
    return values


def call_body(
    values: Mapping[str, Any], budget_keys: list[str]
) -> tuple[dict[str, Any], FieldErrors]:
    """The API's call body from the form's values, and the errors of what cannot be read.
    Empty inputs are left out: the service then uses the mode's rules and its defaults."""
    errors: FieldErrors = {}
    body: dict[str, Any] = {
        "code": values.get("code", ""),
        "title": values.get("title", ""),
        "mode": values.get("mode", ""),
        "closes_at": values.get("closes_at", ""),
    }
    for name in ("opens_at", "course_ends_at"):
        if values.get(name):
            body[name] = values[name]
    body["cutoffs"] = [c.strip() for c in str(values.get("cutoffs", "")).splitlines() if c.strip()]
    body["budget_gpu_hours"], budget_errors = call_budget(values, budget_keys)
    errors.update(budget_errors)
    rules: dict[str, Any] = {}
    for rule in RULES:
        raw = str(values.get(f"rules.{rule.name}", ""))
        if not raw:
            continue
        if rule.name == "durations_months":
            rules[rule.name] = _durations(raw, errors)
        elif rule.kind == "text":
            rules[rule.name] = raw
        else:
            rules[rule.name] = _number(raw, rule.kind, f"rules.{rule.name}", errors)
    if values.get("rules.criteria"):
        rules["criteria"] = _criteria(str(values["rules.criteria"]), errors)
    kinds = values.get("rules.organisation_kinds") or []
    if kinds:
        rules["organisation_kinds"] = list(kinds)
    conflict = values.get("rules.same_country_conflict", "")
    if conflict in ("yes", "no"):
        rules["same_country_conflict"] = conflict == "yes"
    body["rules"] = rules
    return body, errors
