"""Consumers of the job queue: a Huey consumer's worker threads, and the watcher
that puts a job whose worker stopped (its lease expired) back on the queue, queues
the scheduled web refreshes that are due, and prunes old job records (at start, then
at most once an hour).

Left out: which process owns the workers (the engine that started them stops them
when it is closed), and process supervision (`python -m rag worker` under systemd
or the like).
"""

from __future__ import annotations

import logging
import threading
import time

from rag.core.errors import RagError
from rag.jobs.queue import JobQueue

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 3600.0


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
        pruned = -_PRUNE_EVERY_S  # monotonic time of the last pruning: none yet
        while True:
            try:
                self.queue.requeue_expired()
            except RagError as e:
                log.warning("checking job leases failed: %s", e)
            try:
                self.queue.refresh_due()
            except RagError as e:
                log.warning("queueing scheduled web refreshes failed: %s", e)
            if time.monotonic() - pruned >= _PRUNE_EVERY_S:
                try:
                    self.queue.prune()
                    pruned = time.monotonic()
                except RagError as e:
                    log.warning("pruning old job records failed: %s", e)
            if self._stop.wait(interval):
                return

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

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


def start_workers(queue: JobQueue) -> Workers | None:
    """Background workers on `queue` (the caller stops them), or None when the
    settings' `workers` is 0 (jobs then run as they are submitted)."""
    count = queue.settings.workers
    if count <= 0:
        return None
    workers = Workers(queue, count, embedded=True)
    workers.start()
    return workers
