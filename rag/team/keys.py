"""API keys: each belongs to one user (by id), is shown once when made, and is kept
only as its SHA-256 (a key is 256 random bits, so a fast hash is enough: nothing to
guess).

Each row of the `api_keys` table holds a key's digest, a short id to name it by (the
first characters of the key, as shown in lists), the user's id, what the key is for
and when it was made. `user_of(key)` is what the API calls on every request; a
removed user's keys are deleted with the account, and the caller checks that the
user still exists and is enabled (`Accounts.current_user`).

Left out: scopes (a key acts as its user, with all of the user's rights), expiry.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, delete, insert, select

from rag.core.errors import AccountError
from rag.core.settings import Settings
from rag.records import Database, open_database
from rag.records.database import Conflict
from rag.records.schema import api_keys

PREFIX = "dck_"  # DocChat key: recognizable in a leaked config file


@dataclass(frozen=True)
class ApiKey:
    id: str  # the first 12 characters of the key: enough to tell keys apart
    user_id: str
    created: float
    name: str = ""


class ApiKeys:
    """The API keys of one record store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key for the user: its record and the key itself (shown once)."""
        for _ in range(3):  # again only if two keys ever share their first 12 characters
            key = PREFIX + secrets.token_urlsafe(32)
            record = ApiKey(key[:12], user_id, time.time(), name.strip()[:80])
            if self._insert(_digest(key), record):
                return record, key
        raise AccountError("No API key could be made: try again.")

    def _insert(self, digest: str, record: ApiKey) -> bool:
        statement = insert(api_keys).values(digest=digest, **asdict(record))
        try:
            self.db.write(lambda c: c.execute(statement))
        except Conflict:
            return False
        return True

    def user_of(self, key: str) -> str | None:
        """The id of the user a key belongs to, or None."""
        if not key.startswith(PREFIX):
            return None
        # Looked up by digest: the timing of the lookup tells an attacker about the
        # digest of their guess, never about a stored key.
        query = select(api_keys.c.user_id).where(api_keys.c.digest == _digest(key))
        found = self.db.read(lambda c: c.execute(query).scalar_one_or_none())
        return str(found) if found is not None else None

    def list(self, user_id: str | None = None) -> list[ApiKey]:
        """The keys of one user (of everyone when None), oldest first."""
        query = select(api_keys).order_by(api_keys.c.created)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        rows = self.db.read(lambda c: c.execute(query).all())
        return [ApiKey(r.id, r.user_id, float(r.created), r.name or "") for r in rows]

    def revoke(self, key_id: str, user_id: str | None = None) -> None:
        """Remove a key by its id (only the user's own, when `user_id` is given)."""

        def revoke(c: Connection) -> int:
            query = delete(api_keys).where(api_keys.c.id == key_id)
            if user_id is not None:
                query = query.where(api_keys.c.user_id == user_id)
            return c.execute(query).rowcount

        if not self.db.write(revoke):
            raise AccountError(f"No API key {key_id!r}.")

    def revoke_all(self, user_id: str) -> int:
        """Remove every key of the user; how many there were."""
        query = delete(api_keys).where(api_keys.c.user_id == user_id)
        return int(self.db.write(lambda c: c.execute(query).rowcount))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def open_keys(settings: Settings) -> ApiKeys:
    """The API keys of the settings' record store."""
    return ApiKeys(open_database(settings))
