"""api hardening: token expiry and revocation, idempotency keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 12:00:00

Existing tokens get an expiry 90 days after the upgrade (the default lifetime of a new
token): a token that never expires is the hole this revision closes, and 90 days leave their
owners time to make new ones ('aif tokens create'); 'aif tokens list' shows the date. A token
revoked before the upgrade keeps being revoked, dated at its creation (the real date was never
recorded).
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic import op

from aifactories.domain.clock import SystemClock

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# the default of Settings.token_lifetime_days when this revision was written
EXISTING_TOKENS_LIFETIME_S = 90 * 86400


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
    tokens = sa.table(
        "api_tokens",
        sa.column("created_at", sa.Float()),
        sa.column("expires_at", sa.Float()),
        sa.column("revoked_at", sa.Float()),
        sa.column("revoked", sa.Boolean()),
    )
    op.execute(
        tokens.update().where(tokens.c.revoked.is_(True)).values(revoked_at=tokens.c.created_at)
    )
    op.execute(tokens.update().values(expires_at=SystemClock().now() + EXISTING_TOKENS_LIFETIME_S))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked")

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )
    _clean_non_finite_call_numbers()


def _clean_non_finite_call_numbers() -> None:
    """Before the input checks, SQLite's JSON took NaN and infinite call budgets and rules
    (PostgreSQL's refuses them): such a number means nothing, and it broke every budget check
    of the call. A budget line becomes 0 GPU-hours (nothing left, as the read path shows it);
    a rule becomes unset."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    calls = sa.table(
        "calls",
        sa.column("id", sa.Integer()),
        sa.column("budget_gpu_hours", sa.Text()),
        sa.column("rules", sa.Text()),
    )
    for call_id, budget_text, rules_text in bind.execute(
        sa.select(calls.c.id, calls.c.budget_gpu_hours, calls.c.rules)
    ).all():
        budget = json.loads(budget_text) if budget_text else {}
        rules = json.loads(rules_text) if rules_text else {}
        clean_budget = {k: v if _finite(v) else 0.0 for k, v in budget.items()}
        clean_rules = {k: v if _finite(v) else None for k, v in rules.items()}
        if clean_budget != budget or clean_rules != rules:
            bind.execute(
                calls.update()
                .where(calls.c.id == call_id)
                .values(budget_gpu_hours=json.dumps(clean_budget), rules=json.dumps(clean_rules))
            )


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))
    op.drop_table("idempotency_keys")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    tokens = sa.table(
        "api_tokens",
        sa.column("expires_at", sa.Float()),
        sa.column("revoked_at", sa.Float()),
        sa.column("revoked", sa.Boolean()),
    )
    # an expired token must not come back to life under a schema without expiry
    op.execute(
        tokens.update()
        .where(
            sa.or_(
                tokens.c.revoked_at.is_not(None),
                tokens.c.expires_at < SystemClock().now(),
            )
        )
        .values(revoked=True)
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("revoked", server_default=None)
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
