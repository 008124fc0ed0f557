"""Units that fit the trace: job times in seconds, minutes or hours, as a trace's jobs run for
seconds (the NASA iPSC/860 log) or for hours (Philly); the simulated clock in minutes to
days, by the length of the run. Inside the twin every time is in seconds; only what people
read (the report, the console) is converted, and every axis and header names its unit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aifactories.twin.metrics.results import PolicyRun


@dataclass(frozen=True)
class TimeUnit:
    symbol: str  # in a table header or beside a number: "12.5 min"
    word: str  # on an axis: "wait (minutes)"
    seconds: float

    def of(self, seconds: float) -> float:
        return seconds / self.seconds


SECONDS = TimeUnit("s", "seconds", 1.0)
MINUTES = TimeUnit("min", "minutes", 60.0)
HOURS = TimeUnit("h", "hours", 3600.0)
DAYS = TimeUnit("d", "days", 86400.0)


def job_time_unit(runtimes_s: Iterable[float]) -> TimeUnit:
    """The unit of the jobs' times (wait, completion time): the one in which the mean runtime
    is under 120, from seconds up to hours. The mean, not the median: most jobs of a trace are
    short (Philly's median is 19 minutes) while its GPU time goes to the long ones (mean 3.6
    hours), which the waits and completion times follow. No job: hours."""
    mean = mean_runtime(runtimes_s)
    return HOURS if mean is None else unit_for(mean)


def mean_runtime(runtimes_s: Iterable[float]) -> float | None:
    total = count = 0.0
    for runtime in runtimes_s:
        total += runtime
        count += 1
    return total / count if count else None


def unit_for(seconds: float) -> TimeUnit:
    """Seconds below 2 minutes, minutes below 2 hours, else hours."""
    if seconds < 2 * MINUTES.seconds:
        return SECONDS
    if seconds < 2 * HOURS.seconds:
        return MINUTES
    return HOURS


def clock_unit(span_s: float) -> TimeUnit:
    """The unit of the simulated clock on a time axis: minutes for a run under 2 hours,
    hours up to 3 days, days beyond."""
    if span_s < 2 * HOURS.seconds:
        return MINUTES
    if span_s <= 3 * DAYS.seconds:
        return HOURS
    return DAYS


@dataclass(frozen=True)
class Units:
    """The units of one run's report and console table: ``job`` for waits and completion
    times, ``clock`` for the simulated time on the x axis of the time series."""

    job: TimeUnit
    clock: TimeUnit
    mean_runtime_s: float | None = None  # what chose ``job``; None: no job

    @classmethod
    def of(cls, runs: Sequence[PolicyRun]) -> Units:
        mean = mean_runtime(r.runtime_s for run in runs for r in run.results)
        start = min((run.horizon_start_s for run in runs), default=0.0)
        end = max((run.horizon_end_s for run in runs), default=0.0)
        job = HOURS if mean is None else unit_for(mean)
        return cls(job=job, clock=clock_unit(end - start), mean_runtime_s=mean)

    def rule(self) -> str:
        """Why these units, in one sentence for the report."""
        if self.mean_runtime_s is None:
            return f"Job times in {self.job.word}; simulated time in {self.clock.word}."
        mean = f"{self.job.of(self.mean_runtime_s):,.1f} {self.job.symbol}"
        return (
            f"Job times in {self.job.word}, the unit in which the jobs' mean runtime ({mean}) "
            f"is under 120; simulated time in {self.clock.word}."
        )
