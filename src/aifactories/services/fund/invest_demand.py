"""The demand of ``aif invest`` read from the platform: the programme's proposals in the
database, or the twin's workload on today's catalogue, through the rule of
fund/demand_rules.py (which states it). Read-only: one read transaction, nothing written.

The twin's workload is the AI-factory mixture the twin runs by default at year scale
(twin/traces/federation_year.py): a year of jobs offering ``TWIN_LOAD`` x today's operational
GPUs, seeded. Its jobs carry their organisation kind and domain; their country comes from
the twin's own mapping (twin/federation.py ``projects_for``: each trace group's home country
a seeded hash over the catalogue's operational countries), so that the demand's countries
are the twin's, not a second guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select

from aifactories.catalogue.loader import Catalogue
from aifactories.db.migrate import current_revision, head_revision
from aifactories.db.models import OrganisationRow
from aifactories.db.programme_models import ProposalRow
from aifactories.domain.clock import Clock, to_datetime
from aifactories.domain.errors import Conflict, InvalidInput
from aifactories.domain.organisations import CRITICAL_DOMAINS, Domain, OrganisationKind
from aifactories.fund.demand_rules import (
    DAY_S,
    DEFAULT_WINDOW_DAYS,
    NOT_COUNTED,
    PRIORITY_CLASSES,
    DemandRecord,
    DemandSource,
    DerivedDemand,
    programme_demand,
    workload_demand,
)
from aifactories.fund.invest_request import DemandOptions
from aifactories.fund.invest_scenario import InvestScenario
from aifactories.services.core.context import ServiceContext
from aifactories.settings import Settings
from aifactories.twin.federation import projects_for
from aifactories.twin.traces.federation_year import generate_federation_year

TWIN_LOAD = 0.85  # the year generator's default: the federation busy 85% on average
TWIN_DAYS = 365.0
_INDUSTRIAL_KINDS = frozenset(
    {OrganisationKind.INDUSTRY.value, OrganisationKind.SME.value, OrganisationKind.STARTUP.value}
)


class NoProposals(Conflict):
    """No proposal to take the demand from: it says how to get some."""

    code = "no_proposals"


class NoProgrammeDatabase(Conflict):
    """The programme's demand asked of a database that is not there or not upgraded: it says
    how to make one with proposals in it."""

    code = "no_programme_database"


def check_programme_database(settings: Settings) -> None:
    """Before the platform is opened for the programme's demand: a local database that is not
    there is not created (opening the platform would leave an empty one and its write lock
    behind), and one not at the current schema is not read. Raises
    :class:`NoProgrammeDatabase` saying how to get the proposals."""
    if settings.embedded_database_missing:
        reason = f"there is no database in {settings.data_dir}"
    elif current_revision(settings.resolved_database_url) != head_revision():
        reason = "the database is not at the current schema"
    else:
        return
    raise NoProgrammeDatabase(
        f"the programme's demand is read from the platform's proposals, but {reason}: create "
        "it and seed a year of the programme (aif db upgrade, aif demo load, aif programme "
        "seed-history), or take the plan file's demand (--demand-from file)"
    )


def epoch_of(value: datetime) -> float:
    """A datetime as epoch seconds; a naive one is UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def read_requests(ctx: ServiceContext, start: float, end: float) -> list[DemandRecord]:
    """The proposals submitted in ``(start, end]`` that the rule counts, with their
    organisation's country."""
    with ctx.reads() as session:
        rows = session.execute(
            select(
                ProposalRow.requested_gpu_hours,
                OrganisationRow.country,
                ProposalRow.critical_domain,
                ProposalRow.industrial,
                ProposalRow.residency,
                ProposalRow.submitted_at,
                ProposalRow.status,
            )
            .join(OrganisationRow, OrganisationRow.id == ProposalRow.organisation_id)
            .where(
                ProposalRow.submitted_at > start,
                ProposalRow.submitted_at <= end,
                ProposalRow.status.not_in(sorted(NOT_COUNTED)),
            )
            .order_by(ProposalRow.id)
        ).all()
    return [
        DemandRecord(
            gpu_hours=float(hours),
            country=country,
            critical_domain=bool(critical),
            industrial=bool(industrial),
            residency=tuple(residency or ()),
            submitted_at=float(submitted or 0.0),  # not None: filtered on it
            status=status,
        )
        for hours, country, critical, industrial, residency, submitted, status in rows
    ]


