"""A tuning job's record (`TuneJob`) and its rows in the record store (`TuneLedger`,
table `tune_jobs`).

A tuning job fine-tunes a collection's embedding model in the background: one stage
at a time ("training", "re-embedding", ...), each with its progress. Like an upload's,
every change of its row is one transaction whose update names the state it changes
from, so a second writer changes nothing and learns so from the row count: a claim of
a job cancelled meanwhile, a progress save of a run whose job has ended. An ended job's
row is never rewritten. The row also keeps what the job was started with (`request`:
its pairs as (question, chunk id), and the training's overrides).

Left out: running a job (`jobs/tune_run.py`), who may read a record (the tuning
service), and putting back a job whose worker stopped: training starts over in minutes
either way, so such a job fails with a message saying to start it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from rag.core.errors import JobNotFoundError
from rag.records.database import Database
from rag.records.schema import tune_jobs as tune_t

QUEUED, RUNNING, DONE, REFUSED, FAILED, CANCELLED = (
    "queued", "running", "done", "refused", "failed", "cancelled",
)  # fmt: skip
TUNE_STATUSES = (QUEUED, RUNNING, DONE, REFUSED, FAILED, CANCELLED)
# done: the tuned model was better on the held-out questions and now serves the
# collection; refused: it was not, and the collection kept its model.
TUNE_ENDED = (DONE, REFUSED, FAILED, CANCELLED)
SOURCES = ("studio", "pairs", "pseudo")
WORKER_STOPPED = "Its worker stopped before it finished: start the tuning again."


@dataclass(frozen=True)
class TuneJob:
    """One tuning of a collection's embedding model: where it stands, how it ended."""

    id: str
    user: str  # its user's id
    collection: str
    source: str  # SOURCES
    status: str  # TUNE_STATUSES
    stage: str = ""  # "pairs", "training", "saving", "re-embedding", "scoring", "swapping"
    progress: float = 0.0  # 0 to 1 of the stage
    message: str = ""  # what is happening ("step 3/52"), or how it ended
    model: str = ""  # the tuned model's name once trained ("tuned:<12 hex>")
    error: str = ""  # why it failed (safe to show)
    created: float = 0.0
    updated: float = 0.0
    cancel_requested: bool = False  # its user cancelled it (kept once the job has ended)
    worker: str = ""  # host:pid of the worker running it
    lease_until: float = 0.0  # the worker's lease (time.time()) while it runs

    @property
    def finished(self) -> bool:
        return self.status in TUNE_ENDED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneJob:
        return cls(**{k: v for k, v in d.items() if k in _FIELDS})


_FIELDS = frozenset(TuneJob.__dataclass_fields__)


@dataclass(frozen=True)
class TuneRequest:
    """What a job was started with: the pairs of a file or of the studio (none for
    pseudo-queries) and the training's overrides (`max_steps`: tests run 1 or 2)."""

    pairs: tuple[tuple[str, str], ...] = ()  # (question, chunk id)
    max_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs], "max_steps": self.max_steps}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneRequest:
        pairs = tuple((str(q), str(c)) for q, c in d.get("pairs") or ())
        return cls(pairs=pairs, max_steps=int(d.get("max_steps") or 0))


def _job(row: Any) -> TuneJob:
    """A row of `tune_jobs` as our record."""
    return TuneJob(
        id=row.id, user=row.user_id, collection=row.collection, source=row.source,
        status=row.status, stage=row.stage, progress=row.progress, message=row.message,
        model=row.model, error=row.error, created=row.created, updated=row.updated,
        cancel_requested=bool(row.cancel_requested), worker=row.worker,
        lease_until=row.lease_until,
    )  # fmt: skip


def _read(conn: Connection, job_id: str) -> TuneJob | None:
    row = conn.execute(select(tune_t).where(tune_t.c.id == job_id)).first()
    return _job(row) if row is not None else None


def _this(job: TuneJob) -> Any:
    """The WHERE of an update by the run of the job (running, by this worker)."""
    return (tune_t.c.id == job.id, tune_t.c.status == RUNNING, tune_t.c.worker == job.worker)


def _progress(job: TuneJob) -> dict[str, Any]:
    return {"stage": job.stage, "progress": job.progress, "message": job.message,
            "model": job.model, "updated": job.updated}  # fmt: skip


def ended(job: TuneJob, status: str, message: str, error: str = "") -> TuneJob:
    """The job ended with `status` (a cancel stays recorded)."""
    return replace(job, status=status, message=message, error=error, updated=time.time(),
                   lease_until=0.0, progress=1.0 if status in (DONE, REFUSED) else job.progress,
                   cancel_requested=job.cancel_requested or status == CANCELLED)  # fmt: skip


