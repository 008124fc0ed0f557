"""The audit log: written with the decision, read by operators (list and export), through the
API and the CLI; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from typer.testing import CliRunner

from aifactories.api.app import create_app
from aifactories.cli.audit import _RecordCounter
from aifactories.cli.main import app as cli
from aifactories.db.models import UserRow
from aifactories.db.programme_models import AuditRow, ReviewerRow
from aifactories.domain.clock import to_datetime
from aifactories.domain.errors import PermissionDenied
from aifactories.domain.ids import UserId
from aifactories.services.core.context import Principal
from aifactories.services.notifications import audit as audit_service
from aifactories.services.notifications.audit import export_audit, list_audit, record
from tests.api.harness import Harness, make_harness
from tests.programme_services.smtp_sink import free_port


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, database_url, site_sync_interval_s=0)
    yield h
    h.platform.stop()


def _principal(h: Harness, username: str, operator: bool = False) -> Principal:
    with h.platform.ctx.reads() as session:
        user_id = session.scalars(select(UserRow.id).where(UserRow.username == username)).one()
    return Principal(UserId(user_id), username, is_operator=operator)


def _write(h: Harness, *entries: dict[str, object], advance_s: float = 60.0) -> None:
    """Each entry in its own transaction, a minute apart."""
    for entry in entries:
        with h.platform.ctx.sessions.begin() as session:
            record(session, at=h.clock.now(), **entry)  # type: ignore[arg-type]
        h.clock.advance(advance_s)


@pytest.fixture
def logged(harness: Harness) -> Harness:
    """Six entries by oscar, alice's proposal 1 and 2, a site check by sam, and the system."""
    oscar = _principal(harness, "oscar", operator=True)
    sam = _principal(harness, "sam")
    _write(
        harness,
        {"actor": oscar, "action": "call.opened", "subject": "call:1", "reason": "wave 1"},
        {"actor": None, "action": "proposal.submitted", "subject": "proposal:1"},
        {
            "actor": sam,
            "action": "proposal.technical_check.accept",
            "subject": "proposal:1",
            "reason": "fits, on one node",
            "details": {"site_id": "lumi-aif"},
        },
        {
            "actor": oscar,
            "action": "proposal.technical_check.reject",
            "subject": "proposal:2",
            "reason": "no such GPU",
            "details": {"site_id": "brain-plus-plus"},
        },
        {
            "actor": oscar,
            "action": "proposal.accepted",
            "subject": "proposal:1",
            "reason": 'awarded, "as asked", with a comma,\nand a second line',
            "details": {"gpu_hours": 1200.5, "sites": ["lumi-aif"], "note": "naïve ✓"},
        },
        {"actor": oscar, "action": "proposal.rejected", "subject": "proposal:12"},
    )
    return harness


def test_entries_are_written_with_the_decision_or_not_at_all(harness: Harness) -> None:
    ctx = harness.platform.ctx
    oscar = _principal(harness, "oscar", operator=True)
    rune = _principal(harness, "rune")
    with ctx.sessions.begin() as session:  # a decision: rune leaves the reviewer pool
        reviewer = session.get(ReviewerRow, int(rune.user_id))
        assert reviewer is not None
        reviewer.active = False
        record(
            session,
            at=harness.clock.now(),
            actor=oscar,
            action="reviewer.deactivated",
            subject=f"user:{rune.user_id}",
            reason="on leave",
        )

    class Refused(Exception):
        pass

    with pytest.raises(Refused), ctx.sessions.begin() as session:  # a decision that fails
        reviewer = session.get(ReviewerRow, int(rune.user_id))
        assert reviewer is not None
        reviewer.active = True
        record(
            session,
            at=harness.clock.now(),
            actor=oscar,
            action="reviewer.activated",
            subject=f"user:{rune.user_id}",
        )
        session.flush()
        raise Refused

    entries = list_audit(ctx, oscar)
    assert [(e.action, e.actor, e.reason) for e in entries] == [
        ("reviewer.deactivated", "oscar", "on leave")
    ]
    assert entries[0].actor_id == int(oscar.user_id)
    assert entries[0].at == harness.clock.now()
    with ctx.reads() as session:
        reviewer = session.get(ReviewerRow, int(rune.user_id))
        assert reviewer is not None and reviewer.active is False
        assert (
            session.scalar(select(AuditRow.id).where(AuditRow.action == "reviewer.activated"))
            is None
        )


