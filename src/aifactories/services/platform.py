"""Compose the platform from settings: database, catalogue, executors, broker.

One object that the API, the CLI and the tests start the same way. No engine exists until a
Platform is made; nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from aifactories.broker import Broker
from aifactories.broker.lease import BrokerLease
from aifactories.db.engine import make_engine, make_read_engine, make_session_factory
from aifactories.db.migrate import current_revision, head_revision, upgrade
from aifactories.domain.clock import Clock, SystemClock
from aifactories.domain.errors import AifError, ConfigurationError
from aifactories.domain.ids import SiteId
from aifactories.domain.sites import Site
from aifactories.executors.base import Executor
from aifactories.executors.isolation import JobIsolation, resolve_isolation
from aifactories.executors.registry import make_executor
from aifactories.scheduling import get_policy
from aifactories.services.core.context import ServiceContext, catalogue_from_settings
from aifactories.services.programme.allocation_sweep import sweep_allocations
from aifactories.services.programme_worker import PeriodicJob, ProgrammeWorker
from aifactories.services.sites.site_sync import SiteSync
from aifactories.settings import Settings

log = logging.getLogger(__name__)


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        executors: Mapping[SiteId, Executor] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        _private_folder(settings.data_dir)
        self.catalogue = catalogue_from_settings(settings)
        # Fail before anything starts, with the known policies, rather than in the broker thread.
        get_policy(settings.policy)
        self.database_url = settings.resolved_database_url
        self.engine: Engine = make_engine(self.database_url)
        self.read_engine: Engine = make_read_engine(self.database_url, self.engine)
        self.ctx = ServiceContext(
            sessions=make_session_factory(self.engine),
            reads=make_session_factory(self.read_engine),
            write_engine=self.engine,
            read_engine=self.read_engine,
            catalogue=self.catalogue,
            clock=self.clock,
            settings=settings,
        )
        # One broker leads among the instances sharing this database (docs/operations.md).
        self.lease = BrokerLease(
            self.ctx.sessions,
            read_factory=self.ctx.reads,
            holder=settings.instance_name or f"{socket.gethostname()}:{settings.port}",
            period_s=settings.lease_period_s,
        )
        self._lease_thread: threading.Thread | None = None
        self._executors = dict(executors) if executors is not None else None
        # the broker and the first requests that read job output may ask at the same time
        self._executors_lock = threading.Lock()
        self._job_isolation: JobIsolation | None = None
        self._broker: Broker | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sync_thread: threading.Thread | None = None
        # the outbox delivery and these periodic jobs run beside the broker (ProgrammeWorker)
        # usage alerts and the closing of expired allocations
        self.programme_jobs: list[PeriodicJob] = [sweep_allocations]
        self._programme: ProgrammeWorker | None = None

    def migrate(self) -> None:
        upgrade(self.database_url)

    def check_schema(self) -> None:
        current, head = current_revision(self.database_url), head_revision()
        if current != head:
            raise ConfigurationError(
                f"the database at {self.database_url} is at schema revision {current or 'none'}, "
                f"not {head}: run 'aif db upgrade' (or 'aif up', which upgrades first)"
            )

    def executors(self) -> dict[SiteId, Executor]:
        """Each site's back-end, built once (under a lock: never twice, never seen half-built)."""
        with self._executors_lock:
            if self._executors is None:
                self._executors = self._build_executors()
            return self._executors

    def _build_executors(self) -> dict[SiteId, Executor]:
        kind = self.settings.executor
        built: dict[SiteId, Executor] = {}
        for site in self.catalogue.operational_sites:
            if site.executor is not None:  # the catalogue names this site's back-end
                built[site.id] = self._site_executor(site)
                continue
            options: dict[str, object] = {"clock": self.clock}
            if kind == "emulated":
                options["state_dir"] = self.settings.sites_state_dir / site.id
                options["time_factor"] = self.settings.emulated_time_factor
                options["isolation"] = self.job_isolation()
                options["output_retention_s"] = self.settings.job_output_retention_s
            built[site.id] = make_executor(kind, site, **options)
        return built

    def job_isolation(self) -> JobIsolation:
        """How emulated sites confine jobs; ConfigurationError if this machine cannot."""
        if self._job_isolation is None:
            settings = self.settings
            url = make_url(self.database_url)
            database = url.database if url.get_backend_name() == "sqlite" else None
            hidden = [Path(f"{database}{end}") for end in ("", "-wal", "-shm")] if database else []
            self._job_isolation = resolve_isolation(
                settings.job_isolation,
                protected=(settings.data_dir, settings.sites_state_dir),
                hidden_files=[*hidden, *([settings.catalogue] if settings.catalogue else [])],
                users_file=settings.sites_state_dir / "job-users.json",
                scratch_dir=settings.job_scratch_dir,
                uid_base=settings.job_uid_base,
                uid_count=settings.job_uid_count,
            )
            log.info("emulated sites: %s", self._job_isolation.describe())
        return self._job_isolation

    def _site_executor(self, site: Site) -> Executor:
        assert site.executor is not None
        options: dict[str, object] = dict(site.executor.as_dict())
        if site.executor.kind == "emulated":
            options.setdefault("isolation", self.job_isolation())
            options.setdefault("output_retention_s", self.settings.job_output_retention_s)
        try:
            return make_executor(site.executor.kind, site, **options)
        except AifError as exc:
            raise ConfigurationError(
                f"site {site.id} in {self.catalogue.source}: its executor cannot be built: "
                f"{exc.message}"
            ) from exc

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = Broker(
                session_factory=self.ctx.sessions,
                read_factory=self.ctx.reads,
                catalogue=self.catalogue,
                executors=self.executors(),
                policy=self.settings.policy,
                clock=self.clock,
                half_life_s=self.settings.fair_share_half_life_s,
                failover_grace_s=self.settings.site_failover_grace_s,
                site_retry_interval_s=self.settings.site_retry_interval_s,
            )
        return self._broker

    @property
    def broker_running(self) -> bool:
        """Whether this process runs the broker (started by ``start_broker``)."""
        return self._thread is not None

    def start_broker(self) -> None:
        if self._thread is not None:
            return
        broker = self.broker
        self._stop.clear()
        # Placing only while leading, every write fenced; a lone instance leads at once, a
        # standby tries again at every renew interval.
        broker.lead_with(self.lease)
        self.lease.tick()
        self._lease_thread = threading.Thread(
            target=self.lease.run_forever,
            args=(self._stop, self.settings.lease_renew_interval_s),
            name="aifactories-lease",
            daemon=True,
        )
        self._lease_thread.start()
        interval = self.settings.site_sync_interval_s
        if interval > 0:
            sync = SiteSync(self.ctx)
            if self.lease.held():
                sync.sync_accounts()  # before the first placement: sites refuse unknown accounts
            self._sync_thread = threading.Thread(
                target=self._sync_while_leading,
                args=(sync, interval),
                name="aifactories-site-sync",
                daemon=True,
            )
            self._sync_thread.start()
        self._thread = threading.Thread(
            target=broker.run_forever,
            args=(self._stop, self.settings.broker_interval_s),
            name="aifactories-broker",
            daemon=True,
        )
        self._thread.start()
        self._programme = ProgrammeWorker(self.ctx, extra=self.programme_jobs)
        self._programme.start()
        log.info(
            "broker started: policy %s, every %.1f s",
            broker.policy_name,
            self.settings.broker_interval_s,
        )

    def _sync_while_leading(self, sync: SiteSync, interval_s: float) -> None:
        # The sites' accounts and usage are the leader's to write, like placements.
        while not self._stop.wait(interval_s):
            if self.lease.held():
                sync.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._programme is not None:
            self._programme.stop()
            self._programme = None
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=60)
            self._sync_thread = None
        if self._lease_thread is not None:
            self._lease_thread.join(timeout=30)
            self._lease_thread = None
        try:
            self.lease.release()  # a standby takes over at its next try, not at the expiry
        except SQLAlchemyError as exc:
            log.warning("broker lease not released (it expires by itself): %s", exc)
        if self._broker is not None:
            self._broker.close()
        self.engine.dispose()
        self.read_engine.dispose()


def _private_folder(path: Path) -> None:
    """The data folder holds the database, the tokens and the sites' books: only the
    platform's user may enter it (jobs and other local users may not)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        path.chmod(0o700)
