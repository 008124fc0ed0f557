"""record times of job starts and allocations: jobs.start_recorded_at, allocations.created_at,
and requeued_starts (the starts a requeue cleared)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# An allocation of an awarded proposal was made in the award's transaction, at the proposal's
# decision (proposals.decided_at); any other (an operator's, the demo's) at its start, the
# time the programme's figures counted it from before this migration.
AWARDED = """
UPDATE allocations SET created_at = COALESCE((
    SELECT MIN(p.decided_at) FROM proposals p
    WHERE p.project_id = allocations.project_id AND p.decided_at IS NOT NULL
), starts_at)
"""


def upgrade() -> None:
    # Existing starts: learnt when they happened, as far as anyone can tell now (the broker
    # learnt each at a poll after it, but kept no trace of which).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("start_recorded_at", sa.Float(), nullable=True))
    op.execute("UPDATE jobs SET start_recorded_at = started_at WHERE started_at IS NOT NULL")
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("created_at", sa.Float(), nullable=True))
    # left nullable (every row has it now, every writer sets it): NOT NULL would rebuild
    # allocations on SQLite, which jobs and the ledger reference and whose balance check
    # the rebuild would have to carry over
    op.execute(AWARDED)
    # Starts requeued before this migration were cleared without a trace: none to copy.
    op.create_table(
        "requeued_starts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.Column("requeued_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_requeued_starts_job_id", "requeued_starts", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_requeued_starts_job_id", table_name="requeued_starts")
    op.drop_table("requeued_starts")
    with op.batch_alter_table("allocations") as batch:
        batch.drop_column("created_at")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("start_recorded_at")
