"""Build a platform for tests: migrated database, demo data, chosen executors, manual clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from aifactories.api.app import create_app
from aifactories.domain.clock import ManualClock
from aifactories.domain.ids import SiteId
from aifactories.domain.sites import Site
from aifactories.executors.base import Executor
from aifactories.executors.mock import MockExecutor
from aifactories.services.demo import load_demo
from aifactories.services.platform import Platform
from aifactories.settings import Settings


@dataclass
class Harness:
    platform: Platform
    clock: ManualClock
    tokens: dict[str, str]
    executors: dict[SiteId, Executor]

    def client(self, user: str | None) -> TestClient:
        app = create_app(self.platform.settings, platform=self.platform)
        client = TestClient(app)
        if user is not None:
            client.headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return client

    def cycle(self, rounds: int = 1, advance_s: float = 0.0) -> None:
        for _ in range(rounds):
            self.platform.broker.run_once()
            if advance_s:
                self.clock.advance(advance_s)


def make_harness(
    tmp_path: Path,
    database_url: str,
    make_executor: Callable[[Site, ManualClock], Executor] | None = None,
    **settings: object,
) -> Harness:
    clock = ManualClock()
    base = Settings(
        data_dir=tmp_path / "data", database_url=database_url, run_broker=False, **settings
    )  # type: ignore[arg-type]
    probe = Platform(base, clock=clock)
    factory = make_executor or (lambda site, c: MockExecutor(site, c))
    executors: dict[SiteId, Executor] = {
        site.id: factory(site, clock) for site in probe.catalogue.operational_sites
    }
    probe.stop()
    platform = Platform(base, clock=clock, executors=executors)
    platform.migrate()
    tokens = load_demo(platform.ctx).tokens
    return Harness(platform=platform, clock=clock, tokens=tokens, executors=executors)
