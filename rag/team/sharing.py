"""Who owns each collection and who it is shared with, in the record store.

A collection's owner and its share with everyone are columns of its `collections`
row (`owner_id`, `everyone`); each user it is shared with is a `shares` row (the
collection, the user's id, reader or editor). A collection without a row, or whose
`owner_id` is NULL (made before sign-in was on, in single-user mode or by the command
line), belongs to the administrators only: its `Sharing.owner` is "".

The row's `version` column is the collection versions' (`components/versions.py`):
nothing here sets it, and the row is kept when a collection is deleted (its owner and
shares cleared) so that a version never goes back.

Left out: keeping records in Chroma's metadata (a Chroma server shared by several
DocChat data dirs would then share them too).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, delete, insert, select, update

from rag.core.errors import AccountError
from rag.records import Database
from rag.records.rows import upsert
from rag.records.schema import collections, shares
from rag.team import schedules
from rag.team.access import EDITOR, READER, Sharing


class SharingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, collection: str) -> Sharing:
        return self.db.read(lambda c: _sharing(c, collection))

    def set(self, collection: str, sharing: Sharing) -> None:
        """The collection's owner, everyone's role and its shares, all at once."""
        if sharing.everyone not in ("", READER, EDITOR):
            raise AccountError(f"Share with everyone as reader or editor, not {sharing.everyone}.")
        self.db.write(lambda c: _put(c, collection, sharing))

    def update(self, collection: str, change: Callable[[Sharing], Sharing]) -> Sharing:
        """Read the record, `change` it and write the result, as one transaction (so
        two processes granting access at once both keep their grant)."""

        def update(c: Connection) -> Sharing:
            new = change(_sharing(c, collection))
            if new.everyone not in ("", READER, EDITOR):
                raise AccountError(f"Share with everyone as reader or editor, not {new.everyone}.")
            _put(c, collection, new)
            return new

        return self.db.write(update)

    def rename(self, old: str, new: str) -> None:
        """The record follows the collection to its new name (one transaction)."""

        def rename(c: Connection) -> None:
            sharing = _sharing(c, old)
            _put(c, new, sharing)
            schedules.move(c, old, new)
            _clear(c, old)

        self.db.write(rename)

    def drop(self, collection: str) -> None:
        """A deleted collection's owner, shares and refresh schedule go (a later one of
        that name is made anew); its version stays."""
        self.db.write(lambda c: _clear(c, collection))


def _sharing(c: Connection, collection: str) -> Sharing:
    query = select(collections.c.owner_id, collections.c.everyone)
    row = c.execute(query.where(collections.c.name == collection)).first()
    people = c.execute(select(shares.c.user_id, shares.c.role)
                       .where(shares.c.collection == collection)).all()  # fmt: skip
    readers = frozenset(str(p.user_id) for p in people if p.role == READER)
    editors = frozenset(str(p.user_id) for p in people if p.role == EDITOR)
    if row is None:
        return Sharing("", readers, editors)
    return Sharing(row.owner_id or "", readers, editors, row.everyone or "")


def _put(c: Connection, collection: str, sharing: Sharing) -> None:
    values = {"owner_id": sharing.owner or None, "everyone": sharing.everyone}
    upsert(c, collections, {"name": collection}, values)
    c.execute(delete(shares).where(shares.c.collection == collection))
    # One row per user: an editor listed as a reader too keeps the higher role.
    roles = {u: READER for u in sharing.readers} | {u: EDITOR for u in sharing.editors}
    rows = [{"collection": collection, "user_id": u, "role": r} for u, r in sorted(roles.items())]
    if rows:
        c.execute(insert(shares), rows)


def _clear(c: Connection, collection: str) -> None:
    c.execute(update(collections).where(collections.c.name == collection)
              .values(owner_id=None, everyone="", refresh_hours=0.0))  # fmt: skip
    c.execute(delete(shares).where(shares.c.collection == collection))
