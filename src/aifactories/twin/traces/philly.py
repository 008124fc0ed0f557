"""Microsoft Philly per-job CSV, as shipped with the Pollux (OSDI'21) and Sia (SOSP'23) artifacts.

The file (``philly.csv``, 82,247 jobs from 15 virtual clusters, 2017-09-04 .. 2017-12-22) was
derived by the Pollux authors from Philly's ``cluster_job_log`` (Jeon et al., ATC'19; data
CC BY 4.0). Header ``timestamp,duration,num_gpus,gpu_time,cluster``; rows are not in time order.

=============  ===================  ====================================================
column         TraceJob field       mapping
=============  ===================  ====================================================
(row number)   job_id               data-row number, zero-padded to 6 digits ("000001")
timestamp      submit_s             ``YYYY-MM-DD HH:MM:SS`` read as UTC, minus the earliest
                                    accepted timestamp (kept as ``Trace.origin``)
duration       runtime_s            seconds (float)
num_gpus       gpus                 whole number
gpu_time       (checked only)       must equal duration x num_gpus (it does on every row)
cluster        group                hashed virtual-cluster id, e.g. ``6214e9``
=============  ===================  ====================================================

``nodes``, ``gpu_model``, ``user``, ``time_limit_s`` and ``recorded_wait_s`` are None: the file
has no placement, GPU type, user, request or start time. Pollux's generator treats the
timestamp as the submission time; so does this reader.

Skipped rows (counted in ``Trace.skip_reasons``): ``zero runtime`` (duration 0) and ``no GPU``
(num_gpus 0). The shipped file has none. ``limit`` keeps the first N accepted rows *in file
order*, which is not the N earliest jobs since the file is unsorted.
"""

from __future__ import annotations

from pathlib import Path

from aifactories.twin.traces._common import Collector, csv_rows, open_text
from aifactories.twin.traces.model import Trace, TraceJob

COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
_GPU_TIME_TOLERANCE = 1e-6


def read_philly(path: Path | str, *, limit: int | None = None) -> Trace:
    """Read a Philly per-job CSV into a :class:`Trace` (see the module docstring)."""
    path = Path(path)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for number, row in enumerate(csv_rows(path, stream, COLUMNS), start=1):
            if jobs.full:
                break
            submit = row.time("timestamp")
            duration = row.number("duration")
            gpus = row.integer("num_gpus")
            gpu_time = row.number("gpu_time")
            expected = duration * gpus
            if abs(gpu_time - expected) > _GPU_TIME_TOLERANCE * max(1.0, expected):
                raise row.error(
                    "gpu_time", f"{gpu_time:g} is not duration x num_gpus = {expected:g}"
                )
            if duration == 0:
                jobs.skip("zero runtime")
                continue
            if gpus == 0:
                jobs.skip("no GPU")
                continue
            jobs.add(
                row,
                TraceJob(
                    job_id=f"{number:06d}",
                    submit_s=submit,
                    runtime_s=duration,
                    gpus=gpus,
                    group=row.optional("cluster"),
                ),
            )
    return jobs.trace(path.name, path, rebase=True)
