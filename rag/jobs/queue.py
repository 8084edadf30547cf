"""Background ingestion: an upload is a job on a Huey task queue, run by a worker.

`JobQueue.submit` keeps the bytes of each file content-addressed under
`<data_dir>/uploads/<sha256>`, writes the job's record and enqueues it; a worker (a
Huey consumer thread: `start_workers` in the app process, `python -m rag worker`
anywhere else) runs it through `DocChat.ingest_many`, as the job's user, writing each
file's progress ("OCR page 3/40") and result into the record. Leaving the page,
closing the browser or restarting the app loses nothing: the queue and the records
are Huey's storage, SQLite at `<data_dir>/jobs.db` (embedded, no server) or Redis
when `DOCCHAT_REDIS_URL` is set (workers on other machines see the same queue and
records; the code is the same). Huey's shapes (its key-value storage, pickled
values, task messages) are converted here and nowhere else.

A running job holds a lease (`DOCCHAT_JOB_LEASE` seconds) that its worker renews; a
watcher beside every consumer puts a job whose lease expired (its worker was killed
or its machine stopped) back on the queue as the next attempt, and whichever worker
claims that attempt (`put_if_empty`: one wins) finishes it, skipping the files
already done. Re-running a file is safe: a document already in the collection is
"unchanged", a half-written one is cleared by the store's `begin_document` and
written again. Cancelling sets a flag the worker reads between files and at every
progress report of the file under way.

Left out: retries of a job that failed (the user uploads again), priorities, pruning
old job records, a job lost when a worker is killed in the instant between taking
its message off the queue and claiming it (Redis only; SQLite keeps the message until
the claim is written), and reading the uploads of a job on another machine without a
shared data dir (the bytes are files under the data dir, as the originals are).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.core.errors import JobNotFoundError, RagError, StoreUnavailableError
from rag.core.files import write_atomic
from rag.core.models import IngestResult, Upload
from rag.core.settings import ENV_NAMES, Settings
from rag.team.access import User

if TYPE_CHECKING:  # the engine runs jobs; only its type is needed here
    from rag.engine import DocChat

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# A file is "rejected" when it is the file's fault (unreadable, hostile, over a limit:
# the word the app and the CLI have always used), "failed" when the job could not
# finish it (the store went away).
REJECTED = "rejected"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FILE_STATUSES = (QUEUED, RUNNING, "indexed", "unchanged", REJECTED, FAILED, CANCELLED)
_ENDED = frozenset({DONE, FAILED, CANCELLED})
_FILE_ENDED = frozenset({"indexed", "unchanged", REJECTED, FAILED, CANCELLED})
_TASK = "docchat_ingest_job"  # the task's name in every process's registry
_QUEUE_NAME = "docchat"
_KEY = "docchat."  # every key this module writes into Huey's storage starts with it
_TICK_S = 0.5  # how often a running job looks at its cancel flag and saves its progress
# Where each stage starts on a file's progress bar (embedding takes most of the time).
_STAGE_START = {"extracting": 0.02, "ocr": 0.02, "splitting": 0.15, "embedding": 0.2,
                "storing": 0.95}  # fmt: skip


@dataclass(frozen=True)
class JobFile:
    """One file of a job: what it is, where it stands, how it ended."""

    name: str
    sha256: str
    size: int
    status: str = QUEUED  # FILE_STATUSES
    message: str = ""  # what is happening ("OCR page 3/40"), or how it ended
    progress: float = 0.0  # 0 to 1
    doc_id: str = ""
    error: str = ""  # why it failed, naming the file

    @property
    def finished(self) -> bool:
        return self.status in _FILE_ENDED


@dataclass(frozen=True)
class Job:
    """One upload run in the background: its files, its user and collection, its state."""

    id: str
    user: str
    collection: str
    status: str  # JOB_STATUSES
    files: tuple[JobFile, ...]
    created: float
    updated: float
    error: str = ""  # why the job as a whole failed (the store went away, no access)
    admin: bool = False  # the user was an administrator when submitting it
    attempt: int = 0  # 1 more each time it is put back after its worker stopped
    worker: str = ""  # host:pid of the worker running it
    lease_until: float = 0.0  # the worker's lease (time.time()) while it runs

    @property
    def finished(self) -> bool:
        return self.status in _ENDED

    def counts(self) -> dict[str, int]:
        """How many files are in each status (statuses with none left out)."""
        out: dict[str, int] = {}
        for f in self.files:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: "2 indexed, 1 rejected of 3 file(s)"."""
        parts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        return f"{parts} of {len(self.files)} file(s)"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = [asdict(f) for f in self.files]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        files = tuple(JobFile(**f) for f in d.get("files", ()))
        known = {k: v for k, v in d.items() if k in _JOB_FIELDS and k != "files"}
        return cls(files=files, **known)


