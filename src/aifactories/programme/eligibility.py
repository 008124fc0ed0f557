"""The automated checks a proposal passes at submission: eligibility of the applicant, the
request within the mode's limits, hardware that exists in the catalogue, residency that can
be met. Pure: the service gives the facts, this says what passes and why not."""

from __future__ import annotations

from dataclasses import dataclass

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.organisations import OrganisationKind
from aifactories.domain.sites import Partition, Site
from aifactories.programme.modes import CallRules, eligible_countries


@dataclass(frozen=True, slots=True)
class ProposalFacts:
    """What the checks need of a proposal and its applicant."""

    organisation_kind: OrganisationKind
    organisation_country: str
    requested_gpu_hours: float
    period_months: int
    gpu_model: str | None
    min_gpu_memory_gb: int
    largest_job_gpus: int
    preferred_sites: tuple[str, ...]
    residency: tuple[str, ...]
    members: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    message: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "message": self.message}


def matching_partitions(
    catalogue: Catalogue,
    *,
    gpu_model: str | None,
    min_gpu_memory_gb: int,
    largest_job_gpus: int,
    residency: tuple[str, ...],
) -> list[tuple[Site, Partition]]:
    """Operational partitions that meet the hardware needs inside the residency countries."""
    found = []
    for site in catalogue.operational_sites:
        if residency and site.country not in residency:
            continue
        for part in site.partitions:
            if gpu_model and part.gpu_model.lower() != gpu_model.lower():
                continue
            if part.gpu_memory_gb < min_gpu_memory_gb or part.total_gpus < largest_job_gpus:
                continue
            found.append((site, part))
    return found


def candidate_sites(catalogue: Catalogue, facts: ProposalFacts) -> list[str]:
    """Sites that can host the proposal, preferred ones first (in the applicant's order)."""
    sites: list[str] = []
    for site, _ in matching_partitions(
        catalogue,
        gpu_model=facts.gpu_model,
        min_gpu_memory_gb=facts.min_gpu_memory_gb,
        largest_job_gpus=facts.largest_job_gpus,
        residency=facts.residency,
    ):
        if site.id not in sites:
            sites.append(site.id)
    preferred = [s for s in facts.preferred_sites if s in sites]
    return preferred + [s for s in sites if s not in preferred]


def automated_checks(
    rules: CallRules, facts: ProposalFacts, catalogue: Catalogue
) -> list[CheckResult]:
    results: list[CheckResult] = []
    kinds = ", ".join(k.value for k in rules.organisation_kinds)
    results.append(
        CheckResult(
            "organisation_kind",
            facts.organisation_kind in rules.organisation_kinds,
            f"{facts.organisation_kind.value} organisations may apply"
            if facts.organisation_kind in rules.organisation_kinds
            else f"this call is open to {kinds} organisations, not {facts.organisation_kind.value}",
        )
    )
    countries = eligible_countries(rules.country_list)
    established = facts.organisation_country in countries
    results.append(
        CheckResult(
            "establishment",
            established,
            f"established in {facts.organisation_country}, an eligible country"
            if established
            else f"the organisation is established in {facts.organisation_country}, which is not "
            f"in the call's list {rules.country_list!r} (EU member states"
            + (" and associated countries)" if "associated" in rules.country_list else ")"),
        )
    )
    within = rules.min_gpu_hours <= facts.requested_gpu_hours <= rules.max_gpu_hours
    results.append(
        CheckResult(
            "request_within_limits",
            within,
            f"{facts.requested_gpu_hours:,.0f} GPU-hours is within {rules.title}'s "
            f"{rules.min_gpu_hours:,.0f} to {rules.max_gpu_hours:,.0f}"
            if within
            else f"{facts.requested_gpu_hours:,.0f} GPU-hours is outside {rules.title}'s limits "
            f"({rules.min_gpu_hours:,.0f} to {rules.max_gpu_hours:,.0f} GPU-hours); "
            "change the request or apply in another access mode",
        )
    )
    period_ok = facts.period_months in rules.durations_months
    results.append(
        CheckResult(
            "period",
            period_ok,
            f"{facts.period_months} months is allowed"
            if period_ok
            else f"{rules.title} grants periods of {list(rules.durations_months)} months, "
            f"not {facts.period_months}",
        )
    )
    members_ok = facts.members <= rules.max_members
    results.append(
        CheckResult(
            "team_size",
            members_ok,
            f"{facts.members} team members"
            if members_ok
            else f"{facts.members} team members exceed the call's {rules.max_members}",
        )
    )
    unknown = [s for s in facts.preferred_sites if catalogue.site(s) is None]
    hardware = matching_partitions(
        catalogue,
        gpu_model=facts.gpu_model,
        min_gpu_memory_gb=facts.min_gpu_memory_gb,
        largest_job_gpus=facts.largest_job_gpus,
        residency=(),
    )
    need = (
        f"{facts.gpu_model or 'any GPU'} with at least {facts.min_gpu_memory_gb} GB and "
        f"{facts.largest_job_gpus} GPUs for the largest job"
    )
    results.append(
        CheckResult(
            "hardware",
            bool(hardware) and not unknown,
            f"{need}: available at {', '.join(sorted({s.id for s, _ in hardware}))}"
            if hardware and not unknown
            else (
                f"preferred sites {unknown} are not in the catalogue; see 'aif sites'"
                if unknown
                else f"no operational partition offers {need}; see 'aif sites'"
            ),
        )
    )
    resident = candidate_sites(catalogue, facts)
    results.append(
        CheckResult(
            "residency",
            bool(resident) or not hardware,
            (
                f"can run in {', '.join(facts.residency) or 'any country'}: {', '.join(resident)}"
                if resident
                else f"no site in {', '.join(facts.residency)} offers {need}; widen the "
                "residency or change the hardware"
            )
            if hardware
            else "not checked: the hardware does not exist",
        )
    )
    return results
