"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL;
and a populated database of the previous schema (0003) upgrades to head with nothing lost,
after which the platform works on it: old tokens, submit, place, charge, balance."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    text,
)

from aifactories.db.accounts import hash_token
from aifactories.db.engine import make_engine
from aifactories.db.migrate import current_revision, head_revision, upgrade
from aifactories.db.models import Base
from aifactories.domain.clock import ManualClock
from aifactories.services.core.auth import authenticate
from aifactories.services.core.context import catalogue_from_settings
from aifactories.services.jobs.jobs import JobRequest, submit_job
from aifactories.settings import Settings
from tests.broker.mock_platform import assert_books_consistent, mock_platform
from tests.e2e.books import assert_books_balance

PREVIOUS = "0003"  # the schema of the last release
TOKEN = "old-token-" + "0" * 40
R = 4 * 3600  # every reservation in the seeded books: 4 GPUs x 1 h


def test_upgrade_reaches_head_and_matches_the_models(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    upgrade(database_url)  # running it again changes nothing
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_populated_previous_schema_upgrades_and_the_platform_works_on_it(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url, PREVIOUS)
    engine = create_engine(database_url)
    try:
        tables = _tables(engine)
        _seed(engine, tables)
        before = _contents(
            engine, tables, {n: [c.name for c in t.columns] for n, t in tables.items()}
        )
    finally:
        engine.dispose()
    assert all(before[name] for name in tables), [n for n in tables if not before[n]]

    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    engine = create_engine(database_url)
    try:
        now = _tables(engine)
        kept = {
            name: [c.name for c in table.columns if c.name in now[name].columns]
            for name, table in tables.items()
        }
        dropped = {
            (name, c.name)
            for name, table in tables.items()
            for c in table.columns
            if c.name not in now[name].columns
        }
        assert dropped <= set(REPLACED), f"columns dropped without a check: {dropped}"
        # every row, every column still there, unchanged
        assert _contents(engine, now, kept) == _project(before, kept)
        for column in dropped:
            REPLACED[column](engine)
    finally:
        engine.dispose()
    assert_books_consistent(database_url)

    clock = ManualClock()
    mp = mock_platform(tmp_path, database_url, clock=clock, load=False)
    mp.platform.check_schema()
    principal = authenticate(mp.platform.ctx, TOKEN)  # a token from before the upgrade
    request = JobRequest(project="old-project", gpus=4, time_limit=3600, command=["x"])
    new_job = int(submit_job(mp.platform.ctx, principal, request).id)
    mp.platform.broker.run_once()  # reconciles the old jobs the mock sites never had, places
    assert mp.job(new_job).state in ("submitted", "running")
    assert_books_consistent(database_url)
    mp.platform.broker.run_once()  # jobs given back to the queue by the first cycle
    clock.advance(600)
    mp.finish_all()
    mp.platform.broker.run_once()
    assert mp.job(new_job).state == "completed" and mp.job(new_job).charged_gpu_seconds > 0
    mp.platform.stop()
    assert_books_balance(database_url)


# -- the database of the previous schema ----------------------------------------------------


def _tables(engine: Engine) -> dict[str, Table]:
    metadata = MetaData()
    metadata.reflect(engine)
    return {t.name: t for t in metadata.sorted_tables if t.name != "alembic_version"}


def _seed(engine: Engine, tables: dict[str, Table]) -> None:
    """Users, a token, a project and its pool allocation, a job in every state with the
    ledger entries it would have, then one row in every other table."""
    settings = Settings()
    partition = next(
        p for p in catalogue_from_settings(settings).operational_partitions if p.gpus_per_node >= 4
    )
    now = ManualClock().now()
    jobs: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    charged_total = 0
    held_total = 0
    # (state, site job id, charged): reservations of R each, except the never-placed ones
    for k, (state, site_job_id, charged) in enumerate(
        [
            ("pending", None, None),
            ("placed", None, 0),
            ("submitted", "9001", 0),
            ("running", "9002", 0),
            ("completed", "9003", R // 2),
            ("failed", "9004", 0),
            ("timeout", "9005", R),
            ("cancelled", None, None),
        ],
        start=1,
    ):
        placed = charged is not None
        final = state in ("completed", "failed", "timeout")
        jobs.append(
            {
                "id": k,
                "project_id": 1,
                "user_id": 1,
                "name": f"old-{state}",
                "state": state,
                "gpus": 4,
                "nodes": 1,
                "gpu_model": partition.gpu_model,
                "min_gpu_memory_gb": 0,
                "time_limit_s": 3600,
                "command": ["python", "train.py"],
                "countries": [],
                "submitted_at": now - 7200,
                "placed_at": now - 7000 if placed else None,
                "started_at": now - 6000 if state in ("running", "completed", "timeout") else None,
                "ended_at": now - 3000 if final else None,
                "site_id": partition.site_id if placed else None,
                "partition_id": partition.id if placed else None,
                "shape_nodes": 1 if placed else None,
                "shape_gpus_per_node": 4 if placed else None,
                "shape_exclusive": False if placed else None,
                "allocation_id": 1 if placed else None,
                "billing_weight": 1.0 if placed else None,
                "reserved_gpu_seconds": R if placed and not final else 0,
                "charged_gpu_seconds": charged or 0,
                "site_job_id": site_job_id,
                "requeues": 0,
                "cancel_requested": False,
            }
        )
        if not placed:
            continue
        ledger.append(_entry(k, "reserve", R, now - 7000))
        if final:
            if charged:
                ledger.append(_entry(k, "charge", charged, now - 3000))
            if R - (charged or 0):
                ledger.append(_entry(k, "release", R - (charged or 0), now - 3000))
            charged_total += charged or 0
        else:
            held_total += R
    with engine.begin() as conn:
        conn.execute(
            insert(tables["organisations"]),
            [{"id": 1, "name": "Old Org", "kind": "sme", "country": "IT"}],
        )
        conn.execute(
            insert(tables["users"]),
            [
                _user(1, "old-pi", operator=False),
                _user(2, "old-operator", operator=True),
            ],
        )
        conn.execute(
            insert(tables["api_tokens"]),
            [
                {
                    "id": 1,
                    "user_id": 1,
                    "token_hash": hash_token(TOKEN),
                    "label": "laptop",
                    "created_at": now - 86400,
                    "revoked": False,
                },
                {
                    "id": 2,
                    "user_id": 1,
                    "token_hash": hashlib.sha256(b"revoked").hexdigest(),
                    "label": "old",
                    "created_at": now - 2 * 86400,
                    "revoked": True,
                },
            ],
        )
        conn.execute(
            insert(tables["projects"]),
            [
                {
                    "id": 1,
                    "code": "old-project",
                    "title": "A project from before the upgrade",
                    "organisation_id": 1,
                    "domain": "health",
                    "industrial": True,
                    "priority_weight": 1.5,
                }
            ],
        )
        conn.execute(
            insert(tables["memberships"]),
            [{"id": 1, "project_id": 1, "user_id": 1, "role": "pi", "cap_gpu_seconds": None}],
        )
        conn.execute(
            insert(tables["allocations"]),
            [
                {
                    "id": 1,
                    "project_id": 1,
                    "site_id": None,
                    "granted_gpu_seconds": 1000 * 3600,
                    "reserved_gpu_seconds": held_total,
                    "used_gpu_seconds": charged_total,
                    "starts_at": now - 30 * 86400,
                    "ends_at": now + 365 * 86400,
                    "status": "open",
                }
            ],
        )
        conn.execute(insert(tables["jobs"]), jobs)
        conn.execute(insert(tables["ledger_entries"]), ledger)
        conn.execute(insert(tables["platform_meta"]), [{"key": "instance_id", "value": "0ld1d0ld"}])
        for table in tables.values():  # the programme's tables and the rest: one row each
            if conn.execute(select(func.count()).select_from(table)).scalar_one() == 0:
                conn.execute(insert(table), [_filler(table)])
        if engine.dialect.name == "postgresql":
            # rows written with their ids: move the sequences on, as real inserts would
            for table in tables.values():
                if "id" in table.c and isinstance(table.c.id.type, Integer):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT max(id) FROM {table.name}))"
                        )
                    )


