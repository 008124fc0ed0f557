"""Plan files for ``aif invest``: validation that names the field, figures from the file or the
cost model, today's capacity from the catalogue, and the packaged InvestAI case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import load_cost_model
from aifactories.fund.invest_scenario import build_problem, load_scenario, parse_scenario
from aifactories.fund.investment import optimise_investments
from aifactories.fund.investment_model import HOURS_PER_YEAR
from aifactories.programme.award_model import ProgrammeWeights


def small(**changes: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "name": "small",
        "years": [2027, 2028],
        "budget_eur": 1e9,
        "priorities": {"critical_domain": 1.5, "other": 1.0},
        "accelerator_models": {
            "B200": {
                "speed": 4.0,
                "capital_eur": 40_000,
                "kw": 1.5,
                "life_years": 5,
                "operating_share": 0.05,
            },
        },
        "countries": {"DE": {"electricity_eur_per_mwh": 200.0, "carbon_g_per_kwh": 400.0}},
        "pue": 1.2,
        "utilisation": 0.5,
        "demand": [{"country": "DE", "priority": "other", "gpu_hours_per_year": 1e8}],
        "candidates": [
            {
                "id": "gf",
                "country": "DE",
                "gpu_model": "B200",
                "accelerators": 10_000,
                "module": 2_500,
                "from_year": 2027,
            },
        ],
    }
    plan.update(changes)
    return plan


def test_figures_per_module_from_the_file() -> None:
    problem = build_problem(parse_scenario(small()))
    (c,) = problem.candidates
    assert (c.accelerators_per_module, c.max_modules) == (2_500, 4)
    assert c.capital_eur == pytest.approx(2_500 * 40_000)
    assert c.kw == pytest.approx(2_500 * 1.5 * 1.2)
    mwh = 2_500 * 1.5 * 1.2 * HOURS_PER_YEAR * 0.5 / 1000
    assert c.mwh_per_year == pytest.approx(mwh)
    assert c.energy_eur_per_year == pytest.approx(mwh * 200)
    assert c.carbon_t_per_year == pytest.approx(mwh * 400 / 1000)
    assert c.operating_eur_per_year == pytest.approx(0.05 * 2_500 * 40_000)
    assert c.gpu_hours_per_year == pytest.approx(2_500 * HOURS_PER_YEAR * 0.5 * 4.0)
    assert (c.from_year, c.until_year) == (2027, 2031)  # five years of life


def test_figures_not_in_the_file_come_from_the_cost_model() -> None:
    bare = small(accelerator_models={"B200": {"speed": 4.0}}, countries={}, pue=None)
    with pytest.raises(InvalidInput, match=r"accelerator_models\.B200\.capital_eur: not given"):
        build_problem(parse_scenario(bare))
    costs = load_cost_model()
    (c,) = build_problem(parse_scenario(bare), costs=costs).candidates
    model = costs.accelerator("B200")
    assert c.capital_eur == pytest.approx(2_500 * model.capital_eur.value)
    assert c.kw == pytest.approx(2_500 * model.kw.value * costs.default_pue.value)
    assert c.energy_eur_per_year == pytest.approx(c.mwh_per_year * costs.electricity("DE").value)


def test_a_candidates_total_capital_is_shared_by_its_modules() -> None:
    plan = small()
    plan["candidates"][0]["capital_eur"] = 800e6
    (c,) = build_problem(parse_scenario(plan)).candidates
    assert c.capital_eur == pytest.approx(200e6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget_eur": -1}, "budget_eur: Input should be greater than or equal to 0"),
        ({"years": []}, "years: List should have at least 1 item"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        (
            {"candidates": [{"id": "gf", "country": "DE", "gpu_model": "B200",
                             "accelerators": 10_000, "module": 3_000, "from_year": 2027}]},
            r"candidates\[0\] \(gf\): Value error, accelerators \(10000\) must be a whole number",
        ),
        (
            {"candidates": [{"id": "up", "kind": "upgrade", "country": "DE", "gpu_model": "B200",
                             "accelerators": 100, "module": 50, "from_year": 2027}]},
            r"candidates\[0\] \(up\): Value error, an upgrade is all or nothing",
        ),
        (
            {"demand": [{"country": "Germany", "priority": "other", "gpu_hours_per_year": 1}]},
            r"demand\[0\]\.country: String should match pattern",
        ),
        (
            {"demand": [{"country": "DE", "priority": "other", "gpu_hours_per_year": 1,
                         "residency": "city"}]},
            r"demand\[0\]\.residency: Input should be 'any', 'eu' or 'country'",
        ),
    ],
)  # fmt: skip
def test_validation_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_scenario(small(**change), "plan.yaml")


def test_semantic_errors_name_the_field() -> None:
    unknown = small(demand=[{"country": "DE", "priority": "vip", "gpu_hours_per_year": 1}])
    with pytest.raises(InvalidInput, match=r"demand\[0\]\.priority: unknown class 'vip'"):
        build_problem(parse_scenario(unknown))
    no_speed = small(accelerator_models={})
    with pytest.raises(InvalidInput, match=r"B200\.speed: the file must state .*\(gf\)"):
        build_problem(parse_scenario(no_speed), costs=load_cost_model())


def test_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InvalidInput, match="a plan file is a mapping"):
        load_scenario(bad)
    with pytest.raises(InvalidInput, match="cannot read it"):
        load_scenario(tmp_path / "missing.yaml")


def test_the_investai_case() -> None:
    scenario = load_scenario()
    weights = ProgrammeWeights()
    # the programme's own priorities, as the file says
    assert scenario.priorities == {
        "critical_domain": 1 + weights.critical_domain,
        "industrial": 1 + weights.industrial,
        "other": 1.0,
    }
    catalogue = load_default_catalogue()
    problem = build_problem(scenario, costs=load_cost_model(catalogue), catalogue=catalogue)
    assert problem.budget_eur == 20e9
    assert {e.site for e in problem.existing} == {
        str(p.id) for p in catalogue.operational_partitions
    }
    plan = optimise_investments(problem)
    assert plan.status == "optimal"
    gigafactories = [o for o in plan.outcomes if o.taken and o.candidate.kind == "new_site"]
    assert 4 <= len(gigafactories) <= 5
    assert all(o.accelerators == 100_000 for o in gigafactories)
    assert plan.capital_eur <= 20e9
    assert len({o.candidate.country for o in gigafactories}) >= 4
    assert plan.objective > 5 * plan.baseline_objective
    assert all(o.reason for o in plan.outcomes)
    assert "budget" in {c.name for c in plan.binding}
    assert {a.candidate_id for a in plan.added} == {
        o.candidate.id for o in plan.outcomes if o.taken
    }
