"""Access modes and the rules of a call, read from data (access_modes.yaml,
eligible_countries.yaml): a mode is configuration, not code."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml

from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import OrganisationKind


class AccessMode(StrEnum):
    PLAYGROUND = "playground"
    FAST_LANE = "fast_lane"
    LARGE_SCALE = "large_scale"
    AI_FOR_SCIENCE = "ai_for_science"
    EDUCATION = "education"


class ReviewKind(StrEnum):
    NONE = "none"  # automated checks only: accepted at submission
    TECHNICAL = "technical"  # a site operator's technical check
    PEER = "peer"  # peer review, awards after a cut-off


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    weight: float


DEFAULT_CRITERIA: tuple[Criterion, ...] = (
    Criterion("excellence", 0.4),
    Criterion("impact", 0.4),
    Criterion("feasibility", 0.2),
)


@dataclass(frozen=True, slots=True)
class CallRules:
    """A call's rules: its mode's defaults, narrowed by the call's own settings."""

    mode: AccessMode
    title: str
    review: ReviewKind
    min_gpu_hours: float
    max_gpu_hours: float
    durations_months: tuple[int, ...]
    max_sites: int
    organisation_kinds: tuple[OrganisationKind, ...] = tuple(OrganisationKind)
    country_list: str = "eu_and_associated"
    criteria: tuple[Criterion, ...] = DEFAULT_CRITERIA
    reviewers_per_proposal: int = 3
    same_country_conflict: bool = False
    min_average_score: float | None = None  # the call's decision rule, if any (0..10)
    min_award_fraction: float = 0.5  # partial awards down to this share of the request
    max_members: int = 50
    member_cap_gpu_hours: float | None = None  # Education: per-student cap
    target_working_days: int = 10
    cutoffs_per_month: int = 0
    """Peer-reviewed calls opened without cut-offs get this many a month (0: the closing
    date is the only cut-off)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "title": self.title,
            "review": self.review.value,
            "min_gpu_hours": self.min_gpu_hours,
            "max_gpu_hours": self.max_gpu_hours,
            "durations_months": list(self.durations_months),
            "max_sites": self.max_sites,
            "organisation_kinds": [k.value for k in self.organisation_kinds],
            "country_list": self.country_list,
            "criteria": [{"name": c.name, "weight": c.weight} for c in self.criteria],
            "reviewers_per_proposal": self.reviewers_per_proposal,
            "same_country_conflict": self.same_country_conflict,
            "min_average_score": self.min_average_score,
            "min_award_fraction": self.min_award_fraction,
            "max_members": self.max_members,
            "member_cap_gpu_hours": self.member_cap_gpu_hours,
            "target_working_days": self.target_working_days,
            "cutoffs_per_month": self.cutoffs_per_month,
        }


def rules_from_json(data: dict[str, Any]) -> CallRules:
    """A call's rules as stored (resolved and validated when the call was opened)."""
    cap = data.get("member_cap_gpu_hours")
    score = data.get("min_average_score")
    return CallRules(
        mode=AccessMode(data["mode"]),
        title=str(data["title"]),
        review=ReviewKind(data["review"]),
        min_gpu_hours=float(data["min_gpu_hours"]),
        max_gpu_hours=float(data["max_gpu_hours"]),
        durations_months=tuple(int(m) for m in data["durations_months"]),
        max_sites=int(data["max_sites"]),
        organisation_kinds=tuple(OrganisationKind(k) for k in data["organisation_kinds"]),
        country_list=str(data["country_list"]),
        criteria=tuple(Criterion(c["name"], float(c["weight"])) for c in data["criteria"]),
        reviewers_per_proposal=int(data["reviewers_per_proposal"]),
        same_country_conflict=bool(data["same_country_conflict"]),
        min_average_score=float(score) if score is not None else None,
        min_award_fraction=float(data["min_award_fraction"]),
        max_members=int(data["max_members"]),
        member_cap_gpu_hours=float(cap) if cap is not None else None,
        target_working_days=int(data["target_working_days"]),
        cutoffs_per_month=int(data.get("cutoffs_per_month", 0)),
    )


@cache
def _modes_data() -> dict[str, dict[str, Any]]:
    text = resources.files("aifactories.programme").joinpath("access_modes.yaml").read_text()
    data: dict[str, dict[str, Any]] = yaml.safe_load(text)
    return data


@cache
def _countries_data() -> dict[str, Any]:
    path = resources.files("aifactories.programme").joinpath("eligible_countries.yaml")
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def country_lists() -> dict[str, frozenset[str]]:
    data = _countries_data()
    return {
        name: frozenset(code for group in groups for code in data[group])
        for name, groups in data["lists"].items()
    }


def eligible_countries(list_name: str) -> frozenset[str]:
    lists = country_lists()
    if list_name not in lists:
        raise InvalidInput(
            "country_list",
            f"unknown country list {list_name!r}; use one of {', '.join(sorted(lists))}",
        )
    return lists[list_name]


