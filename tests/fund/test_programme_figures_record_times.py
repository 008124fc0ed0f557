"""The programme's figures as of a past date stay the same whatever the broker learns later:
a start the site reports late, a requeue, an allocation made after that date. Through the
broker's own cycle on mock sites (its reconciliation records starts and requeues), on SQLite
and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.db.models import AllocationRow, RequeuedStartRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState
from aifactories.executors.mock import MockExecutor
from aifactories.services.core.auth import authenticate
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.fund.programme_figures_values import ProgrammeFigures
from tests.broker.mock_platform import MockPlatform, mock_platform
from tests.conftest import database_of_kind
from tests.fund.programme_figures_costs import SmallCostModel

HOUR_S = 3600.0
DAY_S = 86400.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def mp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MockPlatform]:
    """The demo on mock sites that start nothing until told (a site's start is scripted)."""
    with database_of_kind(request.param, tmp_path) as url:
        platform = mock_platform(tmp_path, url, clock=ManualClock(1_780_000_000.0))
        for site in platform.executors.values():
            assert isinstance(site, MockExecutor)
            site.auto_start = False
        yield platform
        platform.platform.stop()


def figures(mp: MockPlatform, as_of: float, origin: float) -> ProgrammeFigures:
    """Two days before ``origin`` to ten after, as the books stood at ``as_of``."""
    ctx = mp.platform.ctx
    return programme_figures(
        ctx,
        authenticate(ctx, mp.tokens["oscar"]),
        start=origin - 2 * DAY_S,
        end=origin + 10 * DAY_S,
        as_of=as_of,
        costs=SmallCostModel(ctx.catalogue),
    )


def table(f: ProgrammeFigures) -> list[tuple[str, str, str, float | None]]:
    """The long table, comparable (NaN, a median of nothing, as None)."""
    return [(m.family, m.key, m.metric, None if math.isnan(m.value) else m.value) for m in f.rows()]


def site_of(mp: MockPlatform, job_id: int) -> tuple[MockExecutor, str]:
    row = mp.job(job_id)
    assert row.site_id is not None and row.site_job_id is not None, row.state
    site = mp.executors[SiteId(row.site_id)]
    assert isinstance(site, MockExecutor)
    return site, row.site_job_id


def total_waits(f: ProgrammeFigures) -> tuple[int, float]:
    total = next((w for w in f.waits if w.mode == "total"), None)
    return (0, 0.0) if total is None else (total.count, total.mean_h)


def start_at_site(mp: MockPlatform, job_id: int) -> None:
    site, site_job = site_of(mp, job_id)
    site.start(site_job)


def requeue_at_site(mp: MockPlatform, job_id: int) -> None:
    """The site puts the running job back in its queue (a node failure)."""
    site, site_job = site_of(mp, job_id)
    status = site.jobs[site_job].status
    site.jobs[site_job].status = replace(status, state=JobState.PENDING, reason="node failure")


def test_a_start_reported_late_leaves_a_past_date_unchanged(mp: MockPlatform) -> None:
    """A job starts at its site at 02:00; the broker learns it a day later. As of 03:00 no
    job had started as far as the platform knew: so it stays."""
    clock, origin = mp.clock, mp.clock.now()
    clock.advance(60)
    late = mp.submit()
    mp.platform.broker.run_once()  # placed and queued at its site
    clock.set(origin + 2 * HOUR_S)
    start_at_site(mp, late)  # the broker does not poll again until the next day
    as_of = origin + 3 * HOUR_S
    clock.set(as_of)
    then = figures(mp, as_of, origin)
    assert total_waits(then) == (0, 0.0)

    clock.set(origin + DAY_S)
    mp.platform.broker.run_once()  # learns the start
    row = mp.job(late)
    assert (row.state, row.started_at, row.start_recorded_at) == (
        "running",
        origin + 2 * HOUR_S,
        origin + DAY_S,
    )
    assert table(figures(mp, as_of, origin)) == table(then)
    # once learnt it counts, at the site's start: a wait of two hours
    now = figures(mp, clock.now(), origin)
    assert total_waits(now) == (1, pytest.approx((2 * HOUR_S - 60) / HOUR_S))


def test_a_requeue_leaves_a_past_date_unchanged(mp: MockPlatform) -> None:
    """A job starts at 01:00 (learnt then) and its site requeues it a day later: as of
    03:00 it had started, an hour after its submission, and still has, whenever asked;
    as of after the requeue it has not; started again, it counts once, at its new start."""
    clock, origin = mp.clock, mp.clock.now()
    clock.advance(60)
    requeued = mp.submit()
    mp.platform.broker.run_once()
    clock.set(origin + HOUR_S)
    start_at_site(mp, requeued)
    mp.platform.broker.run_once()
    assert mp.job(requeued).start_recorded_at == origin + HOUR_S
    as_of = origin + 3 * HOUR_S
    clock.set(as_of)
    then = figures(mp, as_of, origin)
    assert total_waits(then) == (1, pytest.approx((HOUR_S - 60) / HOUR_S))

    clock.set(origin + DAY_S)
    requeue_at_site(mp, requeued)
    mp.platform.broker.run_once()  # the requeue clears the start
    assert mp.job(requeued).started_at is None and mp.job(requeued).requeues == 1
    with mp.platform.ctx.reads() as session:
        kept = session.scalars(select(RequeuedStartRow)).one()
        assert (kept.job_id, kept.started_at, kept.recorded_at, kept.requeued_at) == (
            requeued,
            origin + HOUR_S,
            origin + HOUR_S,
            origin + DAY_S,
        )
    assert table(figures(mp, as_of, origin)) == table(then)
    assert total_waits(figures(mp, clock.now(), origin)) == (0, 0.0)

    clock.set(origin + 2 * DAY_S)
    mp.platform.broker.run_once()  # placed again
    start_at_site(mp, requeued)
    mp.platform.broker.run_once()
    again = figures(mp, clock.now(), origin)
    assert total_waits(again) == (1, pytest.approx((2 * DAY_S - 60) / HOUR_S))
    assert table(figures(mp, as_of, origin)) == table(then)


def test_an_allocation_made_after_a_date_is_not_granted_as_of_it(mp: MockPlatform) -> None:
    """The demo made its allocations (outside any call) now, starting a day ago: as of an
    hour ago they were not made yet, whatever their start; as of now they are granted."""
    now = mp.clock.now()
    with mp.platform.ctx.reads() as session:
        made = session.execute(select(AllocationRow.starts_at, AllocationRow.created_at)).all()
    assert made and all(c == now and s < now - HOUR_S for s, c in made)
    before = figures(mp, now - HOUR_S, now)
    assert before.granted == []
    after = figures(mp, now, now)
    granted = {(g.dimension, g.key): g.gpu_hours for g in after.granted}
    assert granted[("mode", "outside_calls")] > 0
