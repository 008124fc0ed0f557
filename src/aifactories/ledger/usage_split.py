"""Split one job's charge over the periods it ran in: calendar months and allocation terms.

A job that runs from 31 January 22:00 to 1 February 02:00 used two hours of January and two of
February, and a job that outlives its allocation's end used the rest of its time on whatever
allocation covers that time. The books must say so: monthly reports and the programme's
per-term accounting add up pieces, never whole jobs. Pieces are proportional to time; the
rounding remainder goes to the longest pieces, so the pieces always sum to the charge exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class UsagePiece:
    start: float
    end: float
    gpu_seconds: int

    @property
    def month(self) -> str:
        """The calendar month (UTC) the piece lies in, as ``YYYY-MM``."""
        return datetime.fromtimestamp(self.start, UTC).strftime("%Y-%m")


def month_starts(start: float, end: float) -> list[float]:
    """The UTC month boundaries strictly inside ``(start, end)``."""
    out: list[float] = []
    moment = datetime.fromtimestamp(start, UTC)
    year, month = moment.year, moment.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        boundary = datetime(year, month, 1, tzinfo=UTC).timestamp()
        if boundary >= end:
            return out
        out.append(boundary)


def split_usage(
    start: float, end: float, gpu_seconds: int, extra_boundaries: Iterable[float] = ()
) -> list[UsagePiece]:
    """``gpu_seconds`` used over ``[start, end]``, cut at every month start and at each of
    ``extra_boundaries`` (an allocation's end) inside the interval."""
    if gpu_seconds < 0:
        raise ValueError("usage is never negative")
    if end <= start:
        return [UsagePiece(start, max(start, end), gpu_seconds)]
    cuts = sorted({*month_starts(start, end), *(b for b in extra_boundaries if start < b < end)})
    edges = [start, *cuts, end]
    spans = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
    total = end - start
    exact = [gpu_seconds * (b - a) / total for a, b in spans]
    shares = [int(x) for x in exact]
    # Largest remainder: the pieces sum to the charge, and the rounding favours no period.
    short = gpu_seconds - sum(shares)
    order = sorted(range(len(spans)), key=lambda k: (exact[k] - shares[k], -k), reverse=True)
    for k in order[:short]:
        shares[k] += 1
    return [UsagePiece(a, b, s) for (a, b), s in zip(spans, shares, strict=True)]
