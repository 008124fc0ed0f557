"""gavel_las, gavel_ftf, gavel_makespan (and their heterogeneity-agnostic baselines): Gavel's
policies as preemptive round plans over the federation's (site, partition) columns.

Each round: the previous round's execution is booked into Gavel's time shares (from each
job's received time per partition), finished jobs leave and new ones join, the allocation
LP is re-solved when Gavel would (jobs changed and 1,920 s since the last reset), and Gavel's
selection picks who runs where (:mod:`aifactories.scheduling.gavel`). A job's throughput on
a column is its speed on that column's GPU model (the twin's speed matrix), so the LP sees
exactly the heterogeneity the simulation applies. Running jobs picked for another column, or
not picked, are preempted (migration and restart pay the twin's restart cost); GPUs the
selection leaves unused stay idle for the round, as in Gavel. The mechanism's state travels
in :attr:`RoundPlan.state`, handed back by the caller: the policy keeps nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aifactories.domain.ids import JobId, PartitionId
from aifactories.domain.jobs import PendingJob
from aifactories.scheduling.gavel import (
    TIME_PER_ROUND_S,
    TimeShares,
    add_jobs,
    advance_isolated_time,
    column_order,
    drop_jobs,
    finish_time_fairness,
    isolated_throughputs,
    max_min_fairness,
    new_time_shares,
    record_round,
    reset_time_shares,
    select_round,
    should_reset,
)
from aifactories.scheduling.gavel.makespan import min_total_duration
from aifactories.scheduling.preemption import JobService, Planned, RoundPlan
from aifactories.scheduling.snapshot import Snapshot

Floats = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class GavelState:
    job_ids: tuple[JobId, ...]  # the rows, in arrival order
    columns: tuple[PartitionId, ...]
    shares: TimeShares
    allocation: Floats
    in_allocation: NDArray[np.bool_]
    last_reset: float
    changed: bool
    received: Mapping[JobId, Mapping[PartitionId, float]]  # at the previous round
    rng_state: object
    # finish-time fairness book-keeping (Gavel's isolated time), per row
    isolated_time: Floats
    remaining_at_reset: Floats
    isolated_tput_at_reset: Floats


class GavelPolicy:
    def __init__(self, objective: str = "las", *, heterogeneity_aware: bool = True) -> None:
        self.objective = objective
        self.aware = heterogeneity_aware
        suffix = "" if heterogeneity_aware else "_agnostic"
        self.name = f"gavel_{objective}{suffix}"
        self.round_s = TIME_PER_ROUND_S

    def plan_round(
        self,
        snapshot: Snapshot,
        pending: Sequence[PendingJob],
        service: Mapping[JobId, JobService],
        now: float,
        state: object = None,
    ) -> RoundPlan:
        states = [p for p in snapshot.partitions if p.available]
        columns = tuple(p.id for p in states)
        models = [p.partition.gpu_model for p in states]
        capacities = np.array([p.partition.total_gpus for p in states], dtype=np.float64)
        previous = state if isinstance(state, GavelState) else None
        if previous is None or previous.columns != columns:
            previous = self._fresh(columns, now)  # first round, or the federation changed
        rows = previous.job_ids
        shares = previous.shares
        # 1. book the last round: each job's time on the column it ran on
        column_of = np.full(len(rows), -1)
        executed = np.zeros(len(rows))
        for i, job_id in enumerate(rows):
            job = service.get(job_id)
            if job is None:
                continue
            before = previous.received.get(job_id, {})
            for j, column in enumerate(columns):
                delta = job.received_s.get(column, 0.0) - before.get(column, 0.0)
                if delta > executed[i]:
                    column_of[i], executed[i] = j, delta
        shares = record_round(shares, column_of, executed)
        # 2. finished jobs leave, new ones join (rows stay in arrival order)
        keep = np.array([job_id in service for job_id in rows], dtype=bool)
        allocation, in_allocation = previous.allocation, previous.in_allocation
        iso_time, rem0, iso0 = (
            previous.isolated_time,
            previous.remaining_at_reset,
            previous.isolated_tput_at_reset,
        )
        changed = previous.changed or not keep.all()
        if not keep.all():
            shares = drop_jobs(shares, keep)
            rows = tuple(r for r, k in zip(rows, keep, strict=True) if k)
            allocation, in_allocation = allocation[keep], in_allocation[keep]
            iso_time, rem0, iso0 = iso_time[keep], rem0[keep], iso0[keep]
        known = set(rows)
        new = sorted(
            (job_id for job_id in service if job_id not in known),
            key=lambda job_id: (service[job_id].submitted_at, job_id),
        )
        if new:
            shares = add_jobs(shares, len(new))
            rows = rows + tuple(new)
            allocation = np.vstack([allocation, np.zeros((len(new), len(columns)))])
            in_allocation = np.append(in_allocation, np.zeros(len(new), dtype=bool))
            iso_time = np.append(iso_time, np.zeros(len(new)))
            rem0 = np.append(rem0, [service[j].remaining_s for j in new])
            iso0 = np.append(iso0, np.zeros(len(new)))
            changed = True
        jobs = [service[job_id] for job_id in rows]
        tput = np.array([[job.speed_on(m) for m in models] for job in jobs]).reshape(
            len(jobs), len(columns)
        )
        scale = np.array([job.gpus for job in jobs], dtype=np.float64)
        last_reset = previous.last_reset
        # 3. a new allocation when Gavel would compute one
        if jobs and should_reset(now, last_reset, changed):
            shares = reset_time_shares(shares, allocation, now - last_reset)
            last_reset = now
            remaining = np.array([job.remaining_s for job in jobs])
            if self.objective == "ftf":
                iso_time = advance_isolated_time(iso_time, rem0, remaining, iso0)
                iso0 = isolated_throughputs(tput, scale, capacities)
                rem0 = remaining
                since = np.array([now - job.submitted_at for job in jobs])
                allocation = finish_time_fairness(
                    tput,
                    scale,
                    capacities,
                    np.maximum(remaining, 1e-9),
                    since,
                    iso_time,
                    heterogeneity_aware=self.aware,
                ).fractions
            elif self.objective == "makespan":
                allocation = min_total_duration(
                    tput, scale, capacities, remaining, heterogeneity_aware=self.aware
                ).fractions
            else:
                allocation = max_min_fairness(
                    tput, scale, capacities, heterogeneity_aware=self.aware
                ).fractions
            in_allocation = np.ones(len(jobs), dtype=bool)
            changed = False
        # 4. Gavel's selection: fastest columns first (aware), shuffled each round (agnostic)
        rng = random.Random()
        rng.setstate(previous.rng_state)  # type: ignore[arg-type]
        if self.aware:
            speed = tput.mean(axis=0) if len(jobs) else np.zeros(len(columns))
            order = sorted(range(len(columns)), key=lambda j: (-speed[j], j))
        else:
            order = column_order(len(columns), rng)
        was = np.array(
            [columns.index(j.running_on) if j.running_on in columns else -1 for j in jobs],
            dtype=np.int64,
        )
        plan = select_round(
            allocation,
            shares,
            tput,
            scale.astype(np.int64),
            capacities.astype(np.int64),
            order=order,
            in_allocation=in_allocation,
            previous=was,
        )
        ranked: list[tuple[JobId, PartitionId | None]] = []
        preempt: set[JobId] = set()
        for i, job in enumerate(jobs):
            target = int(plan.column[i])
            runs = target >= 0 and not bool(plan.held[i])
            if job.running_on is not None and (not runs or columns[target] != job.running_on):
                preempt.add(rows[i])
            if runs and (job.running_on is None or columns[target] != job.running_on):
                ranked.append((rows[i], columns[target]))
        next_state = GavelState(
            job_ids=rows,
            columns=columns,
            shares=shares,
            allocation=allocation,
            in_allocation=in_allocation,
            last_reset=last_reset,
            changed=changed,
            received={rows[i]: dict(job.received_s) for i, job in enumerate(jobs)},
            rng_state=rng.getstate(),
            isolated_time=iso_time,
            remaining_at_reset=rem0,
            isolated_tput_at_reset=iso0,
        )
        return RoundPlan(
            frozenset(preempt), Planned(self.name, ranked, work_conserving=False), next_state
        )

    def _fresh(self, columns: tuple[PartitionId, ...], now: float) -> GavelState:
        return GavelState(
            job_ids=(),
            columns=columns,
            shares=new_time_shares(0, len(columns)),
            allocation=np.zeros((0, len(columns))),
            in_allocation=np.zeros(0, dtype=bool),
            last_reset=now,
            changed=False,
            received={},
            rng_state=random.Random(5).getstate(),  # Gavel seeds its shuffle with seed + 5
            isolated_time=np.zeros(0),
            remaining_at_reset=np.zeros(0),
            isolated_tput_at_reset=np.zeros(0),
        )
