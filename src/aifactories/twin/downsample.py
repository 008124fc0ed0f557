"""Curves cut to a few hundred points for the report, keeping their shape: a browser draws
no more than its pixels anyway, and every point costs bytes in the HTML.

Only points of the curve itself are kept (no interpolated values): a CDF keeps the order
statistics on an even grid of probabilities (and both ends), a step line keeps, in each
slice of time, its first, lowest, highest and last steps, so no peak and no dip that the
full curve shows is lost, and the value held at the end stays where it is."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

MAX_POINTS = 1000  # per curve: about the width in pixels of a figure on a screen


def cdf_points(
    values: Sequence[float], max_points: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """The empirical CDF of ``values``: ``x`` sorted, ``y`` the fraction of values at or
    below each ``x`` (the step's top). At most ``max_points`` points, taken at evenly spaced
    probabilities, always with the smallest and the largest value."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return [], []
    if n <= max_points:
        indexes = list(range(n))
    else:
        last = max(2, max_points) - 1
        indexes = sorted({round(k * (n - 1) / last) for k in range(last + 1)})
    return [ordered[i] for i in indexes], [(i + 1) / n for i in indexes]


def step_points(
    xs: Sequence[float], ys: Sequence[float | None], max_points: int = MAX_POINTS
) -> tuple[list[float], list[float | None]]:
    """A step line (each ``ys[i]`` held from ``xs[i]`` to ``xs[i + 1]``) in about
    ``max_points`` points at most: the time span cut into ``max_points / 4`` slices, each kept
    as its first, lowest, highest and last points, in time order. A gap (``None``, a site
    down) is kept with the point that ends it, so that no gap disappears or moves."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    slices = max(1, max_points // 4)
    start, span = xs[0], (xs[-1] - xs[0]) or 1.0
    keep: set[int] = {0, n - 1}
    first = 0
    for k in range(1, slices + 1):
        # the slice's points: from ``first`` to the last one before the slice's end
        end = n if k == slices else bisect_left(xs, start + span * k / slices, first)
        if end <= first:
            continue
        values = ys[first:end]
        keep.update((first, end - 1))
        if None in values:
            valued = [(v, first + j) for j, v in enumerate(values) if v is not None]
            if valued:
                keep.update((min(valued)[1], max(valued)[1]))
            for j, v in enumerate(values):
                if v is None:
                    keep.update((first + j, min(first + j + 1, n - 1)))
        else:
            # the fast path, in C: no gap in this slice
            keep.update((first + values.index(min(values)), first + values.index(max(values))))  # type: ignore[type-var]
        first = end
    ordered = sorted(keep)
    return [xs[i] for i in ordered], [ys[i] for i in ordered]
