"""Each access mode's decision time for the plan check, from the programme's books
(services/fund/plan_decisions.py), on a seeded history; the published targets without one."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aifactories.cli.main import app
from aifactories.domain.clock import ManualClock
from aifactories.services.demo import load_demo
from aifactories.services.fund.history_seed import SeededHistory, seed_history
from aifactories.services.fund.plan_decisions import decision_times_from_books
from aifactories.services.platform import Platform
from aifactories.settings import Settings
from aifactories.twin.plan_access import published_decision_times
from tests.conftest import database_of_kind

DAY_S = 86400.0


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    tmp: Path = tmp_path_factory.mktemp("decisions")
    with database_of_kind(request.param, tmp) as url:
        settings = Settings(data_dir=tmp / "data", database_url=url, run_broker=False)
        platform = Platform(settings, clock=ManualClock())
        platform.migrate()
        load_demo(platform.ctx)
        yield platform
        platform.stop()


def test_without_decided_proposals_the_published_targets(platform: Platform) -> None:
    found = decision_times_from_books(platform.ctx, as_of=platform.clock.now())
    assert found.times == published_decision_times()
    assert found.source.startswith("published access-mode targets (no decided proposal")


def test_the_books_medians_where_proposals_were_decided(platform: Platform) -> None:
    clock = platform.clock
    assert isinstance(clock, ManualClock)
    history: SeededHistory = seed_history(
        platform.ctx, start=clock.now() + DAY_S, proposals=24, seed=3
    )
    found = decision_times_from_books(platform.ctx, as_of=history.end, days=400)
    published = published_decision_times()
    measured = set()
    for mode in ("playground", "fast_lane", "large_scale"):
        delays = [
            p.decided_at - p.submitted_at
            for p in history.proposals
            if p.mode == mode and p.decided_at is not None
        ]
        if not delays:
            assert found.times[mode] == published[mode]
            continue
        measured.add(mode)
        assert found.times[mode].hours == pytest.approx(statistics.median(delays) / 3600)
        assert f"median over {len(delays)} decided proposals" in found.times[mode].basis
    assert {"playground", "fast_lane"} <= measured
    assert found.times["playground"].hours == 0.0  # awarded at submission
    # no AI for Science call in the seeded year: its published target, and the source says so
    assert found.times["ai_for_science"] == published["ai_for_science"]
    assert "measured medians for Playground, Fast Lane" in found.source
    assert "published targets for" in found.source and "AI for Science" in found.source


def test_aif_invest_check_reads_the_local_books(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AIFACTORIES_CATALOGUE", "AIFACTORIES_COST_MODEL", "AIFACTORIES_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIFACTORIES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    local = Platform(Settings(data_dir=tmp_path / "data", run_broker=False))
    local.migrate()
    load_demo(local.ctx)
    seed_history(local.ctx, days=60, proposals=8, seed=2)  # a history ending now
    local.stop()
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["invest", "--check", "--days", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "from the programme's measured medians for Playground" in result.output
    (folder,) = [p for p in out.iterdir() if p.name != "latest"]
    assert "median over" in (folder / "plan.html").read_text(encoding="utf-8")
