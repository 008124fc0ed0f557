"""Usage import: charge the jobs members ran at a site *outside* the broker.

Members of a project may log in at a site and run ``sbatch --account=<project>`` themselves.
That use is real and must come off the project's allocation. The import reads the site's own
accounting (``sacct``: allocated ``gres/gpu`` x ElapsedRaw, right for multi-node and
multi-GPU jobs) for jobs that ended since the last import and charges each job once:

- a job carrying a broker tag is skipped: the broker charged it when it ended (from the same
  Slurm figures), and a tag of another platform instance is that platform's business;
- an account that is no project code, or a site without GPU counts in its accounting
  (jobcomp/filetxt, no slurmdbd), is reported, not charged;
- the charge is GPUs x elapsed x the partition's billing weight, split by month and at the
  allocation's end like a broker job's, against the project's open allocation usable at the
  site (a site allocation before a pool), as far as it has GPU-hours left; the rest is
  reported as overrun (Slurm's GrpTRESMins limit normally prevents it);
- each job is one ``site_usage`` row, unique on (site, Slurm job id, start): importing the same
  window again, or an overlapping one, charges nothing twice. All rows and charges of one
  import are written in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactories.db.jobs import charge_usage
from aifactories.db.models import AllocationRow, PlatformMetaRow, ProjectRow, SiteUsageRow
from aifactories.domain.errors import ExecutorError, NotFound
from aifactories.domain.sites import Site
from aifactories.domain.units import charge_gpu_seconds
from aifactories.executors.base import TAG_PREFIX
from aifactories.executors.slurm.accounting import site_accounting
from aifactories.executors.slurm.sacct import AccountingRecord
from aifactories.ledger.usage_split import split_usage
from aifactories.services.core.context import ServiceContext

log = logging.getLogger(__name__)

# A job that ended a little before the last import may reach accounting late: look back.
OVERLAP_S = 3600.0


@dataclass
class SiteUsageReport:
    site_id: str
    mode: str = ""
    since: float = 0.0
    seen: int = 0
    charged_jobs: int = 0
    charged_gpu_seconds: int = 0
    already_imported: int = 0
    broker_jobs: int = 0
    skipped: list[str] = field(default_factory=list)
    error: str | None = None


def _watermark_key(site_id: str) -> str:
    return f"usage_import:{site_id}"


def import_usage(
    ctx: ServiceContext, *, sites: Sequence[str] | None = None, since: float | None = None
) -> list[SiteUsageReport]:
    """Import every Slurm site's usage (or ``sites``'), from ``since`` or from where the last
    import stopped (less an hour of overlap), up to now."""
    chosen = [s for s in ctx.catalogue.operational_sites if sites is None or s.id in sites]
    unknown = set(sites or ()) - {s.id for s in chosen}
    if unknown:
        raise NotFound(f"no operational site {', '.join(sorted(unknown))} in the catalogue")
    return [_import_site(ctx, site, since) for site in chosen]


def _import_site(ctx: ServiceContext, site: Site, since: float | None) -> SiteUsageReport:
    report = SiteUsageReport(site.id)
    accounting = site_accounting(site)
    if accounting is None:
        report.mode = "none"
        report.skipped.append("no Slurm configuration in the catalogue entry")
        return report
    now = ctx.clock.now()
    with ctx.reads() as session:
        mark = session.get(PlatformMetaRow, _watermark_key(site.id))
        start = since if since is not None else float(mark.value) - OVERLAP_S if mark else 0.0
    report.since = start
    try:
        report.mode = accounting.mode
        records = accounting.finished_since(start)
    except ExecutorError as exc:
        report.error = exc.message
        return report
    report.seen = len(records)
    weight = min((p.billing_weight for p in site.partitions), default=1.0)
    with ctx.sessions() as session, session.begin():
        for record in records:
            _charge(session, site, record, weight, now, report)
        _set_watermark(session, site.id, now)
    return report


def _charge(
    session: Session,
    site: Site,
    record: AccountingRecord,
    weight: float,
    now: float,
    report: SiteUsageReport,
) -> None:
    what = f"{site.id} job {record.site_job_id}"
    if record.tag is not None and record.tag.startswith(TAG_PREFIX):
        report.broker_jobs += 1
        return
    if record.start is None or record.end is None or record.elapsed_s <= 0:
        return  # never ran: nothing used
    if record.allocated_gpus is None:
        report.skipped.append(f"{what}: GPU count unknown (no slurmdbd at the site)")
        return
    exists = session.execute(
        select(func.count())
        .select_from(SiteUsageRow)
        .where(
            SiteUsageRow.site_id == site.id,
            SiteUsageRow.site_job_id == record.site_job_id,
            SiteUsageRow.started_at == record.start,
        )
    ).scalar_one()
    if exists:
        report.already_imported += 1
        return
    project = session.execute(
        select(ProjectRow).where(func.lower(ProjectRow.code) == record.account.lower())
    ).scalar_one_or_none()
    row = SiteUsageRow(
        site_id=site.id,
        site_job_id=record.site_job_id,
        started_at=record.start,
        ended_at=record.end,
        account=record.account,
        project_id=project.id if project else None,
        gpus=record.allocated_gpus,
        elapsed_s=record.elapsed_s,
        charged_gpu_seconds=0,
        imported_at=now,
    )
    session.add(row)
    if project is None:
        row.note = f"account {record.account!r} is no project: not charged"
        report.skipped.append(f"{what}: {row.note}")
        return
    amount = charge_gpu_seconds(record.allocated_gpus, record.elapsed_s, weight)
    ends = session.execute(
        select(AllocationRow.ends_at).where(
            AllocationRow.project_id == project.id,
            AllocationRow.status == "open",
            (AllocationRow.site_id == site.id) | AllocationRow.site_id.is_(None),
        )
    ).scalars()
    pieces = split_usage(record.end - record.elapsed_s, record.end, amount, list(ends))
    left = charge_usage(
        session, project.id, site.id, pieces, now, f"direct {what} ({record.account})"
    )
    charged = amount - sum(p.gpu_seconds for p in left)
    row.charged_gpu_seconds = charged
    if charged < amount:
        row.note = (
            f"overrun: {amount - charged} GPU-seconds found no open allocation of "
            f"{project.code} with GPU-hours left at {site.id}"
        )
        report.skipped.append(f"{what}: {row.note}")
    report.charged_jobs += 1
    report.charged_gpu_seconds += charged


def _set_watermark(session: Session, site_id: str, now: float) -> None:
    mark = session.get(PlatformMetaRow, _watermark_key(site_id))
    if mark is None:
        session.add(PlatformMetaRow(key=_watermark_key(site_id), value=repr(now)))
    else:
        mark.value = repr(now)
