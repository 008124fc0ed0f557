"""What every trace reader produces: a :class:`Trace` of :class:`TraceJob` values.

The model keeps only what a scheduler simulation needs (when a job arrives, how long it runs, how
many GPUs it holds) plus what helps to group and validate (user, group, the trace's own wait).
Whatever a reader had to decide (rows skipped, values rounded) is counted in the trace itself, so
a report can state it next to the results instead of hiding it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from aifactories.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, in seconds from the trace start.

    ``runtime_s`` is the time the job actually ran (not its request); ``gpus`` the total GPUs it
    held (processors for CPU traces such as SWF logs). ``group`` is the trace's grouping of users:
    virtual cluster, account, queue or QoS class, as each reader documents. ``recorded_wait_s`` is
    the queueing delay the trace itself recorded, when it has start times: useful to validate a
    simulation, never an input to it. ``extra`` keeps other columns as sorted ``(key, value)``
    strings.

    Constraints, what the job accepts, reach the twin's job and its placement: ``gpu_models``
    the GPU models it may run on (any of them; empty: any model), ``min_gpu_memory_gb`` the
    memory per GPU it needs, ``countries`` where it may run (empty: anywhere), ``nodes`` its
    node count. ``gpu_model`` is the trace's own text (a constraint, alternatives, or for a
    profile-priced trace the GPU the profile was measured on) and is not read as a constraint.

    A ``runtime_s`` of 0 is a job that ended the moment it started (logs record such jobs): it
    still takes its turn in the queue, starts when it would, and ends at once.
    """

    job_id: str
    submit_s: float
    runtime_s: float
    gpus: int
    nodes: int | None = None
    gpu_model: str | None = None
    user: str | None = None
    group: str | None = None
    time_limit_s: float | None = None
    workload_class: str | None = None
    recorded_wait_s: float | None = None
    extra: tuple[tuple[str, str], ...] = ()
    gpu_models: frozenset[str] = frozenset()
    min_gpu_memory_gb: int = 0
    countries: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Readers raise TraceError with file and line before building a job; these checks guard
        # the invariants for any other caller (generators, tests).
        if not (math.isfinite(self.submit_s) and self.submit_s >= 0):
            raise InvalidInput("submit_s", f"must be finite and >= 0, got {self.submit_s!r}")
        if not (math.isfinite(self.runtime_s) and self.runtime_s >= 0):
            raise InvalidInput("runtime_s", f"must be finite and >= 0, got {self.runtime_s!r}")
        if self.gpus < 1:
            raise InvalidInput("gpus", f"must be >= 1, got {self.gpus}")
        if self.nodes is not None and self.nodes < 1:
            raise InvalidInput("nodes", f"must be >= 1 when known, got {self.nodes}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise InvalidInput("time_limit_s", f"must be > 0 when known, got {self.time_limit_s}")
        if self.recorded_wait_s is not None and not self.recorded_wait_s >= 0:
            raise InvalidInput("recorded_wait_s", f"must be >= 0, got {self.recorded_wait_s}")
        if self.min_gpu_memory_gb < 0:
            raise InvalidInput("min_gpu_memory_gb", f"must be >= 0, got {self.min_gpu_memory_gb}")
        if any(not m for m in self.gpu_models):
            raise InvalidInput("gpu_models", "has an empty model name")

    def get(self, key: str) -> str | None:
        """The value of ``key`` in ``extra``, or None."""
        return next((value for k, value in self.extra if k == key), None)

    @property
    def gpu_seconds(self) -> float:
        return self.gpus * self.runtime_s


Counts = tuple[tuple[str, int], ...]
"""``(reason, count)`` pairs, sorted by reason."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A named sequence of jobs sorted by ``(submit_s, job_id)``.

    ``skipped`` rows were read but not turned into jobs; ``skip_reasons`` says why, per reason
    (each reader documents its reasons). ``notes`` counts jobs that were kept but adjusted (for
    example a fractional GPU rounded up). ``origin`` is the wall-clock time of ``submit_s = 0``
    (ISO 8601) when the trace has calendar times.
    """

    name: str
    source: Path | None
    jobs: tuple[TraceJob, ...]
    skipped: int = 0
    skip_reasons: Counts = ()
    notes: Counts = ()
    origin: str | None = None

    def __post_init__(self) -> None:
        if self.skipped != sum(count for _, count in self.skip_reasons):
            raise InvalidInput("skipped", "must equal the sum of skip_reasons")
        keys = [(job.submit_s, job.job_id) for job in self.jobs]
        if any(a >= b for a, b in itertools.pairwise(keys)):
            raise InvalidInput("jobs", "must be sorted by (submit_s, job_id), strictly")

    def __len__(self) -> int:
        return len(self.jobs)

    def skip_count(self, reason: str) -> int:
        return dict(self.skip_reasons).get(reason, 0)

    def note_count(self, reason: str) -> int:
        return dict(self.notes).get(reason, 0)

    def summary(self) -> str:
        """One line for logs and reports, e.g. ``philly.csv: 82,247 jobs, 0 skipped``."""
        text = f"{self.name}: {len(self.jobs):,} jobs, {self.skipped:,} skipped"
        if self.skip_reasons:
            text += " (" + ", ".join(f"{r}: {n:,}" for r, n in self.skip_reasons) + ")"
        if self.notes:
            text += "; " + ", ".join(f"{r}: {n:,}" for r, n in self.notes)
        return text
