"""An investment plan checked in the twin: the same demand on today's federation and on it
with the plan's new capacity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aifactories.catalogue.loader import load_default_catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.twin.federation import DEFAULT_SPEED
from aifactories.twin.plan_check import MAX_JOBS, PlanCheck, check_plan, size_factor_for
from aifactories.twin.plan_report import Investment, write_plan_report

TODAY = tuple(s for s in load_default_catalogue().sites if s.operational)
GIGAFACTORY = parse_catalogue(
    {
        "sites": [
            {
                "id": "gf-de",
                "name": "Gigafactory DE (hypothetical)",
                "country": "DE",
                "supercomputer": "gigafactory",
                "status": "operational",
                "partitions": [
                    {
                        "name": "gpu",
                        "gpu_model": "B200",
                        "gpu_memory_gb": 180,
                        "gpus_per_node": 8,
                        "nodes": 2_500,
                        "billing_weight": 4.0,
                    }
                ],
            }
        ]
    },
    "test",
).sites
# Today's GPUs could do this many A100-hours of work in a year, every GPU busy.
CAPACITY = (
    sum(p.total_gpus * DEFAULT_SPEED.get(p.gpu_model, 1.0) for s in TODAY for p in s.partitions)
    * 8766
)


@pytest.fixture(scope="module")
def checked() -> PlanCheck:
    return check_plan(
        TODAY,
        GIGAFACTORY,
        demand_a100_hours_per_year=1.4 * CAPACITY,
        days=4,
        speed={"B200": 4.0},
        gpu_power_kw={"B200": 1.0},
    )


def test_the_same_jobs_meet_both_federations(checked: PlanCheck) -> None:
    before, after = checked.before, checked.after
    assert before.jobs == after.jobs == checked.jobs > 500
    assert after.gpus == before.gpus + 20_000
    assert after.gpus_by_model["B200"] == 20_000 and "B200" not in before.gpus_by_model
    # demand 40% above what today's GPUs can do: the queue builds today, not with the plan
    assert before.mean_wait_h > 5 * after.mean_wait_h
    assert before.utilisation > after.utilisation
    assert after.work_a100_hours >= before.work_a100_hours
    for year in (before, after):
        for shares in (year.share_by_kind, year.share_by_domain, year.share_by_country):
            assert math.isclose(sum(shares.values()), 1.0)
        assert 0 < year.utilisation <= 1
        assert year.energy_mwh > 0 and year.carbon_t > 0


def test_deterministic(checked: PlanCheck) -> None:
    again = check_plan(
        TODAY,
        GIGAFACTORY,
        demand_a100_hours_per_year=1.4 * CAPACITY,
        days=4,
        speed={"B200": 4.0},
        gpu_power_kw={"B200": 1.0},
    )
    assert again == checked


def test_job_sizes_grow_instead_of_job_counts() -> None:
    assert size_factor_for(MAX_JOBS) == 1
    assert size_factor_for(MAX_JOBS + 1) == 2
    assert size_factor_for(10 * MAX_JOBS) == 10


def test_bad_demand_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_plan(TODAY, GIGAFACTORY, demand_a100_hours_per_year=0.0, days=1)
    assert caught.value.field == "demand" and "A100-hours" in (caught.value.limit or "")
    with pytest.raises(InvalidInput):
        check_plan((), GIGAFACTORY, demand_a100_hours_per_year=1e6, days=1)


def test_the_report_shows_euros_accelerators_work_and_waits(
    checked: PlanCheck, tmp_path: Path
) -> None:
    path = write_plan_report(
        tmp_path,
        "plan check",
        checked,
        [Investment("Gigafactory DE", 2.4e9, 20_000, "B200")],
        notes="a test",
    )
    text = path.read_text(encoding="utf-8")
    assert path.name == "plan.html"
    assert "EUR 2,400 m" in text and "20,000" in text and "a test" in text
    for figure in ("Euros invested", "Accelerators by model", "Work done", "Mean wait"):
        assert figure in text
    assert f"{checked.before.mean_wait_h:,.2f}" in text
    assert path.stat().st_size < 2_000_000  # one basic plotly.js bundle
