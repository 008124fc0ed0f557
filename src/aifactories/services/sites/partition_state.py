"""A site operator takes a partition out of service for maintenance, and back.

No table holds this yet: the state is a ``platform_meta`` entry per partition that is down
(key ``partition-down:<partition id>``, value the reason, who and when as JSON), written with
its audit entry in one transaction, so the log and the state never disagree. A partition
that is up has no entry. Only an operator of the partition's site changes or reads it here.

The broker reads the same entries at every cycle (db/maintenance.py): a partition that is
down reports no free capacity, so nothing new is placed there, and its status says why; jobs
already queued or running there are left alone (the site's own maintenance drains them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.maintenance import KEY_PREFIX
from aifactories.db.models import PlatformMetaRow
from aifactories.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactories.domain.sites import Partition
from aifactories.services.core.context import Principal, ServiceContext
from aifactories.services.notifications.audit import record

MAX_REASON = 500


@dataclass(frozen=True)
class PartitionDown:
    partition_id: str
    reason: str
    by: str
    since: float


def _key(partition_id: str) -> str:
    return KEY_PREFIX + partition_id


def _parse(key: str, value: str) -> PartitionDown:
    data = json.loads(value)
    return PartitionDown(
        partition_id=key.removeprefix(KEY_PREFIX),
        reason=str(data.get("reason", "")),
        by=str(data.get("by", "")),
        since=float(data.get("since", 0.0)),
    )


def read_down(session: Session) -> dict[str, PartitionDown]:
    """Every partition marked down, by partition id (for the broker's snapshot and pages)."""
    rows = session.scalars(
        select(PlatformMetaRow).where(PlatformMetaRow.key.startswith(KEY_PREFIX))
    ).all()
    return {r.key.removeprefix(KEY_PREFIX): _parse(r.key, r.value) for r in rows}


def down_partitions(ctx: ServiceContext, principal: Principal) -> dict[str, PartitionDown]:
    """The partitions of the caller's sites that are down for maintenance."""
    with ctx.reads() as session:
        found = read_down(session)
    return {
        pid: down for pid, down in found.items() if pid.split("/", 1)[0] in principal.operated_sites
    }


def _operated_partition(ctx: ServiceContext, principal: Principal, partition_id: str) -> Partition:
    partition = ctx.catalogue.partition(partition_id)
    if partition is None:
        raise NotFound(f"partition {partition_id} is in no site of the catalogue")
    if partition.site_id not in principal.operated_sites:
        raise PermissionDenied(
            f"you do not operate {partition.site_id}: only its site operators take its "
            "partitions down or up"
        )
    return partition


def set_partition_down(
    ctx: ServiceContext, principal: Principal, partition_id: str, down: bool, reason: str
) -> PartitionDown | None:
    """Mark ``partition_id`` down for maintenance or up again, with a reason for the audit log.
    Returns the new state: None when the partition is up."""
    partition = _operated_partition(ctx, principal, partition_id)
    why = reason.strip()
    if not why:
        raise InvalidInput(
            "reason",
            "is required: say why (it goes into the audit log)"
            if down
            else "is required: say what was done (it goes into the audit log)",
        )
    if len(why) > MAX_REASON:
        raise InvalidInput("reason", "is too long", f"at most {MAX_REASON} characters")
    now = ctx.clock.now()
    with ctx.sessions() as session, session.begin():
        row = session.get(PlatformMetaRow, _key(partition.id), with_for_update=True)
        if down and row is not None:
            raise Conflict(f"{partition.id} is down for maintenance already")
        if not down and row is None:
            raise Conflict(f"{partition.id} is not down for maintenance")
        record(
            session,
            at=now,
            actor=principal,
            action="partition.down" if down else "partition.up",
            subject=f"partition:{partition.id}",
            reason=why,
            details={"site_id": partition.site_id},
        )
        if not down:
            assert row is not None
            session.delete(row)
            return None
        value = json.dumps({"reason": why, "by": principal.username, "since": now})
        session.add(PlatformMetaRow(key=_key(partition.id), value=value))
    return PartitionDown(partition.id, why, principal.username, now)
