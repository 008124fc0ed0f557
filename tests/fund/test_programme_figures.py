"""The programme's figures over a seeded year (services/fund/history_seed.py): properties one
can check by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from aifactories.db.jobs import charge_usage
from aifactories.db.models import AllocationRow, JobRow, ProjectRow, SiteUsageRow, UserRow
from aifactories.db.programme_models import ProposalRow
from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import InvalidInput, PermissionDenied
from aifactories.fund.valuation_rules import allocation_rate, partition_rates
from aifactories.ledger.usage_split import split_usage
from aifactories.services.core.auth import principal_of_user
from aifactories.services.core.context import Principal
from aifactories.services.demo import PROJECTS, load_demo
from aifactories.services.fund.history_seed import SeededHistory, seed_history
from aifactories.services.fund.programme_figures import DIMENSIONS, programme_figures
from aifactories.services.fund.programme_figures_prices import PROGRAMME_SHARES
from aifactories.services.fund.programme_figures_values import HoursAndEuros, ProgrammeFigures
from aifactories.services.platform import Platform
from aifactories.services.programme.allocation_decisions import DecisionIn, decide_request
from aifactories.services.programme.allocation_requests import (
    AllocationRequestIn,
    request_change,
)
from aifactories.settings import Settings
from tests.conftest import database_of_kind
from tests.fund.programme_figures_costs import SmallCostModel

DAY_S = 86400.0


@dataclass
class Seeded:
    platform: Platform
    history: SeededHistory
    costs: SmallCostModel

    def principal(self, username: str) -> Principal:
        with self.platform.ctx.reads() as session:
            user = session.scalars(select(UserRow).where(UserRow.username == username)).one()
            return principal_of_user(session, user)

    def figures(self, as_of: float | None = None) -> ProgrammeFigures:
        h = self.history
        return programme_figures(
            self.platform.ctx,
            self.principal("oscar"),
            start=h.start,
            end=h.end,
            as_of=h.end if as_of is None else as_of,
            costs=self.costs,
        )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    tmp: Path = tmp_path_factory.mktemp("figures")
    with database_of_kind(request.param, tmp) as url:
        clock = ManualClock()
        settings = Settings(data_dir=tmp / "data", database_url=url, run_broker=False)
        platform = Platform(settings, clock=clock)
        platform.migrate()
        load_demo(platform.ctx)
        history = seed_history(platform.ctx, start=clock.now() + DAY_S, proposals=40, seed=7)
        yield Seeded(platform, history, SmallCostModel(platform.catalogue))
        platform.stop()


def _table(rows: list[HoursAndEuros], dimension: str) -> dict[str, HoursAndEuros]:
    return {r.key: r for r in rows if r.dimension == dimension}


def test_every_breakdown_adds_up_to_the_total(seeded: Seeded) -> None:
    figures = seeded.figures()
    for rows in (figures.granted, figures.used):
        total = _table(rows, "total")["total"]
        assert total.gpu_hours > 0 and total.eur > 0
        for dimension in [name for name, _ in DIMENSIONS] + ["site"]:
            parts = _table(rows, dimension).values()
            assert sum(p.gpu_hours for p in parts) == pytest.approx(total.gpu_hours, rel=1e-9)
            assert sum(p.eur for p in parts) == pytest.approx(total.eur, rel=1e-9)
    kinds = set(_table(figures.granted, "kind"))
    assert kinds == {"startup", "sme", "industry", "academia", "public"}
    assert set(_table(figures.granted, "critical")) == {"yes", "no"}


def test_granted_hours_are_the_allocations_made_and_euros_their_price(seeded: Seeded) -> None:
    figures = seeded.figures()
    awarded = [p for p in seeded.history.proposals if p.awarded]
    total = _table(figures.granted, "total")["total"]
    first_come = [p.proposal_id for p in awarded if p.mode != "large_scale"]
    with seeded.platform.ctx.reads() as session:
        projects = session.scalars(
            select(ProposalRow.project_id).where(
                ProposalRow.id.in_([p.proposal_id for p in awarded])
            )
        ).all()
        granted_s = sum(
            session.scalars(
                select(AllocationRow.granted_gpu_seconds).where(
                    AllocationRow.project_id.in_(projects)
                )
            ).all()
        )
        requested = sum(
            session.scalars(
                select(ProposalRow.requested_gpu_hours).where(ProposalRow.id.in_(first_come))
            ).all()
        )
    # the allocations as they stand, extensions included, are what the audit log granted
    assert total.gpu_hours == pytest.approx(granted_s / 3600)
    extensions = seeded.history.extensions
    assert extensions  # the seed approves some: they are grants too, at their approval
    # first come, first served grants the request whole
    modes = _table(figures.granted, "mode")
    assert modes["playground"].gpu_hours + modes["fast_lane"].gpu_hours >= requested
    assert modes["large_scale"].gpu_hours > 0
    catalogue = seeded.platform.catalogue
    by_site = _table(figures.granted, "site")
    assert len(by_site) > 2
    # a pool grant at the rate the books in euros give its allocation (fund/valuation_rules)
    with seeded.platform.ctx.reads() as session:
        pools = {
            tuple(a.pool_sites or ())
            for a in session.scalars(select(AllocationRow).where(AllocationRow.site_id.is_(None)))
            if a.starts_at >= seeded.history.start
        }
    assert len(pools) == 1  # every pool grant may be used at the same sites: one price
    rates = partition_rates(catalogue, seeded.costs)
    operational = [s.id for s in catalogue.operational_sites]
    rate = allocation_rate(rates, None, pools.pop(), operational)
    assert rate is not None
    assert by_site["pool"].eur == pytest.approx(by_site["pool"].gpu_hours * rate)
    for site_id, row in by_site.items():
        if site_id == "pool":
            continue
        site = catalogue.site(site_id)
        assert site is not None and len(site.partitions) == 1  # one price: checkable by hand
        part = site.partitions[0]
        price = seeded.costs.partition(part.id).eur_per_gpu_hour / part.billing_weight
        assert row.eur == pytest.approx(row.gpu_hours * price)


def test_a_grant_counts_from_its_decision(seeded: Seeded) -> None:
    fast = [p for p in seeded.history.proposals if p.mode == "fast_lane" and p.awarded]
    target = fast[len(fast) // 2]
    assert target.decided_at is not None
    before = seeded.figures(as_of=target.decided_at - 1.0)
    after = seeded.figures(as_of=target.decided_at)
    with seeded.platform.ctx.reads() as session:
        row = session.get(ProposalRow, target.proposal_id)
        assert row is not None
        hours = row.requested_gpu_hours
    gained = (
        _table(after.granted, "total")["total"].gpu_hours
        - _table(before.granted, "total")["total"].gpu_hours
    )
    assert gained == pytest.approx(hours)
    approved_at, seconds = seeded.history.extensions[0]
    before = seeded.figures(as_of=approved_at - 1.0)
    after = seeded.figures(as_of=approved_at)
    gained = (
        _table(after.granted, "total")["total"].gpu_hours
        - _table(before.granted, "total")["total"].gpu_hours
    )
    assert gained == pytest.approx(seconds / 3600)
    # and nothing recorded after as_of counts: no job had started by the first submission
    first = seeded.history.proposals[0].submitted_at
    early = seeded.figures(as_of=first - 1.0)
    assert early.granted == [] and early.used == [] and early.waits == []


def _days(values: list[float]) -> tuple[float, float]:
    days = [v / DAY_S for v in values]
    p90 = statistics.quantiles(days, n=10, method="inclusive")[8] if len(days) > 1 else days[0]
    return statistics.median(days), p90


def test_time_to_access_is_the_seeded_delays(seeded: Seeded) -> None:
    figures = seeded.figures()
    found = {(d.mode, d.stage): d for d in figures.time_to_access}
    for mode in ("playground", "fast_lane", "large_scale"):
        mine = [p for p in seeded.history.proposals if p.mode == mode]
        decided = [(p, p.decided_at) for p in mine if p.decided_at is not None]
        decision = [at - p.submitted_at for p, at in decided]
        first = [p.first_job_at - at for p, at in decided if p.first_job_at is not None]
        total = [p.first_job_at - p.submitted_at for p in mine if p.first_job_at is not None]
        for stage, values in (
            ("submission_to_decision", decision),
            ("decision_to_first_job", first),
            ("submission_to_first_job", total),
        ):
            row = found[(mode, stage)]
            median, p90 = _days(values)
            assert row.count == len(values)
            assert row.median_days == pytest.approx(median, abs=1e-6)
            assert row.p90_days == pytest.approx(p90, abs=1e-6)
    # Playground is awarded at submission; Large Scale waits for its cut-off and the panel
    assert found[("playground", "submission_to_decision")].p90_days == 0
    assert (
        found[("large_scale", "submission_to_decision")].median_days
        > found[("fast_lane", "submission_to_decision")].median_days
    )


def test_waits_are_the_seeded_waits(seeded: Seeded) -> None:
    figures = seeded.figures()
    by_mode = {w.mode: w for w in figures.waits}
    for mode, waits in seeded.history.waits_s.items():
        hours = [w / 3600 for w in waits]
        assert by_mode[mode].count == len(hours)
        assert by_mode[mode].median_h == pytest.approx(statistics.median(hours), abs=1e-6)
        p90 = statistics.quantiles(hours, n=10, method="inclusive")[8]
        assert by_mode[mode].p90_h == pytest.approx(p90, abs=1e-6)
    assert by_mode["total"].count == seeded.history.jobs


def test_used_utilisation_energy_and_shares(seeded: Seeded) -> None:
    figures = seeded.figures()
    with seeded.platform.ctx.reads() as session:
        charged = int(session.scalar(select(func.sum(JobRow.charged_gpu_seconds))) or 0)
    assert _table(figures.used, "total")["total"].gpu_hours == pytest.approx(charged / 3600)
    assert all(0.0 <= u.utilisation <= 1.0 for u in figures.utilisation)
    assert any(u.used_gpu_hours > 0 for u in figures.utilisation)
    catalogue = seeded.platform.catalogue
    physical = {u.partition_id: u.used_gpu_hours for u in figures.utilisation}
    energy = {e.site_id: e for e in figures.energy}
    kwh = 0.0
    for pid, hours in physical.items():
        kwh += hours * seeded.costs.partition(pid).kwh_per_gpu_hour
        part = catalogue.partition(pid)
        assert part is not None
        if hours:  # physical hours = billed hours / the billing weight
            billed = _table(figures.used, "site")[part.site_id].gpu_hours
            assert hours == pytest.approx(billed / part.billing_weight)
    assert energy["total"].kwh == pytest.approx(kwh)
    assert energy["total"].kg_co2 == pytest.approx(sum(physical.values()) * 0.2)
    hours = (seeded.history.end - seeded.history.start) / 3600
    shares = {c.site_id: c for c in figures.capacity_shares}
    melux = shares["meluxina-ai"]
    assert melux.share == PROGRAMME_SHARES["meluxina-ai"].share == 0.5
    assert "etude.lu" in melux.basis
    # published for the new system, applied to today's partition: both said
    assert "assumption: MeluXina-AI's split applied" in melux.basis
    for c in shares.values():
        assert c.programme_gpu_hours + c.hosting_gpu_hours == pytest.approx(c.gpus * hours)
        assert c.basis


def test_rows_and_access(seeded: Seeded) -> None:
    figures = seeded.figures()
    rows = figures.rows()
    families = {r.family for r in rows}
    assert families == {
        "granted",
        "used",
        "utilisation",
        "time_to_access",
        "wait",
        "energy",
        "capacity_share",
    }
    total = [r for r in rows if (r.family, r.key, r.metric) == ("granted", "total", "eur")]
    assert total[0].value == _table(figures.granted, "total")["total"].eur
    h = seeded.history
    with pytest.raises(PermissionDenied):
        programme_figures(seeded.platform.ctx, seeded.principal("alice"), start=h.start, end=h.end)
    with pytest.raises(InvalidInput):
        programme_figures(seeded.platform.ctx, seeded.principal("oscar"), start=h.end, end=h.start)


def test_allocations_outside_calls_count_at_their_start_at_their_first_size(
    seeded: Seeded,
) -> None:
    """The demo's allocations come from no call: granted when they start, at the size they
    had then, even after an extension (which counts at its approval)."""
    ctx = seeded.platform.ctx
    with ctx.reads() as session:
        demo = session.scalars(
            select(AllocationRow).where(AllocationRow.starts_at < seeded.history.start)
        ).all()
        first_start = min(a.starts_at for a in demo)
        target = demo[0].id
    demo_hours = sum(hours for *_, allocations in PROJECTS for _, hours in allocations)
    clock = _clock_at_least(seeded, seeded.history.end + DAY_S)
    request = request_change(
        ctx,
        seeded.principal("alice"),
        target,
        AllocationRequestIn(kind="extension", gpu_hours=500.0, justification="more"),
    )
    decide_request(
        ctx, seeded.principal("oscar"), request.id, DecisionIn(decision="approve", reason="ok")
    )
    figures = programme_figures(
        ctx,
        seeded.principal("oscar"),
        start=first_start,
        end=seeded.history.start,
        as_of=clock.now(),
        costs=seeded.costs,
    )
    granted = _table(figures.granted, "mode")
    assert granted["outside_calls"].gpu_hours == pytest.approx(demo_hours)
    later = programme_figures(
        ctx,
        seeded.principal("oscar"),
        start=seeded.history.end,
        end=clock.now() + 1,
        costs=seeded.costs,
    )
    assert _table(later.granted, "total")["total"].gpu_hours == pytest.approx(500.0)


def _clock_at_least(seeded: Seeded, when: float) -> ManualClock:
    """The platform's clock, moved on to ``when`` unless another test moved it further."""
    clock = seeded.platform.ctx.clock
    assert isinstance(clock, ManualClock)
    if clock.now() < when:
        clock.set(when)
    return clock


