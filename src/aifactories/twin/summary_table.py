"""The comparison as people read it (the report's table, the console's): chosen figures,
each header with its unit, times in the unit that fits the trace, policies by their full
names. The files (summary.csv, summary.parquet) keep every figure in seconds, and the
policies' identifiers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aifactories.twin.metrics.summary import Row
from aifactories.twin.policy_titles import policy_title
from aifactories.twin.units import Units


@dataclass(frozen=True)
class Column:
    key: str  # in the summary row
    header: str  # with its unit
    scale: Callable[[float], float]


def _same(value: float) -> float:
    return value


def columns(units: Units, detailed: bool = False) -> list[Column]:
    """The console's columns; ``detailed`` adds those the report's wider table has room for."""
    job, clock = units.job, units.clock
    time = job.of

    def each(keys: list[tuple[str, str, Callable[[float], float], bool]]) -> list[Column]:
        return [Column(k, h, s) for k, h, s, wide in keys if detailed or not wide]

    return each(
        [
            ("jobs", "jobs", _same, True),
            ("completed", "completed", _same, True),
            ("wait_mean", f"mean wait ({job.symbol})", time, False),
            ("wait_median", f"median wait ({job.symbol})", time, True),
            ("wait_p95", f"p95 wait ({job.symbol})", time, True),
            ("jct_mean", f"mean JCT ({job.symbol})", time, False),
            ("jct_median", f"median JCT ({job.symbol})", time, True),
            ("jct_p99", f"p99 JCT ({job.symbol})", time, False),
            ("slowdown_mean", "bounded slowdown", _same, False),
            ("utilisation", "utilisation (%)", lambda v: 100 * v, False),
            ("ftf_worst", "worst FTF rho", _same, False),
            ("jain_slowdown", "Jain index (slowdown)", _same, False),
            ("makespan_s", f"makespan ({clock.symbol})", clock.of, True),
            ("max_queue_length", "max pending jobs", _same, True),
            ("energy_kwh", "energy (MWh)", lambda v: v / 1000, False),
            ("carbon_kg", "carbon (t CO2e)", lambda v: v / 1000, False),
            ("cycle_p99_ms", "cycle p99 (ms)", _same, False),
        ]
    )


def cells(row: Row, chosen: Sequence[Column]) -> list[str]:
    """The row's full policy name, then each column's figure ("-": not measured)."""
    line = [policy_title(str(row["policy"]))]
    for column in chosen:
        value = row.get(column.key)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            line.append("-")
        elif isinstance(value, int):
            line.append(f"{value:,}")
        else:
            line.append(f"{column.scale(value):,.2f}")
    return line
