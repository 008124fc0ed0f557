"""The executor contract: submit, cancel, poll, capacity; plus find_by_tag for adoption."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from aifactories.domain.ids import JobId, SiteId
from aifactories.domain.jobs import JobSpec, JobState, Shape
from aifactories.domain.sites import Partition

TAG_PREFIX = "aif-"


def job_tag(job_id: int, instance: str = "") -> str:
    """The tag that travels with a job to its site, so a restarted broker can find it.

    ``instance`` is the platform's own id (kept in its database): two platforms sharing a
    site (production and staging, or two test runs) never take each other's jobs."""
    return f"{TAG_PREFIX}{instance}-{job_id}" if instance else f"{TAG_PREFIX}{job_id}"


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    job_id: JobId
    tag: str
    partition: Partition
    shape: Shape
    spec: JobSpec
    account: str  # the project's code: the Slurm account at real sites
    user: str


@dataclass(frozen=True, slots=True)
class SiteJobStatus:
    """A job as its site reports it. ``state`` is already mapped onto the job state machine:
    queued at the site -> SUBMITTED, started -> RUNNING, then a final state.
    ``elapsed_s`` is site time (what is charged)."""

    site_job_id: str
    tag: str
    state: JobState
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float = 0.0
    exit_code: int | None = None
    reason: str | None = None
    allocated_gpus: int = 0
    # where the site writes the job's standard output and error, once it knows (the broker
    # keeps them on the job, so output stays readable after the site forgets the job)
    output_path: str | None = None
    error_path: str | None = None


OutputStream = Literal["output", "error"]


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """Bytes of a job's output file from ``offset``; ``size`` is the file's size now."""

    data: bytes
    offset: int
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class PartitionCapacity:
    """``free_nodes_by_free_gpus[k]``: nodes with exactly ``k`` free GPUs (see Snapshot)."""

    partition_name: str
    free_nodes_by_free_gpus: tuple[int, ...]


@runtime_checkable
class Executor(Protocol):
    """One site back-end. Every method may raise SiteUnavailable or ProtocolError;
    ``submit`` may raise SubmissionRejected with the site's own reason."""

    site_id: SiteId

    def submit(self, request: SubmitRequest) -> str:
        """Hand the job to the site; return the site's job id."""
        ...

    def cancel(self, site_job_id: str) -> None:
        """Ask the site to stop the job. Cancelling a finished or unknown job is not an error."""
        ...

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        """Status of the given jobs; a job the site no longer knows is absent from the result."""
        ...

    def capacity(self) -> list[PartitionCapacity]:
        """Free GPUs per partition now, as a histogram of nodes by free GPUs."""
        ...

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        """The job carrying this tag, if the site has it: lets a restarted broker adopt it."""
        ...

    def read_output(
        self,
        site_job_id: str,
        stream: OutputStream,
        offset: int,
        limit: int,
        known_path: str | None = None,
    ) -> OutputChunk | None:
        """Up to ``limit`` bytes of the job's standard output (or error) from ``offset``, read
        where the site keeps it; ``known_path`` is the path the site reported earlier. None
        if the file does not exist (not yet, or no more). Never follows a link the job made
        and never reads a file the job's user could not have written."""
        ...

    def close(self) -> None:
        """Release resources (connections, files). The site's jobs keep running."""
        ...
