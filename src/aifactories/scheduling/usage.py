"""Decayed usage, the input of fair share: recent GPU time counts more than old GPU time."""

from __future__ import annotations

import math
from collections.abc import Iterable

from aifactories.domain.errors import InvalidInput


def decayed_usage(charges: Iterable[tuple[float, int]], now: float, half_life_s: float) -> float:
    """Sum of ``(charged_at, gpu_seconds)`` charges, each halved every ``half_life_s`` of age.

    This is Slurm's ``PriorityDecayHalfLife``: usage from one half-life ago weighs 0.5, from
    two half-lives ago 0.25. A charge stamped after ``now`` (clock skew between the broker and
    a site) counts in full rather than more than in full.
    """
    if not half_life_s > 0:
        raise InvalidInput(
            "half_life_s", f"must be a positive number of seconds, got {half_life_s}"
        )
    total = 0.0
    for charged_at, gpu_seconds in charges:
        age = max(0.0, now - charged_at)
        total += gpu_seconds * 0.5 ** (age / half_life_s)
    return total


class DecayedUsage:
    """:func:`decayed_usage` kept up to date charge by charge, for callers that see charges
    in time order (the twin): O(1) per charge and per read instead of a pass over every
    charge at every cycle. Same formula: each sum is stored with the time it was last
    decayed to, and decayed further on read.
    """

    def __init__(self, half_life_s: float) -> None:
        if not half_life_s > 0:
            raise InvalidInput(
                "half_life_s", f"must be a positive number of seconds, got {half_life_s}"
            )
        self.half_life_s = half_life_s
        self._sums: dict[object, tuple[float, float]] = {}  # key -> (sum, as of time)

    def add(self, key: object, charged_at: float, gpu_seconds: float) -> None:
        total, as_of = self._sums.get(key, (0.0, charged_at))
        if charged_at >= as_of:
            total = total * math.exp2((as_of - charged_at) / self.half_life_s) + gpu_seconds
            as_of = charged_at
        else:  # an older charge: decay it to the sum's time instead
            total += gpu_seconds * math.exp2((charged_at - as_of) / self.half_life_s)
        self._sums[key] = (total, as_of)

    def at(self, key: object, now: float) -> float:
        total, as_of = self._sums.get(key, (0.0, now))
        return total * math.exp2(-max(0.0, now - as_of) / self.half_life_s)
