"""One upload as a pipeline: file i is written while the files after it are read,
split and embedded, two at a time, up to `WINDOW` files ahead.

`run_upload` drives the files of one upload through `prepare` (extract, split,
embed; `PREPARING` files at once, in threads) and a commit in a writer thread, with
at most one write in flight, and prefetches the next file in an extraction worker
meanwhile. A file prepared before the ones ahead of it waits for its turn to be
written; what waits is bounded by `WINDOW` files and `HELD_CHUNKS` chunks.
Results are reported in file order from the calling thread. The documents service
supplies the wiring (its store, embedder and per-collection write lock) as callables.

Also here: `prefetch_file` (start reading a file unless its ingest would be a no-op)
and `read_paths` / `expand_paths` for files and folders on disk.

Left out: writing files out of order (results, the upload's chunk limit and the
store's writes all follow the upload's order), and retries of a failed write (the
file is rejected with the store's reason and the rest of the upload goes on).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from rag.components.store import Store
from rag.core.errors import RagError
from rag.core.models import IngestResult, Upload
from rag.core.settings import Settings
from rag.ingest.extract import READ_AHEAD, prefetch
from rag.ingest.stages import IngestProgress, Prepared, over_upload_limit

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
            self.results[i] = ready.rejected(e)

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


# Files prepared at once, each in its own thread: while one is embedded (the model
# process has both cores), the next is read and split, so the model does not wait for
# it. The model process answers overlapping calls in turn.
PREPARING = 2
# Files taken and not yet written (preparing, or prepared and waiting for the files
# before them): a slow file (a 117-page PDF read for 5 s, a page read by OCR) does not
# hold the files after it, which are read and embedded meanwhile. Memory stays bounded:
# no file is started while the prepared ones hold `HELD_CHUNKS` chunks (their texts
# and vectors, about 3 KB each). The 130 files of benchmarks/ingest.py (one upload):
# 62.4 and 80.2 s with one file prepared at a time, 59.2 s with two (taken in order),
# 57.9 s with a window of six, 60.2 s with sixteen (runs of one code drift by 5 %);
# the model waits only while the 117-page PDF and a page read by OCR are both read.
WINDOW = 16
HELD_CHUNKS = 4000
# Files only read ahead, beyond those being prepared (which read their own).
_PREFETCHED = max(0, READ_AHEAD + 1 - PREPARING)


def _chunks(future: Future[Prepared | IngestResult]) -> int:
    """The chunks a prepared file holds (0 while it is preparing, or for a result)."""
    ready = future.result() if future.done() and not future.exception() else None
    return len(ready.chunks) if isinstance(ready, Prepared) else 0


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

    `files` is consumed lazily: `PREPARING` files are prepared at once, up to `WINDOW`
    files (and `HELD_CHUNKS` prepared chunks) are taken ahead of the write, and the
    next `_PREFETCHED` are read meanwhile (unless they carry an error). `progress` is
    called from the preparing threads. The upload's chunk limit is checked again here, in file
    order, as a file's turn to be written comes: the files before it may still have
    been preparing when it was.
    """
    upload = _Upload(max_chunks, on_result)
    items = iter(files)
    upcoming: deque[Upload] = deque()  # taken from `files`, read ahead, not yet preparing
    preparing: deque[tuple[int, Future[Prepared | IngestResult]]] = deque()

    def start(f: Upload, pool: ThreadPoolExecutor) -> None:
        i = len(upload.results)
        upload.results.append(None)
        if f.error:
            future: Future[Prepared | IngestResult] = Future()
            future.set_result(IngestResult(file=f.name, status="rejected", reason=f.error))
        else:
            report = functools.partial(progress, i) if progress else None
            future = pool.submit(prepare, f, report, upload.chunks_left())
        preparing.append((i, future))

    def top_up(pool: ThreadPoolExecutor) -> None:
        while (
            len(preparing) < WINDOW
            and sum(not fut.done() for _, fut in preparing) < PREPARING
            and sum(_chunks(fut) for _, fut in preparing) < HELD_CHUNKS
        ):
            f = upcoming.popleft() if upcoming else next(items, None)
            if f is None:
                return
            start(f, pool)
        while len(upcoming) < _PREFETCHED and (u := next(items, None)) is not None:
            upcoming.append(u)
            if not u.error:
                prefetch_next(u)

    writer = ThreadPoolExecutor(1, thread_name_prefix="docchat-writer")
    preparers = ThreadPoolExecutor(PREPARING, thread_name_prefix="docchat-prepare")
    try:
        top_up(preparers)
        while preparing:
            i, future = preparing[0]
            if not future.done():  # a later file may finish first: start the next then
                running = [fut for _, fut in preparing if not fut.done()]
                wait(running, return_when=FIRST_COMPLETED)
                top_up(preparers)
                continue
            preparing.popleft()
            ready = future.result()
            if isinstance(ready, Prepared) and len(ready.chunks) > (left := upload.chunks_left()):
                ready = ready.rejected(
                    over_upload_limit(ready.name, len(ready.chunks), left, max_chunks)
                )
            if isinstance(ready, Prepared):
                upload.settle()  # one write in flight: memory stays bounded
                upload.writing = (i, writer.submit(commit, ready), ready)
            else:
                upload.results[i] = ready
            upload.flush()
            top_up(preparers)
    except BaseException:
        # Stopped (Ctrl-C, a stopped Streamlit run or job) or a bug: report nothing more.
        # A file still preparing writes nothing, so it is left to end on its own (at
        # its next progress report, for a stopped job); the write in flight finishes.
        preparers.shutdown(wait=False, cancel_futures=True)
        upload.abandon()
        writer.shutdown()
        raise
    preparers.shutdown()
    upload.settle()
    upload.flush()
    writer.shutdown()
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

