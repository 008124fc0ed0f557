"""A site's accounting, read for usage import: every job that ended in a time window.

Built from the site's catalogue entry (its executor's ``slurm_conf`` and ``ssh_host``), for
either back-end: the REST back-end keeps ``slurm_conf`` for exactly this. With slurmdbd the
records carry Slurm's own GPU count (AllocTRES ``gres/gpu``) and ElapsedRaw; without it
(jobcomp/filetxt) GPUs are unknown and such jobs cannot be charged from accounting.
"""

from __future__ import annotations

from collections.abc import Sequence

from aifactories.domain.errors import ProtocolError
from aifactories.domain.sites import Site
from aifactories.executors.slurm.cli import CommandFailed, SlurmCliExecutor
from aifactories.executors.slurm.sacct import AccountingRecord, read_accounting


class SiteAccounting:
    def __init__(
        self,
        site: Site,
        slurm_conf: str,
        ssh_host: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.site_id = site.id
        self._cli = SlurmCliExecutor(
            site, slurm_conf, ssh_host=ssh_host, command_timeout_s=timeout_s
        )

    @property
    def mode(self) -> str:
        """``slurmdbd``, ``jobcomp`` or ``none``."""
        return self._cli.accounting

    def _run(self, argv: Sequence[str]) -> str:
        try:
            return self._cli.run(list(argv))
        except CommandFailed as exc:
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    def finished_since(self, since: float) -> list[AccountingRecord]:
        """Jobs that ended at or after ``since`` (epoch seconds), final states only."""
        mode = self.mode
        if mode == "none":
            return []
        records = read_accounting(self._run, None, since, completion_file_mode=mode == "jobcomp")
        return [r for r in records if r.state.final and r.end is not None and r.end >= since]


def site_accounting(site: Site) -> SiteAccounting | None:
    """The accounting reader of a site whose catalogue entry names a Slurm configuration."""
    options = site.executor.as_dict() if site.executor is not None else {}
    slurm_conf = options.get("slurm_conf")
    if not isinstance(slurm_conf, str) or not slurm_conf:
        return None
    ssh_host = options.get("ssh_host")
    return SiteAccounting(site, slurm_conf, ssh_host if isinstance(ssh_host, str) else None)
