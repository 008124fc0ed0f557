"""Organisations that apply for compute, and the programme's priority vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aifactories.domain.ids import OrganisationId


class OrganisationKind(StrEnum):
    STARTUP = "startup"
    SME = "sme"
    INDUSTRY = "industry"
    ACADEMIA = "academia"
    PUBLIC = "public"


class Domain(StrEnum):
    """Application domains. The critical ones get the programme's priority weight."""

    HEALTH = "health"
    ENERGY = "energy"
    CLIMATE = "climate"
    MOBILITY = "mobility"
    MANUFACTURING = "manufacturing"
    AGRI_FOOD = "agri-food"
    SECURITY = "security"
    PUBLIC_SECTOR = "public-sector"
    LANGUAGE = "language"
    SCIENCE = "science"
    FINANCE = "finance"
    MEDIA = "media"
    EDUCATION = "education"
    OTHER = "other"


CRITICAL_DOMAINS: frozenset[Domain] = frozenset(
    {
        Domain.HEALTH,
        Domain.ENERGY,
        Domain.CLIMATE,
        Domain.MOBILITY,
        Domain.MANUFACTURING,
        Domain.AGRI_FOOD,
        Domain.SECURITY,
        Domain.PUBLIC_SECTOR,
    }
)


@dataclass(frozen=True, slots=True)
class Organisation:
    id: OrganisationId
    name: str
    kind: OrganisationKind
    country: str
