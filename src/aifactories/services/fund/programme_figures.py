"""The programme's figures over any period [start, end), as the books stood at ``as_of``.

One function per family, each over the :class:`~.programme_figures_books.Books` read for the
period (that module says which ledger rows and audit entries count at ``as_of``: only those
recorded at or before it, so a past date gives the same figures whenever it is computed):

- :func:`granted` and :func:`used`: GPU-hours (billed, as the ledger counts them) and their
  euros (the physical GPU time they buy at the partition's full cost per GPU-hour, from the
  cost model; a grant at a site or the pool at the GPU-weighted mean, see
  programme_figures_prices.py), in total and by organisation kind, domain, critical domain,
  industrial application, country, access mode and site;
- :func:`utilisation`: each partition's physical GPU-hours used by the programme over the
  period, against its whole capacity and against the programme's share of it;
- :func:`time_to_access`: per access mode, submission to decision, decision to the first job
  of the project, and submission to first job: count, median, 90th percentile (days);
- :func:`waits`: jobs' submission to start per access mode: count, mean, median, p90 (hours);
- :func:`energy`: kWh and kg CO2 of the GPU-hours used, per site and in total;
- :func:`capacity_shares`: each site's GPU-hours over the period, the programme's share and
  the hosting state's, with the share's source or assumption.

:func:`programme_figures` is the service (programme operators only) that the API, the CLI
report and the portal call; ``ProgrammeFigures.rows()`` (programme_figures_values.py) is
the long table (family, key, metric, value, unit) the CSV, Parquet and API carry.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aifactories.catalogue.loader import Catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.services.core.auth import require_programme_operator
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.fund.costs import cost_model_of
from aifactories.services.fund.programme_figures_books import Books, Charge, Who, read_books
from aifactories.services.fund.programme_figures_prices import (
    CostLookup,
    Prices,
    Rate,
    programme_share,
)
from aifactories.services.fund.programme_figures_values import (
    CapacityShare,
    Delays,
    Energy,
    HoursAndEuros,
    ProgrammeFigures,
    Utilisation,
    Waits,
)

HOUR_S = 3600.0
DAY_S = 86400.0
DIMENSIONS: tuple[tuple[str, Callable[[Who], str]], ...] = (
    ("kind", lambda w: w.kind),
    ("domain", lambda w: w.domain),
    ("critical", lambda w: "yes" if w.critical else "no"),
    ("industrial", lambda w: "yes" if w.industrial else "no"),
    ("country", lambda w: w.country),
    ("mode", lambda w: w.mode),
)
POOL = "pool"
EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
STAGES = ("submission_to_decision", "decision_to_first_job", "submission_to_first_job")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's
    default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _grant_rate(prices: Prices, site_id: str | None, pool: tuple[str, ...] | None) -> Rate:
    return prices.site(site_id) if site_id is not None else prices.pool(pool)


@dataclass(frozen=True, slots=True)
class Valued:
    """What a charge stands for: physical GPU-hours, and their euros, kWh and kg CO2."""

    physical_hours: float
    eur: float
    kwh: float
    kg_co2: float


def value_charge(prices: Prices, charge: Charge) -> Valued:
    """A charge as the books in euros value it (services/fund/valuation.py): at its
    partition's full cost per GPU-hour, divided by the billing weight *the job was charged
    at*; a charge with no priced partition (usage imported from a site's accounting, a
    partition the cost model lacks) at the rate of the allocation it was charged to.
    Imported usage was charged at the lowest weight of its site's partitions
    (services/sites/usage_import.py): that weight gives its physical GPU-hours back, and its
    energy is at the site's GPU-weighted mean."""
    billed = charge.gpu_seconds / HOUR_S
    at_allocation = billed * _grant_rate(prices, charge.alloc_site_id, charge.pool_sites).eur
    if charge.partition_id is not None:
        weight = charge.billing_weight or prices.billing_weight(charge.partition_id)
        physical = billed / weight
        cost = prices.cost(charge.partition_id)
        if cost is None:
            return Valued(physical, at_allocation, 0.0, 0.0)
        return Valued(physical, physical * cost.eur, physical * cost.kwh, physical * cost.kg_co2)
    if charge.imported and charge.site_id is not None:
        physical = billed / prices.import_weight(charge.site_id)
        site = prices.site_cost(charge.site_id)
        return Valued(physical, at_allocation, physical * site.kwh, physical * site.kg_co2)
    # a charge with no job at all: the allocation's rate, energy included
    rate = _grant_rate(prices, charge.alloc_site_id, charge.pool_sites)
    return Valued(
        billed / (rate.billing_weight or 1.0),
        at_allocation,
        billed * rate.kwh,
        billed * rate.kg_co2,
    )


