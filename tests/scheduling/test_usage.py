from __future__ import annotations

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling import decayed_usage

DAY = 86400.0


@pytest.mark.parametrize(
    ("charges", "expected"),
    [
        ([], 0.0),
        ([(100 * DAY, 1000)], 1000.0),  # charged just now
        ([(93 * DAY, 1000)], 500.0),  # one half-life ago
        ([(86 * DAY, 1000), (93 * DAY, 1000)], 750.0),
        ([(101 * DAY, 1000)], 1000.0),  # stamped in the future: counts in full, not more
    ],
)
def test_decayed_usage_halves_every_half_life(charges, expected: float) -> None:
    assert decayed_usage(charges, 100 * DAY, 7 * DAY) == pytest.approx(expected)


@pytest.mark.parametrize("half_life", [0.0, -1.0, float("nan")])
def test_half_life_must_be_positive(half_life: float) -> None:
    with pytest.raises(InvalidInput, match="half_life_s"):
        decayed_usage([(0.0, 1)], 1.0, half_life)
