"""The role matrix: every operation of the OpenAPI x every role, against the objects of one
party (tests/api/role_matrix_world.py, requests in tests/api/role_matrix_probes.py),
compared cell by cell with the table in tests/api/role_matrix.py. An operation without a
row fails the test: a new endpoint gets its access rules written down before it ships.

Reads and refusals run on one shared copy of the world, checked unchanged after every row
(and replaced if not); every cell the table allows to change something runs on its own
fresh copy (a file copy on SQLite, a template database on PostgreSQL). So no cell's answer
depends on another's.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import make_url

from aifactories.api.app import create_app
from aifactories.domain.clock import ManualClock
from aifactories.services.core.auth import forget_cached_principals
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from tests.api.harness import Harness, make_harness
from tests.api.role_matrix import EXPECTED, ROLE_COLUMNS
from tests.api.role_matrix_probes import PROBES, Probe
from tests.api.role_matrix_world import ROLES, World, build_world


def operation_of(key: str) -> str:
    """A row's operation: "POST /proposals/{}/submit" for "POST /proposals/{proposal_id}/submit"
    (parameters unnamed, so that the table fits the page), without the variant (" ?...")."""
    return re.sub(r"\{[^}]*\}", "{}", key.split(" ?")[0])


FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, those left out of the schema too (/metrics, ...),
    through included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.16x keeps included routers as they are
            context = getattr(route, "include_context", None)
            yield from _routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif hasattr(route, "path") and hasattr(route, "methods"):
            for method in route.methods or ():
                if method != "HEAD":
                    yield method, prefix + route.path


def _signed_in_portal(path: str) -> bool:
    """The portal's pages beyond the public two have their own matrix, through the login page
    (tests/web/test_portal_role_matrix.py)."""
    return path.startswith("/portal/") and path != "/portal/calls"


def app_operations() -> tuple[set[str], set[str]]:
    """The operations of the OpenAPI, and of the app's routes (the same, plus those left out
    of the schema; the framework's own pages aside)."""
    app = create_app(Settings(database_url="sqlite://", run_broker=False))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    documented = {operation_of(f"{m.upper()} {p}") for p, ops in paths.items() for m in ops}
    routed = {
        operation_of(f"{method} {path}")
        for method, path in _routes(list(app.routes))
        if path not in FRAMEWORK_PATHS and not _signed_in_portal(path)
    }
    return documented, routed


# --------------------------------------------------------------------------- fresh copies


class WorldCopies:
    """Fresh platforms on copies of the world's database: a file copy on SQLite, a database
    made from the world's as a template on PostgreSQL."""

    def __init__(self, h: Harness, world: World, tmp: Path) -> None:
        self.url = make_url(h.platform.database_url)
        self.executors = h.executors
        self.world = world
        self.tmp = tmp
        self._made: list[str] = []
        self._admin = (
            None
            if self.url.get_backend_name() == "sqlite"
            else create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        )

    def platform(self) -> Platform:
        name = f"cell_{uuid.uuid4().hex[:10]}"
        if self._admin is None:
            assert self.url.database is not None
            target = self.tmp / f"{name}.db"
            shutil.copyfile(self.url.database, target)
            url = f"sqlite:///{target}"
        else:
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.url.database}"'))
            self._made.append(name)
            url = self.url.set(database=name).render_as_string(hide_password=False)
        settings = Settings(
            data_dir=self.tmp / "data",
            database_url=url,
            run_broker=False,
            # rate limits are not access rules (tests/api/test_limits.py): the anonymous
            # column alone would spend the failed-authentication budget
            auth_failures_per_minute=0,
            token_requests_per_minute=0,
        )
        clock = ManualClock(self.world.now)
        return Platform(settings, clock=clock, executors=self.executors)

    def discard(self, platform: Platform) -> None:
        platform.stop()
        url = make_url(platform.database_url)
        if self._admin is None:
            assert url.database is not None
            Path(url.database).unlink()
            return
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        self._made.remove(str(url.database))

    def close(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in self._made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        self._admin.dispose()


def _fill(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in names:
            return names[value[1:-1]]  # a whole value keeps its type: {proposal} is an int
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def observe(client: TestClient, world: World, probe: Probe, role: str) -> str:
    """The answer's class: 2xx (2xx+ / 2xx- for a list with / without the target) or the
    status code."""
    user = world.users[role]
    headers = dict(probe.headers)
    if user is not None:
        headers["Authorization"] = f"Bearer {world.tokens[user]}"
    names = {**world.ids(), **{f"user_{r}": u for r, u in world.users.items()}}
    response = client.request(
        probe.method,
        _fill(probe.path, names),
        json=_fill(probe.json, names),
        params=_fill(probe.params, names),
        headers=headers,
    )
    if response.status_code // 100 != 2:
        return str(response.status_code)
    if probe.finds is None:
        return "2xx"
    return "2xx+" if probe.finds(response, world) else "2xx-"


# bookkeeping that any request may write (a token's last use), not the state a refusal guards
NOT_STATE = frozenset({"alembic_version", "api_tokens", "leases"})


def fingerprint(platform: Platform) -> dict[str, int]:
    """Each table's content as a hash: what a refused request must leave as it was."""
    metadata = MetaData()
    metadata.reflect(platform.engine)
    out: dict[str, int] = {}
    with platform.engine.connect() as conn:
        for name, table in sorted(metadata.tables.items()):
            if name in NOT_STATE:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order)).all()
            out[name] = hash(repr([tuple(r) for r in rows]))
    return out


