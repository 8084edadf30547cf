"""Background ingestion: an upload is a job, its record in the record store and its
task on a Huey queue, run by a worker.

`JobQueue.submit` keeps the bytes of each file content-addressed under
`<data_dir>/uploads/<sha256>`, saves the job's record (`jobs/ledger.py`, one
transaction with the bytes) and enqueues its task: the job's id and attempt, nothing
else. A worker (a Huey consumer thread, `jobs/workers.py`: started by the engine in
the app process, `python -m rag worker` anywhere else) claims the job and runs it
(`jobs/run.py`) through the queue's runner, the documents service's `ingest_many`,
as the job's user as that user is then (`users`: removed or disabled, the job
fails), writing each file's progress ("OCR page 3/40") and result into the record.
Leaving the page, closing the browser or restarting the app loses nothing. The
task messages are Huey's storage, SQLite at `<data_dir>/jobs.db` (embedded, no
server) or Redis when `DOCCHAT_REDIS_URL` is set (workers on other machines then see
the same queue; the record store is then PostgreSQL). Huey's shapes are converted
here and nowhere else.

A claim is the record's change from queued to running for the message's attempt:
one worker wins it, and a job cancelled while queued is claimed by none. A running
job holds a lease (`DOCCHAT_JOB_LEASE` seconds) that its worker renews; a watcher
beside every consumer puts a job whose lease expired (its worker was killed or its
machine stopped) back on the queue as the next attempt, and the worker that claims
that attempt finishes it, skipping the files already done. Re-running a file is
safe: a document already in the collection is "unchanged", a half-written one is
cleared by the store's `begin_document` and written again. Cancelling a running job
sets a flag its worker reads at every heartbeat. Records of jobs that ended more
than `DOCCHAT_JOB_KEEP_DAYS` ago are pruned.

Left out: retries of a job that failed (the user uploads again), priorities, records
of jobs queued by releases that kept them in Huey's storage, a job whose message is
lost (a worker killed in the instant between taking it off a Redis queue and
claiming it, or a process stopped between saving a record and enqueueing it: the job
stays queued; cancel it and upload again), and reading the uploads of a job on
another machine without a shared data dir (the bytes are files under the data dir,
as the originals are).
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
from rag.core.models import Upload
from rag.core.settings import ENV_NAMES, Settings
from rag.jobs.ledger import Ledger
from rag.jobs.records import QUEUED, REJECTED, Job, JobFile
from rag.jobs.run import Run, Runner, Stop, Users
from rag.jobs.tune_run import TuneQueue, TuneRunner
from rag.jobs.web_refresh import RefreshQueue, RefreshRunner
from rag.records.database import Database, open_database
from rag.team.access import User

log = logging.getLogger(__name__)

_TASK = "docchat_ingest_job"  # the task's name in every process's registry
_TUNE_TASK = "docchat_tune_job"  # a tuning job's (jobs/tune_run.py)
_REFRESH_TASK = "docchat_web_refresh"  # a scheduled web refresh's (jobs/web_refresh.py)
_QUEUE_NAME = "docchat"
LIST_LIMIT = 100  # jobs listed at most (the newest): the pages and the API show recent ones
_DAY_S = 86_400.0


@contextlib.contextmanager
def _storage(settings: Settings) -> Iterator[None]:
    """Huey's storage failures as `StoreUnavailableError` (a message safe to show)."""
    try:
        yield
    except (RagError, Stop):
        raise
    except sqlite3.Error as e:
        raise StoreUnavailableError(f"Cannot use the job queue ({type(e).__name__}).") from None
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
    # =False: with no consumer (workers 0) the messages still go to the real storage.
    common: dict[str, Any] = {"results": False, "immediate": immediate,
                              "immediate_use_memory": False}  # fmt: skip
    if settings.redis_url:
        return RedisHuey(_QUEUE_NAME, url=settings.redis_url, **common)
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(_QUEUE_NAME, filename=str(data_dir / "jobs.db"), **common)


