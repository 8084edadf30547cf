"""Upload job records in the record store: the `upload_jobs` rows, the passwords of a
job's encrypted PDFs (`job_secrets`), and the uploaded bytes' lock rows
(`upload_blobs`) beside their files, `<data_dir>/uploads/<sha256>`.

Every change of a record is one transaction (`Database.write`) whose update names the
state it changes from (`WHERE id=? AND attempt=? AND status=...`), so whoever comes
second changes nothing and learns so from the row count: a claim of a job cancelled
meanwhile, a progress save of a run whose job was taken over, a second watcher
putting the same job back. No update matches a job that has ended (`ENDED`): a
finished job's record is never rewritten.

The bytes of an upload are kept while any unfinished job needs them. A submit and a
cleanup of the same bytes both begin by writing that bytes' row (an upsert: it locks
the row, and on PostgreSQL it is a new version of it, so a transaction that read the
jobs before it was committed fails and runs again); the submit then writes the file
if it is missing and saves its job, the cleanup looks for an unfinished job needing
the bytes and only then removes the file and the row. SQLite's one writer at a time
gives the same order. The file is removed last, inside the transaction: should that
transaction still fail, a submit waiting for the row writes the file again.

Left out: who may read a record (the uploads service), the task messages (Huey, in
`jobs/queue.py`), and a job's files as rows of their own (a job's files are one JSON
list; the unfinished jobs, the only ones a cleanup reads, are few).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from rag.core.errors import JobNotFoundError
from rag.core.files import write_atomic
from rag.jobs.records import CANCELLED, ENDED, QUEUED, RUNNING, Job, JobFile, ended
from rag.records import rows
from rag.records.database import Database
from rag.records.schema import job_secrets, upload_blobs
from rag.records.schema import upload_jobs as jobs_t

_UNFINISHED = (QUEUED, RUNNING)
_RESUMED = "resumed: its worker stopped"


def _job(row: Any) -> Job:
    """A row of `upload_jobs` as our record."""
    return Job.from_dict(
        {
            "id": row.id,
            "user": row.user_id,
            "collection": row.collection,
            "status": row.status,
            "files": list(row.files or ()),
            "created": row.created,
            "updated": row.updated,
            "error": row.error,
            "attempt": row.attempt,
            "worker": row.worker,
            "lease_until": row.lease_until,
            "cancel_requested": bool(row.cancel_requested),
        }
    )


def _files(files: Iterable[JobFile]) -> list[dict[str, Any]]:
    return [asdict(f) for f in files]


def _this(job: Job) -> Any:
    """The WHERE of an update by the run of this attempt of the job."""
    return (jobs_t.c.id == job.id, jobs_t.c.attempt == job.attempt, jobs_t.c.status == RUNNING)


def _read(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(select(jobs_t).where(jobs_t.c.id == job_id)).first()
    return _job(row) if row is not None else None


def _lock_blob(conn: Connection, sha: str) -> None:
    """Write the bytes' row (made if missing): held until the transaction ends."""
    rows.upsert(conn, upload_blobs, {"sha256": sha}, {}, {"sha256": sha})


