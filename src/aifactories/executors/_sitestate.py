"""The emulated site's books on disk: its live jobs, their nodes, and the lock around them.

Layout of a site's ``state_dir``::

    lock              fcntl lock: one caller (thread or process) changes the site at a time
    state.json        next job id and every live job (queued, starting, running), atomically
                      replaced; finished jobs leave it, so its size follows the live load
    runs.log          one line per job start, appended by the runners
    tags/<tag>        the site job id last submitted with that tag (written before any start)
    jobs/<id>/        a job's files: the runner protocol (see runner.py), output.log (the
                      runner's notes when the job's own files cannot be opened), work/ (the
                      job's folder, with its output files), and status.json once it is final
    bin/              srun for the jobs (see _confine.py)

Node assignments live in the job records (their ``grants``); the node pools are rebuilt from
them, so nothing stores a per-node list.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from aifactories.domain.errors import ProtocolError
from aifactories.domain.jobs import JobState, Shape
from aifactories.executors.base import SiteJobStatus
from aifactories.executors.nodes import Grants, NodeGrant
from aifactories.executors.runner import atomic_write_json, read_json

STATE_VERSION = 1

Phase = Literal["queued", "starting", "running"]
_PHASES = ("queued", "starting", "running")
_PLAIN_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


@dataclass(slots=True)
class JobRecord:
    """A live job of the emulated site. ``started_at`` is in the injected clock's time."""

    id: str
    tag: str
    partition: str
    shape: Shape
    time_limit_s: int
    submitted_at: float
    name: str = "job"
    account: str = ""
    user: str = ""
    command: tuple[str, ...] = ()
    workdir: str | None = None
    runtime_s: int | None = None
    phase: Phase = "queued"
    grants: Grants = ()
    started_at: float | None = None
    time_factor: float = 1.0
    runner_pid: int | None = None
    runner_start: int | None = None
    # What the job looks like to itself, as Slurm would show it (see _slurmlike.py): the
    # platform's job id (SLURM_JOB_ID), its tasks, memory and batch options
    # (BatchOptions.as_dict()). Records written before these existed get the defaults.
    job_id: str = ""
    gpu_model: str = ""
    ntasks: int = 1
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_per_node_mb: int | None = None
    mem_per_gpu_mb: int | None = None
    batch: dict[str, Any] = field(default_factory=dict)
    # where the runner opened the job's standard output and error (streams.json)
    output_path: str | None = None
    error_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict: the books of a busy site (a job array's thousand
        # tasks) are written at every submit, and asdict's deep copies cost most of it.
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        shape = self.shape
        data["shape"] = {
            "nodes": shape.nodes,
            "gpus_per_node": shape.gpus_per_node,
            "exclusive": shape.exclusive,
        }
        data["grants"] = [[g.node, list(g.gpus)] for g in self.grants]
        data["command"] = list(self.command)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        fields = dict(data)
        fields["shape"] = Shape(**fields["shape"])
        fields["grants"] = tuple(NodeGrant(int(n), tuple(gpus)) for n, gpus in fields["grants"])
        fields["command"] = tuple(fields["command"])
        if fields["phase"] not in _PHASES:
            raise ValueError(f"unknown phase {fields['phase']!r}")
        return cls(**fields)


_RECORD_FIELDS = tuple(f.name for f in fields(JobRecord))


@dataclass(slots=True)
class SiteState:
    site_id: str
    next_id: int = 1
    jobs: dict[str, JobRecord] = field(default_factory=dict)  # in submission order
    dirty: bool = False

    def new_id(self) -> str:
        job_id = str(self.next_id)
        self.next_id += 1
        self.dirty = True
        return job_id


class SiteFiles:
    """Paths and file operations of one site's ``state_dir`` (callers translate OSError)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state.json"
        self.lock = root / "lock"
        self.runs_log = root / "runs.log"
        self.tags = root / "tags"
        self.jobs = root / "jobs"

    def create(self) -> None:
        self.tags.mkdir(parents=True, exist_ok=True)
        self.jobs.mkdir(parents=True, exist_ok=True)

    def job_dir(self, site_job_id: str) -> Path:
        if not site_job_id.isdigit():  # never let an id walk out of jobs/
            raise ProtocolError(f"{site_job_id!r} is not a job id of an emulated site")
        return self.jobs / site_job_id

    @contextmanager
    def locked(self) -> Iterator[None]:
        # A fresh descriptor per call: flock locks belong to the open file description, so
        # two threads of one process exclude each other as two processes do.
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def load(self, site_id: str) -> SiteState:
        raw = read_json_checked(self.state)
        if raw is None:
            # A new site, or one whose books were lost: never hand out an id twice.
            used = [int(entry.name) for entry in self.jobs.iterdir() if entry.name.isdigit()]
            return SiteState(site_id, max(used, default=0) + 1)
        try:
            if raw["version"] != STATE_VERSION:
                raise ValueError(f"state version {raw['version']}, expected {STATE_VERSION}")
            if raw["site"] != site_id:
                raise ValueError(f"it belongs to site {raw['site']!r}, not {site_id!r}")
            jobs = (JobRecord.from_json(item) for item in raw["jobs"])
            return SiteState(site_id, int(raw["next_id"]), {job.id: job for job in jobs})
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"emulated site state {self.state} is invalid: {exc}") from exc

    def save(self, state: SiteState) -> None:
        data = {
            "version": STATE_VERSION,
            "site": state.site_id,
            "next_id": state.next_id,
            "jobs": [job.to_json() for job in state.jobs.values()],
        }
        atomic_write_json(self.state, data)
        state.dirty = False

    # -- tags and final statuses -----------------------------------------------------------

    def tag_path(self, tag: str) -> Path:
        # Plain tags (aif-123) name their file; anything else is hashed, behind a '%' that no
        # plain tag contains, so the two can never collide.
        if _PLAIN_TAG.fullmatch(tag):
            return self.tags / tag
        return self.tags / ("%" + hashlib.sha256(tag.encode()).hexdigest())

    def write_tag(self, tag: str, site_job_id: str) -> None:
        atomic_write_json(self.tag_path(tag), {"tag": tag, "id": site_job_id})

    def read_tag(self, tag: str) -> str | None:
        data = read_json_checked(self.tag_path(tag))
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ProtocolError(f"tag file for {tag!r} is invalid")
        return data["id"] if data.get("tag") == tag else None

    def write_final(self, status: SiteJobStatus) -> None:
        data = asdict(status)
        data["state"] = status.state.value
        atomic_write_json(self.job_dir(status.site_job_id) / "status.json", data)

    def read_final(self, site_job_id: str) -> SiteJobStatus | None:
        data = read_json_checked(self.job_dir(site_job_id) / "status.json")
        if data is None:
            return None
        try:
            data["state"] = JobState(data["state"])
            return SiteJobStatus(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"final status of job {site_job_id} is invalid: {exc}") from exc


def read_json_checked(path: Path) -> Any:
    """Like :func:`read_json`, but a torn or foreign file is a ProtocolError."""
    try:
        return read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path} is not valid JSON: {exc}") from exc
