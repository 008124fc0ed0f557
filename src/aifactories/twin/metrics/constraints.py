"""Constraints a trace's jobs carry, and the count of jobs that ran against them.

A job of a trace may accept only some GPU models (Alibaba's ``V100M16|V100M32``), need a
memory per GPU, or be bound to countries; the twin hands each of them to the job's spec, so
the shared placement honours them. :func:`violations` checks the outcome from outside the
placement: for every job that started, was its partition's GPU model, memory and country one
the job accepts? The expected count is 0; any other figure is a bug, and the summary and the
report show it so that nobody reads results that broke the trace's rules.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from aifactories.domain.sites import Site
from aifactories.twin.metrics.results import PolicyRun
from aifactories.twin.metrics.summary import Row
from aifactories.twin.setup import NOWHERE
from aifactories.twin.traces.model import Trace, TraceJob

COLUMN = "constraint_violations"
"""The summary column: jobs of the run that ran where a constraint of theirs forbids."""

RULES = ("gpu_model", "gpu_memory", "country")


def narrowed(accepted: frozenset[str], runnable: frozenset[str]) -> frozenset[str]:
    """The models a job may be placed on: those its trace accepts (empty: any) that it can
    also run on (empty: any); ``{NOWHERE}`` when no model is both, so it waits for good
    rather than running where it may not or cannot."""
    if not accepted or not runnable:
        return accepted or runnable
    # Model names compare without case, as JobSpec.wants_model does (a trace's "v100").
    upper = {m.upper() for m in runnable}
    both = frozenset(m for m in accepted if m.upper() in upper)
    return both or frozenset({NOWHERE})


def is_constrained(job: TraceJob) -> bool:
    return bool(job.gpu_models or job.min_gpu_memory_gb or job.countries)


@dataclass(frozen=True, slots=True)
class Violations:
    """Jobs of one run that ran against their constraints, by rule (one job may break several:
    ``jobs`` counts it once). ``constrained`` counts the run's jobs that carry any constraint,
    ``started`` those of them that started."""

    policy: str
    constrained: int
    started: int
    jobs: int
    by_rule: tuple[tuple[str, int], ...]

    def sentence(self) -> str:
        """One line for the console and the report."""
        if not self.constrained:
            return f"{self.policy}: no job carries a constraint (GPU model, memory, country)"
        text = (
            f"{self.policy}: {self.jobs} constraint violation(s) among {self.started:,} started "
            f"of {self.constrained:,} constrained jobs"
        )
        broken = [f"{rule}: {count}" for rule, count in self.by_rule if count]
        return text + (f" ({', '.join(broken)})" if broken else "")


def violations(trace: Trace, run: PolicyRun, sites: Iterable[Site]) -> Violations:
    """Count the jobs of ``run`` that started on a partition their trace job does not accept."""
    partitions = {
        str(p.id): (p.gpu_model.lower(), p.gpu_memory_gb, site.country.upper())
        for site in sites
        for p in site.partitions
    }
    constrained = {job.job_id: job for job in trace.jobs if is_constrained(job)}
    counts: Counter[str] = Counter()
    started = broken = 0
    for result in run.results:
        job = constrained.get(result.job_id)
        if job is None or result.partition_id is None:
            continue
        started += 1
        model, memory, country = partitions[result.partition_id]
        rules = [
            rule
            for rule, ok in (
                ("gpu_model", not job.gpu_models or model in {m.lower() for m in job.gpu_models}),
                ("gpu_memory", memory >= job.min_gpu_memory_gb),
                ("country", not job.countries or country in {c.upper() for c in job.countries}),
            )
            if not ok
        ]
        counts.update(rules)
        broken += bool(rules)
    return Violations(
        policy=run.policy,
        constrained=len(constrained),
        started=started,
        jobs=broken,
        by_rule=tuple((rule, counts[rule]) for rule in RULES),
    )


def with_violations(
    rows: list[Row], runs: Iterable[PolicyRun], trace: Trace, sites: Iterable[Site]
) -> list[Row]:
    """``rows`` (one summary row per run, in the runs' order) with the :data:`COLUMN` count."""
    sites = tuple(sites)
    for row, run in zip(rows, runs, strict=True):
        row[COLUMN] = violations(trace, run, sites).jobs
    return rows


def report_note(rows: Iterable[Row]) -> str:
    """The report's line on violations (HTML), from the summary rows; empty without them."""
    counts = [(str(row["policy"]), row[COLUMN]) for row in rows if COLUMN in row]
    if not counts:
        return ""
    listed = ", ".join(f"{html.escape(policy)} {count}" for policy, count in counts)
    return (
        f"<p class='note'>Constraint violations (jobs that ran on a GPU model, memory or "
        f"country they do not accept; must be 0): {listed}.</p>"
    )
