"""``aif invest``'s demand read from the platform (services/fund/invest_demand.py): the
programme's proposals on a seeded history (SQLite and PostgreSQL), through the service, the
API (``POST /fund/invest`` with ``demand_from``) and the CLI (``--demand-from``), and the
twin's workload on the catalogue."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.db.models import OrganisationRow
from aifactories.db.programme_models import ProposalRow
from aifactories.domain.clock import ManualClock, to_datetime
from aifactories.fund.demand_rules import DemandSource
from aifactories.fund.invest_request import DemandOptions
from aifactories.fund.invest_scenario import parse_scenario
from aifactories.services.fund.history_seed import SeededHistory, seed_history
from aifactories.services.fund.invest_demand import (
    NoProposals,
    demand_from_programme,
    derive_demand,
)
from tests.api.harness import Harness, make_harness

DAY_S = 86400.0
PROPOSALS = 16


@pytest.fixture
def seeded(tmp_path: Path, database_url: str) -> Iterator[tuple[Harness, SeededHistory]]:
    harness = make_harness(tmp_path, database_url)
    history = seed_history(
        harness.platform.ctx,
        start=harness.clock.now() + DAY_S,
        days=120,
        proposals=PROPOSALS,
        seed=3,
    )
    yield harness, history
    harness.platform.stop()


def _by_hand(h: Harness, history: SeededHistory) -> dict[tuple[str, str], float]:
    """The seeded proposals' requests per (country, class), read one by one."""
    hours: dict[tuple[str, str], float] = defaultdict(float)
    with h.platform.ctx.reads() as session:
        for seeded in history.proposals:
            row = session.get(ProposalRow, seeded.proposal_id)
            assert row is not None and row.residency == []
            org = session.get(OrganisationRow, row.organisation_id)
            assert org is not None
            cls = (
                "critical_domain"
                if row.critical_domain
                else "industrial"
                if row.industrial
                else "other"
            )
            hours[(org.country, cls)] += row.requested_gpu_hours
    return dict(hours)


def _year(epoch: float) -> int:
    return to_datetime(epoch).year


def test_the_programme_demand_is_every_request_of_the_window(
    seeded: tuple[Harness, SeededHistory],
) -> None:
    h, history = seeded
    as_of = history.end
    first_year = _year(as_of) + 1
    derived = demand_from_programme(
        h.platform.ctx, first_year=first_year, growth_rate=0.3, as_of=as_of
    )
    assert derived.counted == PROPOSALS == len(history.proposals)
    scale = 365.25 / 365 * 1.3  # annualised over the 365-day window, grown one year
    expected = {key: hours * scale for key, hours in _by_hand(h, history).items()}
    assert {(d.country, d.priority): d.gpu_hours_per_year for d in derived.rows} == (
        pytest.approx(expected)
    )
    assert {d.residency.value for d in derived.rows} == {"any"}  # no proposal restricts it
    assert f"demand: {PROPOSALS} proposals submitted" in derived.text

    # a window that ends halfway counts the requests submitted by then, and only those
    middle = history.start + 60 * DAY_S
    early = [p for p in history.proposals if p.submitted_at <= middle]
    assert 0 < len(early) < PROPOSALS
    half = demand_from_programme(
        h.platform.ctx, first_year=first_year, growth_rate=0.3, as_of=middle
    )
    assert half.counted == len(early)

    # a withdrawn request is no demand
    with h.platform.ctx.sessions.begin() as session:
        session.execute(
            update(ProposalRow)
            .where(ProposalRow.id == history.proposals[0].proposal_id)
            .values(status="withdrawn")
        )
    fewer = demand_from_programme(
        h.platform.ctx, first_year=first_year, growth_rate=0.3, as_of=as_of
    )
    assert fewer.counted == PROPOSALS - 1


