"""Descriptive statistics without numpy: the twin's outputs must be byte-identical across
machines, and a dozen lines of plain Python keep the exact rule in view.

Percentiles use linear interpolation between closest ranks, numpy's default
(``numpy.percentile(..., method="linear")``; Hyndman and Fan 1996, definition 7): for ``n`` sorted
values the ``q``-th percentile sits at rank ``h = (n - 1) * q / 100`` and is
``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aifactories.domain.errors import InvalidInput

NAN = math.nan


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated; NaN if empty."""
    if not 0.0 <= q <= 100.0:
        raise InvalidInput("q", f"a percentile lies between 0 and 100, got {q}")
    ordered = sorted(values)
    return _sorted_percentile(ordered, q)


def _sorted_percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return NAN
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + fraction * (ordered[high] - ordered[low])


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean, NaN if empty; ``math.fsum`` so the order of the values does not matter."""
    items = list(values)
    if not items:
        return NAN
    return math.fsum(items) / len(items)


@dataclass(frozen=True)
class Stats:
    """Count, mean, median, 95th and 99th percentile and maximum of one quantity.

    With no values ``count`` is 0 and every other field is NaN: "not measured", which a table
    shows as such, rather than a 0 that would read as "instantaneous".
    """

    count: int
    mean: float
    median: float
    p95: float
    p99: float
    max: float


EMPTY_STATS = Stats(count=0, mean=NAN, median=NAN, p95=NAN, p99=NAN, max=NAN)


def describe(values: Iterable[float]) -> Stats:
    """The :class:`Stats` of ``values`` (percentiles as in :func:`percentile`)."""
    ordered = sorted(values)
    if not ordered:
        return EMPTY_STATS
    return Stats(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        median=_sorted_percentile(ordered, 50.0),
        p95=_sorted_percentile(ordered, 95.0),
        p99=_sorted_percentile(ordered, 99.0),
        max=ordered[-1],
    )
