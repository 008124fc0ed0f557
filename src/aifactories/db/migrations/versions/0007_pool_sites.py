"""pool sites: a pool allocation usable only at the sites its proposal allows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null (every existing row): a pool allocation stays usable at any site, as before.
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("pool_sites", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocations") as batch:
        batch.drop_column("pool_sites")
