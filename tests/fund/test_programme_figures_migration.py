"""Migration 0009: ledger entries written before it are recorded at their date, and usage
imported from a site's accounting at its import (site_usage.imported_at), each run of a
reused Slurm job id at its own; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from aifactories.db.engine import make_engine
from aifactories.db.migrate import upgrade


def test_the_migration_records_old_entries_when_dated_and_imports_when_imported(
    database_url: str,
) -> None:
    """Upgrading a 0008 database: an entry is recorded at its date, an imported one at its
    import (the run that matches its date, though the Slurm job id was used twice)."""
    upgrade(database_url, "0008")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisations (id, name, kind, country) "
                    "VALUES (1, 'o', 'sme', 'FI')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO projects (id, code, title, organisation_id, domain, industrial,"
                    " priority_weight) VALUES (1, 'p', 't', 1, 'health', false, 1.0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO allocations (id, project_id, site_id, granted_gpu_seconds,"
                    " reserved_gpu_seconds, used_gpu_seconds, starts_at, ends_at, status)"
                    " VALUES (1, 1, 'lumi-aif', 100000, 0, 300, 0, 1e10, 'open')"
                )
            )
            for started, imported in ((1000.0, 5000.0), (9000.0, 20000.0)):
                conn.execute(
                    text(
                        "INSERT INTO site_usage (site_id, site_job_id, started_at, ended_at,"
                        " account, project_id, gpus, elapsed_s, charged_gpu_seconds, imported_at)"
                        " VALUES ('lumi-aif', '77', :s, :e, 'p', 1, 1, 100, 100, :i)"
                    ),
                    {"s": started, "e": started + 100, "i": imported},
                )
            for at, note in (
                (1100.0, "direct lumi-aif job 77 (p) (1970-01)"),
                (9100.0, "direct lumi-aif job 77 (p) (1970-01)"),
                (3000.0, "job 5 completed"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO ledger_entries (allocation_id, job_id, kind, gpu_seconds,"
                        " at, note) VALUES (1, NULL, 'charge', 100, :at, :note)"
                    ),
                    {"at": at, "note": note},
                )
        upgrade(database_url)
        with engine.connect() as conn:
            found = dict(
                conn.execute(text("SELECT at, recorded_at FROM ledger_entries")).tuples().all()
            )
        assert found == {1100.0: 5000.0, 9100.0: 20000.0, 3000.0: 3000.0}
    finally:
        engine.dispose()
