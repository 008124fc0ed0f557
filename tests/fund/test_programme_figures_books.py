"""The programme's figures against the books, job by job: which charges a period and an
``as_of`` select, at which billing weight, and what a hostile period answers. On SQLite and
PostgreSQL, over the demo on a catalogue where LUMI has two partitions: lumi-g at billing weight
2 and lumi-x at 3."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event, select

from aifactories.broker.reconcile import finish_job
from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.db.jobs import charge_usage, try_reserve
from aifactories.db.models import (
    AllocationRow,
    JobRow,
    LedgerEntryRow,
    ProjectRow,
    SiteUsageRow,
    UserRow,
)
from aifactories.domain.clock import ManualClock
from aifactories.domain.jobs import JobState
from aifactories.domain.units import charge_gpu_seconds
from aifactories.ledger.usage_split import split_usage
from aifactories.services.core.auth import principal_of_user
from aifactories.services.core.context import Principal
from aifactories.services.demo import load_demo
from aifactories.services.fund.programme_figures import programme_figures
from aifactories.services.fund.programme_figures_books import read_books
from aifactories.services.fund.programme_figures_values import ProgrammeFigures
from aifactories.services.fund.valuation import allocation_euros
from aifactories.services.jobs.job_spec import JobRequest
from aifactories.services.jobs.jobs import submit_job
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from tests.conftest import database_of_kind
from tests.fund.programme_figures_costs import SmallCostModel

HOUR_S = 3600.0
DAY_S = 86400.0
LUMI_G = "lumi-aif/lumi-g"
LUMI_X = "lumi-aif/lumi-x"  # the test's second LUMI partition, billing weight 3


def day(year: int, month: int, dd: int) -> float:
    return datetime(year, month, dd, tzinfo=UTC).timestamp()


def catalogue_data(x_weight: float = 3.0, g_weight: float = 2.0) -> dict[str, Any]:
    path = Path(__file__).parents[2] / "src/aifactories/catalogue/catalogue.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    lumi = next(s for s in data["sites"] if s["id"] == "lumi-aif")
    first = dict(lumi["partitions"][0], billing_weight=g_weight)
    second = dict(first, name="lumi-x", nodes=100, billing_weight=x_weight)
    second.pop("aliases", None)
    lumi["partitions"] = [first, second]
    return data


def catalogue_with(x_weight: float = 3.0, g_weight: float = 2.0) -> Catalogue:
    return parse_catalogue(catalogue_data(x_weight, g_weight), "test catalogue")


@dataclasses.dataclass
class Books:
    platform: Platform
    clock: ManualClock
    costs: SmallCostModel

    def principal(self, username: str) -> Principal:
        with self.platform.ctx.reads() as session:
            user = session.scalars(select(UserRow).where(UserRow.username == username)).one()
            return principal_of_user(session, user)

    def figures(
        self,
        start: float,
        end: float,
        as_of: float | None = None,
        catalogue: Catalogue | None = None,
    ) -> ProgrammeFigures:
        ctx = self.platform.ctx
        if catalogue is not None:
            ctx = dataclasses.replace(ctx, catalogue=catalogue)
        return programme_figures(
            ctx, self.principal("oscar"), start=start, end=end, as_of=as_of, costs=self.costs
        )

    def run_job(
        self, partition_id: str, start: float, end: float, gpus: int = 4, settled: float = 0.0
    ) -> int:
        """A job of kalevala-mri on ``partition_id`` from ``start`` to ``end``, charged by
        the broker's reconciliation at ``end + settled``."""
        job_id = self.start_job(partition_id, start, end, gpus)
        self.settle_job(job_id, start, end, gpus, end + settled)
        return job_id

    def start_job(self, partition_id: str, start: float, end: float, gpus: int = 4) -> int:
        """The job submitted and running from ``start`` (reserved for its whole run)."""
        ctx = self.platform.ctx
        part = ctx.catalogue.partition(partition_id)
        assert part is not None
        self.clock.set(max(self.clock.now(), start))
        request = JobRequest(
            project="kalevala-mri",
            gpus=gpus,
            nodes=1,
            options=[f"--partition={LUMI_G}"],
            time_limit=int(end - start) + 3600,
            command=["train"],
            name="train",
        )
        job_id = submit_job(ctx, self.principal("carol"), request).id
        with ctx.sessions.begin() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            alloc = session.scalars(
                select(AllocationRow).where(AllocationRow.site_id == "lumi-aif")
            ).one()
            held = charge_gpu_seconds(gpus, row.time_limit_s, part.billing_weight)
            if row.reserved_gpu_seconds:  # the submission reserved already
                held = row.reserved_gpu_seconds
            else:
                assert try_reserve(session, alloc.id, held, job_id, start)
            row.state = "running"
            row.placed_at = row.started_at = start
            row.site_id, row.partition_id = "lumi-aif", partition_id
            row.shape_nodes, row.shape_gpus_per_node, row.shape_exclusive = 1, gpus, False
            row.allocation_id, row.billing_weight = alloc.id, part.billing_weight
            row.reserved_gpu_seconds, row.site_job_id = held, f"s{job_id}"
        return job_id

    def settle_job(self, job_id: int, start: float, end: float, gpus: int, at: float) -> None:
        """The reconciliation learns at ``at`` that the job ran until ``end``, and charges it."""
        self.clock.set(max(self.clock.now(), at))
        with self.platform.ctx.sessions.begin() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            finish_job(
                session,
                row,
                JobState.COMPLETED,
                self.clock.now(),
                elapsed_s=end - start,
                ended_at=end,
                exit_code=0,
                allocated_gpus=gpus,
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def books(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Books]:
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text(yaml.safe_dump(catalogue_data()), "utf-8")
    with database_of_kind(request.param, tmp_path) as url:
        clock = ManualClock(day(2026, 1, 5))
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            run_broker=False,
            catalogue=catalogue_file,
        )
        platform = Platform(settings, clock=clock)
        platform.migrate()
        load_demo(platform.ctx)
        yield Books(platform, clock, SmallCostModel(platform.catalogue))
        platform.stop()


