"""The books in euros through the platform: jobs run on mock sites and charged by the broker,
then read back from the API and the CLI, on SQLite and PostgreSQL. The cost model is a small
one built here (round figures, so every euro below is computed by hand); one test checks the
real cost model's figure reaches the API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aifactories.catalogue.loader import Catalogue
from aifactories.cli.main import app as cli
from aifactories.domain.errors import ConfigurationError
from aifactories.executors.mock import MockExecutor
from aifactories.services.fund import valuation
from tests.api.harness import Harness, make_harness
from tests.api.served import served

BOOSTER = "it4lia/booster"  # billing weight 1: EUR 1.50 a GPU-hour here
ACC = "bsc-aif/acc"  # billing weight 2: EUR 4.00 a GPU-hour here


@dataclass(frozen=True)
class _Cost:
    eur_per_gpu_hour: float


@dataclass(frozen=True)
class _Costs:
    partitions: Mapping[str, _Cost]


def _small_cost_model(catalogue: Catalogue) -> _Costs:
    """EUR 2.00 per billing-weighted GPU-hour everywhere, but for it4lia's booster."""
    costs = {
        p.id: _Cost(2.0 * p.billing_weight) for site in catalogue.sites for p in site.partitions
    }
    costs[BOOSTER] = _Cost(1.5)
    return _Costs(costs)


@pytest.fixture
def small_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(valuation, "cost_model_of", _small_cost_model)
    monkeypatch.setattr(valuation, "_RATES", {})


def _costs_without_acc(catalogue: Catalogue) -> _Costs:
    """The small cost model, but it does not price bsc-aif/acc."""
    costs = dict(_small_cost_model(catalogue).partitions)
    del costs[ACC]
    return _Costs(costs)


def _unreadable(catalogue: Catalogue) -> _Costs:
    raise ConfigurationError("the cost model cannot be read; an operator has the details")


