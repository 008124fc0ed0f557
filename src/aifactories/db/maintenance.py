"""Partitions a site operator took down for maintenance (services/sites/partition_state.py):
one ``platform_meta`` entry per partition that is down, none for one that is up. The broker
reads them at every cycle and places nothing there."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactories.db.models import PlatformMetaRow

KEY_PREFIX = "partition-down:"


def down_partition_ids(session: Session) -> frozenset[str]:
    keys = session.scalars(
        select(PlatformMetaRow.key).where(PlatformMetaRow.key.startswith(KEY_PREFIX))
    ).all()
    return frozenset(k.removeprefix(KEY_PREFIX) for k in keys)
