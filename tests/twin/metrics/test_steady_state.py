"""The steady-state window: MSER-5 over the GPUs in demand, the drain cut at the last arrival,
and the warnings of a run that never settles or hardly loads its busiest site."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aifactories.services.twin.simulate import prepare, simulate
from aifactories.twin.metrics import PolicyRun, compare
from aifactories.twin.metrics.steady_state import (
    common_window,
    mser,
    occupancy,
    steady_rows,
    truncation,
    warnings,
)
from aifactories.twin.scenario import Scenario, ScenarioSpec
from tests.twin.inline_sites import one_site

from .builders import job

# One 128-GPU site: the generator's mixture needs a long arrival window to fill it, as the
# catalogue does, but with a few hundred jobs instead of hundreds of thousands.
SITE: dict[str, Any] = one_site(gpus_per_node=8, nodes=16)


def _runs(load: float, hours: float, policies: list[str]) -> list[PolicyRun]:
    spec = ScenarioSpec.model_validate(
        {
            "sites": SITE,
            "policies": policies,
            "seed": 1,
            "workload": {"generator": {"hours": hours, "load": load}},
        }
    )

    def no_catalogue() -> Any:
        raise AssertionError("the scenario names its sites")

    runs, _rows = simulate(prepare(Scenario(spec, "test"), no_catalogue))
    return runs


def test_mser_drops_the_rise_and_keeps_the_plateau() -> None:
    rise = [i / 100 for i in range(100)]
    series = rise + [1.0] * 400
    drop, steady = mser(series)
    assert steady and 80 <= drop <= 105


def test_mser_calls_a_ramp_unsettled_and_a_flat_line_settled() -> None:
    assert mser([float(i) for i in range(500)])[1] is False  # the queue keeps growing
    assert mser([0.5] * 500) == (0, True)
    assert mser([1.0, 2.0]) == (0, False)  # too short to tell


def test_occupancy_counts_held_and_awaited_gpus_per_span() -> None:
    # Two GPUs of a 4-GPU site: job a holds 2 GPUs over [0, 100); job b waits from 50 and
    # runs to 150 with 2 GPUs; job c never starts, so it is in demand from 120 to the end.
    run = PolicyRun(
        policy="fifo",
        results=(
            job("a", 0, 0, 100, gpus=2),
            job("b", 50, 100, 150, gpus=2),
            job("c", 120, None, None, gpus=4),
        ),
        cycle_runtimes_s=(),
        utilisation_samples=((0.0, "lumi", 0, 4),),
        queue_samples=(),
        horizon_start_s=0.0,
        horizon_end_s=200.0,
    )
    spans = occupancy(run, 0.0, 200.0, 4)
    # [0,50): 2 GPUs; [50,100): 4; [100,150): 2 + 4 for the last 30 s; [150,200): 4.
    assert spans == pytest.approx([0.5, 1.0, (2 * 50 + 4 * 30) / 200, 1.0])


def test_a_served_load_settles_and_is_measured_after_the_warm_up() -> None:
    runs = _runs(load=0.7, hours=600, policies=["first_fit", "easy_backfill"])
    window = common_window(runs)
    assert window is not None and all(window.settled.values())
    cut = truncation(runs[0])
    assert cut is not None and cut.arrivals_start_s < window.start_s < window.end_s
    assert window.end_s == pytest.approx(max(j.submit_s for j in runs[0].results))
    rows = steady_rows(runs)
    assert [r["scope"] for r in rows] == ["steady state"] * 2
    assert len({r["jobs"] for r in rows}) == 1  # both policies measured on the same jobs
    assert 0 < int(rows[0]["jobs"]) < len(runs[0].results)
    # The window leaves out the empty start and the drain, where the GPUs idle.
    whole = compare(runs)
    assert all(
        float(s["utilisation"]) > float(w["utilisation"]) for s, w in zip(rows, whole, strict=True)
    )
    assert not any("no steady state" in w for w in warnings(rows))


def test_an_overload_never_settles_and_says_so() -> None:
    runs = _runs(load=3.0, hours=200, policies=["fifo"])
    rows = steady_rows(runs)
    assert rows[0]["scope"] == "whole run" and rows[0]["steady"] == 0
    said = warnings(rows)
    assert any("no steady state" in w and "--load" in w for w in said)


def test_a_light_load_warns_that_the_bottleneck_is_idle() -> None:
    runs = _runs(load=0.1, hours=1000, policies=["fifo"])
    rows = steady_rows(runs)
    busy = rows[0]["bottleneck_utilisation"]
    assert isinstance(busy, float) and busy < 0.3 and rows[0]["bottleneck"] == "a"
    assert any("only" in w and "raise --load" in w for w in warnings(rows))


def test_too_few_jobs_have_no_window() -> None:
    run = PolicyRun(
        policy="fifo",
        results=(job("a", 0, 0, 10),),
        cycle_runtimes_s=(),
        utilisation_samples=((0.0, "lumi", 1, 1),),
        queue_samples=(),
        horizon_start_s=0.0,
        horizon_end_s=10.0,
    )
    assert truncation(run) is None and common_window([run]) is None
    assert steady_rows([run])[0]["scope"] == "whole run"
    assert math.isclose(float(steady_rows([run])[0]["window_end_h"]), 10 / 3600)
