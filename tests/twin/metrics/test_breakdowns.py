"""Wait, JCT and slowdown grouped by organisation kind, domain and country."""

from __future__ import annotations

import math

import pytest

from aifactories.twin.metrics import by_country, by_domain, by_organisation_kind, group_stats

from .builders import job

JOBS = [
    job("a", 0, 0, 100, kind="sme", domain="health", country="DE"),  # wait 0, jct 100
    job("b", 0, 20, 50, kind="sme", domain="energy", country="FI"),  # wait 20, jct 50
    job("c", 0, 60, 80, kind="academia", domain="health", country="DE"),  # wait 60, jct 80
    job("d", 10, None, None, kind="startup", domain="climate", country="IT"),  # never ran
]


def test_by_organisation_kind() -> None:
    groups = by_organisation_kind(JOBS)
    assert list(groups) == ["academia", "sme", "startup"]
    sme = groups["sme"]
    assert (sme.jobs, sme.completed) == (2, 2)
    assert sme.wait.mean == pytest.approx(10.0)
    assert sme.jct.mean == pytest.approx(75.0)
    assert sme.jct.median == pytest.approx(75.0)
    assert sme.slowdown.max == pytest.approx(50 / 30)
    assert groups["academia"].wait.mean == 60.0
    assert groups["academia"].slowdown.mean == pytest.approx(4.0)  # 80 / 20


def test_a_group_whose_jobs_never_completed_has_nan_statistics() -> None:
    startup = by_organisation_kind(JOBS)["startup"]
    assert (startup.jobs, startup.completed) == (1, 0)
    assert startup.wait.count == 0
    assert math.isnan(startup.jct.mean)


def test_by_domain_and_country() -> None:
    domains = by_domain(JOBS)
    assert list(domains) == ["climate", "energy", "health"]
    assert domains["health"].jct.mean == pytest.approx(90.0)  # (100 + 80) / 2
    countries = by_country(JOBS)
    assert {c: g.jobs for c, g in countries.items()} == {"DE": 2, "FI": 1, "IT": 1}
    assert countries["DE"].wait.median == pytest.approx(30.0)


def test_window_and_custom_key() -> None:
    groups = group_stats(JOBS, lambda r: r.site_id or "none", window=(3, 4))  # only d
    assert list(groups) == ["lumi"]
    assert groups["lumi"].completed == 0


def test_no_jobs_gives_no_groups() -> None:
    assert by_domain([]) == {}