class JobQueue:
    """Jobs on one queue: submit, read, list, cancel, prune; and their execution
    (`runner`, as the user `users` says a job's user id is now)."""

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        *,
        runner: Runner | None = None,
        users: Users | None = None,
        tune_runner: TuneRunner | None = None,
        refresh_runner: RefreshRunner | None = None,
    ) -> None:
        self.settings = settings
        self.runner = runner  # what workers run jobs with (None: submit and read only)
        self.users = users
        self.uploads = Path(settings.data_dir) / "uploads"
        self.ledger = Ledger(db if db is not None else open_database(settings), self.uploads)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        with _storage(settings):
            self.huey = _open_huey(settings, immediate=runner is not None and settings.workers <= 0)
        self._task = self.huey.task(name=_TASK)(self._execute)
        # Tuning jobs on the same Huey, run by the same workers (jobs/tune_run.py).
        self.tunes = TuneQueue(settings, self.ledger.db, runner=tune_runner, users=users,
                               worker=self.worker_id, send=self._send_tune)  # fmt: skip
        self._tune_task = self.huey.task(name=_TUNE_TASK)(self.tunes.execute)
        # Scheduled web refreshes too (jobs/web_refresh.py), queued by the watcher.
        self.refreshes = RefreshQueue(self.ledger.db, runner=refresh_runner, users=users,
                                      send=self._send_refresh)  # fmt: skip
        self._refresh_task = self.huey.task(name=_REFRESH_TASK)(self.refreshes.execute)

    # -- records ---------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        return self.ledger.get(job_id)

    def jobs(self, user_id: str | None = None, limit: int = LIST_LIMIT) -> list[Job]:
        """The newest jobs (every user's, or `user_id`'s), newest first."""
        return self.ledger.listing(user_id, limit)

    def prune(self, now: float | None = None) -> int:
        """Delete the records of jobs that ended more than `job_keep_days` ago; how many."""
        now = time.time() if now is None else now
        gone, shas = self.ledger.prune(now - self.settings.job_keep_days * _DAY_S)
        gone += self.tunes.prune(now - self.settings.job_keep_days * _DAY_S)
        self.ledger.release_bytes(shas)  # any a crash kept (a job's end saved, then a stop)
        if gone:
            log.info("pruned %d ended job record(s)", gone)
        return gone

    # -- submitting, cancelling ---------------------------------------------------------------

    def submit(self, user: User, collection: str, uploads: Sequence[Upload]) -> Job:
        """A new job of `user` for these files (bytes kept on disk with its record);
        returns its record (with no consumer, `workers` 0, the job has already run)."""
        if not uploads:
            raise RagError("No files to upload.")
        files, data = [], {}
        for u in uploads:
            sha = hashlib.sha256(u.data).hexdigest()
            data[sha] = u.data
            f = JobFile(u.name, sha, len(u.data))
            if u.error:  # could not even be read
                error = f"{u.name}: {u.error}"
                f = replace(f, status=REJECTED, message=REJECTED, error=error, progress=1.0)
            files.append(f)
        now = time.time()
        job = Job(uuid.uuid4().hex[:16], user.id, collection, QUEUED, tuple(files), now, now)
        # Passwords of encrypted PDFs go with the job, never into its record, and are
        # deleted when it ends.
        secrets = {str(i): u.password for i, u in enumerate(uploads) if u.password}
        self.ledger.insert(job, data, secrets)
        with _storage(self.settings):
            self._task(job.id, 0)
        return self.job(job.id)

    def _send_tune(self, job_id: str) -> None:
        with _storage(self.settings):
            self._tune_task(job_id)

    def _send_refresh(self, collection: str) -> None:
        with _storage(self.settings):
            self._refresh_task(collection)

    def refresh_due(self, now: float | None = None) -> list[str]:
        """Queue a web refresh of each collection whose schedule is due (one watcher
        queues each); the collections queued."""
        return self.refreshes.enqueue_due(now)

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one at once, a running one at its next heartbeat."""
        job, ended_now = self.ledger.cancel(job_id)
        if ended_now:
            self.ledger.release(job)
        return job

    # -- leases -----------------------------------------------------------------------------

    def requeue_expired(self, now: float | None = None) -> list[str]:
        """Put back on the queue each job whose worker's lease expired (one watcher gets
        each; one its user cancelled ends instead); returns the ids put back."""
        now = time.time() if now is None else now
        again, stopped = self.ledger.requeue_expired(now)
        self.tunes.fail_expired(now)  # (a tuning starts over: see jobs/tune_records.py)
        for job in stopped:
            self.ledger.release(job)
        for job in again:
            log.warning("job %s: its worker %s stopped; queued again (attempt %d)",
                        job.id, job.worker or "?", job.attempt)  # fmt: skip
            with _storage(self.settings):
                self._task(job.id, job.attempt)
        return [j.id for j in again]

    # -- execution (a consumer thread) ----------------------------------------------------------

    def _execute(self, job_id: str, attempt: int) -> None:
        """The task: run attempt `attempt` of the job, unless it is stale or claimed."""
        try:
            job = self.job(job_id)
        except JobNotFoundError:
            return
        if job.status != QUEUED or job.attempt != attempt:
            return  # ended (cancelled while queued), or a message of another attempt
        if self.runner is None or self.users is None:
            raise RuntimeError("a JobQueue without a runner consumed a job")
        claimed = self.ledger.claim(job_id, attempt, self.worker_id, self.settings.job_lease)
        if claimed is None:
            return  # cancelled meanwhile, or another worker has it
        Run(self.ledger, self.settings, claimed, self.runner, self.users).run()
