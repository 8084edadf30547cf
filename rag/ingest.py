"""The setup stage for one file: check, extract, split, embed, store.

Order matters for crash safety: everything slow (extraction, embedding) happens
before the store is touched; then the document is registered as pending, its chunks
written, and it is marked ready. Only after that is an older version under the same
name removed, so a reader always sees one complete version.

Every user-caused failure ends as a `rejected` result with a clear reason; nothing
already indexed changes. Anything else is a bug and propagates.

Left out: OCR of scanned pages, de-duplication of near-identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable

from .embeddings import Embedder
from .errors import LimitExceededError, NoTextError, RagError, ReindexNeededError
from .extract import extract
from .models import Chunk, CollectionInfo, DocumentInfo, IngestResult
from .settings import Settings
from .splitting import split
from .store import Store

IngestProgress = Callable[[str, int, int], None]  # (stage, done, total)


def _noop(stage: str, done: int, total: int) -> None:
    pass


def check_model(info: CollectionInfo, embedder: Embedder) -> None:
    """Refuse to mix vectors of two models in one collection."""
    if info.model != embedder.name or info.dimension != embedder.dimension:
        raise ReindexNeededError(
            f"Collection {info.name!r} was indexed with {info.model} ({info.dimension} dims) "
            f"but the current embedding model is {embedder.name} ({embedder.dimension} dims). "
            "Re-index needed: re-index its documents or switch back to that model."
        )


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk (the stored text stays the exact source slice)."""
    return chunk.text


def ingest_bytes(
    name: str,
    data: bytes,
    *,
    store: Store,
    embedder: Embedder,
    collection: CollectionInfo,
    settings: Settings,
    password: str | None = None,
    progress: IngestProgress | None = None,
    chunks_left: int | None = None,
) -> IngestResult:
    """Add one file to `collection`; never raises for bad input, returns `rejected`.

    `chunks_left` is what remains of the current upload's chunk budget
    (`settings.max_upload_chunks`), when the file is part of one.
    """
    report = progress or _noop
    t0 = time.perf_counter()
    doc_id = hashlib.sha256(data).hexdigest()
    try:
        if len(data) > settings.max_file_mb * 1_000_000:
            raise LimitExceededError(
                f"{name} is {len(data) / 1e6:.1f} MB; the limit is {settings.max_file_mb:g} MB "
                "per file (DOCCHAT_MAX_FILE_MB)."
            )
        check_model(collection, embedder)
        existing = store.documents(collection.name)
        for d in existing:
            if d.doc_id == doc_id:
                return IngestResult(
                    file=name,
                    status="unchanged",
                    doc_id=doc_id,
                    pages=d.pages,
                    chunks=d.chunks,
                    seconds=time.perf_counter() - t0,
                )
        report("extracting", 0, 1)
        doc = extract(
            name,
            data,
            password=password,
            timeout=settings.extract_timeout,
            memory_mb=settings.extract_memory_mb,
        )
        if doc.pages > settings.max_pages:
            raise LimitExceededError(
                f"{name} has {doc.pages} pages; the limit is {settings.max_pages} "
                "(DOCCHAT_MAX_PAGES)."
            )
        report("splitting", 0, 1)
        chunks = split(
            doc,
            embedder.token_spans,
            chunk_tokens=collection.chunk_tokens,
            overlap=collection.chunk_overlap,
        )
        if not chunks:
            raise NoTextError(f"{name}: no extractable text (scanned?)")
        if len(chunks) > settings.max_chunks:
            raise LimitExceededError(
                f"{name} makes {len(chunks)} chunks; the limit is {settings.max_chunks} "
                "(DOCCHAT_MAX_CHUNKS)."
            )
        if chunks_left is not None and len(chunks) > chunks_left:
            raise LimitExceededError(
                f"{name} makes {len(chunks)} chunks, but this upload has only "
                f"{max(chunks_left, 0)} of its {settings.max_upload_chunks} left "
                "(DOCCHAT_MAX_UPLOAD_CHUNKS). Add it in a separate upload."
            )
        vectors = embedder.embed(
            [embedding_text(c) for c in chunks],
            progress=lambda done, total: report("embedding", done, total),
        )
    except RagError as e:
        return IngestResult(
            file=name,
            status="rejected",
            doc_id=doc_id,
            reason=str(e),
            seconds=time.perf_counter() - t0,
        )
    report("storing", 0, len(chunks))
    info = DocumentInfo(
        doc_id=doc_id,
        name=name,
        kind=doc.kind,
        pages=doc.pages,
        chunks=len(chunks),
        size=len(data),
        added=time.time(),
        status="pending",
        warnings=doc.warnings,
    )
    store.save_original(doc_id, data)
    store.begin_document(collection.name, info)
    try:
        store.add_chunks(collection.name, chunks, vectors)
        store.finish_document(collection.name, info)
    except BaseException:
        # Leave nothing half-written: a failure here (store outage, Ctrl-C) removes the
        # pending document; if even that fails, recover() removes it at the next start.
        with contextlib.suppress(Exception):
            store.delete_pending(collection.name, doc_id)
        raise
    replaced = ""
    for old in existing:
        if old.name == name and old.doc_id != doc_id:
            store.delete_document(collection.name, old.doc_id)
            replaced = old.doc_id
    report("storing", len(chunks), len(chunks))
    return IngestResult(
        file=name,
        status="indexed",
        doc_id=doc_id,
        pages=doc.pages,
        chunks=len(chunks),
        seconds=time.perf_counter() - t0,
        replaced=replaced,
        warnings=doc.warnings,
    )
