"""The embedded default: the Gavel/Philly mixture, seeded and reproducible."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import Domain, OrganisationKind
from aifactories.twin.traces import generate_gavel_mixture
from aifactories.twin.traces.synthetic import DOMAIN_MIX, GPU_MIX, KIND_MIX

N = 20_000


@pytest.fixture(scope="module")
def big() -> list[tuple[float, float, int, str, str | None]]:
    trace = generate_gavel_mixture(N, jobs_per_hour=60.0, seed=7)
    return [(j.submit_s, j.runtime_s, j.gpus, j.group or "", j.get("domain")) for j in trace.jobs]


def test_same_seed_same_jobs_other_seed_other_jobs() -> None:
    a = generate_gavel_mixture(500, jobs_per_hour=30.0, seed=42)
    b = generate_gavel_mixture(500, jobs_per_hour=30.0, seed=42)
    c = generate_gavel_mixture(500, jobs_per_hour=30.0, seed=43)
    assert a == b and repr(a) == repr(b)
    assert a.jobs != c.jobs
    assert a.name == "gavel-mixture(n=500, jobs_per_hour=30, seed=42)" and a.source is None


def test_known_first_jobs_pin_the_stream() -> None:
    """Any change in draw order or transform changes these numbers: make it on purpose only.

    Seed 0 draws u = 0.8444, 0.7580, 0.4206, 0.2589, 0.5113, ... so the first gap is
    -ln(1 - 0.8444) x 60 s = 111.636 s, the runtime short (0.758 >= 0.2) at 60 x 10^(1.5 + 1.5 x
    0.4206) s, 1 GPU (0.259 < 0.7) and the kind industry (0.4 <= 0.511 < 0.6).
    """
    jobs = generate_gavel_mixture(3, jobs_per_hour=60.0, seed=0).jobs
    assert [(j.job_id, j.submit_s, j.runtime_s, j.gpus) for j in jobs] == [
        ("gavel-000000", 111.636, 8109.772, 1),
        ("gavel-000001", 203.529, 9841.169, 1),
        ("gavel-000002", 223.393, 16058.491, 1),
    ]
    assert [(j.group, j.get("domain")) for j in jobs] == [
        ("industry", "manufacturing"),
        ("public", "agri-food"),
        ("public", "other"),
    ]


def test_gpu_mix(big: list[tuple[float, float, int, str, str | None]]) -> None:
    counts = Counter(gpus for _, _, gpus, _, _ in big)
    assert set(counts) == {1, 2, 4, 8}
    for gpus, p in GPU_MIX:
        assert counts[gpus] / N == pytest.approx(p, abs=0.012)


def test_runtime_mixture(big: list[tuple[float, float, int, str, str | None]]) -> None:
    exponents = [math.log10(runtime / 60.0) for _, runtime, _, _, _ in big]
    assert min(exponents) >= 1.5 and max(exponents) <= 4.0
    long = [e for e in exponents if e >= 3.0]
    short = [e for e in exponents if e < 3.0]
    assert len(long) / N == pytest.approx(0.2, abs=0.012)
    # Within each branch the exponent is uniform: mean at the middle, variance width^2 / 12.
    assert statistics.fmean(short) == pytest.approx(2.25, abs=0.02)
    assert statistics.fmean(long) == pytest.approx(3.5, abs=0.02)
    assert statistics.pvariance(short) == pytest.approx(1.5**2 / 12, rel=0.05)
    assert statistics.pvariance(long) == pytest.approx(1 / 12, rel=0.05)


def test_poisson_arrivals(big: list[tuple[float, float, int, str, str | None]]) -> None:
    submits = [submit for submit, _, _, _, _ in big]
    gaps = [b - a for a, b in zip([0.0, *submits], submits, strict=False)]
    assert all(g >= 0 for g in gaps)
    assert N / (submits[-1] / 3600) == pytest.approx(60.0, rel=0.03)
    # Exponential gaps: standard deviation equals the mean.
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.03)


def test_organisation_kind_and_domain_mix(
    big: list[tuple[float, float, int, str, str | None]],
) -> None:
    kinds = Counter(kind for _, _, _, kind, _ in big)
    for kind, p in KIND_MIX:
        assert kinds[kind.value] / N == pytest.approx(p, abs=0.012)
    domains = Counter(domain for _, _, _, _, domain in big)
    for domain, p in DOMAIN_MIX:
        assert domains[domain.value] / N == pytest.approx(p, abs=0.01)
    assert set(domains) <= {d.value for d in Domain}


def test_custom_mix_and_validation() -> None:
    only = generate_gavel_mixture(
        50, 10.0, 1, kind_mix=((OrganisationKind.STARTUP, 1.0),), domain_mix=((Domain.HEALTH, 1.0),)
    )
    assert {(j.group, j.get("domain"), j.get("organisation_kind")) for j in only.jobs} == {
        ("startup", "health", "startup")
    }
    assert len(generate_gavel_mixture(0, 10.0, 1)) == 0
    with pytest.raises(InvalidInput, match="jobs_per_hour"):
        generate_gavel_mixture(10, 0.0, 1)
    with pytest.raises(InvalidInput, match="n_jobs"):
        generate_gavel_mixture(-1, 1.0, 1)
    with pytest.raises(InvalidInput, match="sum to 1"):
        generate_gavel_mixture(10, 1.0, 1, kind_mix=((OrganisationKind.SME, 0.5),))


def test_an_arrival_window_gives_every_job_arriving_in_it() -> None:
    # The window's jobs are the first jobs of the same stream: sizing by hours changes how
    # many, never which.
    window = generate_gavel_mixture(None, 30.0, 5, hours=48.0)
    longer = generate_gavel_mixture(len(window.jobs) + 1, 30.0, 5)
    assert window.jobs == longer.jobs[: len(window.jobs)]
    assert max(j.submit_s for j in window.jobs) <= 48 * 3600 < longer.jobs[-1].submit_s
    assert len(window.jobs) == pytest.approx(30 * 48, rel=0.15)  # Poisson: 1,440 +- 38
    assert "hours=48" in window.name
    assert len(generate_gavel_mixture(None, 30.0, 5, hours=0.0)) == 0


def test_a_size_is_given_exactly_once() -> None:
    with pytest.raises(InvalidInput, match="exactly one"):
        generate_gavel_mixture(10, 1.0, 1, hours=5.0)
    with pytest.raises(InvalidInput, match="exactly one"):
        generate_gavel_mixture(None, 1.0, 1)
    with pytest.raises(InvalidInput, match="hours"):
        generate_gavel_mixture(None, 1.0, 1, hours=-1.0)
