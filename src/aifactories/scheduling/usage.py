"""Decayed usage, the input of fair share: recent GPU time counts more than old GPU time."""

from __future__ import annotations

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
