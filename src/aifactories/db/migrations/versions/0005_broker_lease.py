"""broker lease: one active broker among several platform instances, with fencing

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 12:00:01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    leases = op.create_table(
        "leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=True),
        sa.Column("renewed_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The row exists from the start: acquiring is then always a conditional UPDATE.
    op.bulk_insert(leases, [{"name": "broker", "holder": None, "epoch": 0, "expires_at": 0.0}])


def downgrade() -> None:
    op.drop_table("leases")
