"""The twin's incremental decayed usage equals the broker's pass over every charge."""

from __future__ import annotations

import random

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.usage import DecayedUsage, decayed_usage


def test_incremental_equals_the_full_sum() -> None:
    rng = random.Random(5)
    half_life = 7 * 86400.0
    kept = DecayedUsage(half_life)
    charges: dict[int, list[tuple[float, int]]] = {1: [], 2: []}
    now = 0.0
    for _ in range(2000):
        now += rng.expovariate(1 / 3600)
        project = rng.choice((1, 2))
        amount = rng.randrange(1, 100_000)
        charges[project].append((now, amount))
        kept.add(project, now, amount)
        if rng.random() < 0.05:  # a late charge, stamped in the past
            late = now - rng.uniform(0, 86400)
            charges[project].append((late, 500))
            kept.add(project, late, 500)
    later = now + 3 * 86400
    for project in (1, 2):
        assert kept.at(project, later) == pytest.approx(
            decayed_usage(charges[project], later, half_life), rel=1e-9
        )
    assert kept.at(3, later) == 0.0
    with pytest.raises(InvalidInput, match="half_life_s"):
        DecayedUsage(0)
