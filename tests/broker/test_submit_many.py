"""A back-end that takes a chunk of jobs at once (``submit_many``, as the emulated site does):
each job's own refusal fails that job alone; a failure of the whole call leaves every job of
the chunk to reconcile, which adopts what the site has and requeues the rest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import ExecutorError, SiteUnavailable, SubmissionRejected
from aifactories.domain.sites import Site
from aifactories.executors.base import SubmitRequest
from aifactories.executors.mock import MockExecutor
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from tests.broker.mock_platform import MockPlatform, mock_platform


class ChunkSite(MockExecutor):
    """A mock site with submit_many: refuses jobs named 'bad', or fails whole calls."""

    def __init__(self, site: Site, clock: ManualClock) -> None:
        super().__init__(site, clock)
        self.chunks: list[int] = []
        self.fail_next_call = False

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | ExecutorError]:
        self.chunks.append(len(requests))
        if self.fail_next_call:
            self.fail_next_call = False
            raise SiteUnavailable(f"{self.site_id}: disk full")
        out: list[str | ExecutorError] = []
        for request in requests:
            if request.spec.name == "bad":
                out.append(SubmissionRejected("no", "the site refuses jobs named bad"))
            else:
                out.append(self.submit(request))
        return out


@pytest.fixture
def mp(tmp_path: Path, database_url: str) -> Iterator[MockPlatform]:
    clock = ManualClock()
    settings = Settings(data_dir=tmp_path / "probe", database_url="sqlite://", run_broker=False)  # type: ignore[call-arg]
    probe = Platform(settings, clock=clock)
    sites = {s.id: ChunkSite(s, clock) for s in probe.catalogue.operational_sites}
    probe.stop()
    platform = mock_platform(tmp_path, database_url, clock=clock, executors=dict(sites))
    yield platform
    platform.platform.stop()


def _submit_to_lumi(mp: MockPlatform, name: str) -> int:
    from aifactories.services.core.auth import authenticate
    from aifactories.services.jobs.jobs import JobRequest, submit_job

    principal = authenticate(mp.platform.ctx, mp.tokens["carol"])
    request = JobRequest(
        project="kalevala-mri",
        gpus=1,
        time_limit="10:00",
        command=["x"],
        name=name,
        options=["--partition=lumi-aif/lumi-g"],
    )
    return int(submit_job(mp.platform.ctx, principal, request).id)


def test_a_chunk_goes_in_one_call_and_one_refusal_fails_that_job_alone(mp: MockPlatform) -> None:
    jobs = [_submit_to_lumi(mp, "bad" if i == 2 else f"ok{i}") for i in range(5)]
    mp.platform.broker.run_once()
    site = mp.executors["lumi-aif"]  # type: ignore[index]
    assert isinstance(site, ChunkSite) and site.chunks == [5]
    states = [mp.job(j).state for j in jobs]
    assert states[2] == "failed" and "jobs named bad" in (mp.job(jobs[2]).reason or "")
    assert all(s in {"submitted", "running"} for i, s in enumerate(states) if i != 2), states


def test_a_whole_call_that_fails_leaves_the_chunk_to_reconcile(mp: MockPlatform) -> None:
    site = mp.executors["lumi-aif"]  # type: ignore[index]
    assert isinstance(site, ChunkSite)
    site.fail_next_call = True
    jobs = [_submit_to_lumi(mp, f"ok{i}") for i in range(3)]
    report = mp.platform.broker.run_once()
    assert "lumi-aif" in report.unreachable_sites
    assert {mp.job(j).state for j in jobs} == {"placed"}  # unconfirmed: the site may have them
    mp.clock.advance(60)
    for _ in range(3):
        mp.platform.broker.run_once()
    # the site never had them: reconcile requeued them and the broker placed them again
    assert {mp.job(j).state for j in jobs} <= {"submitted", "running"}
    assert all(mp.job(j).requeues == 0 for j in jobs)
