"""Run a trace through the federation in virtual time with the production ``run_cycle``.

The twin shares the whole cycle with the broker, not an inner kernel (Armada's lesson): the
snapshot is built by the same :func:`~aifactories.scheduling.assemble.assemble_snapshot`, the
decisions come from the same :func:`~aifactories.scheduling.run_cycle` and policies, and the
virtual sites are the same :class:`~aifactories.executors.mock.MockExecutor` the broker's
tests drive, so capacity is enforced node by node exactly as there. Budgets move with the
ledger's own arithmetic. Only time differs: an event heap instead of the wall clock.

A cycle runs at every instant where jobs arrive or end (after those events), like a broker
that wakes on change. Everything but the measured cycle runtimes is deterministic.

The setup's events (:mod:`aifactories.twin.events`) disturb the federation, each followed by
a cycle at its instant. A :class:`~aifactories.twin.events.SiteOutage` takes its site out of
the snapshot, and the jobs running there are lost: their GPU time so far is charged (and
counted in ``lost_gpu_seconds`` and the energy and carbon), and they go back to the queue
with their original submission time, to restart from the beginning. A
:class:`~aifactories.twin.events.CapacityChange` resizes the site's node pool (busy nodes
drain, see :meth:`~aifactories.executors.nodes.NodePool.resize`), and the snapshot shows the
partition at its new size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from aifactories.domain.clock import stopwatch
from aifactories.domain.ids import JobId, PartitionId, ProjectId, SiteId, UserId
from aifactories.domain.jobs import ActiveJob, JobSpec, JobState, PendingJob
from aifactories.domain.sites import Site
from aifactories.domain.units import charge_gpu_seconds
from aifactories.executors.base import SubmitRequest, job_tag
from aifactories.executors.mock import MockExecutor
from aifactories.ledger.balance import settle_amount
from aifactories.scheduling import get_policy, run_cycle
from aifactories.scheduling.assemble import assemble_snapshot
from aifactories.scheduling.policy import Policy
from aifactories.scheduling.preemptive_policies import get_preemptive_policy, is_preemptive
from aifactories.scheduling.snapshot import Placement, Snapshot
from aifactories.scheduling.speeds import SpeedTable
from aifactories.scheduling.standing_queue import StandingQueue, standing_key_of
from aifactories.scheduling.usage import DecayedUsage
from aifactories.twin.disruptions import Disruptions, Lost
from aifactories.twin.engine import EventEngine, Priority
from aifactories.twin.federation import (
    TwinProject,
)
from aifactories.twin.job_results import ended, never_started
from aifactories.twin.metrics.constraints import narrowed
from aifactories.twin.metrics.results import JobResult, PolicyRun
from aifactories.twin.project_budgets import ProjectBudgets
from aifactories.twin.rounds import RoundDriver
from aifactories.twin.setup import RunnableModels, TwinSetup, run_on, speed_of, time_limit_of
from aifactories.twin.traces.model import Trace, TraceJob

# TwinSetup and the run functions live in twin/setup.py; importable from here as before.
__all__ = ["Simulation", "TwinSetup", "run_on", "speed_of", "time_limit_of"]


@dataclass
class _Running:
    job: TraceJob
    pending: PendingJob
    placement: Placement
    site_job_id: str
    started: float
    runtime: float
    state: JobState
    gpu_model: str


class Simulation:
    """One policy over one trace. Raises InvalidInput at construction for an event naming a
    site or partition the setup does not simulate."""

    def __init__(self, trace: Trace, projects: Mapping[str, TwinProject], setup: TwinSetup) -> None:
        self.trace = trace
        self.setup = setup
        # A preemptive policy runs in rounds (twin/rounds.py); the others cycle on change.
        self.rounds: RoundDriver | None = None
        if is_preemptive(setup.policy):
            policy = get_preemptive_policy(setup.policy, tiresias=setup.tiresias)
            self.rounds = RoundDriver(self, policy)
            self.policy: Policy = get_policy("first_fit")  # never asked: rounds decide
        else:
            self.policy = get_policy(setup.policy)
        self.engine = EventEngine()
        self.sites = {s.id: s for s in setup.sites if s.operational}
        self._runnable = RunnableModels(self.sites.values(), setup)  # never where speed is 0
        self.disruptions = Disruptions(setup.events, self.sites.values())
        self.executors = {
            sid: MockExecutor(site, self.engine.clock, record_calls=False)
            for sid, site in self.sites.items()
        }
        self.projects = dict(projects)
        self._project_of = {p.project_id: p for p in projects.values()}
        self._budgets = ProjectBudgets(projects.values())
        self._pending: dict[JobId, PendingJob] = {}
        # The queue in the policy's standing order, when it has one: cycles then read only
        # the jobs they can use (scheduling/standing_queue.py), not the whole queue.
        key = standing_key_of(self.policy) if self.rounds is None else None
        self._standing = StandingQueue(key) if key is not None else None
        # The up sites' free-node histograms by partition id, and their free GPUs by site,
        # read again only for sites that changed since (a snapshot only reads the histograms,
        # so it gets this dict itself, not a copy).
        self._free_nodes: dict[str, tuple[int, ...]] = {}
        self._free_gpus_of: dict[str, int] = {}
        self._snapshot_free = 0  # free GPUs in the last snapshot's available partitions
        self._trace_job: dict[JobId, TraceJob] = {}
        self._running: dict[JobId, _Running] = {}
        self._usage = DecayedUsage(setup.half_life_s)  # the charges, decayed as they come
        self._active: dict[JobId, ActiveJob] = {}  # what the snapshot sees of running jobs
        self._active_in: dict[PartitionId, dict[JobId, ActiveJob]] = {}  # the same by partition
        self._active_tuples: dict[PartitionId, tuple[ActiveJob, ...]] = {}  # their snapshots
        self._active_tuple: tuple[ActiveJob, ...] | None = None  # all of them; None: stale
        self._stale_partitions: set[PartitionId] = set()  # their tuples to rebuild
        # Sites whose busy or total GPUs may have changed since they were last sampled:
        # samples are step functions, so unchanged sites need no new sample.
        self._dirty: set[str] = set(self.sites)
        self._changed: set[str] = set(self.sites)  # same, for the snapshot's capacity cache
        self._priority_weights = {
            ProjectId(p.project_id): p.priority_weight for p in self.projects.values()
        }
        # The setup's speed matrix, for policies that place by speed (the same rule as speed_of).
        # A speed of 0 is no speed but "cannot run there": RunnableModels keeps such jobs off
        # those GPUs (their spec's gpu_models), so the table holds the positive speeds only.
        self._speeds = SpeedTable.of(
            {m: v for m, v in setup.speed.items() if v > 0},
            {c: {m: v for m, v in row.items() if v > 0} for c, row in setup.speed_by_class.items()},
        )
        self._results: list[JobResult] = []
        self._cycle_times: list[float] = []
        self._utilisation: list[tuple[float, str, int, int]] = []
        self._queue: list[tuple[float, int]] = []
        self._cycle_at: float | None = None
        # A cycle whose queue cannot move until capacity does (FIFO behind a blocked head,
        # or every GPU taken) is skipped when only arrivals came since: it would change
        # nothing (they queue behind the head, or find no GPU), and a deep queue makes
        # such cycles the most frequent. Any end, outage or resize runs the next cycle.
        self._stuck = False
        self._capacity_moved = True
        self._last_blocked = False  # the last cycle stopped at a job waiting for capacity
        self._lost: dict[JobId, Lost] = {}
        self._snapshot_sites = self._current_sites()
        self._arrivals_left = len(trace.jobs)
        self.placements: list[Placement] = []  # every decision, in order (the parity test)
        self._carbon = {sid: (s.carbon_g_per_kwh or 0.0) for sid, s in self.sites.items()}

    # -- events ----------------------------------------------------------------------------

    def speed(self, job: TraceJob, gpu_model: str) -> float:
        return speed_of(job, gpu_model, self.setup)

    def _touch(self, site_id: str, freed: bool = True) -> None:
        """The site's capacity changed: sample it, and read its capacity afresh. ``freed``
        False: only taken by a placement, which lets no waiting job start."""
        self._dirty.add(site_id)
        self._changed.add(site_id)
        if freed:
            self._capacity_moved = True

    def _want_cycle(self) -> None:
        if self.rounds is not None:
            self.rounds.wake()
            return
        now = self.engine.clock.now()
        if self._cycle_at != now:
            self._cycle_at = now
            self.engine.schedule(now, Priority.CYCLE, self._cycle, "cycle")

    def _arrive(self, index: int, job: TraceJob) -> None:
        project = self.projects[job.group or "default"]
        job_id = JobId(index + 1)
        pending = PendingJob(
            id=job_id,
            project_id=ProjectId(project.project_id),
            user_id=UserId(project.project_id),
            spec=JobSpec(
                gpus=job.gpus,
                time_limit_s=time_limit_of(job, self.setup),
                nodes=job.nodes,
                name=job.job_id,
                gpu_models=narrowed(job.gpu_models, self._runnable.of(job)),
                min_gpu_memory_gb=job.min_gpu_memory_gb,  # every constraint of the trace job
                countries=job.countries,
                workload_class=job.workload_class,
            ),
            submitted_at=self.engine.clock.now(),
        )
        self._queue_job(pending)
        self._trace_job[job_id] = job
        self._arrivals_left -= 1
        self._want_cycle()

    def _queue_job(self, pending: PendingJob) -> None:
        self._pending[pending.id] = pending
        if self._standing is not None:
            self._standing.add(pending)

    def _arrival(self, index: int, job: TraceJob) -> Callable[[], None]:
        return lambda: self._arrive(index, job)

    def _end(self, run: _Running) -> None:
        if self._running.get(run.pending.id) is not run:
            return  # the end of a run an outage cut short: the heap has no cancel
        del self._running[run.pending.id]
        now = self.engine.clock.now()
        site = self.executors[run.placement.site_id]
        site.finish(run.site_job_id, run.state, elapsed_s=run.runtime)
        site.discard(run.site_job_id)
        self._touch(run.placement.site_id)
        self._inactive(run)
        gpus = run.placement.shape.allocated_gpus
        energy, carbon = self._settle(run, run.runtime, now)
        project = self._project_of[run.pending.project_id]
        lost = self._lost.get(run.pending.id, Lost())
        started, ran, gpu_seconds, restarts = run.started, run.runtime, gpus * run.runtime, 0
        if self.rounds is not None:  # the job's whole life over its runs
            life = self.rounds.finished(run)
            started = life.first_start if life.first_start is not None else run.started
            ran, gpu_seconds, restarts = life.ran_s, life.gpu_seconds, life.restarts
            energy, carbon = energy + life.energy_kwh, carbon + life.carbon_kg
        self._results.append(
            ended(
                run.job,
                project,
                where=(run.placement.site_id, run.placement.partition_id, run.gpu_model),
                gpus=gpus,
                times=(run.pending.submitted_at, started, now, ran),
                used=(gpu_seconds, energy, carbon, restarts),
                lost=lost,
            )
        )
        self._want_cycle()

    def _inactive(self, run: _Running) -> None:
        del self._active[run.pending.id]
        del self._active_in[run.placement.partition_id][run.pending.id]
        self._stale_partitions.add(run.placement.partition_id)
        self._active_tuple = None

    def _active_by_partition(self) -> dict[PartitionId, tuple[ActiveJob, ...]]:
        """The running jobs by partition, each tuple rebuilt only after its partition changed."""
        tuples, active_in = self._active_tuples, self._active_in
        for partition_id in self._stale_partitions:
            tuples[partition_id] = tuple(active_in[partition_id].values())
        self._stale_partitions.clear()
        return dict(tuples)

    def _active_jobs(self) -> tuple[ActiveJob, ...]:
        """Every running job, as a tuple rebuilt only after a start or an end (the snapshot
        keeps a tuple as it is: most cycles of a deep queue start and end nothing)."""
        if self._active_tuple is None:
            self._active_tuple = tuple(self._active.values())
        return self._active_tuple

    def _settle(self, run: _Running, elapsed: float, now: float) -> tuple[float, float]:
        """Charge a run's ``elapsed`` seconds to its project with the ledger's arithmetic;
        return the energy (kWh) and carbon (kg) it burnt."""
        gpus = run.placement.shape.allocated_gpus
        used = settle_amount(
            run.placement.reserved_gpu_seconds,
            charge_gpu_seconds(gpus, elapsed, run.placement.billing_weight),
        )
        project_id = run.pending.project_id
        self._budgets.charge(project_id, run.placement.reserved_gpu_seconds, used)
        self._usage.add(project_id, now, used)
        gpu_hours = gpus * elapsed / 3600
        energy = gpu_hours * self.setup.gpu_power_kw.get(run.gpu_model, 0.5) * self.setup.pue
        return energy, energy * self._carbon[run.placement.site_id] / 1000

    # -- disruptions -----------------------------------------------------------------------

    def _site_down(self, site_id: str) -> None:
        """The site fails: its running jobs are lost and requeued, it leaves the snapshot."""
        now = self.engine.clock.now()
        here = [r for _, r in sorted(self._running.items()) if r.placement.site_id == site_id]
        for run in here:
            if run.started + run.runtime <= now:
                # Due to end at this very instant (outages come first at a tie): it is done.
                self._end(run)
                continue
            elapsed = now - run.started
            energy, carbon = self._stop(run, now, elapsed, None, "site outage")
            if self.rounds is not None:
                self.rounds.restart_from_scratch(run.pending.id, run.job.runtime_s)
            lost = self._lost.setdefault(run.pending.id, Lost())
            lost.restarts += 1
            lost.gpu_seconds += run.placement.shape.allocated_gpus * elapsed
            lost.energy_kwh += energy
            lost.carbon_kg += carbon
        executor = self.executors[SiteId(site_id)]
        executor.fail_all(reason="site outage")
        executor.available = False
        self._touch(site_id)

    def _stop(
        self, run: _Running, now: float, elapsed: float, state: JobState | None, reason: str
    ) -> tuple[float, float]:
        """Stop a run before its end (outage, preemption): charge the time it ran, put the job
        back in the queue as it was submitted (policies order it by its first submit), and
        return the run's energy (kWh) and carbon (kg). ``state`` None: the site already
        ended it (an outage ends everything there at once)."""
        del self._running[run.pending.id]
        self._inactive(run)
        energy, carbon = self._settle(run, elapsed, now)
        if state is not None:
            site = self.executors[run.placement.site_id]
            site.finish(run.site_job_id, state, elapsed_s=elapsed, reason=reason)
            site.discard(run.site_job_id)
        self._touch(run.placement.site_id)
        self._queue_job(run.pending)
        self._trace_job[run.pending.id] = run.job
        return energy, carbon

    def _site_up(self, site_id: str) -> None:
        self.executors[SiteId(site_id)].available = True
        self._touch(site_id)

    def _resize(self, site_id: str, partition: str, nodes: int) -> None:
        self.executors[SiteId(site_id)].resize(partition, nodes)
        self._touch(site_id)
        self._snapshot_sites = self._current_sites()

    def _current_sites(self) -> list[Site]:
        """The sites at their current size, for the snapshot: a partition the cycle sees as
        N nodes has N nodes taking work (draining ones are not offered and do not count, so
        no policy plans on nodes that are leaving); one shrunk to nothing is left out."""
        return [
            replace(site, partitions=tuple(p for p in site.partitions if p.nodes))
            for site in (executor.site for executor in self.executors.values())
        ]

    # -- the shared cycle ------------------------------------------------------------------

    def _cycle(self) -> None:
        now = self.engine.clock.now()
        self._cycle_at = None
        if not self._pending:  # nothing to decide (a job ended with an empty queue)
            self._sample(now)
            return
        if self._stuck and not self._capacity_moved:
            self._sample(now)
            return
        self._capacity_moved = False
        snapshot = self.snapshot(now)
        placed = self._decide(snapshot, self.policy, now)
        if self._pending:
            free = self._snapshot_free - placed  # the snapshot's available partitions' GPUs
            # FIFO behind a head waiting for capacity: arrivals queue behind it (submission
            # order). A head that never fits or has no budget blocks nobody: not stuck.
            strict = self._standing is not None and self._last_blocked
            self._stuck = free <= 0 or strict
        else:
            self._stuck = False
        self._sample(now)

    def snapshot(self, now: float) -> Snapshot:
        """The federation as the broker would see it now, by the broker's own builder."""
        free, free_gpus = self._free_nodes, self._free_gpus_of
        for sid in self._changed:  # every site is changed at first, and at each up or down
            executor = self.executors[SiteId(sid)]
            capacity = executor.capacity() if executor.available else []
            for c in capacity:
                free[f"{sid}/{c.partition_name}"] = c.free_nodes_by_free_gpus
            if executor.available:
                free_gpus[sid] = sum(
                    k * n for c in capacity for k, n in enumerate(c.free_nodes_by_free_gpus)
                )
            else:  # a down site's partitions are in no snapshot's free nodes
                for p in executor.site.partitions:
                    free.pop(f"{sid}/{p.name}", None)
                free_gpus.pop(sid, None)
        self._changed.clear()
        # What the cycle's end asks of the snapshot: the GPUs free in its available
        # partitions (a partition shrunk to no node is left out of it and has none).
        self._snapshot_free = sum(free_gpus.values())
        up = [sid for sid, site in self.executors.items() if site.available]
        allocations, by_project = self._budgets.allocations()
        return assemble_snapshot(
            now=now,
            sites=self._snapshot_sites,
            free_nodes=free,
            available_sites=frozenset(up),
            allocations=allocations,
            allocations_by_project=by_project,
            priority_weights=self._priority_weights,
            charges=self._usage,
            half_life_s=self.setup.half_life_s,
            active_jobs=self._active_jobs(),
            active_by_partition=self._active_by_partition(),
            speeds=self._speeds,
        )

    def _decide(self, snapshot: Snapshot, policy: Policy, now: float) -> int:
        """The shared cycle, then its placements acted on; the GPUs they took."""
        started = stopwatch()
        standing = self._standing
        if standing is not None:
            result = run_cycle(snapshot, standing, policy, now, explain=False, ordered=standing)
        else:
            result = run_cycle(snapshot, list(self._pending.values()), policy, now, explain=False)
        self._cycle_times.append(stopwatch() - started)
        self._last_blocked = result.blocked
        taken = 0
        for placement in result.placements:
            self.placements.append(placement)
            self._start(placement, now)
            taken += placement.shape.allocated_gpus
        return taken

    def _start(self, placement: Placement, now: float) -> None:
        pending = self._pending.pop(placement.job_id)
        if self._standing is not None:
            self._standing.remove(placement.job_id)
        job = self._trace_job.pop(placement.job_id)
        self._budgets.reserve(pending.project_id, placement.reserved_gpu_seconds)
        site = self.executors[placement.site_id].site  # at its current size
        partition = next(p for p in site.partitions if p.id == placement.partition_id)
        site_job_id = self.executors[placement.site_id].submit(
            SubmitRequest(
                job_id=placement.job_id,
                tag=job_tag(placement.job_id),
                partition=partition,
                shape=placement.shape,
                spec=pending.spec,
                account=str(pending.project_id),
                user=str(pending.user_id),
            )
        )
        if self.executors[placement.site_id].status(site_job_id).state is not JobState.RUNNING:
            # run_cycle placed it where the site has no room: the shared cycle and the site
            # disagree, which must never happen.
            raise AssertionError(f"job {placement.job_id} did not start at {placement.site_id}")
        if self.rounds is None:
            runtime, state = run_on(job, partition.gpu_model, pending.spec.time_limit_s, self.setup)
        else:
            speed = self.speed(job, partition.gpu_model)
            runtime = self.rounds.runtime(placement.job_id, job.runtime_s, speed, now)
            state = JobState.COMPLETED
        run = _Running(
            job, pending, placement, site_job_id, now, runtime, state, partition.gpu_model
        )
        self._running[placement.job_id] = run
        self._touch(placement.site_id, freed=False)
        active = self._active[placement.job_id] = ActiveJob(
            id=pending.id,
            project_id=pending.project_id,
            site_id=placement.site_id,
            partition_id=placement.partition_id,
            shape=placement.shape,
            state=JobState.RUNNING,
            started_at=now,
            time_limit_s=pending.spec.time_limit_s,
        )
        self._active_in.setdefault(placement.partition_id, {})[placement.job_id] = active
        self._stale_partitions.add(placement.partition_id)
        self._active_tuple = None
        self.engine.schedule(now + runtime, Priority.JOB_END, lambda: self._end(run), "end")

    def _sample(self, now: float) -> None:
        """Busy GPUs against the GPUs the site has now: nodes that take work plus draining
        ones (still powered, still running jobs); a down site has none (0 of 0)."""
        self._queue.append((now, len(self._pending)))
        for sid, site in self.executors.items():
            if sid in self._dirty:
                busy, total = site.gpu_counts() if site.available else (0, 0)
                self._utilisation.append((now, sid, busy, total))
        self._dirty.clear()

    def _done(self) -> bool:
        """Every job ended or waits for good: later events (and the stale ends of runs an
        outage cut short) would only stretch the horizon. Pending jobs keep the run going:
        a later event (a site back, a growth) may let them start."""
        return (
            self._arrivals_left == 0
            and not self._running
            and not self._pending
            and self._cycle_at is None
        )

    # -- running ---------------------------------------------------------------------------

    def run(self, progress: Callable[[int, int], None] | None = None) -> PolicyRun:
        self.disruptions.schedule(
            self.engine,
            on_down=self._site_down,
            on_up=self._site_up,
            on_resize=self._resize,
            on_change=self._want_cycle,
        )
        for index, job in enumerate(self.trace.jobs):
            self.engine.schedule(
                job.submit_s, Priority.JOB_ARRIVAL, self._arrival(index, job), "arrival"
            )
        total = len(self.trace.jobs)

        def on_event(_now: float) -> None:
            if progress is not None:
                progress(len(self._results), total)

        self.engine.run(stop=self._done, on_event=on_event if progress else None)
        # Jobs that never fit anywhere stay pending: reported as never started.
        for job_id, pending in sorted(self._pending.items()):
            job = self._trace_job[job_id]
            project = self._project_of[pending.project_id]
            lost = self._lost.get(job_id, Lost())  # it may have run before an outage
            self._results.append(never_started(job, project, pending.submitted_at, lost))
        end = self.engine.clock.now()
        return PolicyRun(
            policy=self.setup.policy,
            results=tuple(self._results),
            cycle_runtimes_s=tuple(self._cycle_times),
            utilisation_samples=tuple(self._utilisation),
            queue_samples=tuple(self._queue),
            horizon_start_s=self.trace.jobs[0].submit_s if self.trace.jobs else 0.0,
            horizon_end_s=end,
            restarts=sum(r.restarts for r in self._results),
            lost_gpu_hours=math.fsum(lost.gpu_seconds for lost in self._lost.values()) / 3600,
        )
