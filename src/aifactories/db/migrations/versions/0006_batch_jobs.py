"""batch jobs as Slurm users write them: resources and batch options, arrays, dependencies,
the output paths at the site and the warnings given at submission

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        # --ntasks, --cpus-per-task, --mem, --partition, --output, --signal, ... (db/convert.py)
        batch.add_column(sa.Column("slurm", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("array_job_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("array_task_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dependency", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("output_path", sa.String(length=4096), nullable=True))
        batch.add_column(sa.Column("error_path", sa.String(length=4096), nullable=True))
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
        batch.create_index("ix_jobs_array_job_id", ["array_job_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_array_job_id")
        for column in (
            "warnings",
            "error_path",
            "output_path",
            "dependency",
            "array_task_id",
            "array_job_id",
            "slurm",
        ):
            batch.drop_column(column)
