"""Preemptive policies in the twin: rounds of ``round_s`` seconds (Gavel's 6 minutes).

At each round boundary the policy gets a snapshot and every job's progress
(:class:`~aifactories.scheduling.preemption.JobService`) and returns a plan: the running jobs
to stop and the ordinary policy that places the rest. The driver preempts (each stopped run
is charged for the time it ran and keeps the work it did), takes a fresh snapshot and runs
the shared ``run_cycle`` with the plan's policy. Between rounds nothing is decided: a job
arriving mid-round waits for the next one, and GPUs a job frees mid-round stay idle until
then, as in Gavel's simulator.

Work is kept in seconds at reference speed: a run on a GPU model of speed ``v`` does ``v``
seconds of work per second, after ``restart_cost_s`` of warm-up each time the job starts
again after a preemption. Time limits do not end runs here (every run is at most a round or
two long, and Gavel and Tiresias have none); they still size budget reservations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aifactories.domain.ids import JobId, PartitionId
from aifactories.domain.jobs import JobState
from aifactories.scheduling.preemption import JobService, PreemptivePolicy
from aifactories.twin.engine import Priority

if TYPE_CHECKING:
    from aifactories.twin.simulation import Simulation, _Running


@dataclass
class Progress:
    """One job's life across its runs."""

    remaining_s: float  # work left, at reference speed
    first_start: float | None = None
    ran_s: float = 0.0  # wall seconds of finished runs
    gpu_seconds: float = 0.0  # of finished runs
    restarts: int = 0
    received_s: dict[PartitionId, float] = field(default_factory=dict)
    run_cost_s: float = 0.0  # warm-up of the current run
    energy_kwh: float = 0.0  # of preempted runs
    carbon_kg: float = 0.0


IDLE_ROUNDS = 100
"""Rounds in a row with no job running and no event to come after which a run ends."""


class RoundDriver:
    def __init__(self, simulation: Simulation, policy: PreemptivePolicy) -> None:
        self.sim = simulation
        self.policy = policy
        self.round_s = policy.round_s
        self.progress: dict[JobId, Progress] = {}
        self._next_round: float | None = None
        self._origin: float | None = None
        self.rounds = 0
        self._state: object = None  # the policy's own, handed back each round
        self._idle = 0  # rounds in a row with nothing running and nothing to come

    # -- timing ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (an arrival, an end): make sure a round is coming."""
        if self._next_round is not None:
            return
        now = self.sim.engine.clock.now()
        if self._origin is None:
            self._origin = now
        elapsed = now - self._origin
        boundary = self._origin + -(-elapsed // self.round_s) * self.round_s
        self._next_round = boundary
        self.sim.engine.schedule(boundary, Priority.CYCLE, self._round, "round")

    def _round(self) -> None:
        sim = self.sim
        now = sim.engine.clock.now()
        self._next_round = None
        self.rounds += 1
        if sim._pending or sim._running:
            snapshot = sim.snapshot(now)
            service = self._service(now)
            plan = self.policy.plan_round(
                snapshot, list(sim._pending.values()), service, now, self._state
            )
            self._state = plan.state
            for job_id in sorted(plan.preempt):
                self._preempt(sim._running[job_id], now)
            sim._decide(sim.snapshot(now), plan.policy, now)
        sim._sample(now)
        # Nothing running, nothing else to come (arrivals, outages): the jobs left cannot run
        # (too big for every partition, say). A policy may idle a round on purpose (Gavel), so
        # give it many such rounds before the run ends and reports them never started.
        self._idle = self._idle + 1 if not sim._running and not len(sim.engine) else 0
        if (sim._pending or sim._running) and self._idle < IDLE_ROUNDS:
            self._next_round = now + self.round_s
            sim.engine.schedule(self._next_round, Priority.CYCLE, self._round, "round")

    # -- what the plan sees ----------------------------------------------------------------

    def _service(self, now: float) -> dict[JobId, JobService]:
        sim = self.sim
        models = sorted({p.gpu_model for s in sim.sites.values() for p in s.partitions})
        service: dict[JobId, JobService] = {}
        for job_id, pending in sim._pending.items():
            job = sim._trace_job[job_id]
            progress = self.progress_of(job_id, job.runtime_s)
            service[job_id] = JobService(
                gpus=pending.spec.gpus,
                submitted_at=pending.submitted_at,
                attained_gpu_seconds=progress.gpu_seconds,
                received_s=dict(progress.received_s),
                speeds={m: sim.speed(job, m) for m in models},
                remaining_s=progress.remaining_s,
            )
        for job_id, run in sim._running.items():
            progress = self.progress_of(job_id, run.job.runtime_s)
            elapsed = now - run.started
            gpus = run.placement.shape.allocated_gpus
            received = dict(progress.received_s)
            where = run.placement.partition_id
            received[where] = received.get(where, 0.0) + elapsed
            service[job_id] = JobService(
                gpus=run.pending.spec.gpus,
                submitted_at=run.pending.submitted_at,
                attained_gpu_seconds=progress.gpu_seconds + gpus * elapsed,
                received_s=received,
                speeds={m: sim.speed(run.job, m) for m in models},
                remaining_s=max(0.0, progress.remaining_s - self._work(run, elapsed)),
                running_on=where,
            )
        return service

    def progress_of(self, job_id: JobId, runtime_s: float) -> Progress:
        progress = self.progress.get(job_id)
        if progress is None:
            progress = self.progress[job_id] = Progress(remaining_s=runtime_s)
        return progress

    # -- acting ----------------------------------------------------------------------------

    def runtime(self, job_id: JobId, run_job_runtime_s: float, speed: float, now: float) -> float:
        """How long a run starting now lasts if nobody stops it: warm-up, then the work left."""
        progress = self.progress_of(job_id, run_job_runtime_s)
        if progress.first_start is None:
            progress.first_start = now
            progress.run_cost_s = 0.0
        else:
            progress.run_cost_s = self.sim.setup.restart_cost_s
        return progress.run_cost_s + progress.remaining_s / speed

    def _work(self, run: _Running, elapsed: float) -> float:
        progress = self.progress[run.pending.id]
        return max(0.0, elapsed - progress.run_cost_s) * self.sim.speed(run.job, run.gpu_model)

    def _preempt(self, run: _Running, now: float) -> None:
        sim = self.sim
        job_id = run.pending.id
        elapsed = now - run.started
        progress = self.progress[job_id]
        progress.remaining_s = max(0.0, progress.remaining_s - self._work(run, elapsed))
        self._account(run, elapsed)
        progress.restarts += 1
        energy, carbon = sim._stop(run, now, elapsed, JobState.CANCELLED, "preempted")
        progress.energy_kwh += energy
        progress.carbon_kg += carbon

    def _account(self, run: _Running, elapsed: float) -> None:
        progress = self.progress[run.pending.id]
        progress.ran_s += elapsed
        progress.gpu_seconds += run.placement.shape.allocated_gpus * elapsed
        where = run.placement.partition_id
        progress.received_s[where] = progress.received_s.get(where, 0.0) + elapsed

    def finished(self, run: _Running) -> Progress:
        """The job's last run ended: its whole life, for the result."""
        self._account(run, run.runtime)
        return self.progress.pop(run.pending.id)

    def restart_from_scratch(self, job_id: JobId, runtime_s: float) -> None:
        """An outage lost the job: its work is gone, it starts over."""
        progress = self.progress_of(job_id, runtime_s)
        progress.remaining_s = runtime_s
