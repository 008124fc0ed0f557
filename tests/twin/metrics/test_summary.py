"""The headline summary of one run, its table row, and the comparison of runs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from aifactories.twin.metrics import PolicyRun, compare, summarise

from .builders import job

A = job("a", 0, 0, 100, project="p1", kind="sme", gpu_seconds=100.0, energy_kwh=1.0)
B = job("b", 10, 100, 130, project="p2", kind="academia", gpu_seconds=30.0, carbon_kg=2.0)
C = job("c", 20, None, None, project="p3", kind="startup", site=None)

RUN = PolicyRun(
    policy="fifo",
    results=(A, B, C),
    cycle_runtimes_s=(0.001, 0.003),
    utilisation_samples=((0.0, "lumi", 1, 2), (130.0, "lumi", 0, 2)),
    queue_samples=((10.0, 1), (20.0, 2), (100.0, 1)),
    horizon_start_s=0.0,
    horizon_end_s=200.0,
)


def test_summary_headline_figures() -> None:
    s = summarise(RUN)
    assert (s.jobs, s.completed, s.unfinished) == (3, 2, 1)
    assert s.wait.mean == pytest.approx(45.0)  # (0 + 90) / 2
    assert s.jct.mean == pytest.approx(110.0)  # (100 + 120) / 2
    assert s.slowdown.mean == pytest.approx(2.5)  # (1 + 120 / 30) / 2
    assert s.makespan_s == 130.0
    assert s.utilisation == pytest.approx(0.325)  # 1 GPU of 2 for 130 s of 200
    assert s.utilisation_by_site == {"lumi": pytest.approx(0.325)}
    assert s.mean_queue_length == pytest.approx(1.35)  # (1*10 + 2*80 + 1*100) / 200
    assert s.max_queue_length == 2
    assert s.totals.gpu_hours == pytest.approx(130 / 3600)
    assert s.totals.energy_kwh == 1.0
    assert s.totals.carbon_kg == 2.0
    assert list(s.totals_by_site) == ["lumi"]
    assert s.cycles.mean_ms == pytest.approx(2.0)
    assert s.cycles.p99_ms == pytest.approx(2.98)  # h = 0.99: 1 + 0.99 * 2
    assert list(s.by_organisation_kind) == ["academia", "sme", "startup"]


def test_summary_fairness() -> None:
    s = summarise(RUN)
    # Jobs in system: 1 on [0,10), 2 on [10,20), 3 on [20,100), 2 on [100,130), then C alone.
    # A: N = (10 + 20 + 240) / 100 = 2.7, rho = 100 / (100 * 2.7)
    # B: N = (20 + 240 + 60) / 120 = 8/3, rho = 120 / (30 * 8/3) = 1.5
    assert s.fairness.rho == pytest.approx({"a": 1 / 2.7, "b": 1.5})
    assert s.fairness.worst == pytest.approx(1.5)
    assert s.fairness.share_unfair == 0.5
    assert s.jain_slowdown == pytest.approx(25 / 34)  # p1 1, p2 4: 5^2 / (2 * 17)
    assert math.isnan(s.jain_share)
    shared = summarise(RUN, shares={"p1": 1.0, "p2": 1.0, "p3": 1.0})
    # GPU-seconds per share 100, 30, 0: 130^2 / (3 * 10900)
    assert shared.jain_share == pytest.approx(16900 / 32700)


def test_window_restricts_job_figures_but_not_run_figures() -> None:
    s = summarise(RUN, window=(1, 3))  # B and C
    assert (s.jobs, s.completed, s.unfinished) == (2, 1, 1)
    assert s.jct.mean == 120.0
    assert s.makespan_s == 130.0
    assert s.totals.gpu_hours == pytest.approx(130 / 3600)
    assert s.as_row()["window"] == "1..3"


def test_row_holds_scalars_and_one_column_per_site() -> None:
    row = summarise(RUN).as_row()
    assert row["policy"] == "fifo"
    assert row["window"] == "all"
    assert row["jct_mean"] == pytest.approx(110.0)
    assert row["wait_p99"] == pytest.approx(89.1)  # waits 0, 90; h = 0.99
    assert row["ftf_worst"] == pytest.approx(1.5)
    assert row["utilisation[lumi]"] == pytest.approx(0.325)
    assert row["cycle_max_ms"] == pytest.approx(3.0)
    assert all(isinstance(v, int | float | str) for v in row.values())


def test_compare_gives_every_row_the_same_columns() -> None:
    other = dataclasses.replace(RUN, policy="gavel", utilisation_samples=((0.0, "leonardo", 2, 2),))
    rows = compare([RUN, other])
    assert [r["policy"] for r in rows] == ["fifo", "gavel"]
    assert list(rows[0]) == list(rows[1])
    assert math.isnan(float(rows[0]["utilisation[leonardo]"]))
    assert math.isnan(float(rows[1]["utilisation[lumi]"]))
    assert rows[1]["utilisation[leonardo]"] == 1.0


def test_summary_does_not_depend_on_the_order_of_the_results() -> None:
    shuffled = dataclasses.replace(RUN, results=(C, A, B))
    assert repr(summarise(shuffled).as_row()) == repr(summarise(RUN).as_row())


def test_an_empty_run_summarises_to_nan_without_failing() -> None:
    empty = PolicyRun("idle", (), (), (), (), 0.0, 0.0)
    s = summarise(empty)
    assert (s.jobs, s.completed, s.unfinished) == (0, 0, 0)
    row = s.as_row()
    for column in ("jct_mean", "wait_p99", "slowdown_mean", "ftf_worst", "jain_slowdown"):
        assert math.isnan(float(row[column]))
    for column in ("makespan_s", "utilisation", "mean_queue_length", "cycle_p99_ms"):
        assert math.isnan(float(row[column]))
    assert row["gpu_hours"] == 0.0
    assert compare([]) == []