def test_no_proposals_says_how_to_get_some(tmp_path: Path) -> None:
    h = make_harness(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(NoProposals) as caught:
            demand_from_programme(h.platform.ctx, first_year=2027, growth_rate=0.3)
    finally:
        h.platform.stop()
    message = caught.value.message
    assert "no proposal submitted between 2025-01-01 and 2026-01-01" in message
    assert "aif programme seed-history" in message and "--demand-from file" in message


def _plan_file(**changes: object) -> dict[str, object]:
    """A small plan: 10 accelerators in DE today, up to 1,000 more in modules of 100."""
    body: dict[str, object] = {
        "name": "small",
        "years": [2027, 2028],
        "budget_eur": 1e8,
        "growth_rate": 0.3,
        "priorities": {"critical_domain": 1.5, "industrial": 1.5, "other": 1.0},
        "pue": 1.2,
        "accelerator_models": {
            "H": {
                "speed": 2,
                "capital_eur": 30_000,
                "kw": 1,
                "life_years": 5,
                "operating_share": 0.05,
            }
        },
        "countries": {"DE": {"electricity_eur_per_mwh": 100, "carbon_g_per_kwh": 300}},
        "existing": {
            "sites": [{"site": "s", "country": "DE", "gpu_model": "H", "accelerators": 10}]
        },
        "demand": [{"country": "DE", "priority": "other", "gpu_hours_per_year": 1e6}],
        "candidates": [
            {
                "id": "c1",
                "country": "DE",
                "gpu_model": "H",
                "accelerators": 1000,
                "module": 100,
                "from_year": 2027,
            }
        ],
    }
    return body | changes


def test_api_plans_on_the_programme_demand(seeded: tuple[Harness, SeededHistory]) -> None:
    h, history = seeded
    as_of = to_datetime(history.end).isoformat()
    body = _plan_file(demand_from="programme", as_of=as_of)
    del body["demand"]  # not needed with the demand from the programme
    answer = h.client("oscar").post("/fund/invest", json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    demand = plan["demand"]
    assert demand["source"] == "programme" and demand["counted"] == PROPOSALS
    assert demand["rule"].startswith(f"demand: {PROPOSALS} proposals submitted")
    # the plan's first year asks what the rule derived, grown once more in its second year
    asked = sum(s["demand_gpu_hours"] for s in plan["served"] if s["year"] == 2027)
    assert asked == pytest.approx(demand["gpu_hours_per_year"])
    assert sum(s["demand_gpu_hours"] for s in plan["served"] if s["year"] == 2028) == (
        pytest.approx(asked * 1.3)
    )
    # --growth's twin: the body's growth replaces the file's, for the rule and the plan
    flat = h.client("oscar").post("/fund/invest", json=body | {"growth": 0.0}).json()
    assert flat["demand"]["growth_factor"] == 1.0
    assert {s["year"]: s["demand_gpu_hours"] for s in flat["served"] if s["priority"] == "other"}[
        2028
    ] == pytest.approx(
        {s["year"]: s["demand_gpu_hours"] for s in flat["served"] if s["priority"] == "other"}[2027]
    )
    # the file's demand, as before, says so
    file_plan = h.client("oscar").post("/fund/invest", json=_plan_file()).json()
    assert file_plan["demand"]["source"] == "file"
    assert file_plan["demand"]["rule"].startswith("demand: the plan file's 1 rows")

    assert h.client("alice").post("/fund/invest", json=body).status_code == 403
    before = h.client("oscar").post("/fund/invest", json=body | {"as_of": "2020-01-01"})
    assert before.status_code == 409, before.text
    assert "aif programme seed-history" in before.json()["message"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"demand_from": "moon"}, "demand_from"),
        ({"demand_from": "programme", "as_of": "1900-01-01"}, "as_of"),
        ({"demand_from": "programme", "as_of": "tomorrow"}, "as_of"),
        ({"demand_from": "twin", "growth": 3}, "growth"),
        # 73 years of -50% a year: a demand of 9e21 fold, past what a plan holds
        ({"demand_from": "twin", "as_of": "2100-06-01", "growth": -0.5}, "as_of"),
        ({"demand_from": "programme", "window_days": 0}, "window_days"),
        ({"demand_from": "programme", "window_days": "all"}, "window_days"),
        ({"demand_from": "twin", "seed": -1}, "seed"),
        ({"demand": []}, "demand"),
        (
            {"demand_from": "programme", "priorities": {"critical_domain": 1.0}},
            "priorities",
        ),
    ],
)
def test_api_hostile_demand_options_are_refused_naming_the_field(
    h: Harness, changes: dict[str, object], field: str
) -> None:
    answer = h.client("oscar").post("/fund/invest", json=_plan_file(**changes))
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["message"]


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def test_cli_plans_on_the_programme_demand(
    seeded: tuple[Harness, SeededHistory], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, history = seeded
    plan = tmp_path / "small.yaml"
    plan.write_text(json.dumps(_plan_file()), encoding="utf-8")
    monkeypatch.setenv("AIFACTORIES_DATABASE_URL", harness.platform.ctx.settings.database_url)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")
    for name in ("AIFACTORIES_CATALOGUE", "AIFACTORIES_COST_MODEL"):
        monkeypatch.delenv(name, raising=False)
    day = f"{to_datetime(history.end):%Y-%m-%d}"
    runner = CliRunner()
    result = runner.invoke(app, ["invest", str(plan), "--demand-from", "programme", "--as-of", day])
    assert result.exit_code == 0, result.output
    assert f"demand: {PROPOSALS} proposals submitted" in result.output
    assert "grown 30%/year" in result.output and "Objective:" in result.output
    grown = runner.invoke(
        app,
        ["invest", str(plan), "--demand-from", "programme", "--as-of", day, "--growth", "0.5"],
    )
    assert grown.exit_code == 0, grown.output
    assert "grown 50%/year" in grown.output
    early = runner.invoke(
        app, ["invest", str(plan), "--demand-from", "programme", "--as-of", "2020-01-01"]
    )
    assert early.exit_code == 2
    assert "no proposal submitted between 2019-01-01 and 2020-01-01" in early.output
    assert "aif programme seed-history" in early.output
    hostile = runner.invoke(
        app, ["invest", str(plan), "--demand-from", "programme", "--growth", "9"]
    )
    assert hostile.exit_code == 2 and "--growth: " in hostile.output
    assert "--growth: --growth" not in hostile.output
    wrong = runner.invoke(app, ["invest", str(plan), "--demand-from", "moon"])
    assert wrong.exit_code == 2 and "moon" in wrong.output


def test_the_twin_workload_by_country_and_class(tmp_path: Path) -> None:
    h = make_harness(tmp_path, f"sqlite:///{tmp_path / 'twin.db'}")
    try:
        catalogue = h.platform.ctx.catalogue
        scenario = parse_scenario(_plan_file())
        options = DemandOptions(demand_from=DemandSource.TWIN, growth=0.0)
        derived = derive_demand(scenario, options, catalogue, clock=ManualClock())
        again = derive_demand(scenario, options, catalogue, clock=ManualClock())
    finally:
        h.platform.stop()
    assert derived is not None and again is not None and derived.rows == again.rows  # seeded
    gpus = sum(p.total_gpus for p in catalogue.operational_partitions)
    # the year offers 0.85 x the federation's GPUs x a year, within the draws' noise
    assert derived.gpu_hours_per_year == pytest.approx(0.85 * gpus * 8766, rel=0.1)
    countries = {s.country for s in catalogue.operational_sites}
    assert {d.country for d in derived.rows} <= countries
    assert {d.priority for d in derived.rows} == {"critical_domain", "industrial", "other"}
    assert derived.growth_factor == 1.0 and derived.source is DemandSource.TWIN
    assert "the twin's workload federation-year(days=365, load=0.85" in derived.text


def test_cli_programme_demand_on_no_database_creates_none_and_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "small.yaml"
    plan.write_text(json.dumps(_plan_file()), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.delenv("AIFACTORIES_DATABASE_URL", raising=False)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["invest", str(plan), "--demand-from", "programme"])
    assert result.exit_code == 2, result.output
    assert f"there is no database in {data}" in result.output
    for step in ("aif db upgrade", "aif demo load", "aif programme seed-history"):
        assert step in result.output
    assert list(data.iterdir()) == []  # no empty aifactories.db, no .writelock
