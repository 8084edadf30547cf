"""What the store keeps beside Chroma: the original files, and the data dir's lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag import DocumentNotFoundError
from rag.datalock import LOCK_NAME, lock_data_dir
from rag.originals import Originals

ROOT = Path(__file__).resolve().parents[1]
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


def test_the_data_dir_lock_holds_one_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lock_data_dir(data)
    lock_data_dir(data)  # this process again: fine
    assert (data / LOCK_NAME).read_text().strip().isdigit()
    code = (
        "import sys; from pathlib import Path; from rag.datalock import lock_data_dir\n"
        "from rag import StoreUnavailableError\n"
        f"try: lock_data_dir(Path({str(data)!r}))\n"
        "except StoreUnavailableError as e: print(e); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 3, proc.stderr
    assert "in use by another DocChat process" in proc.stdout
