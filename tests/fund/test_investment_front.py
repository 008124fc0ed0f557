"""``aif invest`` on the packaged InvestAI case, and ``POST /fund/invest`` for programme
operators only, on the API's test platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aifactories.cli.main import app
from tests.api.harness import Harness, make_harness


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("AIFACTORIES_CATALOGUE", "AIFACTORIES_COST_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "240")
    return CliRunner()


def test_cli_prints_the_investai_plan(runner: CliRunner) -> None:
    result = runner.invoke(app, ["invest"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "InvestAI gigafactories: where the next euro goes" in out
    for word in ("gf-de", "it4lia-upgrade", "taken", "left: budget exhausted", "Objective:"):
        assert word in out
    assert "Binding constraints:" in out and "  budget: capital EUR" in out
    assert "today's capacity alone" in out


def test_cli_json_and_a_smaller_budget(runner: CliRunner) -> None:
    result = runner.invoke(app, ["invest", "--json", "--budget", "25e9"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["scenario"] == "InvestAI gigafactories"
    assert plan["budget_eur"] == 25e9 and 20e9 < plan["capital_eur"] <= 25e9
    taken = [c for c in plan["candidates"] if c["taken"]]
    assert {a["candidate_id"] for a in plan["added_partitions"]} == {c["id"] for c in taken}
    assert all(c["why"] for c in plan["candidates"])
    # EUR 5 bn buys one gigafactory: the file's "at least four countries" cannot hold
    small = runner.invoke(app, ["invest", "--budget", "5e9"])
    assert small.exit_code == 2
    assert "min_countries: no plan builds in 4 countries" in small.output


def test_cli_lowest_mean_wait(runner: CliRunner) -> None:
    result = runner.invoke(app, ["invest", "--objective", "mean_wait"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Minimise the mean wait per GPU-hour asked" in out and "not weighted by priority" in out
    assert "h per GPU-hour asked (queueing" in out and "the model's estimate" in out
    assert "per hour of mean wait saved" in out and "HiGHS' dual bound" in out
    plan = json.loads(runner.invoke(app, ["invest", "--objective", "mean_wait", "--json"]).output)
    assert plan["objective_kind"] == "mean_wait" and "mean wait" in plan["objective_unit"]
    assert plan["objective"] == pytest.approx(plan["wait"]["mean_wait_h"])
    assert plan["objective"] < plan["baseline_objective"] == plan["baseline_wait"]["mean_wait_h"]
    assert plan["dual_bound"] <= plan["objective"]
    wrong = runner.invoke(app, ["invest", "--objective", "shortest"])
    assert wrong.exit_code == 2 and "objective" in wrong.output


def test_cli_says_what_is_wrong_in_a_plan_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "years": [2027], "budget_eur": "lots"}))
    result = runner.invoke(app, ["invest", str(path)])
    assert result.exit_code == 2
    assert "budget_eur: " in result.output and "Input should be a valid number" in result.output
    assert "priorities: Field required" in result.output


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def test_api_plans_for_programme_operators_only(h: Harness) -> None:
    body = yaml.safe_load(
        Path("src/aifactories/fund/data/investai.yaml").read_text(encoding="utf-8")
    )
    answer = h.client("oscar").post("/fund/invest", json=body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["status"] == "optimal" and plan["capital_eur"] <= 20e9
    assert any(c["taken"] for c in plan["candidates"])
    assert h.client("alice").post("/fund/invest", json=body).status_code == 403
    assert h.client(None).post("/fund/invest", json=body).status_code == 401
    body["caps"]["country_max_share"] = 2
    refused = h.client("oscar").post("/fund/invest", json=body)
    assert refused.status_code == 422
    assert "country_max_share" in refused.text


def test_api_lowest_mean_wait_and_a_wrong_objective(h: Harness) -> None:
    answer = h.client("oscar").post("/fund/invest", json=_plan_file(objective="mean_wait"))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["objective_kind"] == "mean_wait" and plan["wait"]["mean_wait_h"] > 0
    assert plan["objective"] <= plan["baseline_objective"]
    wrong = h.client("oscar").post("/fund/invest", json=_plan_file(objective="shortest"))
    assert wrong.status_code == 422, wrong.text
    assert "objective" in wrong.json()["message"]
    long_jobs = _plan_file(objective="mean_wait", mean_job_hours=0)
    assert h.client("oscar").post("/fund/invest", json=long_jobs).status_code == 422


def _plan_file(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "degenerate",
        "years": [2027, 2028],
        "budget_eur": 1e9,
        "priorities": {"science": 1.0},
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
        "demand": [{"country": "DE", "priority": "science", "gpu_hours_per_year": 1e6}],
        "candidates": [
            {"id": "c1", "country": "DE", "gpu_model": "H", "accelerators": 100, "from_year": 2027}
        ],
    }
    body.update(changes)
    return body


ZERO_DEMAND = [{"country": "DE", "priority": "science", "gpu_hours_per_year": 0}]


@pytest.mark.parametrize(
    "changes",
    [
        {"candidates": []},  # nothing to choose
        {"candidates": [], "demand": ZERO_DEMAND},  # and nothing asked: an empty model
        {"candidates": [], "demand": ZERO_DEMAND, "existing": {}},  # schemathesis' 500
        {"demand": ZERO_DEMAND},  # nothing asked
        {
            "candidates": [
                {
                    "id": "c1",
                    "country": "DE",
                    "gpu_model": "H",
                    "accelerators": 100,
                    "from_year": 2040,
                }
            ]
        },  # serves no year of the horizon
        {"budget_eur": 0, "budget_by_year_eur": [0, 0]},
        {"priorities": {"science": 0}},
    ],
    ids=[
        "no-candidates",
        "no-candidates-no-demand",
        "empty",
        "no-demand",
        "too-late",
        "no-money",
        "no-weight",
    ],
)
def test_api_a_plan_with_nothing_to_choose_is_today_capacity(
    h: Harness, changes: dict[str, object]
) -> None:
    """Degenerate plan files answer a valid plan that builds nothing: its objective is what
    today's capacity serves (the baseline), not a solver error; with either objective (but
    demand of weight 0 still waits: the mean wait is not weighted by priority)."""
    waits = h.client("oscar").post(
        "/fund/invest", json=_plan_file(**changes, objective="mean_wait")
    )
    assert waits.status_code == 200, waits.text
    if "priorities" not in changes:
        assert waits.json()["objective"] == pytest.approx(waits.json()["baseline_objective"])
    answer = h.client("oscar").post("/fund/invest", json=_plan_file(**changes))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["status"] == "optimal" and plan["added_partitions"] == []
    assert not any(c["taken"] for c in plan["candidates"])
    assert plan["objective"] == pytest.approx(plan["baseline_objective"])
    served_today = 10 * 8766 * 0.7 * 2 * 2  # 10 accelerators at speed 2, two years
    asked = sum(
        d["gpu_hours_per_year"] for d in changes.get("demand", [{"gpu_hours_per_year": 1e6}])
    )  # type: ignore[index]
    weight = 0 if changes.get("priorities") else 1
    today = 0 if "existing" in changes else served_today
    assert plan["objective"] == pytest.approx(weight * min(2 * asked, today))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"candidates": [], "caps": {"min_countries": 2}}, "min_countries"),
        ({"growth_rate": 5}, "growth_rate"),
        ({"budget_eur": 1e300}, "budget_eur"),
        ({"accelerator_models": {"H": {"speed": 1e6}}}, "speed"),
    ],
)
def test_api_an_impossible_or_absurd_plan_file_is_refused_naming_the_field(
    h: Harness, changes: dict[str, object], field: str
) -> None:
    answer = h.client("oscar").post("/fund/invest", json=_plan_file(**changes))
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["message"]