def test_list_filters(logged: Harness) -> None:
    ctx = logged.platform.ctx
    oscar = _principal(logged, "oscar", operator=True)

    def actions(**filters: object) -> list[str]:
        return [e.action for e in list_audit(ctx, oscar, **filters)]  # type: ignore[arg-type]

    assert len(actions()) == 6
    assert actions()[0] == "proposal.rejected"  # newest first
    assert actions(subject="proposal:1") == [
        "proposal.accepted",
        "proposal.technical_check.accept",
        "proposal.submitted",
    ]
    assert len(actions(subject="proposal:*")) == 5
    assert actions(subject="proposal:1*") == [  # a prefix: proposal:12 too
        "proposal.rejected",
        "proposal.accepted",
        "proposal.technical_check.accept",
        "proposal.submitted",
    ]
    assert actions(action="proposal.technical_check.*") == [
        "proposal.technical_check.reject",
        "proposal.technical_check.accept",
    ]
    assert actions(actor="system") == ["proposal.submitted"]
    assert actions(actor="sam") == ["proposal.technical_check.accept"]
    start = logged.clock.now() - 6 * 60  # the first entry's time
    assert actions(since=start + 60, until=start + 180) == [
        "proposal.technical_check.accept",
        "proposal.submitted",
    ]
    first = list_audit(ctx, oscar, limit=4)
    rest = list_audit(ctx, oscar, limit=4, before=first[-1].id)
    assert [e.id for e in first + rest] == sorted((e.id for e in first + rest), reverse=True)
    assert len(first) == 4 and len(rest) == 2


