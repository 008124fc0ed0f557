"""ledger recorded_at: when each entry was written, beside the time of the usage it dates

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Usage imported from a site's accounting (services/sites/usage_import.py) was written when it
# was imported: its entries' notes read "direct <site> job <id> (<account>)[ (<month>)]" and
# their date lies in the job's run, which tells a reused Slurm job id apart.
IMPORTED = """
UPDATE ledger_entries SET recorded_at = COALESCE((
    SELECT MIN(su.imported_at) FROM site_usage su
    WHERE ledger_entries.note LIKE 'direct ' || su.site_id || ' job ' || su.site_job_id || ' (%'
      AND ledger_entries.at > su.started_at AND ledger_entries.at <= su.ended_at + 1
), recorded_at)
WHERE job_id IS NULL AND note LIKE 'direct %'
"""


def upgrade() -> None:
    # Existing entries: written when they are dated, as far as anyone can tell now, except
    # imported usage, whose import time site_usage kept.
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("recorded_at", sa.Float(), nullable=True))
    op.execute("UPDATE ledger_entries SET recorded_at = at")
    op.execute(IMPORTED)
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("recorded_at", existing_type=sa.Float(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("recorded_at")