class Ledger:
    """The job records of one record store, and the uploaded bytes under `uploads`."""

    def __init__(self, db: Database, uploads: Path) -> None:
        self.db = db
        self.uploads = uploads

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self.db.read(lambda c: _read(c, job_id))
        if job is None:
            raise JobNotFoundError(f"No job {job_id!r}.")
        return job

    def listing(self, user_id: str | None, limit: int) -> list[Job]:
        """The newest `limit` jobs (of `user_id`, or everyone's), newest first."""
        query = select(jobs_t).order_by(jobs_t.c.created.desc(), jobs_t.c.id).limit(limit)
        if user_id is not None:
            query = query.where(jobs_t.c.user_id == user_id)
        return self.db.read(lambda c: [_job(r) for r in c.execute(query)])

    def secrets(self, job_id: str) -> dict[str, str]:
        query = select(job_secrets.c.secrets).where(job_secrets.c.job_id == job_id)
        found = self.db.read(lambda c: c.execute(query).scalar())
        return dict(found) if isinstance(found, dict) else {}

    def state(self, job: Job) -> bool | None:
        """Whether this run's job was asked to stop (None: it is no longer this run's)."""
        query = select(jobs_t.c.cancel_requested).where(*_this(job))
        found = self.db.read(lambda c: c.execute(query).first())
        return None if found is None else bool(found[0])

    # -- a job's life ---------------------------------------------------------------------

    def insert(self, job: Job, data: Mapping[str, bytes], secrets: Mapping[str, str]) -> None:
        """A new job, its secrets, and the bytes of its files (`data` by sha256)."""

        def fn(conn: Connection) -> None:
            for sha in sorted(data):  # one order for every writer: no deadlock
                _lock_blob(conn, sha)
                if not (self.uploads / sha).is_file():
                    write_atomic(self.uploads / sha, data[sha])  # safe to repeat
            conn.execute(insert(jobs_t).values(
                id=job.id, user_id=job.user, collection=job.collection, status=job.status,
                files=_files(job.files), created=job.created, updated=job.updated,
                error=job.error, attempt=job.attempt,
            ))  # fmt: skip
            if secrets:
                conn.execute(insert(job_secrets).values(job_id=job.id, secrets=dict(secrets)))

        self.db.write(fn)

    def claim(self, job_id: str, attempt: int, worker: str, lease: float) -> Job | None:
        """The job as claimed by `worker` (now running), or None: it is not queued for
        this attempt any more (cancelled, taken by another worker, or of a later one)."""
        now = time.time()

        def fn(conn: Connection) -> Job | None:
            claimed = conn.execute(
                update(jobs_t)
                .where(jobs_t.c.id == job_id, jobs_t.c.attempt == attempt,
                       jobs_t.c.status == QUEUED, jobs_t.c.cancel_requested.is_(False))
                .values(status=RUNNING, worker=worker, lease_until=now + lease, updated=now,
                        error="")
            )  # fmt: skip
            return _read(conn, job_id) if claimed.rowcount == 1 else None

        return self.db.write(fn)

    def save(self, job: Job, lease_until: float | None) -> bool | None:
        """A run's progress (and lease); whether its job was asked to stop, or None when
        the job is no longer this run's (it ended, or another attempt has it)."""
        values: dict[str, Any] = {"files": _files(job.files), "updated": job.updated}
        if lease_until is not None:
            values["lease_until"] = lease_until

        def fn(conn: Connection) -> bool | None:
            if conn.execute(update(jobs_t).where(*_this(job)).values(**values)).rowcount != 1:
                return None
            query = select(jobs_t.c.cancel_requested).where(jobs_t.c.id == job.id)
            return bool(conn.execute(query).scalar_one())

        return self.db.write(fn)

    def end(self, job: Job, status: str, error: str) -> Job | None:
        """The run's job ended with `status` (CANCELLED whatever the run says, when its
        user asked); None when the job is no longer this run's."""

        def fn(conn: Connection) -> Job | None:
            stored = conn.execute(select(jobs_t.c.cancel_requested).where(*_this(job))).first()
            if stored is None:
                return None
            done = ended(job, CANCELLED, "") if stored[0] else ended(job, status, error)
            self._write_end(conn, done, _this(job))
            return done

        return self.db.write(fn)

    def cancel(self, job_id: str) -> tuple[Job, bool]:
        """Cancel a job: a queued one ends now, a running one is asked to stop (its run
        reads that at its next heartbeat). The record, and whether the job ended now."""

        def fn(conn: Connection) -> tuple[Job, bool]:
            job = _read(conn, job_id)
            if job is None:
                raise JobNotFoundError(f"No job {job_id!r}.")
            if job.finished:
                return job, False
            if job.status == QUEUED:
                done = ended(job, CANCELLED, "")
                where = (jobs_t.c.id == job_id, jobs_t.c.attempt == job.attempt,
                         jobs_t.c.status == QUEUED)  # fmt: skip
                self._write_end(conn, done, where)
                return done, True
            conn.execute(update(jobs_t)
                         .where(jobs_t.c.id == job_id, jobs_t.c.status.not_in(ENDED))
                         .values(cancel_requested=True))  # fmt: skip
            return replace(job, cancel_requested=True), False

        return self.db.write(fn)

    def _write_end(self, conn: Connection, done: Job, where: Any) -> None:
        conn.execute(update(jobs_t).where(*where).values(
            status=done.status, files=_files(done.files), error=done.error,
            updated=done.updated, lease_until=0.0,
            cancel_requested=done.cancel_requested,  # a cancel stays recorded
        ))  # fmt: skip
        conn.execute(delete(job_secrets).where(job_secrets.c.job_id == done.id))

    def requeue_expired(self, now: float) -> tuple[list[Job], list[Job]]:
        """Jobs whose worker's lease expired: put back as their next attempt, or ended
        as cancelled when their user had asked. (requeued, cancelled); one watcher
        gets each."""

        def fn(conn: Connection) -> tuple[list[Job], list[Job]]:
            expired = (jobs_t.c.status == RUNNING, jobs_t.c.lease_until < now)
            again, stopped = [], []
            for row in conn.execute(select(jobs_t).where(*expired)).all():
                job = _job(row)
                where = (jobs_t.c.id == job.id, jobs_t.c.attempt == job.attempt, *expired)
                if job.cancel_requested:
                    done = ended(job, CANCELLED, "")
                    self._write_end(conn, done, where)
                    stopped.append(done)
                    continue
                files = tuple(
                    replace(f, status=QUEUED, message=_RESUMED, progress=0.0)
                    if f.status == RUNNING else f
                    for f in job.files
                )  # fmt: skip
                nxt = replace(job, status=QUEUED, attempt=job.attempt + 1, worker="",
                              lease_until=0.0, files=files, updated=now)  # fmt: skip
                moved = conn.execute(update(jobs_t).where(*where).values(
                    status=QUEUED, attempt=nxt.attempt, worker="", lease_until=0.0,
                    files=_files(files), updated=now,
                ))  # fmt: skip
                if moved.rowcount == 1:
                    again.append(replace(nxt, worker=job.worker))  # (who stopped: for the log)
            return again, stopped

        return self.db.write(fn)

    # -- bytes and old records ------------------------------------------------------------

    def release(self, job: Job) -> None:
        """Remove the bytes of an ended job's files that no unfinished job needs."""
        self.release_bytes({f.sha256 for f in job.files}, job.id)

    def release_bytes(self, shas: Iterable[str], job_id: str = "") -> None:
        """Remove these bytes unless an unfinished job (other than `job_id`) needs them:
        one transaction each."""
        for sha in sorted(set(shas)):
            self.db.write(functools.partial(self._release, sha=sha, job_id=job_id))

    def _release(self, conn: Connection, sha: str, job_id: str) -> None:
        _lock_blob(conn, sha)
        query = select(jobs_t.c.files).where(jobs_t.c.status.in_(_UNFINISHED),
                                             jobs_t.c.id != job_id)  # fmt: skip
        if any(f.get("sha256") == sha for files in conn.execute(query).scalars()
               for f in files or ()):  # fmt: skip
            return
        conn.execute(delete(upload_blobs).where(upload_blobs.c.sha256 == sha))
        (self.uploads / sha).unlink(missing_ok=True)  # last: see the module's docstring

    def prune(self, before: float) -> tuple[int, set[str]]:
        """Delete the records (and secrets) of jobs that ended before `before`: how
        many, and their files' bytes (the caller releases those a crash left behind)."""
        old = (jobs_t.c.status.in_(ENDED), jobs_t.c.updated < before)

        def fn(conn: Connection) -> tuple[int, set[str]]:
            shas = {f.get("sha256", "") for files in
                    conn.execute(select(jobs_t.c.files).where(*old)).scalars()
                    for f in files or ()}  # fmt: skip
            ids = select(jobs_t.c.id).where(*old)
            conn.execute(delete(job_secrets).where(job_secrets.c.job_id.in_(ids)))
            gone = conn.execute(delete(jobs_t).where(*old)).rowcount
            return gone, shas - {""}

        return self.db.write(fn)
