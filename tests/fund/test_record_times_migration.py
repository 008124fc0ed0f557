"""Migration 0010 on SQLite and PostgreSQL: a job's start recorded when it happened, an awarded
project's allocations made at the proposal's decision, any other allocation at its start, no
requeued start (none was kept before); and back down to 0009 with every row kept."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from aifactories.db.engine import make_engine
from aifactories.db.migrate import alembic_config, upgrade

ROWS = [
    "INSERT INTO organisations (id, name, kind, country) VALUES (1, 'o', 'sme', 'FI')",
    "INSERT INTO users (id, username, full_name, email, organisation_id, is_operator)"
    " VALUES (1, 'u', 'U', 'u@example.org', 1, false)",
    "INSERT INTO projects (id, code, title, organisation_id, domain, industrial,"
    " priority_weight) VALUES (1, 'awarded', 't', 1, 'health', false, 1.0),"
    " (2, 'outside', 't', 1, 'health', false, 1.0)",
    "INSERT INTO calls (id, code, title, mode, status, rules, budget_gpu_hours, opens_at,"
    " closes_at, cutoffs, created_by, created_at)"
    " VALUES (1, 'c', 'c', 'playground', 'open', '{}', '{}', 0, 1e10, '[]', 1, 0)",
    "INSERT INTO proposals (id, call_id, organisation_id, pi_user_id, status, title, abstract,"
    " domain, critical_domain, industrial, requested_gpu_hours, min_gpu_memory_gb,"
    " largest_job_gpus, preferred_sites, residency, period_months, members, checks,"
    " project_id, created_at, updated_at, submitted_at, decided_at, version)"
    " VALUES (1, 1, 1, 1, 'awarded', 't', 'a', 'health', false, false, 10, 0, 1, '[]', '[]',"
    " 12, '[]', '[]', 1, 100, 500, 100, 500, 1)",
    "INSERT INTO allocations (id, project_id, site_id, granted_gpu_seconds,"
    " reserved_gpu_seconds, used_gpu_seconds, starts_at, ends_at, status)"
    " VALUES (1, 1, 'lumi-aif', 36000, 0, 0, 2000, 1e10, 'open'),"
    " (2, 2, 'lumi-aif', 36000, 0, 0, 3000, 1e10, 'open')",
    "INSERT INTO jobs (id, project_id, user_id, name, state, gpus, gpu_model,"
    " min_gpu_memory_gb, time_limit_s, command, countries, submitted_at, started_at,"
    " reserved_gpu_seconds, charged_gpu_seconds, requeues, cancel_requested)"
    " VALUES (1, 2, 1, 'ran', 'completed', 1, 'any', 0, 60, '[]', '[]', 4000, 4100, 0, 0, 0,"
    " false), (2, 2, 1, 'waits', 'pending', 1, 'any', 0, 60, '[]', '[]', 4000, NULL, 0, 0, 1,"
    " false)",
]


def test_the_migration_records_old_starts_and_allocations_and_goes_back(
    database_url: str,
) -> None:
    upgrade(database_url, "0009")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in ROWS:
                conn.execute(text(statement))
        upgrade(database_url)
        with engine.connect() as conn:
            starts = dict(conn.execute(text("SELECT id, start_recorded_at FROM jobs")).all())
            made = dict(conn.execute(text("SELECT id, created_at FROM allocations")).all())
            requeued = conn.execute(text("SELECT COUNT(*) FROM requeued_starts")).scalar_one()
        assert starts == {1: 4100.0, 2: None}
        assert made == {1: 500.0, 2: 3000.0}  # the award's decision; the other's start
        assert requeued == 0
    finally:
        engine.dispose()

    command.downgrade(alembic_config(database_url), "0009")
    engine = make_engine(database_url)
    try:
        schema = inspect(engine)
        assert "requeued_starts" not in schema.get_table_names()
        assert "start_recorded_at" not in {c["name"] for c in schema.get_columns("jobs")}
        assert "created_at" not in {c["name"] for c in schema.get_columns("allocations")}
        with engine.connect() as conn:
            jobs = conn.execute(text("SELECT id, started_at FROM jobs ORDER BY id")).all()
            allocations = conn.execute(text("SELECT COUNT(*) FROM allocations")).scalar_one()
        assert [tuple(j) for j in jobs] == [(1, 4100.0), (2, None)] and allocations == 2
        upgrade(database_url)  # and up again
    finally:
        engine.dispose()
