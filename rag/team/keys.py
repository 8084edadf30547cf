"""API keys: each belongs to one user, is shown once when made, and is kept only as
its SHA-256 (a key is 256 random bits, so a fast hash is enough: nothing to guess).

`<data dir>/api_keys.json` holds, per key, its digest, a short id to name it by (the
first characters of the key, as shown in lists), the user and when it was made.
`user_of(key)` is what the API calls on every request; removing a user (or disabling
them) makes their keys refuse at the next request, since the caller checks the
account too.

Left out: scopes (a key acts as its user, with all of the user's rights), expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.core.errors import AccountError
from rag.core.files import write_atomic

PREFIX = "dck_"  # DocChat key: recognizable in a leaked config file


@dataclass(frozen=True)
class ApiKey:
    id: str  # the first 12 characters of the key: enough to tell keys apart
    user: str
    created: float
    name: str = ""


class ApiKeys:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def create(self, user: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key for `user`: its record and the key itself (shown once)."""
        key = PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(key[:12], user, time.time(), name.strip()[:80])
        with self._lock:
            records = self._read()
            records[_digest(key)] = record
            self._write(records)
        return record, key

    def user_of(self, key: str) -> str | None:
        """The user name a key belongs to, or None."""
        if not key.startswith(PREFIX):
            return None
        digest = _digest(key)
        with self._lock:
            records = self._read()
        for stored, record in records.items():
            if hmac.compare_digest(stored, digest):
                return record.user
        return None

    def list(self, user: str | None = None) -> list[ApiKey]:
        with self._lock:
            records = self._read().values()
        return sorted((r for r in records if user is None or r.user == user),
                      key=lambda r: r.created)  # fmt: skip

    def revoke(self, key_id: str, user: str | None = None) -> None:
        """Remove a key by its id (only the user's own, when `user` is given)."""
        with self._lock:
            records = self._read()
            found = [d for d, r in records.items()
                     if r.id == key_id and (user is None or r.user == user)]  # fmt: skip
            if not found:
                raise AccountError(f"No API key {key_id!r}.")
            for d in found:
                del records[d]
            self._write(records)

    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise AccountError(f"The API keys file cannot be read ({type(e).__name__}).") from e
        return {d: ApiKey(**r) for d, r in raw.items()}

    def _write(self, records: dict[str, ApiKey]) -> None:
        write_atomic(self.path, json.dumps({d: asdict(r) for d, r in records.items()}, indent=1))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def open_keys(data_dir: Path) -> ApiKeys:
    return ApiKeys(Path(data_dir) / "api_keys.json")
