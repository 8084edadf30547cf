"""Tuning jobs: a collection's embedding model tuned in the background

Adds `tune_jobs`, one row per job (its state, progress, the tuned model's name, and
what it was started with).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tune_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("collection", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tune_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_tune_jobs_status", ["status"], unique=False)
        batch_op.create_index("ix_tune_jobs_user", ["user_id", "created"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tune_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_tune_jobs_user")
        batch_op.drop_index("ix_tune_jobs_status")

    op.drop_table("tune_jobs")