def used_hours(figures: ProgrammeFigures) -> float:
    return next((r.gpu_hours for r in figures.used if r.dimension == "total"), 0.0)


def test_usage_across_a_month_boundary_counts_in_the_month_it_ran(books: Books) -> None:
    """A job on lumi-g from 30 January to 2 February: two days in January, one in February
    (billed GPU-hours: 4 GPUs x hours x weight 2)."""
    books.run_job(LUMI_G, day(2026, 1, 30), day(2026, 2, 2))
    jan, feb, mar = day(2026, 1, 1), day(2026, 2, 1), day(2026, 3, 1)
    assert used_hours(books.figures(jan, feb)) == pytest.approx(4 * 48.0 * 2)
    assert used_hours(books.figures(feb, mar)) == pytest.approx(4 * 24.0 * 2)
    assert used_hours(books.figures(jan, mar)) == pytest.approx(4 * 72.0 * 2)


def physical(figures: ProgrammeFigures, site_id: str) -> float:
    return next((e.gpu_hours for e in figures.energy if e.site_id == site_id), 0.0)


def test_a_charge_keeps_the_weight_it_was_made_at(books: Books) -> None:
    """A job on lumi-x charged at weight 3; the catalogue then weighs lumi-x 1.5: the figures
    do not change, and their euros are the books' (services/fund/valuation.py)."""
    books.run_job(LUMI_X, day(2026, 1, 10), day(2026, 1, 11))
    jan, feb = day(2026, 1, 1), day(2026, 2, 1)
    before = books.figures(jan, feb)
    after = books.figures(jan, feb, catalogue=catalogue_with(x_weight=1.5))
    assert used_hours(before) == pytest.approx(4 * 24.0 * 3)
    eur = 4 * 24.0 * books.costs.partition(LUMI_X).eur_per_gpu_hour
    assert next(r.eur for r in before.used if r.dimension == "total") == pytest.approx(eur)
    assert before.used == after.used
    assert before.energy == after.energy
    used = {u.partition_id: u.used_gpu_hours for u in after.utilisation}
    assert used[LUMI_X] == pytest.approx(4 * 24.0)


