"""Utilisation and queue length, integrated from step-function samples."""

from __future__ import annotations

import math

import pytest

from aifactories.twin.metrics import (
    max_queue_length,
    mean_queue_length,
    site_usage,
    utilisation,
    utilisation_by_site,
)

SAMPLES = [
    # lumi, 8 GPUs: 4 busy on [0, 10), 8 on [10, 30), none on [30, 40].
    (0.0, "lumi", 4, 8),
    (10.0, "lumi", 8, 8),
    (30.0, "lumi", 0, 8),
    # leonardo, 4 GPUs, first heard of at 20: idle before, then 2 busy.
    (20.0, "leonardo", 2, 4),
]


def test_site_utilisation_integrates_the_step_function() -> None:
    usage = site_usage(SAMPLES, 0.0, 40.0)
    assert list(usage) == ["leonardo", "lumi"]
    assert usage["lumi"].busy_gpu_seconds == 200.0  # 4 * 10 + 8 * 20 + 0 * 10
    assert usage["lumi"].capacity_gpu_seconds == 320.0  # 8 * 40
    assert usage["leonardo"].busy_gpu_seconds == 40.0  # 0 * 20 + 2 * 20
    assert usage["leonardo"].capacity_gpu_seconds == 160.0  # 4 * 40
    by_site = utilisation_by_site(SAMPLES, 0.0, 40.0)
    assert by_site == {"leonardo": 0.25, "lumi": 0.625}


def test_overall_utilisation_weights_sites_by_their_gpus() -> None:
    assert utilisation(SAMPLES, 0.0, 40.0) == 0.5  # (200 + 40) / (320 + 160), not (0.625+0.25)/2


def test_horizon_clips_the_samples() -> None:
    # [5, 35]: 4 * 5 + 8 * 20 + 0 * 5 = 180 busy of 8 * 30 = 240.
    assert utilisation_by_site(SAMPLES, 5.0, 35.0)["lumi"] == 0.75


def test_a_sample_before_the_horizon_sets_its_opening_state() -> None:
    assert utilisation([(-10.0, "s", 2, 2)], 0.0, 10.0) == 1.0


def test_the_last_of_same_time_samples_wins() -> None:
    samples = [(0.0, "s", 4, 4), (0.0, "s", 1, 4)]
    assert utilisation(samples, 0.0, 10.0) == 0.25


def test_capacity_changes_are_measured_against_what_the_site_had() -> None:
    samples = [(0.0, "s", 4, 4), (10.0, "s", 4, 8)]  # 4 GPUs added at 10, all idle
    # busy 4 * 20 = 80; capacity 4 * 10 + 8 * 10 = 120
    assert utilisation(samples, 0.0, 20.0) == pytest.approx(2 / 3)


def test_no_samples_or_an_empty_horizon_give_nan() -> None:
    assert math.isnan(utilisation([], 0.0, 10.0))
    assert math.isnan(utilisation(SAMPLES, 10.0, 10.0))
    assert utilisation_by_site([], 0.0, 10.0) == {}


def test_mean_queue_length_is_the_time_average() -> None:
    samples = [(0.0, 2), (10.0, 0), (15.0, 6)]
    assert mean_queue_length(samples, 0.0, 20.0) == 2.5  # (2 * 10 + 0 * 5 + 6 * 5) / 20
    assert mean_queue_length([(10.0, 4)], 0.0, 20.0) == 2.0  # empty before the first sample
    assert math.isnan(mean_queue_length(samples, 5.0, 5.0))


def test_max_queue_length_counts_only_values_that_held() -> None:
    assert max_queue_length([(0.0, 2), (10.0, 0), (15.0, 6)], 0.0, 20.0) == 6
    assert max_queue_length([(5.0, 9), (5.0, 1)], 0.0, 20.0) == 1  # 9 was replaced at once
    assert max_queue_length([(-5.0, 3), (25.0, 9)], 0.0, 20.0) == 3  # opening state; 25 is out
    assert max_queue_length([], 0.0, 20.0) == 0
