"""What the store keeps beside Chroma: the original files, and the data dir's lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rag import DocChat, DocumentInfo
from rag.core.datalock import LOCK_NAME, lock_data_dir

ROOT = Path(__file__).resolve().parents[2]
def test_the_data_dir_lock_holds_one_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lock_data_dir(data)
    lock_data_dir(data)  # this process again: fine
    assert (data / LOCK_NAME).read_text().strip().isdigit()
    code = (
        "import sys; from pathlib import Path; from rag.core.datalock import lock_data_dir\n"
        "from rag import StoreUnavailableError\n"
        f"try: lock_data_dir(Path({str(data)!r}))\n"
        "except StoreUnavailableError as e: print(e); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 3, proc.stderr
    assert "in use by another DocChat process" in proc.stdout


def test_document_records_kept_in_step_with_every_write(app: DocChat) -> None:
    # The embedded store keeps each collection's document records between searches
    # (store.py, `_records`); every write must show at once, and a read that a write
    # overtook must not be kept.
    app.ingest("cats.md", b"# Cats\nCats sleep sixteen hours a day.\n")
    assert [d.name for d in app.documents()] == ["cats.md"]
    dogs = app.ingest("dogs.md", b"# Dogs\nDogs bark at strangers.\n")
    assert [d.name for d in app.documents()] == ["cats.md", "dogs.md"]
    app.delete_document(dogs.doc_id)
    assert [d.name for d in app.documents()] == ["cats.md"]
    store = app.services.store
    _, docs = store._pair(app.settings.collection)
    store._records_changed(docs)
    read = store._read_records

    def overtaken(d: object) -> dict[str, DocumentInfo]:
        records = read(d)
        store._records_changed(docs)  # a write lands while this read is under way
        return records

    store._read_records = overtaken  # type: ignore[method-assign]
    store._records(docs)
    store._read_records = read  # type: ignore[method-assign]
    assert docs.name not in store._records_kept
    store._records(docs)["x"] = next(iter(store._records(docs).values()))  # a copy
    assert list(store._records(docs)) == [d.doc_id for d in app.documents()]
    # A record written while they are kept updates them (no read), to what a read gives.
    reads = {"n": 0}

    def counted(d: object) -> dict[str, DocumentInfo]:
        reads["n"] += 1
        return read(d)

    store._read_records = counted  # type: ignore[method-assign]
    owls = app.ingest("owls.md", b"# Owls\nOwls hunt at night.\n")
    assert owls.status == "indexed" and reads["n"] == 0
    assert store._records(docs) == read(docs)
    store._read_records = read  # type: ignore[method-assign]


def test_a_record_kept_after_a_write_equals_a_read(app: DocChat) -> None:
    # Chroma gives some full-precision floats back one bit off (this time among them:
    # 1796622364.8027859 came back as 1796622364.802786 in CI), so the record kept after
    # the write would differ from the one a read gives.
    app.ingest("cats.md", b"# Cats\nCats sleep sixteen hours a day.\n")
    store = app.services.store
    _, docs = store._pair(app.settings.collection)
    store._records(docs)  # kept from here on
    info = DocumentInfo(doc_id="cd" * 32, name="owls.md", kind="markdown", pages=1, chunks=0,
                        size=3, added=1796622364.8027859, status="ready", warnings=())  # fmt: skip
    store.finish_document(app.settings.collection, info)
    assert docs.name in store._records_kept
    kept = store._records(docs)["cd" * 32]
    assert kept == store._read_records(docs)["cd" * 32]
    assert abs(kept.added - info.added) < 1e-6
