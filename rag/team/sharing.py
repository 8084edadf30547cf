"""Who owns each collection and who it is shared with, on disk.

One JSON file, `<data dir>/sharing.json`, maps a collection's name to its `Sharing`
(owner, readers, editors, everyone). A collection without a record (made before
accounts were turned on, or in single-user mode) belongs to the administrators only
(owner "local"). Writes are atomic and serialized.

Left out: keeping records in Chroma's metadata (a Chroma server shared by several
DocChat data dirs would then share them too).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from rag.core.errors import AccountError
from rag.core.files import write_atomic
from rag.team.access import EDITOR, LOCAL, READER, Sharing


class SharingStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def of(self, collection: str) -> Sharing:
        with self._lock:
            return self._read().get(collection, Sharing(LOCAL.name))

    def set(self, collection: str, sharing: Sharing) -> None:
        if sharing.everyone not in ("", READER, EDITOR):
            raise AccountError(f"Share with everyone as reader or editor, not {sharing.everyone}.")
        with self._lock:
            records = self._read()
            records[collection] = sharing
            self._write(records)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            records = self._read()
            if old in records:
                records[new] = records.pop(old)
                self._write(records)

    def drop(self, collection: str) -> None:
        with self._lock:
            records = self._read()
            if records.pop(collection, None) is not None:
                self._write(records)

    def _read(self) -> dict[str, Sharing]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise AccountError(f"The sharing file cannot be read ({type(e).__name__}).") from e
        return {name: _sharing(r) for name, r in raw.items()}

    def _write(self, records: dict[str, Sharing]) -> None:
        data = {name: _record(s) for name, s in sorted(records.items())}
        write_atomic(self.path, json.dumps(data, indent=1))


def _sharing(r: dict[str, object]) -> Sharing:
    def names(key: str) -> frozenset[str]:
        value = r.get(key, ())
        return frozenset(str(x) for x in value) if isinstance(value, list) else frozenset()

    return Sharing(str(r["owner"]), names("readers"), names("editors"), str(r.get("everyone", "")))


def _record(s: Sharing) -> dict[str, object]:
    readers, editors = sorted(s.readers), sorted(s.editors)
    return {"owner": s.owner, "readers": readers, "editors": editors, "everyone": s.everyone}
