"""The emulated site forgets old jobs: a job that ended longer ago than the output retention
(``job_output_retention_s``, docs/job-output.md) loses its directory and its own folder,
which hold its output files (the runner writes them in the job's own folder).

Why here: the emulated site is the only place that knows where each job's folders are (its
``request.json``), it already takes its lock at every call, and a site with no platform
calling it has no output to serve either. A sweep runs at most once an hour, in the call
that finds it due. The platform stops serving an expired job's output at the same moment
(the API's 410), whatever the site.

Nothing a job made is followed: ``shutil.rmtree`` on Linux walks by descriptors and never
through a link, and the job's own folder is deleted only where the site makes such folders
(the job's directory, or the scratch folder in user mode).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from aifactories.executors._output import job_folders
from aifactories.executors._sitestate import SiteFiles
from aifactories.executors.isolation import JobIsolation
from aifactories.executors.runner import read_json

DEFAULT_RETENTION_S = 30 * 86400.0
SWEEP_EVERY_S = 3600.0


class OutputSweep:
    """Call :meth:`maybe` under the site lock; it sweeps when an hour has passed."""

    def __init__(self, files: SiteFiles, isolation: JobIsolation, retention_s: float) -> None:
        if not retention_s > 0:
            raise ValueError(f"the output retention must be positive, not {retention_s}")
        self.files = files
        self.isolation = isolation
        self.retention_s = retention_s
        self._next_at: float | None = None

    def maybe(self, now: float) -> list[str]:
        if self._next_at is not None and now < self._next_at:
            return []
        self._next_at = now + SWEEP_EVERY_S
        return sweep(self.files, self.isolation, now, self.retention_s)


def sweep(files: SiteFiles, isolation: JobIsolation, now: float, retention_s: float) -> list[str]:
    """Delete the files of the jobs that ended before ``now - retention_s``; their ids."""
    try:
        ids = sorted((e.name for e in files.jobs.iterdir() if e.name.isdigit()), key=int)
    except FileNotFoundError:
        return []
    # The newest job's directory stays: a site that lost state.json numbers its next job
    # after the highest directory (SiteFiles.load), and must never give an id out twice.
    swept: list[str] = []
    for site_job_id in ids[:-1]:
        job_dir = files.jobs / site_job_id
        try:
            final = read_json(job_dir / "status.json")
        except ValueError:
            continue  # being written: not old
        ended = final.get("ended_at") if isinstance(final, dict) else None
        if not isinstance(ended, int | float) or now - ended <= retention_s:
            continue  # live (no final status yet), or still kept
        work = job_folders(job_dir).work
        if work is not None and _made_by_the_site(work[1], job_dir, isolation):
            shutil.rmtree(work[1], ignore_errors=True)
        tag = final.get("tag")
        if isinstance(tag, str) and files.read_tag(tag) == site_job_id:
            with contextlib.suppress(FileNotFoundError):
                files.tag_path(tag).unlink()
        shutil.rmtree(job_dir, ignore_errors=True)
        swept.append(site_job_id)
    return swept


def _made_by_the_site(work: Path, job_dir: Path, isolation: JobIsolation) -> bool:
    if os.path.islink(work) or not work.is_dir():
        return False
    parent = Path(os.path.realpath(work.parent))
    if parent == Path(os.path.realpath(job_dir)):
        return True
    scratch = isolation.scratch_dir
    return scratch is not None and parent == Path(os.path.realpath(scratch))