@pytest.fixture
def no_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cost model file that cannot be read (the platform logs why, and shows no euros)."""
    monkeypatch.setattr(valuation, "cost_model_of", _unreadable)
    monkeypatch.setattr(valuation, "_RATES", {})


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def _run(h: Harness, user: str, project: str, partition: str, finish: bool = True) -> int:
    """A job of 8 GPUs on ``partition``, run 30 minutes (unless ``finish`` is False)."""
    client = h.client(user)
    made = client.post(
        "/jobs",
        json={
            "project": project,
            "gpus": 8,
            "time_limit": "2:00:00",
            "options": [f"--partition={partition}"],
            "command": ["python", "train.py"],
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["charged_eur"] == 0.0
    job_id = int(made.json()["id"])
    h.cycle(rounds=2)
    job = client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "running" and job["partition_id"] == partition
    if finish:
        site = h.executors[job["site_id"]]
        assert isinstance(site, MockExecutor)
        site.finish(job["site_job_id"], elapsed_s=1800)
        h.cycle()
    return job_id


def _allocation(h: Harness, user: str, project: str) -> dict[str, Any]:
    body = h.client(user).get(f"/projects/{project}/balance").json()
    (allocation,) = body["allocations"]
    return dict(allocation)


def test_a_job_on_a_site_allocation_in_euros(h: Harness, small_costs: None) -> None:
    job_id = _run(h, "dario", "po-twin", BOOSTER)
    job = h.client("dario").get(f"/jobs/{job_id}").json()
    # 8 GPUs x 0.5 h = 4 GPU-hours at EUR 1.50
    assert job["charged_gpu_seconds"] == 8 * 1800
    assert job["eur_per_gpu_hour"] == 1.5
    assert job["charged_eur"] == 6.0
    listed = h.client("dario").get("/jobs", params={"project": "po-twin"}).json()
    assert [j["charged_eur"] for j in listed] == [6.0]

    # po-twin: 5,000 GPU-hours at it4lia, whose one partition costs EUR 1.50 (weight 1)
    allocation = _allocation(h, "dario", "po-twin")
    assert allocation["eur_per_gpu_hour"] == 1.5
    assert allocation["granted_eur"] == 7500.0
    assert allocation["used_eur"] == 6.0
    assert allocation["reserved_eur"] == 0.0
    assert allocation["left_eur"] == (5000 - 4) * 1.5
    # the GPU-hours are still there, unchanged
    assert allocation["used_gpu_seconds"] == 8 * 1800

    (listed_allocation,) = h.client("dario").get("/projects/po-twin/allocations").json()
    for key in ("eur_per_gpu_hour", "granted_eur", "reserved_eur", "used_eur", "left_eur"):
        assert listed_allocation[key] == allocation[key], key


def test_a_weighted_job_on_a_pool_in_euros(h: Harness, small_costs: None) -> None:
    running = _run(h, "alice", "aurora-vision", ACC, finish=False)
    # while it runs it holds 8 GPUs x 2 h x weight 2 = 32 billed GPU-hours, at EUR 4.00 for
    # each of its 16 GPU-hours
    allocation = _allocation(h, "alice", "aurora-vision")
    assert allocation["reserved_gpu_seconds"] == 8 * 7200 * 2
    assert allocation["reserved_eur"] == 64.0
    assert allocation["used_eur"] == 0.0

    job = h.client("alice").get(f"/jobs/{running}").json()
    site = h.executors[job["site_id"]]
    assert isinstance(site, MockExecutor)
    site.finish(job["site_job_id"], elapsed_s=1800)
    h.cycle()
    job = h.client("alice").get(f"/jobs/{running}").json()
    # charged 8 x 1800 x 2 billed GPU-seconds: 4 GPU-hours used, at EUR 4.00
    assert job["charged_gpu_seconds"] == 8 * 1800 * 2
    assert (job["eur_per_gpu_hour"], job["charged_eur"]) == (4.0, 16.0)

    # aurora-vision's pool (any site): every operational partition, capacity-weighted; the
    # small cost model makes it EUR 2.00 per billed GPU-hour but for the booster's 1.50
    partitions = h.platform.catalogue.operational_partitions
    euros = sum(
        p.total_gpus * (1.5 if p.id == BOOSTER else 2.0 * p.billing_weight) for p in partitions
    )
    billed = sum(p.total_gpus * p.billing_weight for p in partitions)
    rate = euros / billed
    allocation = _allocation(h, "alice", "aurora-vision")
    assert allocation["eur_per_gpu_hour"] == round(rate, 4)
    assert allocation["granted_eur"] == round(20_000 * rate, 2)
    assert (allocation["reserved_eur"], allocation["used_eur"]) == (0.0, 16.0)
    assert allocation["left_eur"] == round((20_000 - 8) * rate, 2)


def test_the_cli_shows_the_euros(h: Harness, small_costs: None) -> None:
    job_id = _run(h, "dario", "po-twin", BOOSTER)
    from aifactories.api.app import create_app

    with served(create_app(h.platform.settings, platform=h.platform)) as url:
        env = {
            "AIFACTORIES_SERVER": url,
            "AIFACTORIES_TOKEN": h.tokens["dario"],
            "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
            "NO_COLOR": "1",
            "COLUMNS": "250",
        }
        balance = CliRunner().invoke(cli, ["balance", "-A", "po-twin"], env=env)
        job = CliRunner().invoke(cli, ["job", str(job_id)], env=env)
        listed = CliRunner().invoke(cli, ["allocations", "list", "-A", "po-twin"], env=env)
    assert balance.exit_code == 0, balance.output
    assert "EUR granted" in balance.output and "EUR used" in balance.output
    row = next(line for line in balance.output.splitlines() if "it4lia" in line)
    assert "EUR 7,500" in row and "EUR 6.00" in row and "EUR 7,494" in row
    assert job.exit_code == 0, job.output
    assert "EUR 6.00 (at EUR 1.50 per GPU-hour used)" in job.output
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "it4lia" in line)
    assert "EUR 7,500" in row and "EUR 6.00" in row and "EUR 7,494" in row


def test_the_portal_shows_the_euros(h: Harness, small_costs: None) -> None:
    from tests.web.harness import portal

    job_id = _run(h, "dario", "po-twin", BOOSTER)
    job_page = portal(h, "dario").get(f"/portal/jobs/{job_id}")
    assert job_page.status_code == 200, job_page.text
    assert "4 GPU-hours, worth EUR 6.00 at its partition" in " ".join(job_page.text.split())
    page = portal(h, "dario").get("/portal/projects/po-twin")
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    assert "5,000 GPU-hours, worth EUR 7,500" in text
    assert "(under 1&nbsp;%), worth EUR 6.00" in text
    assert "4,996 GPU-hours, worth EUR 7,494" in text
    assert "EUR 1.50 per GPU-hour of this allocation" in text


def test_a_job_is_valued_with_the_real_cost_model(h: Harness) -> None:
    from aifactories.fund.cost_model import load_cost_model

    job_id = _run(h, "dario", "po-twin", BOOSTER)
    job = h.client("dario").get(f"/jobs/{job_id}").json()
    cost = load_cost_model(h.platform.catalogue).partition(BOOSTER).eur_per_gpu_hour
    assert job["eur_per_gpu_hour"] == round(cost, 4)
    assert job["charged_eur"] == round(4 * cost, 2)
    allocation = _allocation(h, "dario", "po-twin")
    assert allocation["used_eur"] == job["charged_eur"]
    # the rate is sent with 4 decimals: hours x rate gives the euros beside it, within rounding
    # (to the cent, EUR 0.34 x 5,000 GPU-hours would be off by up to EUR 25)
    rate = allocation["eur_per_gpu_hour"]
    assert rate != round(rate, 2)
    for hours, eur in (("granted_gpu_hours", "granted_eur"), ("left_gpu_hours", "left_eur")):
        assert abs(allocation[hours] * rate - allocation[eur]) <= 0.005 + allocation[hours] * 5e-5
    assert abs(4 * job["eur_per_gpu_hour"] - job["charged_eur"]) <= 0.005 + 4 * 5e-5


EURO_FIELDS = ("eur_per_gpu_hour", "granted_eur", "reserved_eur", "used_eur", "left_eur")


def test_without_a_cost_model_every_euro_is_null_together(h: Harness, no_costs: None) -> None:
    _run(h, "dario", "po-twin", BOOSTER)  # something charged, nothing reserved
    allocation = _allocation(h, "dario", "po-twin")
    assert allocation["used_gpu_seconds"] == 8 * 1800  # the GPU-hours are the books
    assert {k: allocation[k] for k in EURO_FIELDS} == dict.fromkeys(EURO_FIELDS)
    (listed,) = h.client("dario").get("/projects/po-twin/allocations").json()
    assert {k: listed[k] for k in EURO_FIELDS} == dict.fromkeys(EURO_FIELDS)
    from aifactories.api.app import create_app

    with served(create_app(h.platform.settings, platform=h.platform)) as url:
        env = {
            "AIFACTORIES_SERVER": url,
            "AIFACTORIES_TOKEN": h.tokens["dario"],
            "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
            "NO_COLOR": "1",
            "COLUMNS": "250",
        }
        balance = CliRunner().invoke(cli, ["balance", "-A", "po-twin"], env=env)
    assert balance.exit_code == 0, balance.output
    row = next(line for line in balance.output.splitlines() if "it4lia" in line)
    cells = [c.strip() for c in row.replace("|", "\u2502").split("\u2502") if c.strip()]
    assert "EUR" not in row and cells[-3:] == ["-", "-", "-"]


def test_the_allocations_list_reads_balances_and_euros_in_one_transaction(
    h: Harness, small_costs: None
) -> None:
    from sqlalchemy import event

    _run(h, "dario", "po-twin", BOOSTER, finish=False)  # something reserved
    begun: list[int] = []

    def count(_connection: object) -> None:
        begun.append(1)

    engine = h.platform.ctx.read_engine
    event.listen(engine, "begin", count)
    try:
        counts = []
        for url in ("/projects/po-twin/balance", "/projects/po-twin/allocations"):
            begun.clear()
            answer = h.client("dario").get(url)
            assert answer.status_code == 200, answer.text
            counts.append(len(begun))
    finally:
        event.remove(engine, "begin", count)
    # the balance reads GPU-seconds and euros in one transaction; the list does the same
    # (before: a second transaction for the euros, which could value other GPU-seconds)
    assert counts[1] == counts[0]
    (listed,) = h.client("dario").get("/projects/po-twin/allocations").json()
    assert listed["reserved_eur"] == pytest.approx(listed["reserved_gpu_seconds"] / 3600 * 1.5)


def test_time_on_a_partition_the_cost_model_does_not_price_is_valued_at_the_allocations_rate(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule of docs/fund.md: such a job has no euros of its own (null), but the GPU-hours
    it holds or used on an allocation are valued at the allocation's rate, so the
    allocation's four figures stay whole."""
    monkeypatch.setattr(valuation, "cost_model_of", _costs_without_acc)
    monkeypatch.setattr(valuation, "_RATES", {})
    running = _run(h, "alice", "aurora-vision", ACC, finish=False)
    allocation = _allocation(h, "alice", "aurora-vision")
    rate = allocation["eur_per_gpu_hour"]
    assert rate is not None  # the pool's other partitions are priced
    # 8 GPUs x 2 h x weight 2 = 32 billed GPU-hours held, at the allocation's rate
    assert allocation["reserved_eur"] == pytest.approx(32 * rate, abs=0.01)
    job = h.client("alice").get(f"/jobs/{running}").json()
    site = h.executors[job["site_id"]]
    assert isinstance(site, MockExecutor)
    site.finish(job["site_job_id"], elapsed_s=1800)
    h.cycle()
    job = h.client("alice").get(f"/jobs/{running}").json()
    assert job["charged_gpu_seconds"] == 8 * 1800 * 2
    assert (job["eur_per_gpu_hour"], job["charged_eur"]) == (None, None)
    allocation = _allocation(h, "alice", "aurora-vision")
    # 8 GPUs x 0.5 h x weight 2 = 8 billed GPU-hours used, at the allocation's rate
    assert allocation["used_eur"] == pytest.approx(8 * rate, abs=0.01)
    assert allocation["reserved_eur"] == 0.0