class TuneLedger:
    """The tuning jobs' records in one record store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> TuneJob:
        job = self.db.read(lambda c: _read(c, job_id))
        if job is None:
            raise JobNotFoundError(f"No tuning job {job_id!r}.")
        return job

    def listing(self, user_id: str | None, collection: str | None, limit: int) -> list[TuneJob]:
        """The newest `limit` jobs (of `user_id`, on `collection`; None: any), newest first."""
        query = select(tune_t).order_by(tune_t.c.created.desc(), tune_t.c.id).limit(limit)
        if user_id is not None:
            query = query.where(tune_t.c.user_id == user_id)
        if collection is not None:
            query = query.where(tune_t.c.collection == collection)
        return self.db.read(lambda c: [_job(r) for r in c.execute(query)])

    def request(self, job_id: str) -> TuneRequest:
        query = select(tune_t.c.request).where(tune_t.c.id == job_id)
        found = self.db.read(lambda c: c.execute(query).scalar())
        return TuneRequest.from_dict(found if isinstance(found, dict) else {})

    # -- a job's life ---------------------------------------------------------------------

    def insert(self, job: TuneJob, request: TuneRequest) -> None:
        self.db.write(lambda c: c.execute(insert(tune_t).values(
            id=job.id, user_id=job.user, collection=job.collection, source=job.source,
            status=job.status, stage=job.stage, progress=job.progress, message=job.message,
            model=job.model, error=job.error, created=job.created, updated=job.updated,
            worker="", lease_until=0.0, cancel_requested=False, request=request.to_dict(),
        )))  # fmt: skip

    def claim(self, job_id: str, worker: str, lease: float) -> TuneJob | None:
        """The job as claimed by `worker` (now running), or None: it is not queued any
        more (cancelled, or taken by another worker)."""
        now = time.time()

        def fn(conn: Connection) -> TuneJob | None:
            claimed = conn.execute(
                update(tune_t)
                .where(tune_t.c.id == job_id, tune_t.c.status == QUEUED,
                       tune_t.c.cancel_requested.is_(False))
                .values(status=RUNNING, worker=worker, lease_until=now + lease, updated=now)
            )  # fmt: skip
            return _read(conn, job_id) if claimed.rowcount == 1 else None

        return self.db.write(fn)

    def save(self, job: TuneJob, lease_until: float | None) -> bool | None:
        """A run's progress (and lease); whether its job was asked to stop, or None when
        the job is no longer this run's (it ended meanwhile)."""
        values = _progress(job)
        if lease_until is not None:
            values["lease_until"] = lease_until

        def fn(conn: Connection) -> bool | None:
            if conn.execute(update(tune_t).where(*_this(job)).values(**values)).rowcount != 1:
                return None
            query = select(tune_t.c.cancel_requested).where(tune_t.c.id == job.id)
            return bool(conn.execute(query).scalar_one())

        return self.db.write(fn)

    def end(self, job: TuneJob, status: str, message: str, error: str = "") -> TuneJob | None:
        """The run's job ended with `status`; None when the job is no longer this run's.
        A job whose user asked to stop it ends cancelled unless it got past the swap
        (`status` DONE or REFUSED: the collection has changed, or stayed, for good)."""

        def fn(conn: Connection) -> TuneJob | None:
            stored = conn.execute(select(tune_t.c.cancel_requested).where(*_this(job))).first()
            if stored is None:
                return None
            if stored[0] and status not in (DONE, REFUSED):
                done = ended(job, CANCELLED, "cancelled")
            else:
                done = ended(job, status, message, error)
            self._write_end(conn, done, _this(job))
            return done

        return self.db.write(fn)

    def cancel(self, job_id: str) -> TuneJob:
        """Cancel a job: a queued one ends now, a running one is asked to stop (its run
        reads that at its next heartbeat and stops at its next step)."""

        def fn(conn: Connection) -> TuneJob:
            job = _read(conn, job_id)
            if job is None:
                raise JobNotFoundError(f"No tuning job {job_id!r}.")
            if job.finished:
                return job
            if job.status == QUEUED:
                done = ended(job, CANCELLED, "cancelled")
                self._write_end(conn, done, (tune_t.c.id == job_id, tune_t.c.status == QUEUED))
                return done
            conn.execute(update(tune_t)
                         .where(tune_t.c.id == job_id, tune_t.c.status.not_in(TUNE_ENDED))
                         .values(cancel_requested=True))  # fmt: skip
            return replace(job, cancel_requested=True)

        return self.db.write(fn)

    def _write_end(self, conn: Connection, done: TuneJob, where: Any) -> None:
        conn.execute(update(tune_t).where(*where).values(
            **_progress(done), status=done.status, error=done.error, lease_until=0.0,
            cancel_requested=done.cancel_requested,
        ))  # fmt: skip

    def fail_expired(self, now: float) -> list[TuneJob]:
        """Jobs whose worker's lease expired, ended (failed; cancelled when their user
        had asked): the ones this call ended."""

        def fn(conn: Connection) -> list[TuneJob]:
            expired = (tune_t.c.status == RUNNING, tune_t.c.lease_until < now)
            out = []
            for row in conn.execute(select(tune_t).where(*expired)).all():
                job = _job(row)
                done = (ended(job, CANCELLED, "cancelled") if job.cancel_requested
                        else ended(job, FAILED, "failed", WORKER_STOPPED))  # fmt: skip
                where = (tune_t.c.id == job.id, tune_t.c.worker == job.worker, *expired)
                moved = conn.execute(update(tune_t).where(*where).values(
                    **_progress(done), status=done.status, error=done.error, lease_until=0.0,
                    cancel_requested=done.cancel_requested,
                ))  # fmt: skip
                if moved.rowcount == 1:
                    out.append(done)
            return out

        return self.db.write(fn)

    def prune(self, before: float) -> int:
        """Delete the records of jobs that ended before `before`: how many."""
        old = (tune_t.c.status.in_(TUNE_ENDED), tune_t.c.updated < before)
        return self.db.write(lambda c: c.execute(delete(tune_t).where(*old)).rowcount)