def client_of(platform: Platform) -> TestClient:
    forget_cached_principals()  # a new copy must not see principals cached for another
    return TestClient(create_app(platform.settings, platform=platform))


# --------------------------------------------------------------------------- the tests


def test_every_operation_has_a_row_and_every_row_an_operation() -> None:
    documented, routed = app_operations()
    # the walk through the routes must see at least what the OpenAPI shows, or it is broken
    assert documented <= routed, f"routes not found by the walk: {sorted(documented - routed)}"
    operations = documented | routed
    rows = {operation_of(k) for k in EXPECTED}
    missing = sorted(operations - rows)
    assert not missing, "\n".join(f"operation {op} has no row in the role matrix" for op in missing)
    stale = sorted(rows - operations)
    assert not stale, f"rows for operations the API no longer has: {stale}"
    assert set(PROBES) == set(EXPECTED), (
        f"probes without a row: {sorted(set(PROBES) - set(EXPECTED))}; "
        f"rows without a probe: {sorted(set(EXPECTED) - set(PROBES))}"
    )
    assert ROLE_COLUMNS == ROLES


@pytest.fixture
def world_copies(tmp_path: Path, database_url: str) -> Iterator[WorldCopies]:
    h = make_harness(tmp_path, database_url)
    world = build_world(h)
    h.platform.stop()  # no connection left: PostgreSQL copies need the template idle
    copies = WorldCopies(h, world, tmp_path)
    yield copies
    copies.close()


class Shared:
    """The copy that reads and refusals share. A refusal, like a read, changes nothing: that
    is checked after every row, and a copy that changed is replaced, so that one wrong
    answer does not change the next rows' answers."""

    def __init__(self, copies: WorldCopies) -> None:
        self.copies = copies
        self._open()

    def _open(self) -> None:
        self.platform = self.copies.platform()
        self.client = client_of(self.platform)
        self.state = fingerprint(self.platform)

    def changed(self) -> list[str]:
        now = fingerprint(self.platform)
        tables = [t for t, h in now.items() if self.state.get(t) != h]
        if tables:
            self.close()
            self._open()
        return tables

    def close(self) -> None:
        self.copies.discard(self.platform)


def _cells(copies: WorldCopies, shared: Shared, key: str) -> list[str]:
    """One row's differences. Reads and refusals run on the shared copy; each cell that the
    table allows to change something runs on its own fresh copy."""
    world, probe, row = copies.world, PROBES[key], EXPECTED[key]
    differences: list[str] = []
    for role, expected in zip(ROLES, row, strict=True):
        if probe.method == "GET" or not expected.startswith("2"):
            observed = observe(shared.client, world, probe, role)
        else:
            fresh = copies.platform()
            try:
                observed = observe(client_of(fresh), world, probe, role)
            finally:
                copies.discard(fresh)
        if observed != expected:
            user = world.users[role]
            differences.append(f"{key} as {role} ({user}): expected {expected}, got {observed}")
    changed = shared.changed()
    if changed:
        differences.append(f"{key}: reads or refused requests changed the tables {changed}")
    return differences


def test_role_matrix(world_copies: WorldCopies) -> None:
    shared = Shared(world_copies)
    try:
        differences = [d for key in EXPECTED for d in _cells(world_copies, shared, key)]
    finally:
        shared.close()
    assert not differences, "the role matrix differs:\n" + "\n".join(differences)