def demand_from_programme(
    ctx: ServiceContext,
    *,
    first_year: int,
    growth_rate: float,
    as_of: float | None = None,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> DerivedDemand:
    """The proposals' demand (fund/demand_rules.py ``programme_demand``) as of ``as_of``
    (default now); :class:`NoProposals` when none counts, saying how to get some."""
    end = ctx.clock.now() if as_of is None else as_of
    start = end - window_days * DAY_S
    derived = programme_demand(
        read_requests(ctx, start, end),
        as_of=end,
        first_year=first_year,
        growth_rate=growth_rate,
        window_days=window_days,
    )
    if not derived.rows:
        raise NoProposals(
            f"no proposal submitted between {to_datetime(start):%Y-%m-%d} and "
            f"{to_datetime(end):%Y-%m-%d} asks for GPU-hours, so the programme "
            "gives no demand: seed a year of the programme (aif programme seed-history), "
            "choose another --as-of, or take the plan file's demand (--demand-from file)"
        )
    return derived


def demand_from_twin(
    catalogue: Catalogue,
    *,
    first_year: int,
    growth_rate: float,
    as_of: float,
    seed: int = 0,
) -> DerivedDemand:
    """A year of the twin's default workload on ``catalogue`` (see the module) as demand."""
    partitions = catalogue.operational_partitions
    total = sum(p.total_gpus for p in partitions)
    if total == 0:
        raise InvalidInput(
            "demand_from", "the catalogue has no operational GPUs to size the twin's workload on"
        )
    countries: Sequence[str] = sorted(
        {s.country for s in catalogue.sites if any(p.site_id == s.id for p in partitions)}
    )
    trace = generate_federation_year(total, days=TWIN_DAYS, load=TWIN_LOAD, seed=seed)
    projects = projects_for(trace, countries, seed)
    records = []
    for job in trace.jobs:
        project = projects[job.group or "default"]
        records.append(
            DemandRecord(
                gpu_hours=job.gpu_seconds / 3600.0,
                country=project.country,
                critical_domain=Domain(project.domain) in CRITICAL_DOMAINS,
                industrial=project.organisation_kind in _INDUSTRIAL_KINDS,
                residency=tuple(sorted(job.countries)),
            )
        )
    return workload_demand(
        records,
        span_days=TWIN_DAYS,
        as_of=as_of,
        first_year=first_year,
        growth_rate=growth_rate,
        workload=f"{trace.name} on today's {total:,} operational GPUs",
        placement_rule=(
            "each project's country a seeded hash over the operational sites' countries "
            f"({', '.join(countries)}; the twin's own mapping), its class from its domain and "
            "organisation kind (industry, SME, startup: industrial)"
        ),
    )


def derive_demand(
    scenario: InvestScenario,
    options: DemandOptions,
    catalogue: Catalogue,
    *,
    ctx: ServiceContext | None = None,
    clock: Clock | None = None,
) -> DerivedDemand | None:
    """The demand ``options`` ask for, in the plan's first year; None for the plan file's
    own. The programme's needs ``ctx`` (its database and clock); the twin's a clock for the
    default ``as_of`` (``ctx``'s, else ``clock``)."""
    if options.demand_from is DemandSource.FILE:
        return None
    missing = [c for c in PRIORITY_CLASSES if c not in scenario.priorities]
    if missing:
        raise InvalidInput(
            "priorities",
            f"the {options.demand_from.value}'s demand comes in the classes "
            f"{', '.join(PRIORITY_CLASSES)}; the plan file gives no weight to {', '.join(missing)}",
        )
    growth = scenario.growth_rate if options.growth is None else options.growth
    first_year = scenario.years[0]
    as_of = None if options.as_of is None else epoch_of(options.as_of)
    if options.demand_from is DemandSource.PROGRAMME:
        if ctx is None:
            raise InvalidInput("demand_from", "the programme's demand needs the database")
        return demand_from_programme(
            ctx,
            first_year=first_year,
            growth_rate=growth,
            as_of=as_of,
            window_days=options.window_days,
        )
    now = ctx.clock if ctx is not None else clock
    if as_of is None:
        if now is None:
            raise InvalidInput("as_of", "no date given and no clock to read it from")
        as_of = now.now()
    return demand_from_twin(
        catalogue, first_year=first_year, growth_rate=growth, as_of=as_of, seed=options.seed
    )
