"""The books of a platform's database balance: no reservation left, charges add up."""

from __future__ import annotations

from sqlalchemy import create_engine, func, select

from aifactories.db.models import AllocationRow, JobRow, LedgerEntryRow


def assert_books_balance(database_url: str) -> None:
    """Every allocation's use equals its charge entries, the jobs' charges equal the use, and
    something was charged."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            for a in conn.execute(select(AllocationRow)).all():
                assert a.reserved_gpu_seconds == 0
                charged = conn.execute(
                    select(func.coalesce(func.sum(LedgerEntryRow.gpu_seconds), 0)).where(
                        LedgerEntryRow.allocation_id == a.id, LedgerEntryRow.kind == "charge"
                    )
                ).scalar_one()
                assert a.used_gpu_seconds == charged
            jobs = conn.execute(select(func.sum(JobRow.charged_gpu_seconds))).scalar_one()
            used = conn.execute(select(func.sum(AllocationRow.used_gpu_seconds))).scalar_one()
            assert jobs == used > 0
    finally:
        engine.dispose()
