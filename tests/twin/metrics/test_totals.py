"""GPU-hours, energy and carbon delivered, in total and per site."""

from __future__ import annotations

import pytest

from aifactories.twin.metrics import totals, totals_by_site

from .builders import job

JOBS = [
    job("a", 0, 0, 100, site="lumi", gpu_seconds=7200.0, energy_kwh=1.5, carbon_kg=0.3),
    job("b", 0, 0, 100, site="leonardo", gpu_seconds=3600.0, energy_kwh=2.0, carbon_kg=0.5),
    job("c", 0, 0, 100, site="lumi", gpu_seconds=1800.0, energy_kwh=0.5, carbon_kg=0.1, restarts=2),
    job("d", 0, None, None, site=None),
]


def test_totals_sum_every_job() -> None:
    t = totals(JOBS)
    assert t.jobs == 4
    assert t.gpu_hours == pytest.approx(3.5)  # (7200 + 3600 + 1800) / 3600
    assert t.energy_kwh == pytest.approx(4.0)
    assert t.carbon_kg == pytest.approx(0.9)
    assert t.restarts == 2


def test_totals_by_site_leave_out_jobs_that_never_ran() -> None:
    by_site = totals_by_site(JOBS)
    assert list(by_site) == ["leonardo", "lumi"]
    assert by_site["lumi"].gpu_hours == pytest.approx(2.5)
    assert by_site["lumi"].energy_kwh == pytest.approx(2.0)
    assert by_site["leonardo"].carbon_kg == pytest.approx(0.5)


def test_totals_of_nothing_are_zero() -> None:
    t = totals([])
    assert (t.jobs, t.gpu_hours, t.energy_kwh, t.carbon_kg, t.restarts) == (0, 0.0, 0.0, 0.0, 0)
    assert totals_by_site([]) == {}