_JOB_FIELDS = frozenset(Job.__dataclass_fields__)


def _key(*parts: object) -> str:
    return _KEY + ".".join(str(p) for p in parts)


def file_stage(stage: str, done: int, total: int) -> tuple[str, float]:
    """A pipeline progress report as (message, progress) of the file's bar."""
    frac = _STAGE_START.get(stage, 0.0)
    if stage == "ocr" and total:
        return f"OCR page {done}/{total}", 0.02 + 0.13 * done / total
    if stage == "embedding" and total:
        if done >= total:  # written next, in the writer thread
            return f"storing {total} chunks", _STAGE_START["storing"]
        return f"embedding {done}/{total} chunks", 0.2 + 0.75 * done / total
    if stage == "storing":
        return f"storing {total} chunks", frac
    return stage, frac


def _file_result(f: JobFile, r: IngestResult) -> JobFile:
    if r.status == "rejected":
        reason = r.reason if r.reason.startswith(r.file) else f"{r.file}: {r.reason}"
        return replace(f, status=REJECTED, message=REJECTED, error=reason, progress=1.0)
    if r.status == "unchanged":
        message = f"already indexed ({r.chunks} chunks)"
    else:
        message = f"{r.pages} page(s), {r.chunks} chunk(s) in {r.seconds:.1f} s"
    # The warnings (a page read by OCR, a fallback to pdfium) go with the result, as the
    # Upload page showed them before uploads were jobs.
    message = "; ".join([message, *r.warnings])
    return replace(f, status=r.status, message=message, doc_id=r.doc_id, progress=1.0)


@contextlib.contextmanager
def _storage(settings: Settings) -> Iterator[None]:
    """Huey's storage failures as `StoreUnavailableError` (a message safe to show)."""
    try:
        yield
    except (RagError, _Stop):
        raise
    except sqlite3.Error as e:
        where = Path(settings.data_dir) / "jobs.db"
        raise StoreUnavailableError(f"Cannot use the job queue {where} ({e}).") from None
    except Exception as e:
        import redis.exceptions

        if isinstance(e, redis.exceptions.RedisError):
            raise StoreUnavailableError(
                f"Cannot reach the job queue's Redis server ({ENV_NAMES['redis_url']}): "
                f"{type(e).__name__}."
            ) from None
        raise


def _open_huey(settings: Settings, immediate: bool) -> Any:
    from huey import RedisHuey, SqliteHuey

    # results=False: tasks return nothing; the records are ours. immediate_use_memory
    # =False: with no consumer (workers 0) the records still go to the real storage.
    common: dict[str, Any] = {"results": False, "immediate": immediate,
                              "immediate_use_memory": False}  # fmt: skip
    if settings.redis_url:
        return RedisHuey(_QUEUE_NAME, url=settings.redis_url, **common)
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(_QUEUE_NAME, filename=str(data_dir / "jobs.db"), **common)


def queue_identity(settings: Settings) -> str:
    """Which queue these settings name (one consumer per queue and process)."""
    if settings.redis_url:
        return "redis:" + hashlib.sha256(settings.redis_url.encode()).hexdigest()[:16]
    return "sqlite:" + str((Path(settings.data_dir) / "jobs.db").resolve())


class _Stop(Exception):
    """Raised inside a running job's progress report: cancelled, or its lease was lost."""


