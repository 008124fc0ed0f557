"""Local Slurm clusters for tests and demos: a development tool, not part of the platform.

``python -m aifactories.localslurm up --sites 3`` (or ``scripts/slurm-sites up``) starts three
sites and writes a catalogue for ``aif up --sites``; the test suite starts its own through the
same :class:`LocalSlurm`. Only the standard library and PyYAML are used here.
"""

from aifactories.localslurm.cluster import (
    LocalSlurm,
    LocalSlurmError,
    SiteRequest,
    free_port_base,
)
from aifactories.localslurm.config import SiteLayout

__all__ = ["LocalSlurm", "LocalSlurmError", "SiteLayout", "SiteRequest", "free_port_base"]