def test_api_list_with_iso_times(logged: Harness) -> None:
    oscar = logged.client("oscar")
    start = logged.clock.now() - 6 * 60
    since = to_datetime(start + 60).isoformat()
    until = to_datetime(start + 180).replace(tzinfo=None).isoformat()  # naive: UTC
    got = oscar.get("/audit", params={"since": since, "until": until})
    assert got.status_code == 200, got.text
    body = got.json()
    assert [e["action"] for e in body] == ["proposal.technical_check.accept", "proposal.submitted"]
    assert body[0]["at"] == to_datetime(start + 120).isoformat()
    assert body[0]["details"] == {"site_id": "lumi-aif"}
    assert body[0]["actor"] == "sam"
    limited = oscar.get("/audit", params={"subject": "proposal:1", "limit": 1}).json()
    assert [e["action"] for e in limited] == ["proposal.accepted"]
    bad = oscar.get("/audit", params={"since": "last tuesday"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "since"


def test_only_operators_read_the_log(logged: Harness) -> None:
    for user in ("alice", "rita"):
        client = logged.client(user)
        for path in ("/audit", "/audit/export"):
            response = client.get(path)
            assert response.status_code == 403, (user, path)
            assert "programme operator" in response.json()["message"]
    with pytest.raises(PermissionDenied):
        export_audit(logged.platform.ctx, _principal(logged, "alice"))  # before any chunk


def test_site_operators_read_their_sites_checks(logged: Harness) -> None:
    sam = logged.client("sam")  # operates lumi-aif among others, not brain-plus-plus
    entries = sam.get("/audit").json()
    assert [(e["action"], e["details"]["site_id"]) for e in entries] == [
        ("proposal.technical_check.accept", "lumi-aif")
    ]
    exported = sam.get("/audit/export", params={"format": "jsonl"})
    assert exported.status_code == 200
    assert [json.loads(line)["subject"] for line in exported.text.splitlines()] == ["proposal:1"]


def test_csv_export(logged: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_service, "EXPORT_BATCH", 4)  # several batches
    response = logged.client("oscar").get("/audit/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="aifactories-audit-')
    assert disposition.endswith('.csv"')
    assert response.headers["x-aif-rows"] == "6"
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert list(rows[0]) == list(audit_service.FIELDS)
    assert [r["action"] for r in rows] == [  # oldest first
        "call.opened",
        "proposal.submitted",
        "proposal.technical_check.accept",
        "proposal.technical_check.reject",
        "proposal.accepted",
        "proposal.rejected",
    ]
    accepted = rows[4]
    assert accepted["reason"] == 'awarded, "as asked", with a comma,\nand a second line'
    assert json.loads(accepted["details"]) == {
        "gpu_hours": 1200.5,
        "sites": ["lumi-aif"],
        "note": "naïve ✓",
    }
    assert rows[1]["actor"] == "system" and rows[1]["actor_id"] == ""
    assert datetime.fromisoformat(rows[0]["at"]).tzinfo == UTC
    assert int(rows[0]["id"]) < int(rows[-1]["id"])
    counter = _RecordCounter("csv")
    text = response.text
    for i in range(0, len(text), 7):  # chunks cut anywhere, even inside "\r\n"
        counter.feed(text[i : i + 7])
    assert counter.records == 7  # the header and six entries


def test_jsonl_export_with_filters(logged: Harness) -> None:
    oscar = logged.client("oscar")
    response = oscar.get(
        "/audit/export", params={"format": "jsonl", "subject": "proposal:*", "actor": "oscar"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(e["action"], e["subject"]) for e in lines] == [
        ("proposal.technical_check.reject", "proposal:2"),
        ("proposal.accepted", "proposal:1"),
        ("proposal.rejected", "proposal:12"),
    ]
    assert set(lines[0]) == set(audit_service.FIELDS)
    assert lines[1]["details"]["sites"] == ["lumi-aif"]
    assert oscar.get("/audit/export", params={"format": "xml"}).status_code == 422


def test_export_stops_at_the_entries_written_before_it(logged: Harness) -> None:
    ctx = logged.platform.ctx
    oscar = _principal(logged, "oscar", operator=True)
    export = export_audit(ctx, oscar, fmt="jsonl")
    _write(logged, {"actor": oscar, "action": "call.closed", "subject": "call:1"})
    assert export.rows == 6
    assert len("".join(export).splitlines()) == 6


@pytest.fixture
def server(logged: Harness) -> Iterator[str]:
    """The harness's API on a real loopback port, for the CLI."""
    port = free_port()
    config = uvicorn.Config(
        create_app(logged.platform.settings, platform=logged.platform),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def _aif(h: Harness, url: str, user: str, *args: str) -> tuple[int, str]:
    env = {
        "AIFACTORIES_SERVER": url,
        "AIFACTORIES_TOKEN": h.tokens[user],
        "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_cli(logged: Harness, server: str, tmp_path: Path) -> None:
    code, out = _aif(logged, server, "oscar", "audit", "list", "--subject", "proposal:1")
    assert code == 0, out
    assert "proposal.technical_check.accept" in out and "proposal:12" not in out
    code, out = _aif(logged, server, "oscar", "audit", "list", "--since", "2026-01-01", "--json")
    assert code == 0, out
    assert len(json.loads(out)) == 6

    target = tmp_path / "audit.csv"
    code, out = _aif(
        logged, server, "oscar", "audit", "export", "--format", "csv", "-o", str(target)
    )
    assert code == 0, out
    assert "6 audit entries written" in out
    rows = list(csv.DictReader(target.open(newline="", encoding="utf-8")))
    assert len(rows) == 6 and rows[4]["reason"].endswith("\nand a second line")
    assert not target.with_name("audit.csv.part").exists()

    jsonl = tmp_path / "audit.jsonl"
    code, out = _aif(
        logged, server, "oscar", "audit", "export", "--format", "jsonl", "-o", str(jsonl),
        "--action", "proposal.technical_check.*",
    )  # fmt: skip
    assert code == 0, out
    assert len(jsonl.read_text("utf-8").splitlines()) == 2

    code, out = _aif(logged, server, "alice", "audit", "export", "-o", str(tmp_path / "x.csv"))
    assert code == 4  # 403
    assert "programme operator" in out
    assert not (tmp_path / "x.csv").exists()

    code, out = _aif(logged, server, "oscar", "audit", "notifications", "--status", "pending")
    assert code == 0, out
    code, out = _aif(logged, server, "oscar", "audit", "deliver", "--json")
    assert code == 0, out
    assert json.loads(out)["claimed"] == 0
    code, out = _aif(logged, server, "alice", "audit", "deliver")
    assert code == 4
