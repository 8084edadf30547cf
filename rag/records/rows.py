"""One statement that inserts a row or updates the row with its key, on SQLite and on
PostgreSQL alike (`INSERT ... ON CONFLICT DO UPDATE`).

A select followed by an insert would race: two writers on PostgreSQL can both find no
row, and the second insert then breaks the primary key instead of counting as a lost
race. The upsert is atomic on both databases.

Every upsert in DocChat is made here (`statement` when the caller adds a RETURNING).

Left out: upserts keyed on anything but the table's primary key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert(
    conn: Connection,
    table: Table,
    key: Mapping[str, object],
    values: Mapping[str, object],
    on_update: Mapping[str, object] | None = None,
) -> None:
    """Insert `key` and `values`, or, when a row with that key exists, set `on_update`
    (by default `values`) on it; the other columns of an existing row are left as
    they are."""
    conn.execute(statement(conn.dialect.name, table, key, values, on_update))


def statement(
    dialect: str,
    table: Table,
    key: Mapping[str, object],
    values: Mapping[str, object],
    on_update: Mapping[str, object] | None = None,
) -> Insert:
    """The upsert as a statement for `dialect` ("sqlite" or "postgresql")."""
    insert = _INSERTS[dialect](table).values(**key, **values)
    changes = dict(values if on_update is None else on_update)
    return insert.on_conflict_do_update(index_elements=list(key), set_=changes)
