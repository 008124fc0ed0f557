"""Typed identifiers, so that a site id cannot be passed where a job id is expected."""

from typing import NewType

SiteId = NewType("SiteId", str)
"""A site's slug from the catalogue, for example ``jaif``."""

PartitionId = NewType("PartitionId", str)
"""``<site>/<partition>``, for example ``jaif/booster``: unique across the federation."""

OrganisationId = NewType("OrganisationId", int)
ProjectId = NewType("ProjectId", int)
AllocationId = NewType("AllocationId", int)
UserId = NewType("UserId", int)
JobId = NewType("JobId", int)


def partition_id(site: str, name: str) -> PartitionId:
    """The federation-wide id of partition ``name`` at ``site``."""
    return PartitionId(f"{site}/{name}")
