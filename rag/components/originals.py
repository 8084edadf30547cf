"""The original files of documents, content-addressed on disk.

A document's bytes are kept under `<files_dir>/<id[:2]>/<id>`, where the id is the
sha256 hex of the bytes: never under the name a user gave them, so a name can
never become a path. Writes are atomic (`files.write_atomic`); `remove_stray_tmp_files`
clears the temporary files a crash left mid-write.

Left out: knowing which collections use a file (the store decides when to `drop`
one), and garbage collection of files no record points to.
"""

from __future__ import annotations

from pathlib import Path

from rag.core.errors import DocumentNotFoundError
from rag.core.files import tree_bytes, write_atomic

_HEX = frozenset("0123456789abcdef")


def is_doc_id(doc_id: str) -> bool:
    """A document id as DocChat makes them (sha256 hex): safe as a file name."""
    return bool(doc_id) and set(doc_id) <= _HEX


class Originals:
    """Save, read and drop original files by document id."""

    def __init__(self, files_dir: Path) -> None:
        self.dir = Path(files_dir)

    def path(self, doc_id: str) -> Path:
        if not is_doc_id(doc_id):
            raise DocumentNotFoundError("Invalid document id.")
        return self.dir / doc_id[:2] / doc_id

    def save(self, doc_id: str, data: bytes) -> None:
        """Keep `data` (a no-op when it is already kept: same id, same bytes)."""
        path = self.path(doc_id)
        if not path.exists():
            write_atomic(path, data)

    def read(self, doc_id: str) -> bytes:
        try:
            return self.path(doc_id).read_bytes()
        except FileNotFoundError:
            raise DocumentNotFoundError("The original file is no longer stored.") from None

    def drop(self, doc_id: str) -> None:
        self.path(doc_id).unlink(missing_ok=True)

    def remove_stray_tmp_files(self) -> None:
        if self.dir.is_dir():
            for tmp in self.dir.glob("*/*.tmp*"):
                tmp.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        """Bytes of the files kept (stray temporary files included)."""
        return tree_bytes(self.dir)
