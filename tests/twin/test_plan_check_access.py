"""Time to access per access mode in the plan check: each job's mode by a stated rule, and its
mode's decision time plus its wait (twin/plan_access.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.metrics.results import JobResult
from aifactories.twin.plan_access import (
    CALENDAR_DAYS_PER_WORKING_DAY,
    TWIN_MODES,
    DecisionTime,
    check_decision_times,
    job_modes,
    published_decision_times,
    time_to_access,
)
from aifactories.twin.plan_check import PlanCheck, check_plan, demand_trace
from aifactories.twin.plan_report import Investment, write_plan_report
from aifactories.twin.traces.model import Trace, TraceJob
from tests.twin.test_plan_check import CAPACITY, GIGAFACTORY, TODAY

H = 3600.0


def _job(job_id: str, gpus: int, hours: float, group: str, at: float = 0.0) -> TraceJob:
    return TraceJob(job_id=job_id, submit_s=at, runtime_s=hours * H, gpus=gpus, group=group)


def _result(job_id: str, submit_h: float, start_h: float | None) -> JobResult:
    return JobResult(
        job_id=job_id,
        project="p",
        organisation_kind="sme",
        domain="health",
        country="DE",
        site_id=None,
        partition_id=None,
        gpu_model=None,
        gpus=1,
        submit_s=submit_h * H,
        start_s=None if start_h is None else start_h * H,
        end_s=None,
        runtime_s=0.0,
        requested_runtime_s=0.0,
        gpu_seconds=0.0,
        energy_kwh=0.0,
        carbon_kg=0.0,
    )


def test_a_jobs_mode_is_the_smallest_whose_grant_holds_it() -> None:
    trace = Trace(
        name="hand",
        source=None,
        jobs=(
            _job("small", 8, 250.0, "startup-1", 0.0),  # 2,000 GPU-h: Playground's largest grant
            _job("medium", 64, 100.0, "startup-1", 1.0),  # 6,400: Fast Lane
            _job("large", 512, 100.0, "industry-1", 2.0),  # 51,200: Large Scale
            _job("huge", 4096, 100.0, "startup-1", 3.0),  # 409,600: Large Scale
        ),
    )
    kinds = {"startup-1": "startup", "industry-1": "industry"}
    assert job_modes(trace, kinds, seed=0) == {
        "small": "playground",
        "medium": "fast_lane",
        "large": "large_scale",
        "huge": "large_scale",
    }
    # a job made four times larger for scale stands for four of the mixture's jobs
    scaled = job_modes(trace, kinds, seed=0, size_factor=4)
    assert (scaled["large"], scaled["huge"]) == ("fast_lane", "large_scale")


def test_half_the_research_above_playground_is_ai_for_science_deterministically() -> None:
    jobs = tuple(_job(f"j{i:03d}", 64, 100.0, "academia-1", float(i)) for i in range(200))
    trace = Trace(name="research", source=None, jobs=jobs)
    kinds = {"academia-1": "academia"}
    modes = job_modes(trace, kinds, seed=3)
    science = sum(1 for m in modes.values() if m == "ai_for_science")
    assert 70 < science < 130  # one half, by a hash: about 100 of 200
    assert set(modes.values()) == {"ai_for_science", "fast_lane"}
    assert job_modes(trace, kinds, seed=3) == modes  # the same seed, the same modes
    assert job_modes(trace, kinds, seed=4) != modes  # another seed, another pick
    # industry never goes to AI for Science; Playground-sized research stays in Playground
    assert set(job_modes(trace, {"academia-1": "industry"}, seed=3).values()) == {"fast_lane"}
    small = Trace(name="s", source=None, jobs=(_job("s", 1, 1.0, "academia-1"),))
    assert job_modes(small, kinds, seed=3) == {"s": "playground"}


def test_the_demands_modes_are_the_same_for_a_seed() -> None:
    trace, size = demand_trace(1e9, 50_000, 1.0, seed=5)
    kinds = {j.group or "": (j.group or "").split("-")[0] for j in trace.jobs}
    first = job_modes(trace, kinds, seed=5, size_factor=size)
    assert job_modes(trace, kinds, seed=5, size_factor=size) == first
    assert set(first.values()) == {m.value for m in TWIN_MODES}  # every mode has jobs


def test_time_to_access_is_the_decision_plus_the_wait_computed_by_hand() -> None:
    modes = {"a": "playground", "b": "playground", "c": "fast_lane", "d": "fast_lane"}
    results = [
        _result("a", 0.0, 1.0),  # waits 1 h
        _result("b", 5.0, 8.0),  # waits 3 h
        _result("c", 2.0, 2.0),  # waits 0 h
        _result("d", 2.0, None),  # never started: no access
    ]
    decisions = {m.value: DecisionTime(100.0, "test") for m in TWIN_MODES}
    decisions["playground"] = DecisionTime(48.0, "test")
    found = time_to_access(results, modes, decisions)
    playground = found["playground"]
    assert (playground.jobs, playground.no_access, playground.decision_h) == (2, 0, 48.0)
    assert playground.median_h == pytest.approx(48.0 + 2.0)  # waits 1 and 3: median 2
    assert playground.p90_h == pytest.approx(48.0 + 1.0 + 0.9 * 2.0)  # linear between ranks
    fast = found["fast_lane"]
    assert (fast.jobs, fast.no_access, fast.median_h, fast.p90_h) == (1, 1, 100.0, 100.0)
    nobody = found["large_scale"]
    assert nobody.jobs == 0 and math.isnan(nobody.median_h)


def test_the_published_targets_are_working_days_as_calendar_hours() -> None:
    times = published_decision_times()
    assert times["playground"].hours == pytest.approx(2 * CALENDAR_DAYS_PER_WORKING_DAY * 24)
    assert times["fast_lane"].hours == pytest.approx(4 * 7 / 5 * 24)
    assert times["large_scale"].hours == pytest.approx(10 * 7 / 5 * 24)
    for mode in ("playground", "fast_lane", "large_scale"):
        assert times[mode].basis.startswith("published target")
    assert times["ai_for_science"].basis.startswith("no published target")
    check_decision_times(times)
    with pytest.raises(InvalidInput) as caught:
        check_decision_times({k: v for k, v in times.items() if k != "fast_lane"})
    assert caught.value.field == "decision_times" and "fast_lane" in caught.value.message
    with pytest.raises(InvalidInput):
        check_decision_times({**times, "playground": DecisionTime(-1.0, "wrong")})


@pytest.fixture(scope="module")
def checked() -> PlanCheck:
    decisions = {
        m.value: DecisionTime(24.0 * (i + 1), f"measured {i}") for i, m in enumerate(TWIN_MODES)
    }
    return check_plan(
        TODAY,
        GIGAFACTORY,
        demand_a100_hours_per_year=1.4 * CAPACITY,
        days=2,
        speed={"B200": 4.0},
        gpu_power_kw={"B200": 1.0},
        decision_times=decisions,
    )


def test_the_check_adds_the_given_decision_times_and_shows_them(
    checked: PlanCheck, tmp_path: Path
) -> None:
    assert sum(checked.mode_jobs.values()) == checked.jobs
    for i, mode in enumerate(m.value for m in TWIN_MODES):
        for year in (checked.before, checked.after):
            access = year.time_to_access[mode]
            assert access.decision_h == 24.0 * (i + 1)
            if access.jobs:
                assert access.decision_h <= access.median_h <= access.p90_h
    # more capacity: no mode waits longer with the plan
    for mode, before in checked.before.time_to_access.items():
        if before.jobs:
            assert checked.after.time_to_access[mode].median_h <= before.median_h
    path = write_plan_report(
        tmp_path, "plan check", checked, [Investment("GF", 1e9, 20_000, "B200")]
    )
    text = path.read_text(encoding="utf-8")
    assert "Time to access per access mode" in text  # the plot's title and the table's
    assert text.count("Time to access per access mode") >= 2
    for title in ("Playground", "Fast Lane", "Large Scale", "AI for Science"):
        assert f"<td>{title}</td>" in text
    assert "measured 2" in text  # each mode's decision time says where it comes from
    large = checked.before.time_to_access["large_scale"]
    assert f"{large.median_h / 24:,.2f}" in text
