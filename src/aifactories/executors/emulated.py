"""The emulated site: a small Slurm-like site that runs real processes and keeps running alone.

Every job runs in a detached runner process (see :mod:`aifactories.executors.runner`); the
site's books live in ``state_dir`` (see :mod:`aifactories.executors._sitestate`). There is no
daemon: each call (submit, cancel, poll, capacity, find_by_tag) takes the site lock, notices
runners that ended, frees their GPUs, starts queued jobs in FIFO order, and saves the books.
So a platform process may be SIGKILLed at any moment: a new executor on the same
``state_dir`` finds the same jobs, nodes and queue, and a job is never started twice because
its runner must first create the job's ``claim`` file, which only one process ever can.

``time_factor`` f fast-forwards the site: a job's time limit and a sleep-job's runtime pass
in 1/f of the real time, and elapsed times are reported in site time (real elapsed x f).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aifactories.domain.clock import Clock
from aifactories.domain.errors import (
    ExecutorError,
    InvalidInput,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.jobs import JobState
from aifactories.domain.logthrottle import clip
from aifactories.domain.sites import Partition, Site
from aifactories.executors import _launch, _slurmlike
from aifactories.executors._output import read_emulated_output
from aifactories.executors._output_sweep import DEFAULT_RETENTION_S, OutputSweep
from aifactories.executors._sitestate import JobRecord, SiteFiles, SiteState
from aifactories.executors._status import OUTCOMES, final_status, live_status, queue_positions
from aifactories.executors.base import (
    OutputChunk,
    OutputStream,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
)
from aifactories.executors.isolation import (
    JobIsolation,
    prepare_scratch_dir,
    resolve_isolation,
)
from aifactories.executors.nodes import NodePool, never_fits
from aifactories.executors.runner import read_json


class _Session:
    """One locked look at the site: its state plus node pools rebuilt from the jobs."""

    def __init__(self, state: SiteState, pools: dict[str, NodePool]) -> None:
        self.state = state
        self.pools = pools


class EmulatedExecutor:
    """The site back-end of the embedded default. See the module docstring.

    ``kill_grace_s`` is the real time a cancelled or timed-out command gets between SIGTERM
    and SIGKILL (Slurm's KillWait); ``python`` runs the runner script. ``isolation`` says
    how jobs are kept away from the platform (default: the strongest this machine allows,
    see :func:`~aifactories.executors.isolation.resolve_isolation`, which refuses when
    there is none); ``state_dir`` is always among its protected folders.
    """

    def __init__(
        self,
        site: Site,
        state_dir: Path | str,
        clock: Clock,
        time_factor: float = 1.0,
        *,
        kill_grace_s: float = 5.0,
        python: str = sys.executable,
        isolation: JobIsolation | None = None,
        output_retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        if not time_factor > 0:
            raise InvalidInput("time_factor", f"must be positive, not {time_factor}")
        root = Path(state_dir)
        if isolation is None:
            isolation = resolve_isolation("auto")
        self.isolation = isolation.with_protected(root)
        self.site_id = site.id
        self.site = site
        self.time_factor = float(time_factor)
        self.kill_grace_s = kill_grace_s
        self._clock = clock
        self._python = python
        self._partitions: dict[str, Partition] = {p.name: p for p in site.partitions}
        self._files = SiteFiles(root)
        # ended jobs' folders (and output) go after the retention (_output_sweep.py)
        self._sweep = OutputSweep(self._files, self.isolation, output_retention_s)
        with self._guard():
            self._files.create()
            root.chmod(0o700)  # the site's books and every job's files: the platform's only
            if self.isolation.scratch_dir is not None:  # user mode: refuse a foreign one now
                prepare_scratch_dir(self.isolation.scratch_dir)

    # -- the contract ----------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        (outcome,) = self.submit_many([request])
        if isinstance(outcome, ExecutorError):
            raise outcome
        return outcome

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | ExecutorError]:
        """Submit several jobs under one lock: one look at the books, one save, and their
        runners launched together (a job array's tasks arrive so). Each request's outcome in
        order: the site's job id, or the error that refused that job alone."""
        outcomes: list[str | ExecutorError] = []
        with self._session() as session:
            for request in requests:
                try:
                    outcomes.append(self._record(session, request))
                except SubmissionRejected as exc:
                    outcomes.append(exc)
            self._schedule(session)
        return outcomes

    def _record(self, session: _Session, request: SubmitRequest) -> str:
        partition = self._check(request)
        spec = request.spec
        command = spec.command
        site_job_id = session.state.new_id()
        job_dir = self._files.job_dir(site_job_id)
        job_dir.mkdir(exist_ok=True)  # may exist if a submit crashed before saving
        if not command and spec.script is not None:
            # A batch script runs as sbatch's would: its #SBATCH lines are comments.
            script = job_dir / "script.sh"
            script.write_text(spec.script, encoding="utf-8")
            command = ("/bin/sh", str(script))
        # The tag is on disk before the job can start, so a broker that crashed between
        # this submit and its own commit can adopt the job with find_by_tag.
        self._files.write_tag(request.tag, site_job_id)
        session.state.jobs[site_job_id] = JobRecord(
            id=site_job_id,
            tag=request.tag,
            partition=partition.name,
            shape=request.shape,
            time_limit_s=spec.time_limit_s,
            submitted_at=self._clock.now(),
            name=spec.name,
            account=request.account,
            user=request.user,
            command=tuple(command),
            workdir=spec.workdir,
            runtime_s=spec.runtime_s,
            time_factor=self.time_factor,
            **_slurmlike.record_fields(request, partition),
        )
        return site_job_id

    def cancel(self, site_job_id: str) -> None:
        with self._session() as session:
            job = session.state.jobs.get(site_job_id)
            if job is not None:
                _launch.stop(self._files, job)
                self._finish(session, job, JobState.CANCELLED, None, "cancelled", None)
                self._schedule(session)

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        result: dict[str, SiteJobStatus] = {}
        with self._session() as session:
            ahead = queue_positions(list(session.state.jobs.values()))
            now = self._clock.now()
            for site_job_id in site_job_ids:
                if not site_job_id.isdigit():
                    continue  # not an id this site ever gave out
                job = session.state.jobs.get(site_job_id)
                if job is not None:
                    if _slurmlike.load_stream_paths(job, self._files.job_dir(job.id)):
                        session.state.dirty = True
                    gpn = self._partitions[job.partition].gpus_per_node
                    result[site_job_id] = live_status(job, gpn, ahead.get(job.id, 0), now)
                    continue
                final = self._files.read_final(site_job_id)
                if final is not None:
                    result[site_job_id] = final
        return result

    def capacity(self) -> list[PartitionCapacity]:
        with self._session() as session:
            pools = session.pools
            return [PartitionCapacity(name, pool.histogram()) for name, pool in pools.items()]

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        with self._guard():
            site_job_id = self._files.read_tag(tag)
        if site_job_id is None:
            return None
        status = self.poll([site_job_id]).get(site_job_id)
        # A tag written by a submit that crashed before saving may point at a reused id.
        return status if status is not None and status.tag == tag else None

    def read_output(
        self,
        site_job_id: str,
        stream: OutputStream,
        offset: int,
        limit: int,
        known_path: str | None = None,
    ) -> OutputChunk | None:
        """No site lock: the file is read through its own descriptor (see _output.py)."""
        with self._guard():
            job_dir = self._files.job_dir(site_job_id)
            return read_emulated_output(
                job_dir,
                stream,
                offset,
                limit,
                known_path or _slurmlike.reported_stream_path(job_dir, stream),
                protected=self.isolation.protected,
                hidden_files=self.isolation.hidden_files,
            )

    def close(self) -> None:
        """Nothing to release: no descriptor outlives a call, and the runners are detached."""

    # -- extras for operators and tests ----------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self._files.root

    def job_dir(self, site_job_id: str) -> Path:
        """The job's directory: runner protocol files, ``output.log``, ``work/``."""
        return self._files.job_dir(site_job_id)

    def output_path(self, site_job_id: str) -> Path:
        """The file that receives the job's standard output (by default its error too): the
        one the runner opened (``slurm-<job id>.out`` in its folder unless the job named
        another), else the runner's own notes (``output.log``)."""
        job_dir = self._files.job_dir(site_job_id)
        return Path(_slurmlike.reported_stream_path(job_dir, "output") or job_dir / "output.log")

    @property
    def runs_log(self) -> Path:
        """One line ``<site job id>\\t<tag>\\t<runner pid>`` per job start."""
        return self._files.runs_log

    def starts(self) -> dict[str, int]:
        """How many times each job was started: 1 for every job that ran, never 2."""
        counts: dict[str, int] = {}
        with self._guard():
            try:
                lines = self._files.runs_log.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                lines = []
        for line in lines:
            site_job_id = line.split("\t", 1)[0]
            counts[site_job_id] = counts.get(site_job_id, 0) + 1
        return counts

    # -- the site's own scheduling ---------------------------------------------------------

    def _check(self, request: SubmitRequest) -> Partition:
        """The partition the request names, or SubmissionRejected with the site's reason."""
        partition = self._partitions.get(request.partition.name)
        where = f"{self.site_id}/{request.partition.name}"
        reason: str | None
        if partition is None:
            known = ", ".join(sorted(self._partitions)) or "none"
            reason = f"no partition {request.partition.name!r} at {self.site_id} (known: {known})"
        else:
            reason = never_fits(request.shape, partition.nodes, partition.gpus_per_node)
            if reason is None and request.spec.time_limit_s <= 0:
                reason = f"the time limit must be positive, not {request.spec.time_limit_s} s"
        if reason is not None or partition is None:
            reason = reason or "unknown partition"
            raise SubmissionRejected(f"{where} rejected job {request.job_id}: {reason}", reason)
        return partition

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Translate OS errors at the boundary: the site's disk is the site's controller."""
        try:
            yield
        except ExecutorError:
            raise
        except OSError as exc:
            raise SiteUnavailable(f"emulated site {self.site_id}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            # A runner file without the field it must have (or not JSON at all).
            raise ProtocolError(
                f"emulated site {self.site_id}: unreadable job files: {exc!r}"
            ) from exc

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        with self._guard(), self._files.locked():
            state = self._files.load(self.site_id)
            session = _Session(state, self._pools(state))
            self._reconcile(session)
            self._schedule(session)
            self._sweep.maybe(self._clock.now())
            yield session
            if state.dirty:
                self._files.save(state)

    def _pools(self, state: SiteState) -> dict[str, NodePool]:
        pools = {name: NodePool(p.nodes, p.gpus_per_node) for name, p in self._partitions.items()}
        for job in list(state.jobs.values()):
            pool = pools.get(job.partition)
            try:
                if pool is None:
                    raise ValueError(f"partition {job.partition!r} is no longer at the site")
                pool.take(job.grants)
            except ValueError as exc:
                # The catalogue changed under a live job: it cannot keep its nodes.
                _launch.stop(self._files, job)
                status = final_status(
                    job, JobState.FAILED, None, f"node failure: {exc}", None, self._clock.now()
                )
                self._files.write_final(status)
                del state.jobs[job.id]
                state.dirty = True
        return pools

    def _reconcile(self, session: _Session) -> None:
        """Notice runners that ended (or died) and close their jobs."""
        for job in list(session.state.jobs.values()):
            if job.phase == "queued":
                continue
            job_dir = self._files.job_dir(job.id)
            end = read_json(job_dir / "end.json")
            if end is None and job.phase == "starting":
                self._adopt_or_relaunch(session, job)
                continue
            if end is None and _launch.runner_alive(job):
                continue
            if end is None:
                end = read_json(job_dir / "end.json")  # it may have ended just now
            if end is None:
                # The runner died without a word (killed, machine rebooted): like Slurm
                # after a node failure, the job failed and its processes go with it.
                _launch.kill_child(self._files, job)
                self._finish(session, job, JobState.FAILED, None, "node failure", None)
                continue
            outcome = OUTCOMES.get(str(end.get("outcome")))
            if outcome is None:
                raise ProtocolError(f"job {job.id}: the runner reported {end!r}")
            real = float(end.get("real_elapsed_s") or 0.0)
            self._finish(session, job, outcome, end.get("exit_code"), end.get("reason"), real)

    def _adopt_or_relaunch(self, session: _Session, job: JobRecord) -> None:
        """A job left 'starting' by a platform that died during the launch."""
        alive = _launch.launcher_alive(self._files, job)
        if alive is None and not _launch.adopt(self._files, job):
            # Never launched, or its launcher had not claimed it yet: launching again is
            # safe because only one launcher can ever claim the job.
            failed = _launch.spawn(self._python, self._files, [job])
            if job.id in failed:
                raise failed[job.id]  # the site cannot start processes: unavailable
            alive = _launch.launcher_alive(self._files, job)
        if _launch.adopt(self._files, job):
            session.state.dirty = True
        elif alive:
            pass  # a launcher of the dead platform is still starting it: look next call
        elif read_json(self._files.job_dir(job.id) / "end.json") is None:
            self._finish(session, job, JobState.FAILED, None, "node failure", None)
        # else: the runner ended before we saw it start; the next call closes the job

    def _schedule(self, session: _Session) -> None:
        """Start queued jobs, first come first served per partition (no backfill)."""
        to_launch: list[JobRecord] = []
        blocked: set[str] = set()
        for job in list(session.state.jobs.values()):  # a job that cannot start leaves it
            if job.phase != "queued" or job.partition in blocked:
                continue
            grants = session.pools[job.partition].allocate(job.shape)
            if grants is None:
                blocked.add(job.partition)  # nobody overtakes the head of the queue
                continue
            job.grants = grants
            job.phase = "starting"
            job.started_at = self._clock.now()
            try:
                _launch.write_request(
                    self._files, job, self.site_id, self.kill_grace_s, self.isolation
                )
            except (OSError, ValueError) as exc:  # one job's request, not the site
                self._finish(session, job, JobState.FAILED, None, _not_started(exc), 0.0)
                continue
            to_launch.append(job)
        if not to_launch:
            return
        # Persist 'starting' (with the nodes) before any process exists: a restart then
        # relaunches with the same request, and the runner's claim stops a second run.
        self._files.save(session.state)
        failed = _launch.spawn(self._python, self._files, to_launch)
        for job in to_launch:
            if job.id in failed:
                reason = _not_started(failed[job.id])
                self._finish(session, job, JobState.FAILED, None, reason, 0.0)
            else:
                _launch.adopt(self._files, job)
        session.state.dirty = True

    def _finish(
        self,
        session: _Session,
        job: JobRecord,
        state: JobState,
        exit_code: int | None,
        reason: str | None,
        real_elapsed_s: float | None,
    ) -> None:
        """Record the job's final status, then free its nodes and forget it (that order:
        a crash in between leaves a live job to close again, never a lost status)."""
        _slurmlike.load_stream_paths(job, self._files.job_dir(job.id))
        status = final_status(job, state, exit_code, reason, real_elapsed_s, self._clock.now())
        self._files.write_final(status)
        if job.phase != "queued":
            session.pools[job.partition].release(job.grants)
        del session.state.jobs[job.id]
        session.state.dirty = True


# Failures of the site's machine itself: every job would meet them, so the site is unavailable.
_SITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EMFILE, errno.ENFILE}
    | {errno.ENOMEM, errno.EAGAIN}
)


def _not_started(exc: OSError | ValueError) -> str:
    """Why one job could not be started, for its owner: any other OS error while preparing or
    launching it (a working folder the OS refuses, say) is about that job, which fails alone.
    The machine's own failures are raised again (``_guard``: SiteUnavailable)."""
    if isinstance(exc, OSError) and exc.errno in _SITE_ERRNOS:
        raise exc
    what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    path = getattr(exc, "filename", None)
    where = f" ({clip(path, 120)})" if path else ""
    return f"not started: {clip(what)}{where}; check the job's workdir and command"
