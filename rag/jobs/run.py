"""One attempt of a background job in a worker: the upload pipeline, its progress
saved by a heartbeat, the lease renewed, the cancel flag read, and the job's end.

The job's files go to a `Runner` (the documents service's `ingest_many`, acting as
the job's user), so this module needs nothing above the ingest stage.

Left out: retrying a failed job (the user uploads again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from rag.core.errors import JobNotFoundError, RagError
from rag.core.models import IngestResult, Upload
from rag.core.settings import Settings
from rag.jobs.records import (
    CANCELLED,
    DONE,
    FAILED,
    REJECTED,
    RUNNING,
    Job,
    JobFile,
    ended,
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


class Records(Protocol):
    """What a run needs of its queue (`JobQueue`): the job's record, its flags, the
    uploaded bytes."""

    settings: Settings
    uploads: Path  # the uploaded files, by their sha256
    worker_id: str

    def job(self, job_id: str) -> Job: ...
    def save(self, job: Job) -> None: ...
    def cancelled(self, job_id: str) -> bool: ...
    def secrets(self, job_id: str) -> dict[str, str]: ...
    def cleanup(self, job: Job) -> None: ...


class Stop(Exception):
    """Raised inside a running job's progress report: cancelled, or its lease was lost."""


class Run:
    """One attempt of a job in a worker: the pipeline, its progress, the lease, the end.

    Progress is kept in memory and saved by a heartbeat thread every `_TICK_S` (with
    the lease every third of it), which also reads the cancel flag and notices when
    the job was given to another worker (the lease was lost): the pipeline then stops
    at its next progress report.
    """

    def __init__(self, queue: Records, job: Job, runner: Runner) -> None:
        self.queue = queue
        self.job = job
        self.attempt = job.attempt
        self.runner = runner
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
            self.queue.save(self.job)
            self.dirty = False

    def _beat(self) -> None:
        third = self.queue.settings.job_lease / 3
        last_lease = time.monotonic()
        while not self.done.wait(min(_TICK_S, third)):
            try:
                if self.queue.cancelled(self.job.id):
                    self.cancelled = True
                due = time.monotonic() - last_lease >= third
                self._flush(lease=due)
                if due:
                    last_lease = time.monotonic()
            except RagError as e:  # the queue is unreachable: try again at the next tick
                log.warning("job %s: heartbeat failed: %s", self.job.id, e)

    def run(self) -> None:
        job = self.job
        if self.queue.cancelled(job.id):
            self._end(CANCELLED, "")
            return
        self.job = replace(job, status=RUNNING, worker=self.queue.worker_id, error="",
                           updated=time.time())  # fmt: skip
        self._flush(lease=True)
        secrets = self.queue.secrets(job.id)
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
            user = User(job.user, admin=job.admin)
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
        if self.cancelled or self.queue.cancelled(job.id):
            self._end(CANCELLED, "")
        elif error:
            self._end(FAILED, error)
        elif all(f.status in (REJECTED, FAILED) for f in self.job.files):
            self._end(FAILED, "")
        else:
            self._end(DONE, "")

    def _end(self, status: str, error: str) -> None:
        self.job = ended(self.job, status, error)
        self.queue.save(self.job)
        self.queue.cleanup(self.job)

