"""Calendar months in UTC: award periods and the optimiser's monthly horizon."""

from __future__ import annotations

from datetime import UTC, datetime


def add_months(ts: float, months: int) -> float:
    """The same day and time ``months`` later (the last day of a shorter month if needed)."""
    when = datetime.fromtimestamp(ts, UTC)
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=min(when.day, day)).timestamp()
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def month_start(ts: float) -> float:
    when = datetime.fromtimestamp(ts, UTC)
    return datetime(when.year, when.month, 1, tzinfo=UTC).timestamp()


def month_starts(first: float, count: int) -> list[float]:
    """``count`` consecutive month starts from the month holding ``first``."""
    start = month_start(first)
    return [add_months(start, i) for i in range(count)]


def hours_in_month(start: float) -> float:
    return (add_months(start, 1) - start) / 3600


def regular_cutoffs(opens: float, closes: float, per_month: int) -> list[float]:
    """``per_month`` cut-offs evenly through each calendar month (2: the middle and the end
    of the month) after ``opens`` and before ``closes``, then ``closes`` itself, which is
    always the last cut-off so that the last proposals are reviewed too."""
    if per_month < 1:
        return [closes]
    cutoffs: list[float] = []
    start = month_start(opens)
    while start < closes:
        end = add_months(start, 1)
        for k in range(1, per_month + 1):
            cut = start + (end - start) * k / per_month
            if opens < cut < closes:
                cutoffs.append(cut)
        start = end
    return [*cutoffs, closes]
