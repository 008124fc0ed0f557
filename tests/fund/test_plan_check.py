"""An investment plan checked in the twin: ``aif invest --check`` and the use case under it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import load_cost_model
from aifactories.fund.investment_model import AddedPartition
from aifactories.services.fund.invest import plan_from_file
from aifactories.services.fund.plan_check import added_sites, check_plan_in_twin, twin_speeds

CATALOGUE = load_default_catalogue()
TODAY = tuple(CATALOGUE.operational_sites)


def test_the_plans_partitions_become_sites_beside_todays() -> None:
    added = (
        AddedPartition("gf-de", "gf-de", "DE", "GB300", 100_000, 2027, None),
        AddedPartition("it4lia-upgrade", "it4lia", "IT", "GB200", 8_000, 2027, None),
        AddedPartition("gf-nl", "gf-nl", "NL", "B200", 10_001, 2028, None),
    )
    sites = {s.id: s for s in added_sites(added, TODAY)}
    # an existing site's new capacity is a site of its own: today's partitions stay as they are
    assert set(sites) == {"gf-de", "it4lia-plan", "gf-nl"}
    assert sites["it4lia-plan"].country == "IT"
    (nl,) = sites["gf-nl"].partitions
    assert (nl.gpu_model, nl.gpus_per_node, nl.nodes) == ("B200", 8, 1_251)  # rounded up
    (de,) = sites["gf-de"].partitions
    assert de.total_gpus == 100_000
    assert added_sites((), TODAY) == ()


def test_speeds_are_those_the_optimiser_counted() -> None:
    run = plan_from_file(None, CATALOGUE)
    speeds = twin_speeds(run, CATALOGUE)
    for model, entry in run.scenario.accelerator_models.items():
        assert speeds[model] == entry.speed
    for partition in CATALOGUE.operational_partitions:
        if partition.gpu_model not in run.scenario.accelerator_models:
            assert speeds[partition.gpu_model] == partition.billing_weight


def test_the_investai_plan_in_the_twin(tmp_path: Path) -> None:
    run = plan_from_file(None, CATALOGUE)
    result = check_plan_in_twin(run, CATALOGUE, tmp_path, days=0.5)
    before, after = result.check.before, result.check.after
    taken = [o for o in run.plan.outcomes if o.taken]
    assert after.gpus == before.gpus + sum(o.accelerators for o in taken)
    assert before.jobs == after.jobs == result.check.jobs > 100
    # the plan file's demand far outgrows today's factories: the plan shortens waits
    assert after.mean_wait_h < before.mean_wait_h
    assert after.work_a100_hours > before.work_a100_hours
    costs = load_cost_model(CATALOGUE)
    for site in result.added_sites:
        assert site.carbon_g_per_kwh == costs.carbon(site.country).value
    text = result.report.read_text(encoding="utf-8")
    assert run.scenario.name in text
    for o in taken:
        assert o.candidate.id in text


def test_a_plan_that_takes_nothing_has_nothing_to_check(tmp_path: Path) -> None:
    run = plan_from_file(None, CATALOGUE)
    nothing = tuple(dataclasses.replace(o, modules=0) for o in run.plan.outcomes)
    run = dataclasses.replace(run, plan=dataclasses.replace(run.plan, outcomes=nothing))
    with pytest.raises(InvalidInput) as caught:
        check_plan_in_twin(run, CATALOGUE, tmp_path, days=0.5)
    assert caught.value.field == "plan"


def test_aif_invest_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIFACTORIES_CATALOGUE", "AIFACTORIES_COST_MODEL", "AIFACTORIES_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "data"))  # no local database
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["invest", "--check", "--days", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "The plan in the twin" in result.output and "with the plan" in result.output
    # time to access per access mode, today and with the plan, and where decisions came from
    for title in ("Playground", "Fast Lane", "Large Scale", "AI for Science"):
        assert f"time to access, {title}: median / p90 (days)" in result.output
    playground = next(line for line in result.output.splitlines() if "Playground: median" in line)
    assert playground.count(" / ") == 3  # the row's title, then two median / p90 pairs
    assert "published access-mode targets (no local database)" in result.output
    assert not (tmp_path / "data" / "aifactories.db").exists()  # none made for the check
    (folder,) = [p for p in out.iterdir() if p.name != "latest"]
    assert (folder / "plan.html").exists()
    refused = CliRunner().invoke(app, ["invest", "--check", "--days", "0"])
    assert refused.exit_code == 2


def test_aif_invest_check_sequential_prints_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AIFACTORIES_CATALOGUE", "AIFACTORIES_COST_MODEL", "AIFACTORIES_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    tables = []
    for extra in ([], ["--sequential"]):
        args = ["invest", "--check", "--days", "0.5", "--out", str(tmp_path / "r"), *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        first = next(i for i, line in enumerate(lines) if "The plan in the twin" in line)
        # the check's table and notes, but not the report's folder (each run makes its own)
        tables.append([line for line in lines[first:] if "wrote " not in line])
    parallel, sequential = tables
    assert len(sequential) > 10 and any("mean wait (h)" in line for line in sequential)
    assert sequential == parallel