def _by_dimension(items: Iterable[tuple[Who, str, float, float]]) -> list[HoursAndEuros]:
    """(who, site key, GPU-hours, euros) summed in total, by each dimension and by site."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for who, site, hours, eur in items:
        keys = [("total", "total"), *((n, f(who)) for n, f in DIMENSIONS), ("site", site)]
        for key in keys:
            sums[key][0] += hours
            sums[key][1] += eur
    order = {name: i for i, name in enumerate(["total", *(n for n, _ in DIMENSIONS), "site"])}
    return [
        HoursAndEuros(dim, key, hours, eur)
        for (dim, key), (hours, eur) in sorted(
            sums.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
        )
    ]


def granted(books: Books, prices: Prices) -> list[HoursAndEuros]:
    """GPU-hours granted in the period (by decision time) and their value in euros."""
    return _by_dimension(
        (
            g.who,
            g.site_id or POOL,
            g.gpu_seconds / HOUR_S,
            g.gpu_seconds / HOUR_S * _grant_rate(prices, g.site_id, g.pool_sites).eur,
        )
        for g in books.grants
    )


def used(books: Books, prices: Prices) -> list[HoursAndEuros]:
    """GPU-hours charged in the period and the euros of the GPU time behind them."""
    return _by_dimension(
        (
            books.project_who[c.project_id],
            c.site_id or POOL,
            c.gpu_seconds / HOUR_S,
            value_charge(prices, c).eur,
        )
        for c in books.charges
    )


def _period_hours(books: Books) -> float:
    """The hours of the period that had passed at ``as_of``: capacity not yet there to be
    used is no capacity left unused."""
    return max(0.0, min(books.end, books.as_of) - books.start) / HOUR_S


def utilisation(books: Books, prices: Prices) -> list[Utilisation]:
    """Every partition of an operational site (and any other that ran the programme's jobs):
    physical GPU-hours used over the period against its GPUs x the period's hours. Usage
    imported from a site's accounting names no partition and is left out here."""
    used_by: dict[str, float] = defaultdict(float)
    for charge in books.charges:
        if charge.partition_id is not None:
            used_by[charge.partition_id] += value_charge(prices, charge).physical_hours
    parts = {p.id: p for p in prices.catalogue.operational_partitions}
    for pid in used_by:
        part = prices.catalogue.partition(pid)
        if part is not None:
            parts.setdefault(part.id, part)
    hours = _period_hours(books)
    rows = []
    for pid, part in parts.items():
        available = part.total_gpus * hours
        mine = available * programme_share(part.site_id).share
        use = used_by.get(pid, 0.0)
        rows.append(
            Utilisation(
                pid,
                part.total_gpus,
                available,
                mine,
                use,
                use / available if available else 0.0,
                use / mine if mine else 0.0,
            )
        )
    return rows


def time_to_access(books: Books) -> list[Delays]:
    """Per access mode, the three stages of a proposal's path, in days."""
    stages: dict[tuple[str, str], list[float]] = defaultdict(list)
    for a in books.accesses:
        if a.decided_at is not None:
            stages[(a.mode, STAGES[0])].append(a.decided_at - a.submitted_at)
        if a.awarded and a.decided_at is not None and a.first_job_at is not None:
            stages[(a.mode, STAGES[1])].append(a.first_job_at - a.decided_at)
            stages[(a.mode, STAGES[2])].append(a.first_job_at - a.submitted_at)
    return [
        Delays(
            mode,
            stage,
            len(values),
            statistics.median(values) / DAY_S,
            percentile(values, 90) / DAY_S,
        )
        for (mode, stage), values in sorted(stages.items())
    ]


def waits(books: Books) -> list[Waits]:
    """Jobs started in the period: submission to start, per access mode and in total."""
    by_mode: dict[str, list[float]] = defaultdict(list)
    for start in books.starts:
        wait = max(0.0, start.started_at - start.submitted_at) / HOUR_S
        by_mode[start.mode].append(wait)
        by_mode["total"].append(wait)
    return [
        Waits(
            mode,
            len(values),
            statistics.fmean(values),
            statistics.median(values),
            percentile(values, 90),
        )
        for mode, values in sorted(by_mode.items())
    ]


def energy(books: Books, prices: Prices) -> list[Energy]:
    """kWh (GPU-hours x kW x PUE, from the cost model) and kg CO2 of the use, per site."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for charge in books.charges:
        value = value_charge(prices, charge)
        for key in (charge.site_id or POOL, "total"):
            sums[key][0] += value.physical_hours
            sums[key][1] += value.kwh
            sums[key][2] += value.kg_co2
    return [Energy(k, h, kwh, kg) for k, (h, kwh, kg) in sorted(sums.items())]


def capacity_shares(books: Books, prices: Prices) -> list[CapacityShare]:
    """Each operational site's GPU-hours over the period split between the programme and
    the hosting state, and what the programme used of its part."""
    hours = _period_hours(books)
    used_at: dict[str, float] = defaultdict(float)
    for charge in books.charges:
        if charge.site_id is not None:
            used_at[charge.site_id] += value_charge(prices, charge).physical_hours
    rows = []
    for site in prices.catalogue.operational_sites:
        gpus = sum(p.total_gpus for p in site.partitions)
        share = programme_share(site.id)
        total = gpus * hours
        rows.append(
            CapacityShare(
                site.id,
                gpus,
                share.share,
                total * share.share,
                total * (1 - share.share),
                used_at.get(site.id, 0.0),
                share.basis,
            )
        )
    return rows


def compute_figures(books: Books, prices: Prices) -> ProgrammeFigures:
    """Every family over ``books``; pure (no database)."""
    figures = ProgrammeFigures(
        books.start,
        books.end,
        books.as_of,
        granted(books, prices),
        used(books, prices),
        utilisation(books, prices),
        time_to_access(books),
        waits(books),
        energy(books, prices),
        capacity_shares(books, prices),
    )
    by_basis: dict[str, list[str]] = defaultdict(list)
    for c in figures.capacity_shares:
        by_basis[c.basis].append(f"{c.site_id} {c.share:.0%}")
    figures.notes = [f"programme share at {', '.join(sites)}: {b}" for b, sites in by_basis.items()]
    figures.notes += [
        f"no cost known for {what}: its use valued at the rate of the allocation charged "
        "(0 EUR if none), no energy counted"
        for what in sorted(prices.unpriced)
    ]
    return figures


def default_costs(catalogue: Catalogue) -> CostLookup:
    """The cost model of ``catalogue``, the one the books in euros use (read once; a wrong
    cost model file is a ConfigurationError that names it)."""
    return cost_model_of(catalogue)


def _check_time(when: float, field: str) -> float:
    """A time the figures can read the books at: finite and within years 1970 to 9999 (the
    books hold nothing earlier, and dates beyond 9999 cannot be written back)."""
    if not (math.isfinite(when) and EARLIEST <= when <= LATEST):
        what = f"{when:g} (epoch seconds) is outside years 1970 to 9999"
        raise InvalidInput(
            field,
            what if math.isfinite(when) else f"{when!r} is no time",
            "a date between 1970-01-01 and 9999-12-31 (ISO 8601, or finite epoch seconds)",
        )
    return when


def programme_figures(
    ctx: ServiceContext,
    principal: Principal,
    *,
    start: float,
    end: float,
    as_of: float | None = None,
    costs: CostLookup | None = None,
) -> ProgrammeFigures:
    """The programme's figures for [start, end) as the books stood at ``as_of`` (default:
    now). Programme operators only."""
    require_programme_operator(principal, "read the programme's figures")
    _check_time(start, "from")
    _check_time(end, "to")
    if not end > start:
        raise InvalidInput("to", "the period must end after it starts", "a date after --from")
    when = ctx.clock.now() if as_of is None else _check_time(as_of, "as_of")
    lookup = costs if costs is not None else default_costs(ctx.catalogue)
    with ctx.reads() as session:
        books = read_books(session, start, end, when, [s.id for s in ctx.catalogue.sites])
    return compute_figures(books, Prices(ctx.catalogue, lookup))
