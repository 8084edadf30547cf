"""Run a loader on untrusted bytes, with a time limit and a memory cap.

PDF, Word, HTML and image files are parsed by big third-party libraries (pypdf,
pdfium, python-docx, lxml, Pillow, the OCR engine) on bytes anyone may upload: a
decompression bomb, a pathological object graph or a parser bug must not hang or
take down the app. Those files are read in a child process whose address space is
capped (`RLIMIT_AS`) and which is killed when it runs past the time limit; the caller
gets a `LimitExceededError` or `ExtractionError` and the app goes on. Cheap text
formats (plain text, Markdown, code), whose loaders are linear in the input, stay
in-process: the per-file size limit already bounds them.

Workers are fresh interpreters (`children.start_child`: not a fork of the app, and
no secrets in their environment). They are reused, so a small file costs a socket
round trip, not a process start (about 0.7 s once). At most `MAX_WORKERS` run at
once; a worker that timed out, crashed or grew large is discarded, and one whose
parent died exits by itself. Results are plain pickles: a `LoadedDocument`, or the
name and message of the `RagError` to raise again here.

Left out: CPU-time limits (wall clock is what users feel), seccomp or other
sandboxing of the child (it runs with the app's user and file access).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import PurePosixPath

from rag.core import errors
from rag.core.children import START_TIMEOUT, start_child
from rag.core.errors import ExtractionError, LimitExceededError, RagError
from rag.core.models import LoadedDocument, ReadOptions
from rag.core.settings import DEFAULT_READ
from rag.ingest.image import IMAGE_EXTENSIONS
from rag.ingest.loaders import Progress, load

# Extensions whose loaders run in a worker process; everything else is read here.
ISOLATED_EXTENSIONS = frozenset({".pdf", ".docx", ".html", ".htm", ".xhtml", *IMAGE_EXTENSIONS})
MAX_WORKERS = 4  # extractions running at once (others wait for a free slot)
_RECYCLE_RSS_MB = 400  # a worker whose peak memory passed this is not reused
_RECYCLE_AFTER = 200  # nor one that served this many files (fragmentation, leaks)

_slots = threading.BoundedSemaphore(MAX_WORKERS)
_idle: list[_Worker] = []
_idle_lock = threading.Lock()
_peak = {"mb": 0.0}  # the largest peak RSS a worker reported (see `peak_memory_mb`)


def extract(
    name: str,
    data: bytes,
    *,
    password: str | None = None,
    timeout: float = 120.0,
    memory_mb: float = 2048.0,
    options: ReadOptions = DEFAULT_READ,
    progress: Progress | None = None,
) -> LoadedDocument:
    """The loaded document, or a RagError saying why it cannot be read.

    `timeout` (seconds, wall clock) and `memory_mb` (address space the parser may
    add to an idle worker) apply to PDF, Word, HTML and image files; each page read
    by OCR gets `timeout` again. `progress` hears of OCR pages as they are read.
    """
    if not _isolated(name, data):
        return load(name, data, password=password, options=options, progress=progress)
    if _prefetched:
        key = _prefetch_key(name, data, password, options)
        with _prefetch_lock:
            job = _prefetched.pop(key, None)
        # Started: it is this file's own reading, bounded by its time limit. Still queued
        # (behind other sessions' files): read it now instead of waiting for them.
        if job is not None and not job.future.cancel():
            return job.wait(progress)
    return _extract_isolated(name, data, password, timeout, memory_mb, options, progress)


def prefetch(
    name: str,
    data: bytes,
    *,
    password: str | None = None,
    timeout: float = 120.0,
    memory_mb: float = 2048.0,
    options: ReadOptions = DEFAULT_READ,
) -> None:
    """Start reading a file in the background; `extract` of the same bytes, name and
    password then takes the result instead of reading it again.

    Callers that ingest files one after another prefetch the next file while the
    current one is embedded: the reader process then works while the model does. Only
    the last `_PREFETCH_KEEP` prefetches are kept; a result no one takes is dropped.
    """
    if not _isolated(name, data):
        return  # read in-process, cheaply, when its turn comes
    key = _prefetch_key(name, data, password, options)
    with _prefetch_lock:
        if key in _prefetched:
            return
        while len(_prefetched) >= _PREFETCH_KEEP:
            _prefetched.pop(next(iter(_prefetched))).future.cancel()  # no-op once it runs
        job = _Prefetch()
        job.future = _prefetch_pool.submit(
            _extract_isolated, name, data, password, timeout, memory_mb, options, job.heard
        )
        _prefetched[key] = job


class _Prefetch:
    """A background read, and the last progress it reported (for whoever takes it)."""

    def __init__(self) -> None:
        self.future: Future[LoadedDocument] = Future()
        self.last: tuple[str, int, int] | None = None

    def heard(self, stage: str, done: int, total: int) -> None:
        self.last = (stage, done, total)

    def wait(self, progress: Progress | None) -> LoadedDocument:
        seen = None
        while progress is not None and not self.future.done():
            with contextlib.suppress(TimeoutError):
                self.future.result(timeout=0.2)
            if self.last is not None and self.last != seen:
                seen = self.last
                progress(*seen)
        return self.future.result()


# Files read ahead of the one being embedded, each in its own worker. Reading is the
# slow stage for PDFs (pypdf: 1.3 s per MB of content stream, the embedding of the same
# file a fraction of that), so two read at once on the 2 cores. SEC 10-Q, 20 filings
# (`eval sec-10-q`, quiet machine): 156 s with one file read ahead, 135 s with two.
READ_AHEAD = 2
_PREFETCH_KEEP = READ_AHEAD + 1
_prefetch_pool = ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="docchat-prefetch")
_prefetch_lock = threading.Lock()
_PrefetchKey = tuple[str, bytes, str | None, ReadOptions]
_prefetched: dict[_PrefetchKey, _Prefetch] = {}


def _prefetch_key(
    name: str, data: bytes, password: str | None, options: ReadOptions
) -> _PrefetchKey:
    # The bytes themselves: Python hashes a bytes object once and keeps the hash, and
    # callers pass the same object to `prefetch` and `extract`; no digest pass needed.
    return name, data, password, options


def _isolated(name: str, data: bytes) -> bool:
    ext = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    return ext in ISOLATED_EXTENSIONS and bool(data)


def _extract_isolated(
    name: str,
    data: bytes,
    password: str | None,
    timeout: float,
    memory_mb: float,
    options: ReadOptions,
    progress: Progress | None,
) -> LoadedDocument:
    with _slots:
        worker = _take_worker(memory_mb)
        try:
            return worker.run(name, data, password, timeout, options, progress)
        finally:
            # A worker that did not answer (timeout, crash, Ctrl-C in the caller) may
            # still be busy or broken: never hand it to the next file.
            if worker.answered and worker.reusable():
                _give_back(worker)
            else:
                worker.kill()


def shutdown() -> None:
    """Stop the idle workers (they also exit on their own when this process ends)."""
    with _idle_lock:
        workers = list(_idle)
        _idle.clear()
    for w in workers:
        w.kill()


def _take_worker(memory_mb: float) -> _Worker:
    with _idle_lock:
        while _idle:
            worker = _idle.pop()
            if worker.memory_mb == memory_mb and worker.alive():
                return worker
            worker.kill()
    return _Worker(memory_mb)


def _give_back(worker: _Worker) -> None:
    with _idle_lock:
        if len(_idle) < MAX_WORKERS:
            _idle.append(worker)
            return
    worker.kill()


class _Worker:
    """One child process reading one file at a time over a pipe."""

    def __init__(self, memory_mb: float) -> None:
        self.memory_mb = memory_mb
        self.served = 0
        self.peak_mb = 0.0
        self.answered = False  # whether the last request got its reply
        self.started = False  # the child said it is ready (imports done)
        # A parser of hostile bytes needs no secrets: `start_child` keeps them out.
        try:
            self._proc, self._conn = start_child(
                f"from rag.ingest.worker import _serve_fd; _serve_fd({{fd}}, {memory_mb!r})"
            )
        except OSError as e:
            raise ExtractionError(f"Cannot start a reader process ({e}).") from None

    def alive(self) -> bool:
        return self._proc.poll() is None

    def reusable(self) -> bool:
        return self.alive() and self.served < _RECYCLE_AFTER and self.peak_mb < _RECYCLE_RSS_MB

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._proc.kill()
            self._proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._conn.close()

    def run(
        self,
        name: str,
        data: bytes,
        password: str | None,
        timeout: float,
        options: ReadOptions,
        progress: Progress | None,
    ) -> LoadedDocument:
        self.answered = False
        if not self.started:
            # Starting a worker (interpreter, parser imports) is not the file's fault:
            # the file's time limit starts once the worker is ready.
            try:
                self.started = self._conn.poll(START_TIMEOUT) and self._conn.recv() == "ready"
            except (EOFError, OSError):
                self.started = False
            if not self.started:
                raise ExtractionError(
                    f"{name}: could not start a reader process; try again in a moment."
                )
        deadline = time.monotonic() + timeout
        try:
            self._conn.send((name, data, password, options))
        except (OSError, ValueError):
            raise self._crashed(name) from None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._conn.poll(left):
                raise LimitExceededError(
                    f"{name}: reading it took longer than {timeout:g} s, so it was stopped "
                    "(the file looks broken or hostile; the limit is DOCCHAT_EXTRACT_TIMEOUT)."
                )
            try:
                reply = self._conn.recv()
            except (EOFError, OSError):
                raise self._crashed(name) from None
            if reply[0] != "progress":
                break
            # An OCR page was started: each one gets the whole time limit again.
            deadline = time.monotonic() + timeout
            if progress is not None:
                progress(*reply[1])
        self.answered = True
        self.served += 1
        status, payload, self.peak_mb = reply
        _peak["mb"] = max(_peak["mb"], self.peak_mb)
        if status == "ok":
            return payload
        if status == "memory":
            raise self._too_big(name)
        kind, message = payload
        if status == "error":
            cls = getattr(errors, kind, None)
            if isinstance(cls, type) and issubclass(cls, RagError):
                raise cls(message)
            raise ExtractionError(message)
        # A loader bug (loaders turn every parser failure into a RagError): surface it.
        raise RuntimeError(f"extraction of {name} failed: {kind}: {message}")

    def _crashed(self, name: str) -> RagError:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0 and -code == 9:
            # The kernel's OOM killer, or ours: memory is the likely cause either way.
            return self._too_big(name)
        return ExtractionError(
            f"{name}: the reader crashed on this file (exit code {code}); "
            "the file looks broken or hostile."
        )

    def _too_big(self, name: str) -> LimitExceededError:
        return LimitExceededError(
            f"{name}: reading it needs more than {self.memory_mb:g} MB of memory, so it was "
            "stopped (the file looks broken or hostile; the limit is "
            "DOCCHAT_EXTRACT_MEMORY_MB)."
        )


def peak_memory_mb() -> float:
    """The most memory (peak RSS, MB) any worker of this process used for one file.

    Workers that were killed (time or memory limit) did not report; the memory cap
    bounds those.
    """
    return _peak["mb"]


def worker_pids() -> list[int]:
    """Process ids of the idle workers (for tests and diagnostics)."""
    with _idle_lock:
        return [w._proc.pid for w in _idle]
