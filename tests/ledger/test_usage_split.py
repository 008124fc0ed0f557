"""Usage split by month and at an allocation's end: pure rules, then through the broker."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow
from aifactories.executors.mock import MockExecutor
from aifactories.ledger.usage_split import month_starts, split_usage
from tests.api.harness import Harness, make_harness


def _t(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_a_job_over_new_year_is_split_by_time() -> None:
    pieces = split_usage(_t(2026, 12, 31, 22), _t(2027, 1, 1, 4), 6 * 3600 * 8)
    assert [(p.month, p.gpu_seconds) for p in pieces] == [
        ("2026-12", 2 * 3600 * 8),
        ("2027-01", 4 * 3600 * 8),
    ]


def test_month_starts_inside_a_long_run() -> None:
    assert month_starts(_t(2026, 1, 15), _t(2026, 4, 1)) == [_t(2026, 2, 1), _t(2026, 3, 1)]


@given(
    start=st.floats(min_value=1.7e9, max_value=1.8e9),
    length=st.floats(min_value=0, max_value=200 * 86400),
    charge=st.integers(min_value=0, max_value=10**12),
    cut=st.floats(min_value=1.7e9, max_value=1.82e9),
)
def test_pieces_always_add_up_and_stay_in_order(
    start: float, length: float, charge: int, cut: float
) -> None:
    pieces = split_usage(start, start + length, charge, [cut])
    assert sum(p.gpu_seconds for p in pieces) == charge
    assert all(p.gpu_seconds >= 0 for p in pieces)
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert all(p.month == datetime.fromtimestamp(p.start, UTC).strftime("%Y-%m") for p in pieces)


SITE = """
sites:
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2}]}
"""


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(SITE)
    h = make_harness(tmp_path, database_url, catalogue=catalogue, policy="first_fit")
    yield h
    h.platform.stop()


def _run_job(h: Harness, start: float, hours: float) -> int:
    h.clock.advance(start - h.clock.now())
    body = {"project": "aurora-vision", "gpus": 4, "time_limit": 86400, "command": ["train"]}
    response = h.client("alice").post("/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id = int(response.json()["id"])
    h.cycle()
    site = h.executors["it4lia"]  # type: ignore[index]
    assert isinstance(site, MockExecutor)
    h.clock.advance(hours * 3600)
    with h.platform.ctx.reads() as s:
        row = s.get(JobRow, job_id)
        assert row is not None and row.site_job_id is not None
        site_job_id = row.site_job_id
    site.finish(site_job_id, elapsed_s=hours * 3600)
    h.cycle()
    return job_id


def _charges(h: Harness, job_id: int) -> list[tuple[int, str, int]]:
    with h.platform.ctx.reads() as s:
        rows = s.execute(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.job_id == job_id, LedgerEntryRow.kind == "charge")
            .order_by(LedgerEntryRow.at)
        ).scalars()
        return [
            (
                r.allocation_id,
                datetime.fromtimestamp(r.at - 1, UTC).strftime("%Y-%m"),
                r.gpu_seconds,
            )
            for r in rows
        ]


def test_the_broker_charges_a_month_crossing_job_to_both_months(harness: Harness) -> None:
    with harness.platform.ctx.sessions() as s, s.begin():
        allocation = s.execute(
            select(AllocationRow).where(AllocationRow.project_id == 1)
        ).scalar_one()
        allocation.ends_at = _t(2026, 12, 31)
    job_id = _run_job(harness, _t(2026, 1, 31, 22), 4)
    charges = _charges(harness, job_id)
    assert [(month, gs) for _a, month, gs in charges] == [
        ("2026-01", 2 * 3600 * 4),
        ("2026-02", 2 * 3600 * 4),
    ]


def test_usage_after_an_allocation_ends_goes_to_the_next_one(harness: Harness) -> None:
    with harness.platform.ctx.sessions() as s, s.begin():
        first = s.execute(select(AllocationRow).where(AllocationRow.project_id == 1)).scalar_one()
        first.ends_at = _t(2026, 3, 10, 12)
        second = AllocationRow(
            project_id=1,
            site_id=first.site_id,
            granted_gpu_seconds=10**9,
            starts_at=_t(2026, 3, 10, 12),
            ends_at=_t(2026, 9, 10),
            status="open",
        )
        s.add(second)
        s.flush()
        first_id, second_id = first.id, second.id
    job_id = _run_job(harness, _t(2026, 3, 10, 11), 3)
    charges = _charges(harness, job_id)
    assert [(a, gs) for a, _m, gs in charges] == [(first_id, 3600 * 4), (second_id, 2 * 3600 * 4)]
    with harness.platform.ctx.reads() as s:
        first_row = s.get(AllocationRow, first_id)
        second_row = s.get(AllocationRow, second_id)
        job = s.get(JobRow, job_id)
        assert first_row is not None and second_row is not None and job is not None
        assert (first_row.used_gpu_seconds, first_row.reserved_gpu_seconds) == (3600 * 4, 0)
        assert second_row.used_gpu_seconds == 2 * 3600 * 4
        assert job.charged_gpu_seconds == 3 * 3600 * 4
