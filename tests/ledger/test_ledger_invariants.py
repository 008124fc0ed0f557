"""Ledger invariants under random sequences of submit, place, start, finish, cancel, lost
replies and crash-restart (Hypothesis stateful testing), through the real broker and database.

After every step:
- GPUs in use at a site never exceed a partition's size;
- no allocation is overdrawn, and reserved + used + left == granted;
- an allocation's reserved GPU-seconds equal the reservations of its active jobs, and its used
  GPU-seconds equal the charges in the books (each job charged at most once).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.domain.jobs import JobState
from aifactories.executors.mock import MockExecutor
from aifactories.services.platform import Platform
from tests.api.harness import Harness, make_harness

SMALL_CATALOGUE = """
sites:
  - {id: lumi-aif, name: LUMI, country: FI, supercomputer: LUMI-G, status: operational,
     partitions: [{name: g, gpu_model: MI250X, gpu_memory_gb: 128, gpus_per_node: 4, nodes: 2}]}
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 3}]}
  - {id: jaif, name: JUPITER, country: DE, supercomputer: JUPITER, status: operational,
     partitions: [{name: booster, gpu_model: GH200, gpu_memory_gb: 96, gpus_per_node: 4,
                   nodes: 2, billing_weight: 2.2}]}
"""

USERS = {"alice": "aurora-vision", "carol": "kalevala-mri", "fabien": "climat-downscale"}


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="aif-ledger-"))
        catalogue = self.tmp / "catalogue.yaml"
        catalogue.write_text(SMALL_CATALOGUE)
        self.h: Harness = make_harness(
            self.tmp, f"sqlite:///{self.tmp}/aif.db", catalogue=catalogue, policy="earliest_start"
        )
        self.clients = {user: self.h.client(user) for user in USERS}
        self.job_ids: list[int] = []

    def teardown(self) -> None:
        self.h.platform.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _sites(self) -> list[MockExecutor]:
        return [e for e in self.h.executors.values() if isinstance(e, MockExecutor)]

    @rule(
        user=st.sampled_from(sorted(USERS)),
        gpus=st.sampled_from([1, 2, 4, 8]),
        hours=st.integers(1, 48),
        model=st.sampled_from(["any", "A100", "GH200"]),
    )
    def submit(self, user: str, gpus: int, hours: int, model: str) -> None:
        response = self.clients[user].post(
            "/jobs",
            json={
                "project": USERS[user],
                "gpus": gpus,
                "time_limit": hours * 3600,
                "gpu_model": model,
                "command": ["train"],
            },
        )
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:
            self.job_ids.append(response.json()["id"])

    @rule()
    def cycle(self) -> None:
        self.h.platform.broker.run_once()

    @rule(seconds=st.integers(1, 20 * 3600))
    def advance(self, seconds: int) -> None:
        self.h.clock.advance(seconds)

    @rule(
        data=st.data(),
        outcome=st.sampled_from([JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT]),
    )
    def finish_one(self, data: st.DataObject, outcome: JobState) -> None:
        running = [
            (site, job_id)
            for site in self._sites()
            for job_id, job in site.jobs.items()
            if job.status.state is JobState.RUNNING
        ]
        if not running:
            return
        site, job_id = data.draw(st.sampled_from(running))
        elapsed = data.draw(st.floats(0, 60 * 3600))  # may overrun the limit: capped charge
        site.finish(job_id, elapsed_s=elapsed, state=outcome)

    @precondition(lambda self: bool(self.job_ids))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.job_ids))
        for user in USERS:
            response = self.clients[user].delete(f"/jobs/{job_id}")
            if response.status_code == 200:
                return

    @rule(data=st.data())
    def lose_a_submit_reply(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self._sites())).lose_next_submit_reply()

    @rule()
    def crash_and_restart(self) -> None:
        """The platform dies (sites keep their jobs) and a new one starts on the same DB."""
        old = self.h.platform
        self.h.platform = Platform(old.settings, clock=self.h.clock, executors=self.h.executors)
        old.engine.dispose()
        self.clients = {user: self.h.client(user) for user in USERS}

    @invariant()
    def gpus_in_use_within_partitions(self) -> None:
        catalogue = self.h.platform.catalogue
        for site in self._sites():
            in_use: dict[str, int] = {}
            for job in site.jobs.values():
                if job.status.state is JobState.RUNNING:
                    name = job.request.partition.name
                    in_use[name] = in_use.get(name, 0) + job.request.shape.allocated_gpus
            for name, used in in_use.items():
                partition = catalogue.partition(f"{site.site_id}/{name}")
                assert partition is not None
                assert used <= partition.total_gpus

    @invariant()
    def books_balance(self) -> None:
        with self.h.platform.ctx.sessions() as s:
            for a in s.execute(select(AllocationRow)).scalars():
                left = a.granted_gpu_seconds - a.reserved_gpu_seconds - a.used_gpu_seconds
                assert left >= 0 and a.reserved_gpu_seconds >= 0
                assert a.reserved_gpu_seconds + a.used_gpu_seconds + left == a.granted_gpu_seconds
                held = s.execute(
                    select(func.coalesce(func.sum(JobRow.reserved_gpu_seconds), 0)).where(
                        JobRow.allocation_id == a.id,
                        JobRow.state.in_(["placed", "submitted", "running"]),
                    )
                ).scalar_one()
                assert a.reserved_gpu_seconds == held
                charged = s.execute(
                    select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                        LedgerEntryRow.allocation_id == a.id, LedgerEntryRow.kind == "charge"
                    )
                ).scalar_one()
                assert a.used_gpu_seconds == charged
            # Charged once: a job's charge is one entry per calendar month (or allocation)
            # it ran in, each dated at its piece's end; charging the same end twice would
            # repeat a (job, date) pair.
            per_piece = (
                s.execute(
                    select(func.count(LedgerEntryRow.id))
                    .where(LedgerEntryRow.kind == "charge")
                    .group_by(LedgerEntryRow.job_id, LedgerEntryRow.at)
                )
                .scalars()
                .all()
            )
            assert all(count == 1 for count in per_piece)


LedgerMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
TestLedgerInvariants = LedgerMachine.TestCase