def test_used_euros_are_the_books_used_euros(books: Books) -> None:
    """With the cost model the books use (the default): the figures' used euros equal the sum
    of every allocation's used euros, lumi-x (which the cost model does not price) at the
    allocation's rate as the books value it."""
    books.run_job(LUMI_G, day(2026, 1, 10), day(2026, 1, 11))
    books.run_job(LUMI_X, day(2026, 1, 12), day(2026, 1, 13))
    ctx = books.platform.ctx
    with ctx.reads() as session:
        rows = session.scalars(select(AllocationRow)).all()
        valued = allocation_euros(session, ctx.catalogue, rows)
    books_eur = sum(v.used or 0.0 for v in valued.values())
    assert books_eur > 0
    figures = programme_figures(
        ctx, books.principal("oscar"), start=day(2026, 1, 1), end=day(2026, 2, 1)
    )
    eur = next(r.eur for r in figures.used if r.dimension == "total")
    assert eur == pytest.approx(books_eur)


def test_imported_usage_is_physical_hours_at_the_import_weight(books: Books) -> None:
    """Usage imported from LUMI's accounting is charged at the lowest weight of its
    partitions (2, lumi-g's; services/sites/usage_import.py): 4 GPUs for 2 hours are 8
    physical GPU-hours, not the billed hours over the site's mean weight."""
    ctx = books.platform.ctx
    ran_from = day(2026, 1, 10)
    books.clock.set(day(2026, 1, 20))
    with ctx.sessions.begin() as session:
        alloc = session.scalars(
            select(AllocationRow).where(AllocationRow.site_id == "lumi-aif")
        ).one()
        code = session.get(ProjectRow, alloc.project_id).code  # type: ignore[union-attr]
        amount = charge_gpu_seconds(4, 7200, 2.0)
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
                imported_at=books.clock.now(),
            )
        )
        pieces = split_usage(ran_from, ran_from + 7200, amount, [alloc.ends_at])
        note = f"direct lumi-aif job 777 ({code})"
        left = charge_usage(session, alloc.project_id, "lumi-aif", pieces, books.clock.now(), note)
        assert left == []
    figures = books.figures(day(2026, 1, 1), day(2026, 2, 1))
    assert used_hours(figures) == pytest.approx(16.0)  # billed: 8 GPU-hours x weight 2
    assert physical(figures, "lumi-aif") == pytest.approx(8.0)
    share = {c.site_id: c.used_gpu_hours for c in figures.capacity_shares}
    assert share["lumi-aif"] == pytest.approx(8.0)


def test_a_partition_the_cost_model_lacks_is_valued_at_the_allocations_rate(
    books: Books,
) -> None:
    """As the books value it (fund/valuation_rules.py ``value_held``): lumi-x unpriced, its
    use at the rate of the LUMI allocation (lumi-g's cost over its weight), and said."""
    books.run_job(LUMI_X, day(2026, 1, 10), day(2026, 1, 11))
    del books.costs.partitions[LUMI_X]
    figures = books.figures(day(2026, 1, 1), day(2026, 2, 1))
    billed = 4 * 24.0 * 3
    rate = books.costs.partition(LUMI_G).eur_per_gpu_hour / 2.0
    assert next(r.eur for r in figures.used if r.dimension == "total") == pytest.approx(
        billed * rate
    )
    assert any(LUMI_X in note and "allocation" in note for note in figures.notes)


