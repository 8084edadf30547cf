"""Tuning jobs on the job queue: submitted, claimed by a worker, run with a heartbeat,
cancelled, and failed when their worker stops.

`TuneQueue` is part of `JobQueue` (`jobs/queue.py`), which registers its task
(`docchat_tune_job`) on the same Huey, so the same workers run uploads and tunings,
and with `workers` 0 a tuning runs before `submit` returns, as an upload does. A run
(`TuneRun`) hands the job to a `TuneRunner` (the tuning service's flow) as the job's
user as that user is then, with `report` for its stage and progress and `should_stop`,
which the flow reads at every training step: the heartbeat (`run.beat_until`) saves
the progress, renews the lease and reads the cancel flag.

Left out: the flow itself (pairs, training, the copy, the gate: `services/tuning.py`),
and resuming a job whose worker stopped (see `jobs/tune_records.py`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from rag.core.errors import JobNotFoundError, RagError, TuningCancelled
from rag.core.settings import Settings
from rag.jobs.run import NO_USER, Users, beat_until
from rag.jobs.tune_records import (
    CANCELLED,
    FAILED,
    QUEUED,
    TuneJob,
    TuneLedger,
    TuneRequest,
)
from rag.records.database import Database
from rag.team.access import User

log = logging.getLogger(__name__)

LIST_LIMIT = 100  # jobs listed at most (the newest)


class Report(Protocol):
    """A running job's stage, its progress (0 to 1) and what is happening; `model` once
    the tuned model has a name."""

    def __call__(self, stage: str, progress: float, message: str, model: str = "") -> None: ...


@dataclass(frozen=True)
class TuneOutcome:
    """How a job's flow ended: DONE (swapped) or REFUSED, the model, the figures' line."""

    status: str
    model: str
    message: str


# (user, job, request, report, should_stop) -> outcome; raises TuningCancelled when it
# stopped because should_stop() turned true, any RagError when it failed.
TuneRunner = Callable[[User, TuneJob, TuneRequest, Report, Callable[[], bool]], TuneOutcome]


class TuneRun:
    """One run of a claimed (running) job: the flow, its progress, the lease, the end."""

    def __init__(self, ledger: TuneLedger, settings: Settings, job: TuneJob, runner: TuneRunner,
                 users: Users) -> None:  # fmt: skip
        self.ledger = ledger
        self.settings = settings
        self.job = job
        self.runner = runner
        self.users = users
        self.lock = threading.Lock()
        self.dirty = False
        self.cancelled = job.cancel_requested
        self.lost = False  # the job ended meanwhile (its lease expired): nothing more is saved
        self.done = threading.Event()

    def report(self, stage: str, progress: float, message: str, model: str = "") -> None:
        with self.lock:
            self.job = replace(self.job, stage=stage, progress=min(max(progress, 0.0), 1.0),
                               message=message, model=model or self.job.model,
                               updated=time.time())  # fmt: skip
            self.dirty = True

    def should_stop(self) -> bool:
        return self.cancelled or self.lost

    def _flush(self, lease: bool) -> None:
        with self.lock:
            if self.lost:
                return
            job, dirty, self.dirty = self.job, self.dirty, False
        until = time.time() + self.settings.job_lease if lease else None
        try:
            stop = self.ledger.save(job, until)
        except RagError:
            with self.lock:
                self.dirty = self.dirty or dirty  # saved at the next tick
            raise
        if stop is None:
            self.lost = True
        elif stop:
            self.cancelled = True

    def _beat(self) -> None:
        beat_until(self.done, self.settings.job_lease, self._flush, f"tuning job {self.job.id}")

    def run(self) -> None:
        job = self.job
        try:
            user = self.users(job.user)
            request = self.ledger.request(job.id)
        except RagError as e:
            self._end(FAILED, "failed", str(e))
            return
        if user is None:
            self._end(FAILED, "failed", NO_USER)
            return
        beat = threading.Thread(target=self._beat, daemon=True, name=f"docchat-tune-{job.id}")
        beat.start()
        outcome: TuneOutcome | None = None
        error = ""
        try:
            outcome = self.runner(user, job, request, self.report, self.should_stop)
        except TuningCancelled:
            pass
        except RagError as e:
            error = str(e)
        except Exception:
            log.exception("tuning job %s failed", job.id)
            error = "Internal error while tuning (the worker's log has the details)."
        except KeyboardInterrupt:
            # Only a run in a process's main thread gets one (`rag tune`, workers 0):
            # that process is stopping, and the job with it.
            self.done.set()
            beat.join()
            self._end(CANCELLED, "interrupted", "")
            raise
        finally:
            self.done.set()
            beat.join()
        if self.lost:
            return
        if outcome is not None:
            self.report(self.job.stage, 1.0, outcome.message, outcome.model)
            self._end(outcome.status, outcome.message, "")
        elif error:
            self._end(FAILED, "failed", error)
        else:
            self._end(CANCELLED, "cancelled", "")

    def _end(self, status: str, message: str, error: str) -> None:
        with self.lock:
            job = self.job
        done = self.ledger.end(job, status, message, error)
        if done is None:
            self.lost = True
        else:
            self.job = done


class TuneQueue:
    """The tuning jobs of one queue: submit, read, cancel; their execution by `runner`
    (None: submit and read only) as `users` says a job's user is now. `send(job_id)`
    enqueues a job's task (the queue's Huey)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        runner: TuneRunner | None,
        users: Users | None,
        worker: str,
        send: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.ledger = TuneLedger(db)
        self.runner = runner
        self.users = users
        self.worker = worker
        self.send = send

    def submit(self, user: User, collection: str, source: str, request: TuneRequest) -> TuneJob:
        """A new job of `user` (its record, then its task); the record as it is after
        the submit (with no consumer, `workers` 0, the job has already run)."""
        now = time.time()
        job = TuneJob(uuid.uuid4().hex[:16], user.id, collection, source, QUEUED,
                      message="queued", created=now, updated=now)  # fmt: skip
        self.ledger.insert(job, request)
        self.send(job.id)
        return self.ledger.get(job.id)

    def job(self, job_id: str) -> TuneJob:
        return self.ledger.get(job_id)

    def jobs(self, user_id: str | None = None, collection: str | None = None) -> list[TuneJob]:
        return self.ledger.listing(user_id, collection, LIST_LIMIT)

    def cancel(self, job_id: str) -> TuneJob:
        """Stop a job: a queued one at once, a running one at its next training step."""
        return self.ledger.cancel(job_id)

    def fail_expired(self, now: float) -> list[TuneJob]:
        ended = self.ledger.fail_expired(now)
        for job in ended:
            log.warning("tuning job %s: its worker %s stopped; the job %s",
                        job.id, job.worker or "?", job.status)  # fmt: skip
        return ended

    def prune(self, before: float) -> int:
        return self.ledger.prune(before)

    def execute(self, job_id: str) -> None:
        """The task: run the job unless it has ended or another worker has it."""
        try:
            job = self.ledger.get(job_id)
        except JobNotFoundError:
            return
        if job.status != QUEUED:
            return  # cancelled while queued, or a message delivered twice
        if self.runner is None or self.users is None:
            raise RuntimeError("a JobQueue without a tuning runner consumed a tuning job")
        claimed = self.ledger.claim(job_id, self.worker, self.settings.job_lease)
        if claimed is not None:
            TuneRun(self.ledger, self.settings, claimed, self.runner, self.users).run()
