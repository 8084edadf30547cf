"""One upload as a pipeline: file i is written while i+1 is embedded and i+2, i+3 are read.

`run_upload` drives the files of one upload through `prepare` (extract, split,
embed) and a commit in a writer thread, with at most one write in flight so memory
stays bounded, and prefetches the next `READ_AHEAD` files in extraction workers
meanwhile.
Results are reported in file order from the calling thread. `DocChat` supplies the
wiring (its store, embedder and per-collection write lock) as callables.

Also here: `prefetch_file` (start reading a file unless its ingest would be a no-op),
`read_paths` / `expand_paths` for files and folders on disk, and `rebuild` (a
collection re-indexed from its originals).

Left out: parallel embedding of several files, and retries of a failed write (the
file is rejected with the store's reason and the rest of the upload goes on).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RagError
from ..models import IngestResult, Upload
from ..settings import Settings
from ..store import Store
from .extract import READ_AHEAD, prefetch
from .stages import IngestProgress, Prepared

if TYPE_CHECKING:  # the engine calls this module; only its type is needed here
    from ..engine import DocChat

# (file, progress of that file or None, chunks the upload has left) -> prepared or result
PrepareFile = Callable[[Upload, IngestProgress | None, int], Prepared | IngestResult]
CommitFile = Callable[[Prepared], IngestResult]
UploadProgress = Callable[[int, str, int, int], None]  # (file index, stage, done, total)
OnResult = Callable[[int, IngestResult], None]


class _Upload:
    """The state of one upload: results so far, the write in flight, what was reported."""

    def __init__(self, max_chunks: int, on_result: OnResult | None) -> None:
        self.max_chunks = max_chunks
        self.on_result = on_result
        self.results: list[IngestResult | None] = []  # None: not done yet
        self.reported = 0  # results[:reported] went to on_result
        self.writing: tuple[int, Future[IngestResult], Prepared] | None = None

    def chunks_left(self) -> int:
        """What the upload may still add: indexed files and the one being written count."""
        used = sum(r.chunks for r in self.results if r is not None and r.status == "indexed")
        used += len(self.writing[2].chunks) if self.writing is not None else 0
        return self.max_chunks - used

    def settle(self) -> None:
        """Wait for the write in flight; a store failure rejects its file with the reason."""
        if self.writing is None:
            return
        i, future, ready = self.writing
        self.writing = None
        try:
            self.results[i] = future.result()
        except RagError as e:
            self.results[i] = IngestResult(
                file=ready.name,
                status="rejected",
                doc_id=ready.doc_id,
                reason=str(e),
                seconds=time.perf_counter() - ready.started,
            )

    def flush(self) -> None:
        """Report the results that are done, in file order, up to the first one that is not."""
        while self.reported < len(self.results) and (r := self.results[self.reported]) is not None:
            if self.on_result is not None:
                self.on_result(self.reported, r)
            self.reported += 1

    def abandon(self) -> None:
        """Stopped or a bug: let the write in flight finish, so its document is complete."""
        if self.writing is not None:
            with contextlib.suppress(Exception):  # the stop (or bug) is what propagates
                self.writing[1].result()


def run_upload(
    files: Iterable[Upload],
    *,
    prepare: PrepareFile,
    commit: CommitFile,
    prefetch_next: Callable[[Upload], None],
    max_chunks: int,
    progress: UploadProgress | None = None,
    on_result: OnResult | None = None,
) -> list[IngestResult]:
    """One result per file, in order (see `DocChat.ingest_many`).

    `files` is consumed lazily, `READ_AHEAD` ahead: the next files are prefetched
    (unless they carry an error) while the current one is prepared.
    """
    upload = _Upload(max_chunks, on_result)
    items = iter(files)
    upcoming: deque[Upload] = deque()

    def look_ahead() -> None:  # the file to prepare next, and READ_AHEAD being read
        while len(upcoming) < 1 + READ_AHEAD and (u := next(items, None)) is not None:
            upcoming.append(u)
            if len(upcoming) > 1 and not u.error:
                prefetch_next(u)

    with ThreadPoolExecutor(1, thread_name_prefix="docchat-writer") as writer:
        try:
            look_ahead()
            while upcoming:
                i, f = len(upload.results), upcoming.popleft()
                upload.results.append(None)
                ready: Prepared | IngestResult
                if f.error:
                    ready = IngestResult(file=f.name, status="rejected", reason=f.error)
                else:
                    report = functools.partial(progress, i) if progress else None
                    ready = prepare(f, report, upload.chunks_left())
                if isinstance(ready, Prepared):
                    upload.settle()  # one write in flight: memory stays bounded
                    upload.writing = (i, writer.submit(commit, ready), ready)
                else:
                    upload.results[i] = ready
                upload.flush()
                look_ahead()
        except BaseException:
            # Stopped (Ctrl-C, a stopped Streamlit run) or a bug: report nothing more.
            upload.abandon()
            raise
        upload.settle()
        upload.flush()
    return [r for r in upload.results if r is not None]


def prefetch_file(
    name: str,
    data: bytes,
    store: Store,
    collection: str,
    settings: Settings,
    password: str | None = None,
) -> None:
    """Start reading `data` in an extraction worker, unless `prepare` would not read it.

    Files already in the collection are not read (their ingest is a no-op), nor files
    over the size limit (`prepare` rejects them); errors wait for the ingest.
    """
    try:
        known = {d.doc_id for d in store.documents(collection)}
    except RagError:
        return  # e.g. a new collection: `ingest` will say what is wrong, if anything
    too_big = len(data) > settings.max_file_mb * 1_000_000  # `prepare` rejects it
    if not too_big and hashlib.sha256(data).hexdigest() not in known:
        prefetch(
            name,
            data,
            password=password,
            timeout=settings.extract_timeout,
            memory_mb=settings.extract_memory_mb,
            options=settings.read_options(),
        )


def read_paths(paths: Iterable[Path], password: str | None = None) -> Iterator[Upload]:
    """Uploads of the files in `paths` (folders expanded now), each read when it is needed."""
    return (_read(p, password) for p in expand_paths(paths))


def _read(path: Path, password: str | None) -> Upload:
    # A file that cannot be read is rejected with the reason; the rest go on.
    try:
        return Upload(path.name, path.read_bytes(), password)
    except OSError as e:
        return Upload(path.name, b"", password, error=f"cannot read: {e}")


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the files inside folders (recursively, sorted, no dotfiles)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
            )
        else:
            out.append(p)
    return out


def rebuild(
    app: DocChat,
    name: str,
    chunk_tokens: int,
    chunk_overlap: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[IngestResult]:
    """Collection `name` re-indexed from its stored originals under a temporary name,
    then swapped in (the caller holds its write lock): until the swap, the old one
    keeps answering."""
    docs = app.documents(name)
    tmp = f"{name} (re-indexing)"
    if app.store.has_collection(tmp):
        app.store.delete_collection(tmp)
    app.create_collection(tmp, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    results = []
    for i, d in enumerate(docs):
        if progress:
            progress(d.name, i, len(docs))
        results.append(app.ingest(d.name, app.store.original(d.doc_id), collection=tmp))
    key = app.store.collection_key(name)
    app.store.delete_collection(name)
    app.lexical.drop(key)
    app.store.rename_collection(tmp, name)
    return results