def _entry(job_id: int, kind: str, gpu_seconds: int, at: float) -> dict[str, Any]:
    return {
        "allocation_id": 1,
        "job_id": job_id,
        "kind": kind,
        "gpu_seconds": gpu_seconds,
        "at": at,
        "note": f"job {job_id}",
    }


def _user(user_id: int, name: str, operator: bool) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "full_name": name.title(),
        "email": f"{name}@example.org",
        "organisation_id": 1,
        "is_operator": operator,
        "webhook_url": None,
    }


def _filler(table: Table) -> dict[str, Any]:
    """A row with a value of the right type in every column; foreign keys point at row 1 of
    their table (the seeded rows, or the filler row made before, in dependency order)."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.foreign_keys:
            row[column.name] = 1
        elif isinstance(column.type, Boolean):
            row[column.name] = False
        elif isinstance(column.type, Integer):
            row[column.name] = 1
        elif isinstance(column.type, Float):
            row[column.name] = 1.5
        elif isinstance(column.type, JSON):
            row[column.name] = {"kept": [1, 2]}
        elif isinstance(column.type, String | Text):
            length = getattr(column.type, "length", None) or 64
            row[column.name] = f"{table.name}.{column.name}"[:length]
        else:
            row[column.name] = "x"
    return row


Contents = dict[str, list[dict[str, Any]]]


def _contents(engine: Engine, tables: dict[str, Table], columns: dict[str, list[str]]) -> Contents:
    """Every row of the given tables, in the given columns."""
    out: Contents = {}
    with engine.connect() as conn:
        for name, names in columns.items():
            table = tables[name]
            rows = conn.execute(select(*(table.c[n] for n in names))).mappings().all()
            out[name] = sorted(({k: _plain(v) for k, v in r.items()} for r in rows), key=repr)
    return out


def _project(contents: Contents, columns: dict[str, list[str]]) -> Contents:
    return {
        name: sorted(({k: row[k] for k in columns[name]} for row in rows), key=repr)
        for name, rows in contents.items()
    }


def _revocations_kept(engine: Engine) -> None:
    """0004 replaced api_tokens.revoked by revoked_at: the revoked token stays revoked."""
    with engine.connect() as conn:
        revoked = dict(conn.execute(text("SELECT id, revoked_at FROM api_tokens")).all())
    assert revoked[1] is None and revoked[2] is not None, revoked


# Columns of the previous schema that a later revision replaced, each with the check that
# what it meant survived. A column dropped and not listed here fails the test.
REPLACED: dict[tuple[str, str], Callable[[Engine], None]] = {
    ("api_tokens", "revoked"): _revocations_kept,
}


def _plain(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def test_non_finite_call_numbers_stored_before_the_checks_are_cleaned(tmp_path: Path) -> None:
    """SQLite's JSON took NaN and infinite call budgets and rules before the input checks;
    the upgrade turns a budget line into 0 GPU-hours and a rule into unset, and leaves the
    finite numbers alone."""
    import json
    import math

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, PREVIOUS)
    engine = create_engine(url)
    try:
        _seed(engine, _tables(engine))
        with engine.begin() as conn:
            call_id, rules_text = conn.execute(text("SELECT id, rules FROM calls")).one()
            rules = json.loads(rules_text) | {"max_gpu_hours": math.inf, "min_gpu_hours": 5.0}
            conn.execute(
                text("UPDATE calls SET budget_gpu_hours = :b, rules = :r WHERE id = :i"),
                {
                    "b": json.dumps({"pool": math.nan, "lumi-aif": 100.0}),
                    "r": json.dumps(rules),
                    "i": call_id,
                },
            )
    finally:
        engine.dispose()

    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            budget_text, rules_text = conn.execute(
                text("SELECT budget_gpu_hours, rules FROM calls WHERE id = :i"), {"i": call_id}
            ).one()
    finally:
        engine.dispose()
    assert json.loads(budget_text) == {"pool": 0.0, "lumi-aif": 100.0}
    cleaned = json.loads(rules_text)
    assert cleaned["max_gpu_hours"] is None and cleaned["min_gpu_hours"] == 5.0
