"""What the broker counts as it works: placements, submissions, failures, outages, cycle times.

Plain counters, so that the broker does not depend on a metrics library: the API's collector
(``aifactories.api.metrics``) reads them at scrape time and exposes them to Prometheus.

``STATS`` is process-wide, like a metrics client's default registry: one broker is active per
process, and a shared object spares threading a parameter through every function of apply,
reconcile and failover that only needs to count. Counters only ever grow (Prometheus computes
rates from them and copes with a process that starts again from zero).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field

# Broker cycles take milliseconds on an idle federation and seconds when a site is slow.
CYCLE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class StatsView:
    """A consistent copy of the counters, for one scrape."""

    placements: dict[tuple[str, str], int]  # (site, partition) -> jobs placed
    submissions: dict[str, int]  # site -> jobs its scheduler accepted
    submit_errors: dict[str, int]  # site -> submissions the site did not answer
    finished: dict[tuple[str, str], int]  # (site, final state) -> jobs
    failures: dict[str, int]  # site -> jobs that ended failed (rejected, failed, lost)
    outages: dict[str, int]  # site -> times it became unreachable
    moved: dict[str, int]  # site -> queued jobs moved away while it was unreachable
    cycle_bucket_counts: tuple[int, ...]  # per CYCLE_BUCKETS_S bound, not cumulative; +Inf last
    cycle_sum_s: float
    cycles_failed: int


@dataclass
class BrokerStats:
    """Thread-safe: the broker thread writes, the API's scrapes read."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _placements: Counter[tuple[str, str]] = field(default_factory=Counter)
    _submissions: Counter[str] = field(default_factory=Counter)
    _submit_errors: Counter[str] = field(default_factory=Counter)
    _finished: Counter[tuple[str, str]] = field(default_factory=Counter)
    _failures: Counter[str] = field(default_factory=Counter)
    _outages: Counter[str] = field(default_factory=Counter)
    _moved: Counter[str] = field(default_factory=Counter)
    _cycle_buckets: list[int] = field(default_factory=lambda: [0] * (len(CYCLE_BUCKETS_S) + 1))
    _cycle_sum_s: float = 0.0
    _cycles_failed: int = 0

    def placed(self, site: str, partition: str) -> None:
        with self._lock:
            self._placements[(site, partition)] += 1

    def submitted(self, site: str, count: int = 1) -> None:
        with self._lock:
            self._submissions[site] += count

    def submit_error(self, site: str) -> None:
        with self._lock:
            self._submit_errors[site] += 1

    def finished(self, site: str, state: str) -> None:
        with self._lock:
            self._finished[(site, state)] += 1
            if state == "failed":
                self._failures[site] += 1

    def outage(self, site: str) -> None:
        with self._lock:
            self._outages[site] += 1

    def moved(self, site: str, count: int = 1) -> None:
        with self._lock:
            self._moved[site] += count

    def cycle(self, duration_s: float) -> None:
        """A cycle completed in ``duration_s``."""
        with self._lock:
            self._cycle_buckets[bisect.bisect_left(CYCLE_BUCKETS_S, duration_s)] += 1
            self._cycle_sum_s += duration_s

    def cycle_failed(self) -> None:
        with self._lock:
            self._cycles_failed += 1

    def view(self) -> StatsView:
        with self._lock:
            return StatsView(
                placements=dict(self._placements),
                submissions=dict(self._submissions),
                submit_errors=dict(self._submit_errors),
                finished=dict(self._finished),
                failures=dict(self._failures),
                outages=dict(self._outages),
                moved=dict(self._moved),
                cycle_bucket_counts=tuple(self._cycle_buckets),
                cycle_sum_s=self._cycle_sum_s,
                cycles_failed=self._cycles_failed,
            )


STATS = BrokerStats()
