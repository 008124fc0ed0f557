"""The access log, the broker's event log, /metrics and the probes, in-process with mock sites."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from aifactories.api.app import create_app
from aifactories.api.metrics import PlatformCollector
from aifactories.api.observability import ACCESS_LOGGER
from aifactories.broker.stats import STATS, BrokerStats
from aifactories.executors.mock import MockExecutor
from aifactories.services.logging_setup import JsonFormatter, configure_logging
from aifactories.services.platform import Platform
from tests.api.harness import Harness, make_harness

JOB = {"project": "aurora-vision", "gpus": 4, "time_limit": "1:00:00", "command": ["true"]}


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, database_url, site_sync_interval_s=0)
    yield h
    h.platform.stop()


def _samples(text_format: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text_format)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_access_log_has_route_status_and_principal_never_the_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alice = harness.client("alice")
    me = alice.get("/me").json()
    job = alice.post("/jobs", json=JOB).json()
    alice.get(f"/jobs/{job['id']}?token=not-logged")
    harness.client(None).get("/jobs", headers={"Authorization": "Bearer aif_wrong_token"})

    records = _access_records(caplog)
    post = next(r for r in records if r.method == "POST")  # type: ignore[attr-defined]
    assert (post.route, post.path, post.status) == ("/jobs", "/jobs", 201)  # type: ignore[attr-defined]
    assert post.principal_id == me["user_id"]  # type: ignore[attr-defined]
    assert post.duration_ms > 0  # type: ignore[attr-defined]
    one = next(r for r in records if r.path == f"/jobs/{job['id']}")  # type: ignore[attr-defined]
    assert one.route == "/jobs/{job_id}" and one.status == 200  # type: ignore[attr-defined]
    refused = next(r for r in records if r.status == 401)  # type: ignore[attr-defined]
    assert refused.principal_id is None  # type: ignore[attr-defined]
    # (the test client's own log, httpx's, has the query string: only ours is checked)
    logged = "".join(r.getMessage() + str(r.__dict__) for r in records)
    for secret in (harness.tokens["alice"], "aif_wrong_token", "not-logged", "Bearer"):
        assert secret not in logged


def test_broker_logs_placements_and_ends(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alice = harness.client("alice")
    job = alice.post("/jobs", json=JOB).json()
    harness.cycle(rounds=2)
    placed = next(r for r in caplog.records if getattr(r, "event", None) == "placed")
    running = alice.get(f"/jobs/{job['id']}").json()
    assert placed.job_id == job["id"] and placed.project == "aurora-vision"  # type: ignore[attr-defined]
    assert placed.site == running["site_id"]  # type: ignore[attr-defined]
    assert running["partition_id"].endswith("/" + placed.partition)  # type: ignore[attr-defined]
    assert placed.gpu_hours == pytest.approx(running["reserved_gpu_hours"], abs=1e-3)  # type: ignore[attr-defined]
    assert placed.levelno == logging.INFO

    harness.executors[running["site_id"]].finish(running["site_job_id"], elapsed_s=1800)  # type: ignore[attr-defined]
    harness.cycle()
    done = next(r for r in caplog.records if getattr(r, "event", None) == "completed")
    assert done.job_id == job["id"] and done.gpu_hours > 0  # type: ignore[attr-defined]


def test_broker_logs_and_counts_outages_and_failures(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = STATS.view()
    site = next(iter(harness.executors.values()))
    assert isinstance(site, MockExecutor)
    site.available = False
    harness.cycle()
    down = [r for r in caplog.records if getattr(r, "event", None) == "site_unavailable"]
    assert [(r.site, r.levelno) for r in down] == [(site.site_id, logging.WARNING)]  # type: ignore[attr-defined]
    harness.cycle()  # still down: no second line
    assert len([r for r in caplog.records if getattr(r, "event", None) == "site_unavailable"]) == 1
    site.available = True
    harness.clock.advance(3600)  # past the pause before a silent site is asked again
    harness.cycle()
    assert any(
        getattr(r, "event", None) == "site_back" and r.site == site.site_id  # type: ignore[attr-defined]
        for r in caplog.records
    )
    assert STATS.view().outages.get(site.site_id, 0) == before.outages.get(site.site_id, 0) + 1

    for executor in harness.executors.values():
        assert isinstance(executor, MockExecutor)
        executor.reject_next_submit("no such account")
    job = harness.client("alice").post("/jobs", json=JOB).json()
    harness.cycle()
    failed = next(r for r in caplog.records if getattr(r, "event", None) == "failed")
    assert failed.job_id == job["id"] and failed.levelno == logging.WARNING  # type: ignore[attr-defined]
    assert "no such account" in failed.reason  # type: ignore[attr-defined]
    after = STATS.view().failures.get(failed.site, 0)  # type: ignore[attr-defined]
    assert after == before.failures.get(failed.site, 0) + 1  # type: ignore[attr-defined]


def test_metrics_after_submissions_and_a_cycle(harness: Harness) -> None:
    alice = harness.client("alice")  # one application: each has its own request histogram
    before = _samples(alice.get("/metrics").text)
    for _ in range(3):
        assert alice.post("/jobs", json=JOB).status_code == 201
    harness.cycle()
    response = alice.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)

    route = {"route": "/jobs", "method": "POST", "status": "2xx"}
    assert _value(after, "aif_http_request_duration_seconds_count", **route) == 3
    placed = {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if key[0] == "aif_broker_placements_total"
    }
    assert sum(placed.values()) == 3  # the counters are process-wide: compare with before
    # every operational partition has its gauges, and the jobs are queued at theirs
    partitions = harness.platform.catalogue.operational_partitions
    for p in partitions:
        labels = {"site": p.site_id, "partition": p.name}
        assert ("aif_partition_free_gpus", tuple(sorted(labels.items()))) in after
        assert _value(after, "aif_partition_gpus", **labels) == p.total_gpus
    queued = sum(v for (name, _), v in after.items() if name == "aif_jobs_queued")
    assert queued == 3 and _value(after, "aif_jobs_pending") == 0
    granted = sum(
        v
        for (name, labels), v in after.items()
        if name == "aif_ledger_gpu_hours" and ("kind", "granted") in labels
    )
    reserved = sum(
        v
        for (name, labels), v in after.items()
        if name == "aif_ledger_gpu_hours" and ("kind", "reserved") in labels
    )
    held = sum(j["reserved_gpu_hours"] for j in alice.get("/jobs").json())
    assert granted > 0 and held > 0 and reserved == pytest.approx(held, abs=1e-3)
    assert _value(after, "aif_database_up") == 1
    # no label is a job, a project or a user
    assert "aurora-vision" not in response.text


def test_collector_turns_broker_counters_into_metric_families() -> None:
    stats = BrokerStats()
    stats.placed("jaif", "booster")
    stats.placed("jaif", "booster")
    stats.submitted("jaif")
    stats.finished("jaif", "failed")
    stats.outage("it4lia")
    stats.cycle(0.003)
    stats.cycle(0.2)
    stats.cycle(100.0)
    registry = CollectorRegistry()
    registry.register(PlatformCollector(lambda: None, stats))

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert get("aif_broker_placements_total", site="jaif", partition="booster") == 2
    assert get("aif_broker_submissions_total", site="jaif") == 1
    assert get("aif_broker_failures_total", site="jaif") == 1
    assert get("aif_broker_jobs_finished_total", site="jaif", state="failed") == 1
    assert get("aif_broker_site_outages_total", site="it4lia") == 1
    assert get("aif_broker_cycle_duration_seconds_bucket", le="0.005") == 1
    assert get("aif_broker_cycle_duration_seconds_bucket", le="0.25") == 2
    assert get("aif_broker_cycle_duration_seconds_bucket", le="60.0") == 2
    assert get("aif_broker_cycle_duration_seconds_bucket", le="+Inf") == 3
    assert get("aif_broker_cycle_duration_seconds_count") == 3
    assert get("aif_broker_cycle_duration_seconds_sum") == pytest.approx(100.203)
    assert STATS is not stats  # the process-wide counters are untouched


def test_metrics_token_when_set(tmp_path: Path, database_url: str) -> None:
    h = make_harness(tmp_path, database_url, metrics_token="scrape-me")
    try:
        anonymous = h.client(None)
        assert anonymous.get("/metrics").status_code == 401
        user = h.client("alice")  # an API token is not the metrics token
        assert user.get("/metrics").status_code == 401
        ok = anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert ok.status_code == 200 and "aif_partition_free_gpus" in ok.text
    finally:
        h.platform.stop()


def test_livez_and_readyz_need_no_token(harness: Harness) -> None:
    client = harness.client(None)
    assert client.get("/livez").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "broker": "not run by this instance"}
    assert client.get("/health").status_code == 200  # unchanged


def test_readyz_fails_on_another_schema(harness: Harness) -> None:
    with harness.platform.ctx.sessions() as session, session.begin():
        session.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    ready = harness.client(None).get("/readyz")
    assert ready.status_code == 503
    assert "elsewhere" in ready.json()["problems"]["database"]
    assert harness.client(None).get("/livez").status_code == 200


def test_readyz_fails_when_the_broker_stops_cycling(tmp_path: Path, database_url: str) -> None:
    # An hour between cycles: the first runs at start, the next not during this test.
    h = make_harness(tmp_path, database_url, broker_interval_s=3600, site_sync_interval_s=0)
    try:
        h.platform.start_broker()
        deadline = time.monotonic() + 60
        while h.platform.broker.last_report is None and time.monotonic() < deadline:
            time.sleep(0.01)
        client = h.client(None)
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["broker"] == "leading"
        h.clock.advance(10 * 3600 + 1)  # ten intervals without a cycle
        stale = client.get("/readyz")
        assert stale.status_code == 503
        assert "intervals" in stale.json()["problems"]["broker"]
    finally:
        h.platform.stop()


def test_readyz_of_a_standby_broker(tmp_path: Path, database_url: str) -> None:
    """Another instance on the same database leads the broker: this one stands by, ready."""
    leader = make_harness(
        tmp_path, database_url, broker_interval_s=3600, site_sync_interval_s=0, instance_name="a"
    )
    settings = leader.platform.settings.model_copy(update={"instance_name": "b"})
    standby = Platform(settings, clock=leader.clock, executors=leader.executors)
    try:
        leader.platform.start_broker()
        standby.start_broker()
        assert leader.platform.broker.leading and not standby.broker.leading
        ready = TestClient(create_app(settings, platform=standby)).get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["broker"].startswith("standby")
    finally:
        standby.stop()
        leader.platform.stop()


def test_json_log_lines_carry_the_structured_fields() -> None:
    record = logging.LogRecord(
        "aifactories.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None
    )
    record.route = "/x"
    record.principal_id = 7
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "GET /x" and entry["logger"] == "aifactories.access"
    assert entry["level"] == "INFO" and entry["route"] == "/x" and entry["principal_id"] == 7
    assert entry["time"].endswith("+00:00")


def test_configure_logging_json_replaces_the_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json", access_log=False)
        logging.getLogger("aifactories.test").info("hello", extra={"site": "jaif"})
        logging.getLogger(ACCESS_LOGGER).info("GET /x")  # silenced
        lines = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(line)["site"] for line in lines] == ["jaif"]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)
