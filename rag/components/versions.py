"""A version per collection in the record store: one more at every write to it.

Per-process caches of a collection's contents (the BM25 index in lexical.py) read
the version before reading the contents and compare it at each use, so a write by
any process (another app, `rag serve`, a worker over the same Chroma server) is seen
at the next use, whatever it changed. The store (`store.py` and its floors) bumps a
collection's version after each write that changes what it shows.

The version is the `version` column of the `collections` table; a collection without
a row is at version 0. A bump writes only that column: the row's owner and sharing
columns belong to the team's records (a row made here is the administrators',
exactly as no row is).

Left out: what a version means to a cache (each compares its own), and removing a
row when its collection is deleted (a version never goes back, so a cache cannot
mistake a later collection of that name for the one it read).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from rag.records import Database, rows
from rag.records.schema import collections


class CollectionVersions:
    """The collections' versions in one record store: read one, or bump one."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, name: str) -> int:
        """The collection's version now (0: never written to since versions began)."""
        query = select(collections.c.version).where(collections.c.name == name)
        return int(self.db.read(lambda c: c.execute(query).scalar_one_or_none() or 0))

    def bump(self, name: str) -> int:
        """One more than before (the row made when missing); the new version."""
        # One statement, atomic on both databases: two processes bumping at once
        # both count, and neither fails on the row the other made.
        upsert = rows.statement(self.db.dialect, collections, {"name": name},
                                {"owner_id": None, "everyone": "", "version": 1},
                                {"version": collections.c.version + 1})  # fmt: skip
        query = upsert.returning(collections.c.version)

        def write(conn: Connection) -> int:
            return int(conn.execute(query).scalar_one())

        return self.db.write(write)