def mode_defaults(mode: AccessMode) -> CallRules:
    raw = _modes_data()[mode.value]
    cap = raw.get("member_cap_gpu_hours")
    return CallRules(
        mode=mode,
        title=str(raw["title"]),
        review=ReviewKind(raw["review"]),
        min_gpu_hours=float(raw["min_gpu_hours"]),
        max_gpu_hours=float(raw["max_gpu_hours"]),
        durations_months=tuple(int(m) for m in raw["durations_months"]),
        max_sites=int(raw["max_sites"]),
        max_members=int(raw.get("max_members", 50)),
        member_cap_gpu_hours=float(cap) if cap is not None else None,
        target_working_days=int(raw.get("target_working_days", 10)),
        cutoffs_per_month=int(raw.get("cutoffs_per_month", 0)),
    )


def parse_mode(value: str) -> AccessMode:
    try:
        return AccessMode(value)
    except ValueError:
        raise InvalidInput(
            "mode",
            f"unknown access mode {value!r}; use one of {', '.join(m.value for m in AccessMode)}",
        ) from None


def call_rules(mode: AccessMode, overrides: dict[str, Any]) -> CallRules:
    """The mode's defaults with a call's overrides. A call may narrow its mode (a smaller
    maximum, fewer durations, fewer organisation kinds) but never widen it: a Playground call
    cannot grant Large Scale amounts by configuration."""
    base = mode_defaults(mode)
    rules = base
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "min_gpu_hours":
            if float(value) < base.min_gpu_hours or float(value) > base.max_gpu_hours:
                raise InvalidInput(
                    "rules.min_gpu_hours",
                    f"must be between the mode's bounds {base.min_gpu_hours:g} and "
                    f"{base.max_gpu_hours:g} GPU-hours",
                )
            rules = replace(rules, min_gpu_hours=float(value))
        elif key == "max_gpu_hours":
            if float(value) > base.max_gpu_hours or float(value) < rules.min_gpu_hours:
                raise InvalidInput(
                    "rules.max_gpu_hours",
                    f"{base.title} allows at most {base.max_gpu_hours:g} GPU-hours per proposal "
                    f"(and at least the minimum {rules.min_gpu_hours:g})",
                    limit=f"{base.max_gpu_hours:g}",
                )
            rules = replace(rules, max_gpu_hours=float(value))
        elif key == "durations_months":
            months = tuple(int(m) for m in value)
            wrong = [m for m in months if m not in base.durations_months]
            if not months or wrong:
                raise InvalidInput(
                    "rules.durations_months",
                    f"{base.title} allows periods of {list(base.durations_months)} months",
                )
            rules = replace(rules, durations_months=months)
        elif key == "organisation_kinds":
            try:
                kinds = tuple(OrganisationKind(k) for k in value)
            except ValueError:
                raise InvalidInput(
                    "rules.organisation_kinds",
                    f"use kinds among {', '.join(k.value for k in OrganisationKind)}",
                ) from None
            if not kinds:
                raise InvalidInput("rules.organisation_kinds", "name at least one kind")
            rules = replace(rules, organisation_kinds=kinds)
        elif key == "country_list":
            eligible_countries(str(value))
            rules = replace(rules, country_list=str(value))
        elif key == "criteria":
            criteria = tuple(Criterion(str(c["name"]), float(c["weight"])) for c in value)
            if not criteria or any(c.weight <= 0 for c in criteria):
                raise InvalidInput("rules.criteria", "give criteria with positive weights")
            if len({c.name for c in criteria}) != len(criteria):
                raise InvalidInput("rules.criteria", "criterion names must be unique")
            rules = replace(rules, criteria=criteria)
        elif key == "reviewers_per_proposal":
            if not 1 <= int(value) <= 10:
                raise InvalidInput("rules.reviewers_per_proposal", "must be 1 to 10")
            rules = replace(rules, reviewers_per_proposal=int(value))
        elif key == "same_country_conflict":
            rules = replace(rules, same_country_conflict=bool(value))
        elif key == "min_average_score":
            if not 0 <= float(value) <= 10:
                raise InvalidInput("rules.min_average_score", "must be 0 to 10")
            rules = replace(rules, min_average_score=float(value))
        elif key == "min_award_fraction":
            if not 0 < float(value) <= 1:
                raise InvalidInput("rules.min_award_fraction", "must be above 0 and at most 1")
            rules = replace(rules, min_award_fraction=float(value))
        elif key == "max_members":
            if not 1 <= int(value) <= base.max_members:
                raise InvalidInput("rules.max_members", f"must be 1 to {base.max_members}")
            rules = replace(rules, max_members=int(value))
        elif key == "cutoffs_per_month":
            if not 0 <= int(value) <= 4:
                raise InvalidInput(
                    "rules.cutoffs_per_month",
                    "must be 0 (the closing date only) to 4; or give the dates as cutoffs",
                )
            rules = replace(rules, cutoffs_per_month=int(value))
        elif key == "member_cap_gpu_hours":
            if float(value) <= 0:
                raise InvalidInput("rules.member_cap_gpu_hours", "must be positive")
            rules = replace(rules, member_cap_gpu_hours=float(value))
        else:
            raise InvalidInput(f"rules.{key}", "unknown rule; see docs/access-programme.md")
    return rules


def criteria_weights_normalised(criteria: tuple[Criterion, ...]) -> dict[str, float]:
    total = sum(c.weight for c in criteria)
    return {c.name: c.weight / total for c in criteria}
