"""Every input is checked at the boundary (docs/api-and-cli.md, "Input rules").

Each case below once answered HTTP 500 (schemathesis and an attacker's hand found them): an id
SQLite cannot hold, a float no GPU-hour count can be, a time limit of 5,000 digits, a lone
surrogate, a boolean taken for a GPU count, a NaN budget that, once stored, made its call
answer 500 forever. Each now answers 400 or 422 in the documented error body, naming the
field, and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from aifactories.db.models import Base
from aifactories.db.programme_models import CallRow
from tests.api.harness import Harness, make_harness
from tests.api.programme_helpers import draft, open_call
from tests.conftest import database_of_kind

BIG = "9" * 20  # above 2^63 - 1: SQLite raised OverflowError (PostgreSQL: above 2^31 - 1)
NAN = float("nan")
INF = float("inf")


@dataclass
class World:
    h: Harness
    ids: dict[str, Any]  # real objects for the paths: a call, a draft, an allocation


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One platform for the module (the cases write nothing, so they can share it): on
    SQLite, and on PostgreSQL, which refuses a NUL that SQLite would store."""
    tmp = tmp_path_factory.mktemp("boundary")
    with database_of_kind(request.param, tmp) as url:
        h = make_harness(tmp, url)
        call = open_call(h, "pg1", "playground")
        proposal = draft(h, "alice", call["code"])
        allocations = h.client("alice").get("/projects/aurora-vision/allocations").json()
        ids = {
            "call": call["code"],
            "proposal": proposal["id"],
            "allocation": allocations[0]["id"],
        }
        yield World(h, ids)
        h.platform.stop()


def _row_counts(h: Harness) -> dict[str, int]:
    with h.platform.ctx.sessions() as session:
        return {
            table.name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in Base.metadata.sorted_tables
        }


JOB = {"project": "aurora-vision", "gpus": 1, "time_limit": "1:00:00", "command": ["true"]}
CALL = {
    "code": "c-new",
    "title": "A new call",
    "mode": "playground",
    "closes_at": "2099-01-01",
    "budget_gpu_hours": {"pool": 1000.0},
}

