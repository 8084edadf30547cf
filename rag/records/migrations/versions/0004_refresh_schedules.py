"""Web refreshes on a schedule

A collection gains `refresh_hours` (its web pages fetched again every so many hours;
0, the value of every existing row: never) and `refreshed` (when the last scheduled
refresh was queued; 0: never).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refresh_hours", sa.Float(), server_default="0",
                                      nullable=False))  # fmt: skip
        batch_op.add_column(sa.Column("refreshed", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_column("refreshed")
        batch_op.drop_column("refresh_hours")
