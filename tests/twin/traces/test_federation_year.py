"""The AI-factory mixture: seeded, sized by its arrival window, offering the load asked."""

from __future__ import annotations

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.federation_year import (
    SIZE_MIX,
    generate_ai_factory_mixture,
    generate_federation_year,
    jobs_per_hour,
    mean_gpu_hours_per_job,
)


def test_the_same_seed_gives_the_same_jobs_and_another_seed_others() -> None:
    first = generate_ai_factory_mixture(None, 20.0, 7, hours=100)
    again = generate_ai_factory_mixture(None, 20.0, 7, hours=100)
    other = generate_ai_factory_mixture(None, 20.0, 8, hours=100)
    assert first.jobs == again.jobs and first.jobs != other.jobs
    assert all(job.submit_s <= 100 * 3600 for job in first.jobs)
    assert 1_600 < len(first.jobs) < 2_400  # 20 an hour for 100 h, Poisson


def test_a_job_count_takes_the_first_jobs_of_the_same_stream() -> None:
    window = generate_ai_factory_mixture(None, 20.0, 3, hours=50)
    counted = generate_ai_factory_mixture(10, 20.0, 3)
    assert len(counted.jobs) == 10
    assert [j.submit_s for j in counted.jobs] == [j.submit_s for j in window.jobs[:10]]


def test_a_year_offers_the_load_asked_and_size_factor_scales_every_job() -> None:
    gpus, load = 50_000, 0.8
    year = generate_federation_year(gpus, days=60, load=load, seed=1)
    offered = sum(job.gpu_seconds for job in year.jobs) / 3600
    assert offered == pytest.approx(load * gpus * 60 * 24, rel=0.15)
    big = generate_federation_year(gpus, days=60, load=load, seed=1, size_factor=4)
    sizes = {s for s, _ in SIZE_MIX}
    assert {job.gpus for job in big.jobs} <= {4 * s for s in sizes}
    assert len(big.jobs) == pytest.approx(len(year.jobs) / 4, rel=0.15)
    assert jobs_per_hour(1.0, 100, 2) == pytest.approx(100 / mean_gpu_hours_per_job(2))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: generate_ai_factory_mixture(None, 1.0, 0), "generator"),
        (lambda: generate_ai_factory_mixture(None, 0.0, 0, hours=5), "jobs_per_hour"),
        (lambda: generate_federation_year(0), "total_gpus"),
        (lambda: generate_federation_year(10, size_factor=0, days=1), "size_factor"),
    ],
)
def test_bad_arguments_are_refused_by_name(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        call()  # type: ignore[operator]
    assert error.value.field == field
