"""An in-memory, scriptable site for the broker's unit tests.

It enforces node capacity like the emulated site (same :mod:`~aifactories.executors.nodes`
helper), queues what does not fit and starts it first come first served, and lets a test
script everything else::

    site = MockExecutor(site_def, clock)
    job = site.submit(request)            # RUNNING at once if it fits (auto_start)
    site.finish(job, elapsed_s=120)       # COMPLETED after 120 site seconds
    site.fail_next_submit(SiteUnavailable("down"))
    site.available = False                # every call raises SiteUnavailable
    site.fail_all()                       # the site crashed: every job ends FAILED
    site.resize("gpu", 1)                 # the partition now has 1 node (busy ones drain)
    site.calls                            # [("submit", "aif-1"), ("poll", ("1",)), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from aifactories.domain.clock import Clock, ManualClock
from aifactories.domain.errors import ExecutorError, SiteUnavailable, SubmissionRejected
from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Partition, Site
from aifactories.executors.base import (
    OutputChunk,
    OutputStream,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
)
from aifactories.executors.nodes import Grants, NodePool, gpus_needed, held_gpus, never_fits


@dataclass(slots=True)
class MockJob:
    request: SubmitRequest
    status: SiteJobStatus
    grants: Grants = ()


class MockExecutor:
    """In-memory site. ``auto_start`` False leaves fitting jobs queued until :meth:`start`."""

    def __init__(
        self,
        site: Site,
        clock: Clock | None = None,
        *,
        auto_start: bool = True,
        record_calls: bool = True,
    ) -> None:
        self.site_id = site.id
        self.site = site
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.auto_start = auto_start
        self.available = True
        self.closed = False
        # The twin drives hundreds of thousands of calls: it turns the call log off.
        self.record_calls = record_calls
        self.calls: list[tuple[str, object]] = []
        self.jobs: dict[str, MockJob] = {}
        # Queued jobs in submission order, so starting them does not walk every job ever seen.
        self._queued: dict[str, MockJob] = {}
        self._partitions: dict[str, Partition] = {p.name: p for p in site.partitions}
        self._pools = {p.name: NodePool(p.nodes, p.gpus_per_node) for p in site.partitions}
        self._next_id = 1
        self._submit_failures: list[ExecutorError] = []
        self._lost_replies = 0
        # (site job id, stream) -> what the job wrote; see write_output
        self.outputs: dict[tuple[str, str], bytearray] = {}

    # -- scripting -------------------------------------------------------------------------

    def fail_next_submit(self, error: ExecutorError) -> None:
        """The next submit raises ``error`` and the site does not get the job."""
        self._submit_failures.append(error)

    def reject_next_submit(self, reason: str = "rejected by the mock site") -> None:
        self.fail_next_submit(
            SubmissionRejected(f"{self.site_id} rejected the job: {reason}", reason)
        )

    def unavailable_next_submit(self) -> None:
        self.fail_next_submit(SiteUnavailable(f"{self.site_id} is unreachable (scripted)"))

    def lose_next_submit_reply(self) -> None:
        """The next submit reaches the site (the job exists, with its tag) but the caller sees
        SiteUnavailable: what find_by_tag adoption is for."""
        self._lost_replies += 1

    def start(self, site_job_id: str) -> SiteJobStatus:
        """Start a queued job now; raises ValueError if its GPUs are not free."""
        job = self.jobs[site_job_id]
        if job.status.state is not JobState.SUBMITTED:
            raise ValueError(f"job {site_job_id} is {job.status.state.value}, not queued")
        grants = self._pools[job.request.partition.name].allocate(job.request.shape)
        if grants is None:
            raise ValueError(f"job {site_job_id} does not fit the free GPUs now")
        self._run(job, grants)
        return job.status

    def finish(
        self,
        site_job_id: str,
        state: JobState = JobState.COMPLETED,
        *,
        elapsed_s: float | None = None,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> SiteJobStatus:
        """End a job. ``elapsed_s`` defaults to the clock's time since its start."""
        if not state.final:
            raise ValueError(f"{state.value} is not a final state")
        job = self.jobs[site_job_id]
        if job.status.state.final:
            raise ValueError(f"job {site_job_id} already ended ({job.status.state.value})")
        self._end(job, state, elapsed_s, exit_code, reason)
        self._schedule()
        return job.status

    def fail_all(
        self, state: JobState = JobState.FAILED, *, reason: str = "node failure"
    ) -> list[str]:
        """End every job the site holds, queued or running, as a site outage does; return
        their site job ids. Running jobs are charged their clock time so far. Nothing queued
        starts in between: the whole site is lost at once."""
        if not state.final:
            raise ValueError(f"{state.value} is not a final state")
        ended = [i for i, job in self.jobs.items() if not job.status.state.final]
        for site_job_id in ended:
            self._end(self.jobs[site_job_id], state, None, None, reason)
        return ended

    def resize(self, partition_name: str, nodes: int) -> None:
        """The partition has ``nodes`` nodes from now on (see :meth:`NodePool.resize`):
        growth is immediate and starts queued jobs that now fit; a shrink drains busy nodes
        instead of killing their jobs. :attr:`site` and submit's checks follow the size."""
        if partition_name not in self._partitions:
            raise KeyError(f"no partition {partition_name!r} at {self.site_id}")
        self._pools[partition_name].resize(nodes)
        self._partitions[partition_name] = replace(self._partitions[partition_name], nodes=nodes)
        self.site = replace(
            self.site, partitions=tuple(self._partitions[p.name] for p in self.site.partitions)
        )
        self._schedule()

    def gpu_counts(self) -> tuple[int, int]:
        """``(busy, present)`` GPUs over the site's partitions: present counts the nodes
        that take work and those still draining after a shrink."""
        busy = sum(pool.busy_gpus() for pool in self._pools.values())
        present = sum(
            (pool.nodes + pool.draining_nodes()) * pool.gpus_per_node
            for pool in self._pools.values()
        )
        return busy, present

    def forget(self, site_job_id: str) -> None:
        """The site loses the job (poll stops reporting it), as after a site's reinstall."""
        job = self.jobs.pop(site_job_id)
        self._queued.pop(site_job_id, None)
        self._release(job)
        self._schedule()

    def discard(self, site_job_id: str) -> None:
        """Drop an ended job from memory (the twin, once it has read the job's end)."""
        job = self.jobs[site_job_id]
        if not job.status.state.final:
            raise ValueError(f"job {site_job_id} has not ended ({job.status.state.value})")
        del self.jobs[site_job_id]

    def status(self, site_job_id: str) -> SiteJobStatus:
        return self.jobs[site_job_id].status

    def write_output(self, site_job_id: str, data: bytes, stream: OutputStream = "output") -> str:
        """The job writes ``data`` to its output (or error); the site reports the file's
        path from now on. Returns the path."""
        job = self.jobs[site_job_id]
        path = f"/mock/{self.site_id}/{site_job_id}.{'out' if stream == 'output' else 'err'}"
        self.outputs.setdefault((site_job_id, stream), bytearray()).extend(data)
        if stream == "output":
            job.status = replace(job.status, output_path=path)
        else:
            job.status = replace(job.status, error_path=path)
        return path

    # -- the contract ----------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        self._call("submit", request.tag)
        if self._submit_failures:
            raise self._submit_failures.pop(0)
        partition = self._partitions.get(request.partition.name)
        reason = (
            f"no partition {request.partition.name!r} at {self.site_id}"
            if partition is None
            else never_fits(request.shape, partition.nodes, partition.gpus_per_node)
        )
        if reason is not None:
            raise SubmissionRejected(
                f"{self.site_id} rejected job {request.job_id}: {reason}", reason
            )
        site_job_id = str(self._next_id)
        self._next_id += 1
        status = SiteJobStatus(site_job_id, request.tag, JobState.SUBMITTED)
        self.jobs[site_job_id] = self._queued[site_job_id] = MockJob(request, status)
        self._schedule()
        if self._lost_replies:
            self._lost_replies -= 1
            raise SiteUnavailable(f"{self.site_id}: the reply to submit was lost (scripted)")
        return site_job_id

    def cancel(self, site_job_id: str) -> None:
        self._call("cancel", site_job_id)
        job = self.jobs.get(site_job_id)
        if job is None or job.status.state.final:
            return
        self.finish(site_job_id, JobState.CANCELLED, reason="cancelled")

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        self._call("poll", tuple(site_job_ids))
        result: dict[str, SiteJobStatus] = {}
        for site_job_id in site_job_ids:
            job = self.jobs.get(site_job_id)
            if job is not None:
                result[site_job_id] = self._current(job)
        return result

    def capacity(self) -> list[PartitionCapacity]:
        self._call("capacity", None)
        return [PartitionCapacity(name, pool.histogram()) for name, pool in self._pools.items()]

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        self._call("find_by_tag", tag)
        for job in reversed(self.jobs.values()):  # the latest submit with this tag wins
            if job.status.tag == tag:
                return self._current(job)
        return None

    def read_output(
        self,
        site_job_id: str,
        stream: OutputStream,
        offset: int,
        limit: int,
        known_path: str | None = None,
    ) -> OutputChunk | None:
        self._call("read_output", (site_job_id, stream))
        written = self.outputs.get((site_job_id, stream))
        if written is None:
            return None
        job = self.jobs.get(site_job_id)
        reported = None if job is None else job.status
        if known_path is None and reported is not None:
            known_path = reported.output_path if stream == "output" else reported.error_path
        data = bytes(written[offset : offset + limit])
        return OutputChunk(data=data, offset=offset, size=len(written), path=known_path or "")

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closed = True

    # -- internals -------------------------------------------------------------------------

    def _call(self, name: str, argument: object) -> None:
        if self.record_calls:
            self.calls.append((name, argument))
        if not self.available:
            raise SiteUnavailable(f"{self.site_id} is unavailable (scripted)")

    def _schedule(self) -> None:
        if not self.auto_start:
            return
        blocked: set[str] = set()
        for job in list(self._queued.values()):
            name = job.request.partition.name
            if job.status.state is not JobState.SUBMITTED or name in blocked:
                continue
            grants = self._pools[name].allocate(job.request.shape)
            if grants is None:
                blocked.add(name)  # first come first served: nobody overtakes the head
                continue
            self._run(job, grants)

    def _run(self, job: MockJob, grants: Grants) -> None:
        self._queued.pop(job.status.site_job_id, None)
        job.grants = grants
        job.status = replace(
            job.status,
            state=JobState.RUNNING,
            started_at=self.clock.now(),
            reason=None,
            allocated_gpus=held_gpus(grants),
        )

    def _end(
        self,
        job: MockJob,
        state: JobState,
        elapsed_s: float | None,
        exit_code: int | None,
        reason: str | None,
    ) -> None:
        now = self.clock.now()
        started = job.status.started_at
        if elapsed_s is None:
            elapsed_s = 0.0 if started is None else max(0.0, now - started)
        if exit_code is None and state is JobState.COMPLETED:
            exit_code = 0
        if reason is None and state is JobState.FAILED and exit_code is not None:
            reason = f"exit code {exit_code}"
        self._release(job)
        self._queued.pop(job.status.site_job_id, None)
        job.status = replace(
            job.status,
            state=state,
            ended_at=now,
            elapsed_s=elapsed_s if started is not None else 0.0,
            exit_code=exit_code,
            reason=reason,
        )

    def _release(self, job: MockJob) -> None:
        if job.grants:
            self._pools[job.request.partition.name].release(job.grants)
            job.grants = ()

    def _current(self, job: MockJob) -> SiteJobStatus:
        status = job.status
        if status.state is JobState.SUBMITTED:
            gpn = self._partitions[job.request.partition.name].gpus_per_node
            gpus = gpus_needed(job.request.shape, gpn)
            return replace(status, reason=f"queued at site: waiting for {gpus} free GPUs")
        if status.state is JobState.RUNNING and status.started_at is not None:
            return replace(status, elapsed_s=max(0.0, self.clock.now() - status.started_at))
        return status
