"""platform meta (instance id) and stale site jobs (copies left at an unreachable site)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "stale_site_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("site_job_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stale_site_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stale_site_jobs_site_id"), ["site_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stale_site_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stale_site_jobs_site_id"))
    op.drop_table("stale_site_jobs")
    op.drop_table("platform_meta")
