"""The rule that turns the programme's proposals and the twin's jobs into ``aif invest``'s
demand rows (fund/demand_rules.py), on records whose figures are computed by hand, and the
options that choose it (fund/invest_request.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import yaml
from pydantic import ValidationError

from aifactories.domain.errors import InvalidInput
from aifactories.fund.demand_rules import (
    MAX_YEARS_APART,
    DemandRecord,
    DemandSource,
    programme_demand,
    residency_of,
    workload_demand,
)
from aifactories.fund.invest_request import InvestRequest, demand_options
from aifactories.fund.invest_scenario import LARGEST
from aifactories.fund.investment_model import Demand, Residency

DAY_S = 86400.0
AS_OF = datetime(2026, 12, 7, tzinfo=UTC).timestamp()


def _request(
    hours: float,
    country: str,
    *,
    days_before: float = 10,
    status: str = "awarded",
    critical: bool = False,
    industrial: bool = False,
    residency: tuple[str, ...] = (),
) -> DemandRecord:
    return DemandRecord(
        gpu_hours=hours,
        country=country,
        critical_domain=critical,
        industrial=industrial,
        residency=residency,
        submitted_at=AS_OF - days_before * DAY_S,
        status=status,
    )


REQUESTS = [
    # counted: critical and industrial is critical; no residency is any
    _request(1000, "DE", critical=True, industrial=True),
    # counted whatever the decision; its own country alone is 'country'
    _request(500, "DE", industrial=True, status="rejected", residency=("DE",)),
    # EU members only: 'eu'; one outside the EU: 'any'
    _request(300, "FR", status="under_review", residency=("DE", "FR")),
    _request(200, "FR", status="technical_check", residency=("FR", "NO")),
    # submitted exactly at as_of: counted
    _request(100, "DE", days_before=0),
    # not counted: taken back, failing its checks, never submitted, outside the window
    _request(9999, "DE", status="withdrawn"),
    _request(9999, "DE", status="checks_failed"),
    _request(9999, "DE", status="draft"),
    _request(9999, "DE", days_before=101),
    _request(9999, "DE", days_before=100),  # the window's start is out, its end in
    _request(9999, "DE", days_before=-1),  # after as_of
]


def test_programme_demand_by_hand() -> None:
    derived = programme_demand(
        REQUESTS, as_of=AS_OF, first_year=2028, growth_rate=0.5, window_days=100
    )
    # annualised x 365.25 / 100 = 3.6525, grown 1.5^2 (2026 to 2028) = 2.25: x 8.218125
    assert derived.rows == (
        Demand("DE", "critical_domain", 8218.125, Residency.ANY),
        Demand("DE", "industrial", 4109.0625, Residency.COUNTRY),
        Demand("DE", "other", 821.8125, Residency.ANY),
        Demand("FR", "other", 1643.625, Residency.ANY),
        Demand("FR", "other", 2465.4375, Residency.EU),
    )
    assert derived.source is DemandSource.PROGRAMME
    assert derived.counted == 5
    assert derived.gpu_hours == 2100
    assert derived.per_year == pytest.approx(7670.25)
    assert derived.growth_factor == pytest.approx(2.25)
    assert derived.gpu_hours_per_year == pytest.approx(17258.0625)
    text = derived.text
    assert "demand: 5 proposals submitted 2026-08-29..2026-12-07" in text
    assert "requests, not awards" in text and "requested 2,100 GPU-hours" in text
    assert "grown 50%/year over 2 years from 2026 to 2028" in text
    assert text.endswith("17,258 GPU-hours a year in 2028")
    assert derived.as_dict()["counted"] == 5 and derived.as_dict()["rule"] == text


def test_no_standing_request_gives_no_rows() -> None:
    derived = programme_demand(
        REQUESTS[5:], as_of=AS_OF, first_year=2027, growth_rate=0.3, window_days=100
    )
    assert derived.rows == () and derived.counted == 0


def test_workload_demand_by_hand() -> None:
    jobs = [
        DemandRecord(10.0, "IT", critical_domain=False, industrial=True, residency=("IT",)),
        DemandRecord(30.0, "IT", critical_domain=False, industrial=True, residency=("IT",)),
        DemandRecord(5.0, "SI", critical_domain=True, industrial=False),
    ]
    derived = workload_demand(
        jobs,
        span_days=365.25,
        as_of=AS_OF,
        first_year=2025,  # before as_of's year: shrunk back by the rate
        growth_rate=1.0,
        workload="test-trace",
        placement_rule="countries as given",
    )
    assert derived.rows == (
        Demand("IT", "industrial", 20.0, Residency.COUNTRY),
        Demand("SI", "critical_domain", 2.5, Residency.ANY),
    )
    assert derived.source is DemandSource.TWIN and derived.counted == 3
    assert "the twin's workload test-trace, 3 jobs over 365.25 days" in derived.text
    assert "countries as given" in derived.text
    assert "over -1 year from 2026 to 2025 (x0.5)" in derived.text


def test_residency_of() -> None:
    assert residency_of((), "DE") is Residency.ANY
    assert residency_of(("DE",), "DE") is Residency.COUNTRY
    assert residency_of(("FR",), "DE") is Residency.EU
    assert residency_of(("DE", "CH"), "DE") is Residency.ANY


@pytest.mark.parametrize(
    ("window", "growth", "field"),
    [(0, 0.3, "window_days"), (float("nan"), 0.3, "window_days"), (30, 2.5, "growth")],
)
def test_bad_figures_are_named(window: float, growth: float, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        programme_demand(
            REQUESTS, as_of=AS_OF, first_year=2027, growth_rate=growth, window_days=window
        )
    assert caught.value.field == field


def _at(year: int) -> float:
    return datetime(year, 6, 1, tzinfo=UTC).timestamp()


def _asked(hours: float, year: int) -> list[DemandRecord]:
    """One request of ``hours``, submitted the day before June 1 of ``year``."""
    return [replace(_request(hours, "DE"), submitted_at=_at(year) - DAY_S)]


@pytest.mark.parametrize("derive", ["programme", "twin"])
def test_an_as_of_beyond_the_plans_span_is_refused_naming_as_of(derive: str) -> None:
    """2100 against a plan from 2027 at -50% a year grew the demand x9.4e21 (0.5^-73)."""
    with pytest.raises(InvalidInput) as caught:
        if derive == "programme":
            programme_demand(
                _asked(1000, 2100),
                as_of=_at(2100),
                first_year=2027,
                growth_rate=-0.5,
            )
        else:
            workload_demand(
                [DemandRecord(10.0, "IT", critical_domain=False, industrial=False)],
                span_days=365.25,
                as_of=_at(2100),
                first_year=2027,
                growth_rate=-0.5,
                workload="t",
                placement_rule="r",
            )
    assert caught.value.field == "as_of"
    assert "2100 is 73 years from the plan's first year 2027" in caught.value.message
    assert caught.value.limit == f"within {MAX_YEARS_APART} years of 2027"
    # the plan's own span is allowed, both ways
    for year in (2027 - MAX_YEARS_APART, 2027 + MAX_YEARS_APART):
        rows = programme_demand(
            _asked(1000, year), as_of=_at(year), first_year=2027, growth_rate=0
        ).rows
        assert rows[0].gpu_hours_per_year > 0


def test_a_growth_past_the_largest_figure_a_plan_holds_is_refused_naming_growth() -> None:
    """Within 30 years, 200% a year still grows 3^30 = 2e14 fold: a big request beyond 1e15."""
    with pytest.raises(InvalidInput) as caught:
        programme_demand(_asked(1e6, 1997), as_of=_at(1997), first_year=2027, growth_rate=2.0)
    assert caught.value.field == "growth" and caught.value.limit is not None
    assert f"{LARGEST:.0e}" in caught.value.limit
    derived = programme_demand(_asked(1e6, 2020), as_of=_at(2020), first_year=2027, growth_rate=2.0)
    assert max(d.gpu_hours_per_year for d in derived.rows) <= LARGEST


def _body(**extra: object) -> dict[str, object]:
    with open("src/aifactories/fund/data/investai.yaml", encoding="utf-8") as handle:
        body: dict[str, object] = yaml.safe_load(handle)
    return body | extra


def test_request_options_beside_the_plan_file() -> None:
    request = InvestRequest.model_validate(
        _body(demand_from="programme", as_of="2026-06-01", growth=0.1, window_days=30)
    )
    options = request.options()
    assert options.demand_from is DemandSource.PROGRAMME and options.window_days == 30
    assert options.as_of == datetime(2026, 6, 1) and options.growth == 0.1
    # the plan file's own body is still a request, its demand from the file
    assert InvestRequest.model_validate(_body()).options().demand_from is DemandSource.FILE
    # with the demand from elsewhere, the file's rows may be left out
    no_rows = _body(demand_from="twin")
    del no_rows["demand"]
    assert InvestRequest.model_validate(no_rows).demand == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"demand_from": "moon"}, "demand_from"),
        ({"as_of": "1900-01-01"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"growth": 5}, "growth"),
        ({"growth": "nan"}, "growth"),
        ({"window_days": 0}, "window_days"),
        ({"seed": -1}, "seed"),
        ({"demand": []}, "demand"),
    ],
)
def test_hostile_options_name_their_field(extra: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        InvestRequest.model_validate(_body(**extra))
    error = caught.value.errors()[0]
    assert field in [str(part) for part in error["loc"]] or f"{field}:" in error["msg"]


def test_cli_options_name_the_option() -> None:
    with pytest.raises(InvalidInput) as caught:
        demand_options("programme", growth=3.0)
    assert caught.value.field == "--growth"
    assert caught.value.message.count("--growth") == 1  # once, not "--growth: --growth: ..."
    with pytest.raises(InvalidInput) as caught:
        demand_options("programme", as_of="not a date")
    assert caught.value.field == "--as-of"
    assert demand_options("twin", as_of="2026-12-07").as_of == datetime(2026, 12, 7)
