"""The original files the store keeps beside Chroma (rag.components.originals).

The data dir's lock and the records kept in step with Chroma are in
tests/integration/test_storage.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import DocumentNotFoundError
from rag.components.originals import Originals

DOC = "ab" * 32


def test_originals_save_read_drop(tmp_path: Path) -> None:
    files = Originals(tmp_path / "files")
    files.save(DOC, b"hello")
    files.save(DOC, b"ignored: same id, kept bytes")
    assert files.read(DOC) == b"hello"
    assert files.path(DOC) == tmp_path / "files" / "ab" / DOC  # by content, not by name
    assert files.disk_bytes() == 5
    files.drop(DOC)
    files.drop(DOC)  # dropping twice is fine
    with pytest.raises(DocumentNotFoundError, match="no longer stored"):
        files.read(DOC)


def test_originals_refuse_ids_that_are_paths(tmp_path: Path) -> None:
    files = Originals(tmp_path / "files")
    for bad in ("", "../etc/passwd", "AB" * 32, "ab/cd"):
        with pytest.raises(DocumentNotFoundError, match="Invalid document id"):
            files.read(bad)


def test_stray_tmp_files_are_removed(tmp_path: Path) -> None:
    files = Originals(tmp_path / "files")
    files.save(DOC, b"kept")
    stray = files.path(DOC).with_name(f"{DOC}.tmp123.456")
    stray.write_bytes(b"half")
    files.remove_stray_tmp_files()
    assert not stray.exists() and files.read(DOC) == b"kept"
