"""One attempt of a background job in a worker: the upload pipeline, its progress
saved by a heartbeat, the lease renewed, the cancel flag read, and the job's end.

The job's files go to a `Runner` (the documents service's `ingest_many`) acting as
the job's user as `Users` says the user is when the job runs (a user demoted since
the upload has a user's rights; a removed or disabled one's job fails), so this
module needs nothing above the ingest stage.

Left out: retrying a failed job (the user uploads again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from rag.core.errors import RagError
from rag.core.models import IngestResult, Upload
from rag.core.settings import Settings
from rag.jobs.ledger import Ledger
from rag.jobs.records import (
    CANCELLED,
    DONE,
    FAILED,
    REJECTED,
    RUNNING,
    Job,
    JobFile,
    file_result,
    file_stage,
)
from rag.team.access import User

log = logging.getLogger(__name__)

_TICK_S = 0.5  # how often a running job looks at its cancel flag and saves its progress

# (user, files, collection, progress(i, stage, done, total), on_result(i, result))
Runner = Callable[
    [
        User,
        Iterable[Upload],
        str,
        Callable[[int, str, int, int], None],
        Callable[[int, IngestResult], None],
    ],
    list[IngestResult],
]


# A job's user as they are now, by id: None when removed or disabled.
Users = Callable[[str], User | None]
NO_USER = "Its user no longer exists or is disabled."


class Stop(Exception):
    """Raised inside a running job's progress report: cancelled, or its lease was lost."""


class Run:
    """One attempt of a job in a worker (claimed: running): the pipeline, its progress,
    the lease, the end.

    Progress is kept in memory and saved by a heartbeat thread every `_TICK_S` (with
    the lease every third of it), which also reads the cancel flag and notices when
    the job is no longer this run's (another worker was given it when the lease was
    lost): the pipeline then stops at its next progress report.
    """

    def __init__(
        self, ledger: Ledger, settings: Settings, job: Job, runner: Runner, users: Users
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.job = job
        self.runner = runner
        self.users = users
        self.lock = threading.Lock()
        self.dirty = False
        self.cancelled = job.cancel_requested
        self.lost = False
        self.done = threading.Event()

    def _change(self, i: int, f: JobFile) -> None:
        with self.lock:
            files = list(self.job.files)
            files[i] = f
            self.job = replace(self.job, files=tuple(files), updated=time.time())
            self.dirty = True

    def _flush(self, lease: bool) -> None:
        """Save the progress if it changed (with the lease when due), else read whether
        the job was cancelled; a job no longer this run's is lost."""
        with self.lock:
            if self.lost:
                return
            job, dirty, self.dirty = self.job, self.dirty, False
        try:
            if dirty or lease:
                until = time.time() + self.settings.job_lease if lease else None
                stop = self.ledger.save(job, until)
            else:
                stop = self.ledger.state(job)
        except RagError:
            with self.lock:
                self.dirty = self.dirty or dirty  # saved at the next tick
            raise
        if stop is None:
            self.lost = True  # it ended meanwhile, or another worker runs it now
        elif stop:
            self.cancelled = True

    def _beat(self) -> None:
        beat_until(self.done, self.settings.job_lease, self._flush, f"job {self.job.id}")

    def run(self) -> None:
        job = self.job
        try:
            user = self.users(job.user)
        except RagError as e:
            self._end(FAILED, str(e))
            return
        if user is None:
            self._end(FAILED, NO_USER)
            return
        secrets = self.ledger.secrets(job.id)
        order: list[int] = []  # order[k]: the job's file handed to the pipeline k-th

        def uploads() -> Iterable[Upload]:
            for i, f in enumerate(job.files):
                if f.finished:
                    continue  # done by an earlier attempt
                if self.cancelled or self.lost:
                    return
                order.append(i)
                try:
                    data = (self.ledger.uploads / f.sha256).read_bytes()
                except OSError:
                    yield Upload(f.name, b"", error="its uploaded bytes are no longer stored")
                    continue
                yield Upload(f.name, data, secrets.get(str(i)))

        def progress(k: int, stage: str, done: int, total: int) -> None:
            if self.cancelled or self.lost:
                raise Stop
            message, frac = file_stage(stage, done, total)
            f = self.job.files[order[k]]
            self._change(order[k], replace(f, status=RUNNING, message=message, progress=frac))

        def on_result(k: int, r: IngestResult) -> None:
            self._change(order[k], file_result(self.job.files[order[k]], r))

        beat = threading.Thread(target=self._beat, daemon=True, name=f"docchat-job-{job.id}")
        beat.start()
        error = ""
        try:
            self.runner(user, uploads(), job.collection, progress, on_result)
        except Stop:
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
        if self.cancelled:
            self._end(CANCELLED, "")
        elif error:
            self._end(FAILED, error)
        elif all(f.status in (REJECTED, FAILED) for f in self.job.files):
            self._end(FAILED, "")
        else:
            self._end(DONE, "")

    def _end(self, status: str, error: str) -> None:
        """Save the end (CANCELLED if the user asked meanwhile) unless the job is no
        longer this run's; then its bytes no other job needs go."""
        done = self.ledger.end(self.job, status, error)
        if done is None:
            self.lost = True
            return
        self.job = done
        self.ledger.release(done)


def beat_until(
    done: threading.Event, lease: float, flush: Callable[[bool], None], what: str
) -> None:
    """A running job's heartbeat (an upload's or a tuning's), until `done` is set:
    `flush(renew_lease)` every `_TICK_S`, renewing the lease every third of it; a store
    that cannot be reached is tried again at the next tick."""
    third = lease / 3
    last_lease = time.monotonic()
    while not done.wait(min(_TICK_S, third)):
        try:
            due = time.monotonic() - last_lease >= third
            flush(due)
            if due:
                last_lease = time.monotonic()
        except RagError as e:  # the store is unreachable: try again at the next tick
            log.warning("%s: heartbeat failed: %s", what, e)