# label, user, method, path, JSON body (or raw bytes), status, field named
CASES: list[tuple[str, str, str, str, Any, int, str]] = [
    # ids of 20 digits in paths and queries
    ("job id in path", "alice", "GET", f"/jobs/{BIG}", None, 422, "job_id"),
    ("job id over 32 bits", "alice", "GET", f"/jobs/{2**31}", None, 422, "job_id"),
    ("review id over 32 bits", "rita", "POST", f"/reviews/{2**33}/decline", {"reason": "x"},
     422, "review_id"),
    ("project id over 32 bits", "alice", "GET", f"/projects/{2**31}", None, 422, "project"),
    ("job id to cancel", "alice", "DELETE", f"/jobs/{BIG}", None, 422, "job_id"),
    ("proposal id in path", "alice", "GET", f"/proposals/{BIG}", None, 422, "proposal_id"),
    ("review id in path", "rita", "GET", f"/reviews/{BIG}", None, 422, "review_id"),
    ("award run id in path", "oscar", "GET", f"/award-runs/{BIG}", None, 422, "run_id"),
    ("allocation id", "alice", "GET", f"/allocations/{BIG}/alerts", None, 422, "allocation_id"),
    ("call id in path", "alice", "GET", f"/calls/{BIG}", None, 422, "call"),
    ("project id in path", "alice", "GET", f"/projects/{BIG}", None, 422, "project"),
    ("project id, balance", "alice", "GET", f"/projects/{BIG}/balance", None, 422, "project"),
    ("project id in query", "alice", "GET", f"/jobs?project={BIG}", None, 422, "project"),
    ("call id in query", "alice", "GET", f"/proposals?call={BIG}", None, 422, "call"),
    ("page in query", "oscar", "GET", f"/audit?before={BIG}", None, 422, "before"),
    ("outbox page", "oscar", "GET", f"/notifications?before={BIG}", None, 422, "before"),
    ("NUL in a query", "oscar", "GET", "/audit?actor=a%00b", None, 422, "actor"),
    # floats: 1e308 GPU-hours, 1e20 as an id, 1e300 as a date, NaN and infinity
    ("1e308 call budget", "oscar", "POST", "/calls",
     {**CALL, "budget_gpu_hours": {"pool": 1e308}}, 422, "budget_gpu_hours.pool"),
    ("NaN call budget", "oscar", "POST", "/calls",
     {**CALL, "budget_gpu_hours": {"pool": NAN}}, 422, "budget_gpu_hours.pool"),
    ("infinite call budget", "oscar", "POST", "/calls",
     {**CALL, "budget_gpu_hours": {"pool": INF}}, 422, "budget_gpu_hours.pool"),
    ("NaN call rule", "oscar", "POST", "/calls",
     {**CALL, "rules": {"max_gpu_hours": NAN}}, 422, "rules.max_gpu_hours"),
    ("a rule of the wrong type", "oscar", "POST", "/calls",
     {**CALL, "rules": {"max_members": "many"}}, 422, "rules.max_members"),
    ("1e300 closing date", "oscar", "POST", "/calls",
     {**CALL, "closes_at": 1e300}, 422, "closes_at"),
    ("1e308 requested", "alice", "POST", "/calls/{call}/proposals",
     {"title": "Big one", "requested_gpu_hours": 1e308}, 422, "requested_gpu_hours"),
    ("1e308 requested on edit", "alice", "PATCH", "/proposals/{proposal}",
     {"requested_gpu_hours": 1e308}, 422, "requested_gpu_hours"),
    ("1e300 start", "alice", "PATCH", "/proposals/{proposal}",
     {"starts_at": 1e300}, 422, "starts_at"),
    ("1e308 extension", "alice", "POST", "/allocations/{allocation}/requests",
     {"kind": "extension", "gpu_hours": 1e308}, 422, "gpu_hours"),
    ("NaN extension", "alice", "POST", "/allocations/{allocation}/requests",
     {"kind": "extension", "gpu_hours": NAN}, 422, "gpu_hours"),
    ("1e308 member cap", "alice", "POST", "/projects/aurora-vision/members",
     {"username": "carol", "cap_gpu_hours": 1e308}, 422, "cap_gpu_hours"),
    ("proposal_id 1e20 in a conflict", "rita", "POST", "/reviewers/me/conflicts",
     {"proposal_id": 1e20}, 422, "proposal_id"),
    ("proposal_id 1e20 in a decision", "oscar", "POST", "/calls/{call}/decisions",
     {"decisions": [{"proposal_id": 1e20, "outcome": "accept"}]}, 422,
     "decisions[0].proposal_id"),
    ("NaN score", "rita", "PUT", "/reviews/1", {"scores": {"excellence": NAN}}, 422,
     "scores.excellence"),
    ("infinite optimiser weight", "oscar", "POST", "/calls/{call}/award-runs",
     {"weights": {"fairness": INF}}, 422, "weights.fairness"),
    # jobs: time limits, runtimes, booleans, text
    ("5,000-digit time limit", "alice", "POST", "/jobs",
     {**JOB, "time_limit": "9" * 5000}, 422, "time_limit"),
    ("minutes above 59", "alice", "POST", "/jobs", {**JOB, "time_limit": "1:99:99"}, 422,
     "time_limit"),
    ("hours above 23 after days", "alice", "POST", "/jobs", {**JOB, "time_limit": "1-24"}, 422,
     "time_limit"),
    ("2^63 time limit", "alice", "POST", "/jobs", {**JOB, "time_limit": 2**63}, 422,
     "time_limit"),
    ("2^63 runtime", "alice", "POST", "/jobs", {**JOB, "runtime": 2**63}, 422, "runtime"),
    ("boolean GPU count", "alice", "POST", "/jobs", {**JOB, "gpus": True}, 422, "gpus"),
    ("GPU count as text", "alice", "POST", "/jobs", {**JOB, "gpus": "1"}, 422, "gpus"),
    ("boolean time limit", "alice", "POST", "/jobs", {**JOB, "time_limit": True}, 422,
     "time_limit"),
    ("lone surrogate in a name", "alice", "POST", "/jobs", {**JOB, "name": "job\ud800"}, 422,
     "name"),
    ("NUL in the command", "alice", "POST", "/jobs", {**JOB, "command": ["a\x00b"]}, 422,
     "command[0]"),
    ("NUL in the script", "alice", "POST", "/jobs",
     {**JOB, "command": [], "script": "#!/bin/sh\necho \x00\n"}, 422, "script"),
    ("20-digit account in a script", "alice", "POST", "/jobs",
     {"script": f"#!/bin/sh\n#SBATCH --account={BIG} --gpus=1 --time=10\ntrue\n"}, 422,
     "script"),
    ("minutes above 59 in a script", "alice", "POST", "/jobs",
     {"script": "#!/bin/sh\n#SBATCH -A aurora-vision --gpus=1 --time=1:99:99\ntrue\n"}, 422,
     "script line 2 --time"),
    ("too long a name", "alice", "POST", "/jobs", {**JOB, "name": "n" * 201}, 422, "name"),
    ("folder name too long", "alice", "POST", "/jobs", {**JOB, "workdir": "/" + "w" * 301},
     422, "workdir"),
    ("a 20-digit project", "alice", "POST", "/jobs", {**JOB, "project": BIG}, 422, "project"),
    ("boolean industrial flag", "alice", "PATCH", "/proposals/{proposal}",
     {"industrial": 1}, 422, "industrial"),
    ("NUL in a title", "alice", "PATCH", "/proposals/{proposal}", {"title": "ab\x00cd"}, 422,
     "title"),
    ("NUL in a reason", "oscar", "POST", "/calls/{call}/close", {"reason": "x\x00"}, 422,
     "reason"),
    ("unknown field", "alice", "POST", "/jobs", {**JOB, "gpu": 1}, 422, "gpu"),
    # the body-parse error
    ("malformed JSON", "alice", "POST", "/jobs", b'{"gpus": 1,', 400, "body"),
    ("not UTF-8", "alice", "POST", "/jobs", b"\xff\xfe{}", 400, "body"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "user", "method", "path", "body", "status", "field"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    world: World,
    label: str,
    user: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    h = world.h
    url = path.format(**world.ids)
    before = _row_counts(h)
    if isinstance(body, bytes):
        content = body
    else:
        # as a client that writes NaN and lone surrogates would (Python's json does)
        content = json.dumps(body).encode() if body is not None else None
    response = h.client(user).request(
        method, url, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, f"{label}: {response.text}"
    error = response.json()
    assert set(error) == {"error", "message", "field", "limit"}, error
    assert error["field"] == field, error
    assert error["message"].startswith(field), error
    assert _row_counts(h) == before, f"{label}: a row was written"


def test_a_nan_or_infinite_budget_cannot_be_stored_and_calls_stay_readable(world: World) -> None:
    oscar = world.h.client("oscar")
    for hours in (NAN, INF, -INF):
        body = json.dumps({**CALL, "budget_gpu_hours": {"pool": hours}})
        refused = oscar.post("/calls", content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422, refused.text
    assert oscar.get("/calls/c-new").status_code == 404
    opened = oscar.post("/calls", json=CALL)
    assert opened.status_code == 201, opened.text
    assert oscar.get("/calls/c-new").json()["budget_gpu_hours"] == {"pool": 1000.0}
    assert oscar.get("/calls").status_code == 200


def test_a_nan_budget_stored_before_the_checks_does_not_break_reads(world: World) -> None:
    """A database from before may hold a NaN budget (SQLite's JSON takes it; PostgreSQL's
    refuses it): the calls stay readable, the unreadable line shown as null."""
    oscar = world.h.client("oscar")
    opened = oscar.post("/calls", json={**CALL, "code": "legacy"})
    assert opened.status_code == 201, opened.text
    engine = world.h.platform.ctx.write_engine
    stored = update(CallRow).where(CallRow.code == "legacy")
    stored = stored.values(
        budget_gpu_hours={"pool": NAN}, rules={**opened.json()["rules"], "max_gpu_hours": INF}
    )
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(stored)
        return
    with engine.begin() as conn:
        conn.execute(stored)
    one = oscar.get("/calls/legacy")
    assert one.status_code == 200, one.text
    assert one.json()["budget_gpu_hours"] == {"pool": None}
    assert one.json()["rules"]["max_gpu_hours"] is None
    assert one.json()["budget_left_gpu_hours"] == {"pool": 0.0}
    listed = oscar.get("/calls")
    assert listed.status_code == 200, listed.text
    assert "legacy" in {c["code"] for c in listed.json()}


@pytest.mark.parametrize("value", ["1:99:99", "9" * 5000, True, 1.5, "UNLIMITED", "1-24"])
def test_a_refused_time_limit_is_told_the_formats(world: World, value: object) -> None:
    response = world.h.client("alice").post("/jobs", json={**JOB, "time_limit": value})
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["field"] == "time_limit"
    assert "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS" in error["message"], error


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 5400), ("48:00:00", 172800), ("1-12", 129600), ("0:59:59", 3599)],
)
def test_slurm_time_limits_still_accepted(world: World, text: str, seconds: int) -> None:
    response = world.h.client("alice").post("/jobs", json={**JOB, "time_limit": text})
    assert response.status_code == 201, response.text
    assert response.json()["time_limit_s"] == seconds


def test_every_operation_declares_its_answers(world: World) -> None:
    """Every operation has a response schema, and its 4xx answers are the error body."""
    spec = world.h.client(None).get("/openapi.json").json()
    undeclared, other_errors = [], []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for status, answer in operation["responses"].items():
                schemas = [m.get("schema") or {} for m in answer.get("content", {}).values()]
                if status.startswith("2") and not all(set(s) - {"title"} for s in schemas or [{}]):
                    undeclared.append(f"{name} {status}")
                if status.startswith("4"):
                    refs = [s.get("$ref", "") for s in schemas]
                    if not refs or not all(r.endswith("/ErrorBody") for r in refs):
                        other_errors.append(f"{name} {status}")
    assert undeclared == []
    assert other_errors == []
    for status in ("400", "422"):
        assert status in spec["paths"]["/jobs"]["post"]["responses"]
