"""The broker loop: reconcile -> snapshot -> run_cycle -> apply, every ``interval_s``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aifactories.broker import events
from aifactories.broker.apply import apply_placements
from aifactories.broker.failover import cancel_stale_copies, move_queued_jobs
from aifactories.broker.holds import apply_holds
from aifactories.broker.lease import BrokerLease, FencedExecutor, LeaseLost
from aifactories.broker.reconcile import reconcile
from aifactories.catalogue.loader import Catalogue
from aifactories.db import convert
from aifactories.db.jobs import (
    active_jobs,
    charges_since,
    instance_id,
    pending_jobs,
    record_reasons,
    upsert_partition_status,
)
from aifactories.db.maintenance import down_partition_ids
from aifactories.db.models import AllocationRow, PartitionStatusRow, ProjectRow
from aifactories.domain.clock import Clock, stopwatch
from aifactories.domain.errors import ExecutorError
from aifactories.domain.ids import JobId, ProjectId, SiteId
from aifactories.domain.logthrottle import LogThrottle, clip
from aifactories.domain.sites import Partition
from aifactories.executors.base import Executor
from aifactories.scheduling import run_cycle
from aifactories.scheduling.assemble import assemble_snapshot
from aifactories.scheduling.policies import get_policy
from aifactories.scheduling.snapshot import CycleResult, Wait
from aifactories.scheduling.speeds import speeds_from_billing_weights

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)  # a site down for hours: one line, then a count every window

# Charges older than this many half-lives weigh under 2% in fair share: not worth reading.
_USAGE_HALF_LIVES = 6


@dataclass
class CycleReport:
    at: float
    placed: int = 0
    rejected: int = 0
    waiting: int = 0
    unreachable_sites: set[SiteId] = field(default_factory=set)
    moved: int = 0  # queued jobs moved away from unreachable sites
    duration_s: float = 0.0


class Broker:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        catalogue: Catalogue,
        read_factory: sessionmaker[Session] | None = None,
        executors: Mapping[SiteId, Executor],
        policy: str,
        clock: Clock,
        half_life_s: float = 7 * 86400,
        failover_grace_s: float = 0.0,
        site_retry_interval_s: float = 0.0,
    ) -> None:
        self._sessions = session_factory
        self._reads = read_factory or session_factory
        self._catalogue = catalogue
        self._executors = dict(executors)
        self._policy = get_policy(policy)
        self._clock = clock
        self._half_life_s = half_life_s
        self._failover_grace_s = failover_grace_s
        self._unreachable_since: dict[SiteId, float] = {}
        self._retry_interval_s = site_retry_interval_s
        self._retry_at: dict[SiteId, float] = {}
        self._partitions = {p.id: p for p in catalogue.operational_partitions}
        # What each GPU model is worth against an A100, for policies that place by speed.
        self._speeds = speeds_from_billing_weights(catalogue.operational_partitions)
        with session_factory() as session, session.begin():
            self.instance = instance_id(session)  # in every job's tag at the sites
        self._last_reasons: dict[int, str] = {}
        self._lease: BrokerLease | None = None
        self._led_epoch: int | None = None
        self.last_report: CycleReport | None = None
        self.last_result: CycleResult | None = None  # the last decisions, for parity and health

    @property
    def policy_name(self) -> str:
        return self._policy.name

    @property
    def leading(self) -> bool:
        """Whether this broker places now: it holds the lease, or runs without one."""
        return self._lease is None or self._lease.held()

    def lead_with(self, lease: BrokerLease) -> None:
        """Place only while ``lease`` is held, and fence every write with it: from now on
        each transaction of the broker checks the lease's epoch first (broker/lease.py)."""
        if self._lease is not None:
            return  # already fenced
        self._lease = lease
        self._sessions = lease.fenced(self._sessions)
        self._executors = {
            site: FencedExecutor(executor, lease) for site, executor in self._executors.items()
        }

    def _check_lease(self) -> None:
        if self._lease is None:
            return
        epoch = self._lease.require()
        if epoch != self._led_epoch:
            # A new term: what this process remembered of the sites may be stale; the cycle
            # starts, as always, by reconciling (adopting by tag what the last leader placed).
            log.info("broker leading (lease epoch %d): reconciling first", epoch)
            self._unreachable_since.clear()
            self._retry_at.clear()
            self._last_reasons.clear()
            self._led_epoch = epoch

    def run_once(self) -> CycleReport:
        started = stopwatch()
        self._check_lease()
        now = self._clock.now()
        report = CycleReport(at=now)
        # A site that did not answer is asked again only after a pause: every call to a dead
        # controller costs a client timeout, and the cycle must stay short for the others.
        resting = {site for site, until in self._retry_at.items() if now < until}
        # Stale copies first: a site that comes back must not start a job we moved away.
        silent = resting | cancel_stale_copies(self._sessions, self._executors, now, resting)
        report.unreachable_sites = silent | reconcile(
            self._sessions, self._reads, self._executors, now, silent, self.instance
        )
        reported = self._capacities(report.unreachable_sites)
        self._retry_at = {
            site: self._retry_at[site] if site in resting else now + self._retry_interval_s
            for site in report.unreachable_sites
        }
        available = frozenset(
            site.id
            for site in self._catalogue.operational_sites
            if site.id in self._executors and site.id not in report.unreachable_sites
        )
        report.moved = self._fail_over(report.unreachable_sites, available, now)
        holds = apply_holds(self._sessions, now)
        with self._reads() as session:
            down = down_partition_ids(session)
            pending = [p for p in pending_jobs(session) if p.id not in holds.waiting]
            active = active_jobs(session)
            allocations = [
                convert.allocation(r) for r in session.execute(select(AllocationRow)).scalars()
            ]
            weights = {
                ProjectId(pid): w
                for pid, w in session.execute(
                    select(ProjectRow.id, ProjectRow.priority_weight)
                ).all()
            }
            charges = [
                (ProjectId(p), at, g)
                for p, at, g in charges_since(session, now - _USAGE_HALF_LIVES * self._half_life_s)
            ]
        # a partition down for maintenance offers nothing: no new job is placed there
        free_nodes = {pid: free for pid, free in reported.items() if pid not in down}
        snapshot = assemble_snapshot(
            now=now,
            sites=self._catalogue.sites,
            free_nodes=free_nodes,
            available_sites=available,
            allocations=allocations,
            priority_weights=weights,
            charges=charges,
            half_life_s=self._half_life_s,
            active_jobs=active,
            speeds=self._speeds,
        )
        result = run_cycle(snapshot, pending, self._policy, now)
        self.last_result = result
        outcome = apply_placements(
            self._sessions, self._executors, self._partitions, result.placements, now, self.instance
        )
        report.placed = outcome.submitted
        report.rejected = outcome.rejected
        report.waiting = len(result.waits)
        # A site that failed on submit is down like one that failed on poll: shown, and rested.
        report.unreachable_sites |= outcome.failed_sites
        for site_id in outcome.failed_sites:
            self._retry_at.setdefault(site_id, now + self._retry_interval_s)
        up = available - outcome.failed_sites
        held = tuple(Wait(JobId(j), reason) for j, reason in holds.waiting.items())
        self._record(result.waits + held, free_nodes, up, report.unreachable_sites, down, now)
        report.duration_s = stopwatch() - started
        self._report_sites(report.unreachable_sites)
        events.cycle(report.duration_s)
        self.last_report = report
        return report

    def _report_sites(self, unreachable: set[SiteId]) -> None:
        """Log (and count) sites that stopped or started answering since the last cycle."""
        before = self.last_report.unreachable_sites if self.last_report is not None else set()
        for site in sorted(unreachable - before):
            events.site_unavailable(site)
        for site in sorted(before - unreachable):
            events.site_back(site)

    def _fail_over(self, unreachable: set[SiteId], available: frozenset[SiteId], now: float) -> int:
        """Move queued jobs away from sites silent for longer than the grace period."""
        self._unreachable_since = {
            site: self._unreachable_since.get(site, now) for site in unreachable
        }
        expired = {
            site
            for site, since in self._unreachable_since.items()
            if now - since >= self._failover_grace_s
        }
        return move_queued_jobs(
            self._sessions, self._catalogue, expired, available, now, self.instance
        )

    def _capacities(self, unreachable: set[SiteId]) -> dict[str, tuple[int, ...]]:
        free: dict[str, tuple[int, ...]] = {}
        for site in self._catalogue.operational_sites:
            executor = self._executors.get(site.id)
            if executor is None or site.id in unreachable:
                continue
            try:
                for capacity in executor.capacity():
                    free[f"{site.id}/{capacity.partition_name}"] = capacity.free_nodes_by_free_gpus
            except ExecutorError as exc:
                _throttle.warning(
                    (site.id, "capacity"),
                    "site %s did not report capacity: %s",
                    site.id,
                    clip(exc.message),
                )
                unreachable.add(site.id)
        return free

    def _record(
        self,
        waits: tuple[Wait, ...],
        free_nodes: Mapping[str, tuple[int, ...]],
        available: frozenset[SiteId],
        unreachable: set[SiteId],
        down: frozenset[str],
        now: float,
    ) -> None:
        """Write wait reasons (only those that changed) and what each partition has free."""
        changed = {
            w.job_id: w.reason for w in waits if self._last_reasons.get(w.job_id) != w.reason
        }
        with self._sessions() as session, session.begin():
            record_reasons(session, {int(job_id): reason for job_id, reason in changed.items()})
            rows = []
            for partition in self._partitions.values():
                histogram = free_nodes.get(partition.id)
                up = partition.site_id in available and histogram is not None
                rows.append(
                    PartitionStatusRow(
                        partition_id=partition.id,
                        site_id=partition.site_id,
                        free_gpus=sum(k * n for k, n in enumerate(histogram)) if histogram else 0,
                        free_nodes_by_free_gpus=list(histogram or ()),
                        available=up,
                        reason=None if up else _why_unavailable(partition, unreachable, down),
                        updated_at=now,
                    )
                )
            upsert_partition_status(session, rows)
        self._last_reasons = {w.job_id: w.reason for w in waits}

    def run_forever(self, stop: threading.Event, interval_s: float) -> None:
        """Cycle until ``stop`` is set. A failing cycle is logged and retried: the loop must
        outlive a bad site or a transient database error."""
        while not stop.is_set():
            try:
                if self._lease is None or self._lease.held():
                    self.run_once()
            except LeaseLost as exc:
                log.warning("broker cycle stopped: %s", exc.message)
            except Exception:
                log.exception("broker cycle failed; retrying next interval")
                events.cycle_failed()
            stop.wait(interval_s)

    def close(self) -> None:
        for executor in self._executors.values():
            executor.close()


def _why_unavailable(partition: Partition, unreachable: set[SiteId], down: frozenset[str]) -> str:
    if partition.id in down:
        return "down for maintenance"
    if partition.site_id in unreachable:
        return "site unreachable"
    return "no executor configured"