def test_usage_imported_from_a_site_counts_once_imported(seeded: Seeded) -> None:
    """Usage run outside the broker is dated when it ran but written when imported: a date
    before the import does not see it; after, it counts at its site, with no partition."""
    ctx = seeded.platform.ctx
    history = seeded.history
    imported_at = _clock_at_least(seeded, history.end + 3 * DAY_S).now()
    with ctx.sessions.begin() as session:
        alloc = session.scalars(
            select(AllocationRow)
            .where(AllocationRow.site_id == "lumi-aif", AllocationRow.starts_at >= history.start)
            .order_by(AllocationRow.id)
        ).first()
        assert alloc is not None
        code = session.get(ProjectRow, alloc.project_id).code  # type: ignore[union-attr]
        ran_from = alloc.starts_at + 3600
        amount = 4 * 7200  # 4 GPUs for 2 hours, billing weight 1
        session.add(
            SiteUsageRow(
                site_id="lumi-aif",
                site_job_id="777",
                started_at=ran_from,
                ended_at=ran_from + 7200,
                account=code,
                project_id=alloc.project_id,
                gpus=4,
                elapsed_s=7200.0,
                charged_gpu_seconds=amount,
                imported_at=imported_at,
            )
        )
        pieces = split_usage(ran_from, ran_from + 7200, amount, [alloc.ends_at])
        note = f"direct lumi-aif job 777 ({code})"
        assert charge_usage(session, alloc.project_id, "lumi-aif", pieces, imported_at, note) == []
    before = seeded.figures(as_of=imported_at - 1.0)
    after = seeded.figures(as_of=imported_at)
    for dimension, key in (("total", "total"), ("site", "lumi-aif")):
        gained = (
            _table(after.used, dimension)[key].gpu_hours
            - _table(before.used, dimension)[key].gpu_hours
        )
        assert gained == pytest.approx(2 * 4.0)
    used = {u.partition_id: u.used_gpu_hours for u in before.utilisation}
    assert {u.partition_id: u.used_gpu_hours for u in after.utilisation} == used
    kwh = seeded.costs.partition("lumi-aif/lumi-g").kwh_per_gpu_hour * 8.0
    energy = {e.site_id: e.kwh for e in after.energy}
    assert energy["lumi-aif"] - {e.site_id: e.kwh for e in before.energy}["lumi-aif"] == (
        pytest.approx(kwh)
    )
