"""Alembic's entry point: migrations run on the connection `migrate.upgrade` passes
(inside its transaction), never on one of their own."""

from __future__ import annotations

from alembic import context

from rag.records.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through rag.records.migrate.upgrade")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
