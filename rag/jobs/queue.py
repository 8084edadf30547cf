"""Background ingestion: an upload is a job on a Huey task queue, run by a worker.

`JobQueue.submit` keeps the bytes of each file content-addressed under
`<data_dir>/uploads/<sha256>`, writes the job's record and enqueues it; a worker (a
Huey consumer thread, `jobs/workers.py`: started by the engine in the app process,
`python -m rag worker` anywhere else) runs it (`jobs/run.py`) through the queue's
runner, the documents service's `ingest_many`, as the job's user, writing each
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
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.core.errors import JobNotFoundError, RagError, StoreUnavailableError
from rag.core.files import write_atomic
from rag.core.models import Upload
from rag.core.settings import ENV_NAMES, Settings
from rag.jobs.records import CANCELLED, QUEUED, REJECTED, RUNNING, Job, JobFile, ended
from rag.jobs.run import Run, Runner, Stop
from rag.team.access import User

log = logging.getLogger(__name__)

_TASK = "docchat_ingest_job"  # the task's name in every process's registry
_QUEUE_NAME = "docchat"
_KEY = "docchat."  # every key this module writes into Huey's storage starts with it


def _key(*parts: object) -> str:
    return _KEY + ".".join(str(p) for p in parts)


@contextlib.contextmanager
def _storage(settings: Settings) -> Iterator[None]:
    """Huey's storage failures as `StoreUnavailableError` (a message safe to show)."""
    try:
        yield
    except (RagError, Stop):
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


class JobQueue:
    """Jobs on one queue: submit, read, list, cancel; and their execution (`runner`)."""

    def __init__(self, settings: Settings, runner: Runner | None = None) -> None:
        self.settings = settings
        self.runner = runner  # what workers run jobs with (None: submit and read only)
        self.uploads = Path(settings.data_dir) / "uploads"
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        with _storage(settings):
            self.huey = _open_huey(settings, immediate=runner is not None and settings.workers <= 0)
        self._task = self.huey.task(name=_TASK)(self._execute)

    # -- records ---------------------------------------------------------------------------

    def save(self, job: Job) -> None:
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
            self.save(job)
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
            job = ended(job, CANCELLED, "")
            self.save(job)
            self.cleanup(job)
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
            self.save(nxt)
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
        Run(self, job, self.runner).run()

    def cancelled(self, job_id: str) -> bool:
        return self._peek(_key("cancel", job_id)) is not None

    def secrets(self, job_id: str) -> dict[str, str]:
        raw = self._peek(_key("secret", job_id))
        return raw if isinstance(raw, dict) else {}

    def cleanup(self, job: Job) -> None:
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

