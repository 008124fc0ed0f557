"""The cost model through the platform: ``GET /sites`` carries each partition's EUR per
GPU-hour, ``GET /fund/costs`` the breakdown with sources, ``aif sites`` and ``aif sites --costs``
show them; a bad cost model file leaves the sites listed without euros and makes
``/fund/costs`` say what is wrong. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app as cli
from aifactories.fund.cost_model import ENV_VAR, load_cost_model
from aifactories.services.fund import costs as cost_service
from tests.api.harness import Harness, make_harness
from tests.api.served import served


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, database_url)
    yield harness
    harness.platform.stop()


def test_sites_carry_the_cost_of_a_gpu_hour(h: Harness) -> None:
    model = load_cost_model(h.platform.catalogue)
    sites = h.client("dario").get("/sites")
    assert sites.status_code == 200, sites.text
    partitions = {p["id"]: p for s in sites.json() for p in s["partitions"]}
    assert set(partitions) == set(model.partitions)
    for pid, p in partitions.items():
        cost = model.partition(pid)
        assert p["eur_per_gpu_hour"] == pytest.approx(cost.eur_per_gpu_hour)
        assert p["energy_eur_per_gpu_hour"] == pytest.approx(cost.energy_eur_per_gpu_hour)
        assert p["kg_co2_per_gpu_hour"] == pytest.approx(cost.kg_co2_per_gpu_hour)


def test_fund_costs_list_every_partition_with_its_sources(h: Harness) -> None:
    answer = h.client("dario").get("/fund/costs")
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    ids = [p.id for s in h.platform.catalogue.sites for p in s.partitions]
    assert [r["partition_id"] for r in rows] == ids
    for row in rows:
        parts = (
            row["energy_eur_per_gpu_hour"]
            + row["capital_eur_per_gpu_hour"]
            + row["operating_eur_per_gpu_hour"]
        )
        assert row["eur_per_gpu_hour"] == pytest.approx(parts)
        names = {f["name"] for f in row["figures"]}
        assert {"capital_eur", "commissioned", "pue", "electricity_eur_per_mwh"} <= names
        assert all(f["source"] or f["assumption"] for f in row["figures"])
    lumi = next(r for r in rows if r["partition_id"] == "lumi-aif/lumi-g")
    capital = next(f for f in lumi["figures"] if f["name"] == "capital_eur")
    assert capital["confidence"] == "L"  # LUMI's EUR 145 m rests on one weak page
    assert h.client(None).get("/fund/costs").status_code == 401


def test_aif_sites_shows_euros_and_the_breakdown(h: Harness) -> None:
    from aifactories.api.app import create_app

    jaif = load_cost_model(h.platform.catalogue).partition("jaif/booster")
    with served(create_app(h.platform.settings, platform=h.platform)) as url:
        env = {
            "AIFACTORIES_SERVER": url,
            "AIFACTORIES_TOKEN": h.tokens["dario"],
            "AIFACTORIES_CONFIG": "/nonexistent/profile.json",
            "NO_COLOR": "1",
            "COLUMNS": "300",
        }
        table = CliRunner().invoke(cli, ["sites"], env=env)
        breakdown = CliRunner().invoke(cli, ["sites", "--costs"], env=env)
    assert table.exit_code == 0, table.output
    assert "EUR/GPU-h" in table.output and "energy EUR/GPU-h" in table.output
    row = next(line for line in table.output.splitlines() if "jaif" in line)
    assert f"{jaif.eur_per_gpu_hour:.2f}" in row
    assert f"{jaif.energy_eur_per_gpu_hour:.2f}" in row
    assert breakdown.exit_code == 0, breakdown.output
    assert "Cost of a GPU-hour per partition" in breakdown.output
    assert "Where each figure comes from" in breakdown.output
    assert "gauss-centre.eu" in breakdown.output  # JUPITER's EUR 500 m
    assert "assumption:" in breakdown.output


def test_a_bad_cost_model_file_leaves_the_sites_listed(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = tmp_path / "costs.yaml"
    bad.write_text("partitions:\n  jaif/booster:\n    pue: {value: 1.3}\n", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(bad))
    monkeypatch.setattr(cost_service, "_MODELS", {})
    harness = make_harness(tmp_path, database_url)
    try:
        client = harness.client("dario")
        sites = client.get("/sites")
        assert sites.status_code == 200, sites.text
        assert all(p["eur_per_gpu_hour"] is None for s in sites.json() for p in s["partitions"])
        costs = client.get("/fund/costs")
        assert costs.status_code == 500
        # a user is told it cannot be read, not where the operator's file is
        assert str(bad) not in costs.text and str(tmp_path) not in costs.text
        assert "an operator has the details" in costs.text
        # the operator gets the file, the entry and the field
        told = harness.client("oscar").get("/fund/costs")
        assert told.status_code == 500
        assert str(bad) in told.text and "partitions.jaif/booster.pue" in told.text
        assert str(bad) in caplog.text  # and the log has it
    finally:
        harness.platform.stop()