def test_a_charge_written_after_as_of_does_not_count(books: Books) -> None:
    """A job that ran 10 to 11 January, settled on the 14th: as of the 12th nothing was
    recorded yet, although the charge is dated the 11th."""
    books.run_job(LUMI_G, day(2026, 1, 10), day(2026, 1, 11), settled=3 * DAY_S)
    jan, feb = day(2026, 1, 1), day(2026, 2, 1)
    assert used_hours(books.figures(jan, feb, as_of=day(2026, 1, 12))) == 0.0
    assert used_hours(books.figures(jan, feb, as_of=day(2026, 1, 14))) == pytest.approx(4 * 24 * 2)


def test_a_past_date_gives_the_same_figures_before_and_after_a_later_write(books: Books) -> None:
    """January as of 1 February 01:00, computed then and again after the job that crossed the
    month boundary was charged (on 2 February, a piece dated 1 February 00:00)."""
    start, end = day(2026, 1, 30), day(2026, 2, 2)
    job_id = books.start_job(LUMI_G, start, end)
    jan, feb = day(2026, 1, 1), day(2026, 2, 1)
    as_of = feb + 3600
    books.clock.set(as_of)
    then = books.figures(jan, feb, as_of=as_of)
    books.settle_job(job_id, start, end, 4, end)
    again = books.figures(jan, feb, as_of=as_of)
    assert again.used == then.used and again.energy == then.energy
    assert again.utilisation == then.utilisation
    assert used_hours(books.figures(jan, feb, as_of=end)) == pytest.approx(4 * 48 * 2)


def test_charges_are_summed_in_the_database_and_imports_not_read(books: Books) -> None:
    """However many charges a job has, the figures read one sum per what values them; they
    read neither site_usage nor a proposal's texts."""
    ctx = books.platform.ctx
    books.run_job(LUMI_G, day(2026, 1, 10), day(2026, 1, 11))
    jan, feb = day(2026, 1, 1), day(2026, 2, 1)
    with ctx.reads() as session:
        before = read_books(session, jan, feb, day(2026, 3, 1), ["lumi-aif"]).charges
    with ctx.sessions.begin() as session:
        entry = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == "charge")
        ).first()
        assert entry is not None
        for i in range(30):
            session.add(
                LedgerEntryRow(
                    allocation_id=entry.allocation_id,
                    job_id=entry.job_id,
                    kind="charge",
                    gpu_seconds=3600,
                    at=day(2026, 1, 12) + i,
                    recorded_at=day(2026, 1, 12) + i,
                )
            )
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(ctx.read_engine, "before_cursor_execute", seen)
    try:
        with ctx.reads() as session:
            after = read_books(session, jan, feb, day(2026, 3, 1), ["lumi-aif"]).charges
    finally:
        event.remove(ctx.read_engine, "before_cursor_execute", seen)
    assert len(after) == len(before) == 1
    assert after[0].gpu_seconds == before[0].gpu_seconds + 30 * 3600
    text_ = " ".join(statements)
    assert "site_usage" not in text_ and "proposals.abstract" not in text_


def test_capacity_counts_only_the_hours_passed_at_as_of(books: Books) -> None:
    """January and February as of 1 February: 31 days of capacity, not 59."""
    jan, feb, mar = day(2026, 1, 1), day(2026, 2, 1), day(2026, 3, 1)
    books.clock.set(feb)
    figures = books.figures(jan, mar, as_of=feb)
    part = books.platform.catalogue.partition(LUMI_G)
    assert part is not None
    available = {u.partition_id: u.available_gpu_hours for u in figures.utilisation}
    assert available[LUMI_G] == pytest.approx(part.total_gpus * 31 * 24)
    site = {c.site_id: c for c in figures.capacity_shares}["lumi-aif"]
    lumi_gpus = sum(p.total_gpus for p in books.platform.catalogue.site("lumi-aif").partitions)  # type: ignore[union-attr]
    assert site.programme_gpu_hours + site.hosting_gpu_hours == pytest.approx(lumi_gpus * 31 * 24)
    # a period wholly after as_of has no capacity yet
    later = books.figures(feb + DAY_S, mar, as_of=feb)
    assert all(u.available_gpu_hours == 0 for u in later.utilisation)
