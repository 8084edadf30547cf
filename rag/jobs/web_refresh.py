"""Scheduled web refreshes on the job queue: the due collections found and queued, and
each refresh run by a worker.

`RefreshQueue` is part of `JobQueue` (`jobs/queue.py`), which registers its task
(`docchat_web_refresh`, the collection's name) on the same Huey, so the same workers
run uploads, tunings and refreshes; with `workers` 0 a refresh runs in the process
that queues it. The watcher beside the workers (`jobs/workers.py`) calls
`enqueue_due` at every tick: a due collection is claimed in the record store first
(`team/schedules.py`: one conditional UPDATE, so of several watchers exactly one
queues it), then queued. A worker runs the refresh (`runner`, the web service's
`refresh`) as the collection's owner as that user is then (`users`), or as the
administrators when it has no owner, and logs how many pages changed, stayed the same
or could not be fetched.

Left out: a record per refresh (the per-page results are in the log line's counts
and in the documents themselves), retries (the next period's refresh tries again),
and what a refresh does (`services/web.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from rag.core.errors import RagError
from rag.core.models import IngestResult
from rag.jobs.run import Users
from rag.records.database import Database
from rag.team.access import LOCAL, User
from rag.team.schedules import Schedules

log = logging.getLogger(__name__)

# (user, collection) -> one result per web page of the collection.
RefreshRunner = Callable[[User, str], Sequence[IngestResult]]


class RefreshQueue:
    """The scheduled refreshes of one queue: `enqueue_due` (the watcher) and `execute`
    (the task, run by `runner` as `users` says a collection's owner is now; None: queue
    only). `send(collection)` enqueues a refresh's task (the queue's Huey)."""

    def __init__(
        self,
        db: Database,
        *,
        runner: RefreshRunner | None,
        users: Users | None,
        send: Callable[[str], None],
    ) -> None:
        self.schedules = Schedules(db)
        self.runner = runner
        self.users = users
        self.send = send

    def enqueue_due(self, now: float | None = None) -> list[str]:
        """Queue a refresh of each due collection this caller claims; their names."""
        now = time.time() if now is None else now
        sent = []
        for schedule in self.schedules.due(now):
            if self.schedules.take(schedule, now):
                sent.append(schedule.collection)
                self.send(schedule.collection)
        return sent

    def execute(self, collection: str) -> None:
        """The task: refresh the collection's web pages as its owner; log the counts."""
        if self.runner is None or self.users is None:
            raise RuntimeError("a JobQueue without a refresh runner consumed a web refresh")
        schedule = self.schedules.of(collection)
        if schedule.hours <= 0:
            return  # its schedule was turned off (or the collection deleted) since
        user = self.users(schedule.owner) if schedule.owner else LOCAL
        if user is None:
            log.warning("web refresh of %r skipped: its owner was removed or is disabled",
                        collection)  # fmt: skip
            return
        try:
            results = self.runner(user, collection)
        except RagError as e:
            log.warning("web refresh of %r failed: %s", collection, e)
            return
        changed = sum(r.status == "indexed" for r in results)
        same = sum(r.status == "unchanged" for r in results)
        log.info("web refresh of %r: %d changed, %d unchanged, %d failed",
                 collection, changed, same, len(results) - changed - same)  # fmt: skip
