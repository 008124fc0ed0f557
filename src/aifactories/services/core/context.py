"""What every service needs: sessions, the catalogue, the clock and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aifactories.catalogue.loader import Catalogue, load_catalogue, load_default_catalogue
from aifactories.domain.clock import Clock
from aifactories.domain.ids import ProjectId, UserId
from aifactories.domain.projects import PriorityWeights, Role
from aifactories.settings import Settings


@dataclass(frozen=True)
class ServiceContext:
    """``sessions`` for transactions that write; ``reads`` for read-only work (on SQLite it
    does not wait for the write lock)."""

    sessions: sessionmaker[Session]
    reads: sessionmaker[Session]
    write_engine: Engine
    read_engine: Engine
    catalogue: Catalogue
    clock: Clock
    settings: Settings

    @property
    def priority_weights(self) -> PriorityWeights:
        return PriorityWeights(
            critical_domain=self.settings.critical_domain_weight,
            industrial=self.settings.industrial_weight,
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their project roles and whether they operate the platform."""

    user_id: UserId
    username: str
    is_operator: bool = False  # programme operator
    roles: dict[ProjectId, Role] = field(default_factory=dict)
    organisation_id: int | None = None
    is_reviewer: bool = False  # in the reviewer pool (and active)
    operated_sites: frozenset[str] = frozenset()  # site operator of these sites

    def role_in(self, project_id: int) -> Role | None:
        return self.roles.get(ProjectId(project_id))


def catalogue_from_settings(settings: Settings) -> Catalogue:
    if settings.catalogue is not None:
        return load_catalogue(settings.catalogue)
    return load_default_catalogue()