class JobQueue:
    """Jobs on one queue: submit, read, list, cancel; and their execution (`runner`)."""

    def __init__(self, settings: Settings, runner: DocChat | None = None) -> None:
        self.settings = settings
        self.runner = runner  # the engine workers run jobs with (None: submit only)
        self.uploads = Path(settings.data_dir) / "uploads"
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        with _storage(settings):
            self.huey = _open_huey(settings, immediate=runner is not None and settings.workers <= 0)
        self._task = self.huey.task(name=_TASK)(self._execute)

    # -- records ---------------------------------------------------------------------------

    def _save(self, job: Job) -> None:
        with _storage(self.settings):
            self.huey.put(_key("job", job.id), job.to_dict())

    def _peek(self, key: str) -> Any:
        with _storage(self.settings):
            return self.huey.get(key, peek=True)

    def job(self, job_id: str) -> Job:
        raw = self._peek(_key("job", job_id))
        if not isinstance(raw, dict):
            raise JobNotFoundError(f"No job {job_id!r}.")
        return Job.from_dict(raw)

    def jobs(self, user: str | None = None) -> list[Job]:
        """Every job (or `user`'s), newest first."""
        prefix = _key("job", "")
        with _storage(self.settings):
            items = self.huey.storage.result_items()
            records = [self.huey.serializer.deserialize(v) for k, v in items.items()
                       if k.startswith(prefix)]  # fmt: skip
        found = [Job.from_dict(r) for r in records if isinstance(r, dict)]
        found = [j for j in found if user is None or j.user == user]
        return sorted(found, key=lambda j: j.created, reverse=True)

    # -- submitting, cancelling ---------------------------------------------------------------

    def submit(self, user: User, collection: str, uploads: Sequence[Upload]) -> Job:
        """A new job for these files (bytes kept on disk first); returns its record (with
        no consumer, `workers` 0, the job has already run)."""
        if not uploads:
            raise RagError("No files to upload.")
        files = []
        for u in uploads:
            sha = hashlib.sha256(u.data).hexdigest()
            if not (self.uploads / sha).exists():
                write_atomic(self.uploads / sha, u.data)
            f = JobFile(u.name, sha, len(u.data))
            if u.error:  # could not even be read
                error = f"{u.name}: {u.error}"
                f = replace(f, status=REJECTED, message=REJECTED, error=error, progress=1.0)
            files.append(f)
        now = time.time()
        job = Job(uuid.uuid4().hex[:16], user.name, collection, QUEUED, tuple(files), now, now,
                  admin=user.admin)  # fmt: skip
        # Passwords of encrypted PDFs go with the job, never into its record, and are
        # deleted when it ends.
        secrets = {str(i): u.password for i, u in enumerate(uploads) if u.password}
        with _storage(self.settings):
            if secrets:
                self.huey.put(_key("secret", job.id), secrets)
            self._save(job)
            self._task(job.id, 0)
        return self.job(job.id)

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one at once, a running one at its next progress report."""
        job = self.job(job_id)
        if job.finished:
            return job
        with _storage(self.settings):
            self.huey.put(_key("cancel", job_id), True)
        if job.status == QUEUED:
            job = _ended(job, CANCELLED, "")
            self._save(job)
            self._cleanup(job)
        return job

    # -- leases -----------------------------------------------------------------------------

    def requeue_expired(self, now: float | None = None) -> list[str]:
        """Put back on the queue each job whose worker's lease expired (one watcher wins
        each); returns their ids."""
        now = time.time() if now is None else now
        again = []
        for job in self.jobs():
            stale_run = job.status == RUNNING and job.lease_until < now
            # Claimed, but its worker died before it wrote "running".
            stale_claim = (
                job.status == QUEUED
                and job.updated + self.settings.job_lease < now
                and self._peek(_key("claim", job.id, job.attempt)) is not None
            )
            if not (stale_run or stale_claim):
                continue
            with _storage(self.settings):
                if not self.huey.put_if_empty(_key("reap", job.id, job.attempt), self.worker_id):
                    continue  # another watcher has it
            files = tuple(
                replace(f, status=QUEUED, message="resumed: its worker stopped", progress=0.0)
                if f.status == RUNNING else f
                for f in job.files
            )  # fmt: skip
            nxt = replace(job, status=QUEUED, attempt=job.attempt + 1, worker="", lease_until=0.0,
                          files=files, updated=now)  # fmt: skip
            log.warning("job %s: its worker %s stopped; queued again (attempt %d)",
                        job.id, job.worker or "?", nxt.attempt)  # fmt: skip
            self._save(nxt)
            with _storage(self.settings):
                self._task(job.id, nxt.attempt)
            again.append(job.id)
        return again

    # -- execution (a consumer thread) ----------------------------------------------------------

    def _execute(self, job_id: str, attempt: int) -> None:
        """The task: run attempt `attempt` of the job, unless it is stale or claimed."""
        try:
            job = self.job(job_id)
        except JobNotFoundError:
            return
        if job.finished or job.attempt != attempt:
            return  # cancelled while queued, or a message of an earlier attempt
        with _storage(self.settings):
            if not self.huey.put_if_empty(_key("claim", job_id, attempt), self.worker_id):
                return
        if self.runner is None:
            raise RuntimeError("a JobQueue without a runner consumed a job")
        _Run(self, job, self.runner).run()

    def _cancelled(self, job_id: str) -> bool:
        return self._peek(_key("cancel", job_id)) is not None

    def _secrets(self, job_id: str) -> dict[str, str]:
        raw = self._peek(_key("secret", job_id))
        return raw if isinstance(raw, dict) else {}

    def _cleanup(self, job: Job) -> None:
        """Once a job has ended: its keys, and the uploaded bytes no other job still needs."""
        with _storage(self.settings):
            for n in range(job.attempt + 1):
                self.huey.delete(_key("claim", job.id, n))
                self.huey.delete(_key("reap", job.id, n))
            self.huey.delete(_key("secret", job.id))
            self.huey.delete(_key("cancel", job.id))
        needed = {f.sha256 for j in self.jobs() if not j.finished and j.id != job.id
                  for f in j.files}  # fmt: skip
        for f in job.files:
            if f.sha256 not in needed:
                (self.uploads / f.sha256).unlink(missing_ok=True)


def _ended(job: Job, status: str, error: str) -> Job:
    """The job ended with `status`; files that had not ended end with it."""
    left = CANCELLED if status == CANCELLED else FAILED
    files = tuple(
        f if f.finished else replace(f, status=left, message=left, progress=1.0,
                                     error=f"{f.name}: {error}" if error else "")
        for f in job.files
    )  # fmt: skip
    return replace(job, status=status, files=files, error=error, updated=time.time(),
                   lease_until=0.0)  # fmt: skip


class _Run:
    """One attempt of a job in a worker: the pipeline, its progress, the lease, the end.

    Progress is kept in memory and saved by a heartbeat thread every `_TICK_S` (with
    the lease every third of it), which also reads the cancel flag and notices when
    the job was given to another worker (the lease was lost): the pipeline then stops
    at its next progress report.
    """

    def __init__(self, queue: JobQueue, job: Job, engine: DocChat) -> None:
        self.queue = queue
        self.job = job
        self.attempt = job.attempt
        self.engine = engine.as_user(User(job.user, admin=job.admin))
        self.lock = threading.Lock()
        self.dirty = True
        self.cancelled = False
        self.lost = False
        self.done = threading.Event()

    def _change(self, i: int, f: JobFile) -> None:
        with self.lock:
            files = list(self.job.files)
            files[i] = f
            self.job = replace(self.job, files=tuple(files), updated=time.time())
            self.dirty = True

    def _flush(self, *, lease: bool) -> None:
        """Save the record if it changed (or the lease is due), unless the job was lost."""
        with self.lock:
            if self.lost or not (self.dirty or lease):
                return
            try:
                stored = self.queue.job(self.job.id)
            except JobNotFoundError:
                stored = self.job
            if stored.attempt != self.attempt:
                self.lost = True  # another worker runs it now
                return
            lease_until = time.time() + self.queue.settings.job_lease
            self.job = replace(self.job, lease_until=lease_until)
            self.queue._save(self.job)
            self.dirty = False

    def _beat(self) -> None:
        third = self.queue.settings.job_lease / 3
        last_lease = time.monotonic()
        while not self.done.wait(min(_TICK_S, third)):
            try:
                if self.queue._cancelled(self.job.id):
                    self.cancelled = True
                due = time.monotonic() - last_lease >= third
                self._flush(lease=due)
                if due:
                    last_lease = time.monotonic()
            except RagError as e:  # the queue is unreachable: try again at the next tick
                log.warning("job %s: heartbeat failed: %s", self.job.id, e)

    def run(self) -> None:
        job = self.job
        if self.queue._cancelled(job.id):
            self._end(CANCELLED, "")
            return
        self.job = replace(job, status=RUNNING, worker=self.queue.worker_id, error="",
                           updated=time.time())  # fmt: skip
        self._flush(lease=True)
        secrets = self.queue._secrets(job.id)
        order: list[int] = []  # order[k]: the job's file handed to the pipeline k-th

        def uploads() -> Iterable[Upload]:
            for i, f in enumerate(job.files):
                if f.finished:
                    continue  # done by an earlier attempt
                if self.cancelled or self.lost:
                    return
                order.append(i)
                try:
                    data = (self.queue.uploads / f.sha256).read_bytes()
                except OSError:
                    yield Upload(f.name, b"", error="its uploaded bytes are no longer stored")
                    continue
                yield Upload(f.name, data, secrets.get(str(i)))

        def progress(k: int, stage: str, done: int, total: int) -> None:
            if self.cancelled or self.lost:
                raise _Stop
            message, frac = file_stage(stage, done, total)
            f = self.job.files[order[k]]
            self._change(order[k], replace(f, status=RUNNING, message=message, progress=frac))

        def on_result(k: int, r: IngestResult) -> None:
            self._change(order[k], _file_result(self.job.files[order[k]], r))

        beat = threading.Thread(target=self._beat, daemon=True, name=f"docchat-job-{job.id}")
        beat.start()
        error = ""
        try:
            self.engine.ingest_many(uploads(), collection=job.collection, progress=progress,
                                    on_result=on_result)  # fmt: skip
        except _Stop:
            pass
        except RagError as e:
            error = str(e)
        except Exception:
            log.exception("job %s failed", job.id)
            error = "Internal error while ingesting (the worker's log has the details)."
        finally:
            # (A KeyboardInterrupt, the consumer stopping, ends here too: the job stays
            # "running" and another worker takes it when the lease expires.)
            self.done.set()
            beat.join()
        if self.lost:
            return
        if self.cancelled or self.queue._cancelled(job.id):
            self._end(CANCELLED, "")
        elif error:
            self._end(FAILED, error)
        elif all(f.status in (REJECTED, FAILED) for f in self.job.files):
            self._end(FAILED, "")
        else:
            self._end(DONE, "")

    def _end(self, status: str, error: str) -> None:
        self.job = _ended(self.job, status, error)
        self.queue._save(self.job)
        self.queue._cleanup(self.job)


# -- consumers -------------------------------------------------------------------------------


class Workers:
    """A Huey consumer (thread workers) on a queue, and the watcher of leases beside it.

    `embedded`: started from any thread and left running in the background (the app
    process); otherwise `run` holds the main thread with Huey's signal handling.
    """

    def __init__(self, queue: JobQueue, count: int, *, embedded: bool) -> None:
        from huey.consumer import Consumer

        class _Embedded(Consumer):
            # Signal handlers only work in the main thread; the app starts its workers
            # from a page's thread, and the app keeps its own handlers.
            def _set_signal_handlers(self) -> None:
                pass

        self.queue = queue
        # max_delay: an idle worker looks at the SQLite queue at least every second
        # (Huey's default backs off to 10 s, a long wait after a drop of files).
        self.consumer = (_Embedded if embedded else Consumer)(
            queue.huey, workers=count, worker_type="thread", periodic=False, max_delay=1.0,
            check_worker_health=not embedded,
        )  # fmt: skip
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="docchat-jobs-watch")

    def _watch(self) -> None:
        # Also at once: a job left running by a process that stopped is taken back as
        # soon as its lease is over.
        interval = max(self.queue.settings.job_lease / 3, 0.2)
        while True:
            try:
                self.queue.requeue_expired()
            except RagError as e:
                log.warning("checking job leases failed: %s", e)
            if self._stop.wait(interval):
                return

    def start(self) -> None:
        """Start in the background."""
        self._watcher.start()
        self.consumer.start()

    def run(self) -> None:
        """Run in the foreground until SIGINT (graceful: the jobs under way finish) or
        SIGTERM (at once: their leases expire and other workers take them)."""
        self._watcher.start()
        try:
            self.consumer.run()
        finally:
            self._stop.set()

    def stop(self) -> None:
        """Stop background workers (tests); the jobs under way finish first."""
        self._stop.set()
        self.consumer.stop(graceful=True)
        self._watcher.join()
        with _started_guard:
            for key, w in list(_started.items()):
                if w is self:
                    del _started[key]


_started: dict[str, Workers] = {}  # queue identity -> the workers of this process
_started_guard = threading.Lock()


def start_workers(engine: DocChat) -> Workers | None:
    """The app process's workers for the engine's queue, started once per process
    (again: the same ones); None when `workers` is 0 (jobs run as they are submitted)."""
    settings = engine.settings
    if settings.workers <= 0:
        return None
    key = queue_identity(settings)
    with _started_guard:
        workers = _started.get(key)
        if workers is None:
            workers = Workers(engine.job_queue, settings.workers, embedded=True)
            workers.start()
            _started[key] = workers
        return workers
