"""Conversations: their settings, branches of turns, and the branch shown

A conversation gains `settings` (its ChatSettings as a dict, {} for the existing rows)
and `leaf_id` (the last turn of the branch it shows); a turn gains `parent_id` (the turn
before it on its branch). Existing conversations were single lines: each turn's parent
becomes the previous turn of its conversation (by id), each conversation's leaf its
last turn. The index on `turns.conversation_id` becomes one on (conversation, parent).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tables as this migration knows them (never schema.py's, which moves on).
_turns = sa.table(
    "turns",
    sa.column("id", sa.Integer),
    sa.column("conversation_id", sa.String),
    sa.column("parent_id", sa.Integer),
)
_conversations = sa.table("conversations", sa.column("id", sa.String),
                          sa.column("leaf_id", sa.Integer))  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("leaf_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_turns_conversation_id"))
        batch_op.create_index(
            "ix_turns_conversation_parent", ["conversation_id", "parent_id"], unique=False
        )

    # The data: correlated subqueries, which SQLite and PostgreSQL both run as they are.
    earlier = _turns.alias("earlier")
    previous = (
        sa.select(sa.func.max(earlier.c.id))
        .where(earlier.c.conversation_id == _turns.c.conversation_id, earlier.c.id < _turns.c.id)
        .scalar_subquery()
    )
    op.execute(_turns.update().values(parent_id=previous))
    last = (
        sa.select(sa.func.max(_turns.c.id))
        .where(_turns.c.conversation_id == _conversations.c.id)
        .scalar_subquery()
    )
    op.execute(_conversations.update().values(leaf_id=last))


def downgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_index("ix_turns_conversation_parent")
        batch_op.create_index(
            batch_op.f("ix_turns_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.drop_column("parent_id")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("leaf_id")
        batch_op.drop_column("settings")
