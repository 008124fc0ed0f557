"""Transformations of a whole trace, each stated in the report of a run that uses it."""

from __future__ import annotations

import dataclasses
import math

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.model import Trace


def scale_load(trace: Trace, load: float) -> Trace:
    """The same jobs arriving ``load`` times as fast: every submit time divided by ``load``.

    The usual way to replay a log at a higher (or lower) offered load while keeping its job
    sizes, runtimes and arrival pattern (Feitelson, "Workload Modeling", ch. 9). A load of
    1.0 returns the trace unchanged.
    """
    if not (math.isfinite(load) and 0 < load <= 100):
        raise InvalidInput("load", f"{load}", limit="above 0, at most 100")
    if load == 1.0:
        return trace
    jobs = tuple(dataclasses.replace(job, submit_s=job.submit_s / load) for job in trace.jobs)
    notes = dict(trace.notes)
    notes[f"arrivals scaled to load {load:g}"] = len(jobs)
    return dataclasses.replace(trace, jobs=jobs, notes=tuple(sorted(notes.items())))
