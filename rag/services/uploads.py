"""Background uploads: a user's files as a job on the queue (`jobs/`), the user's
recent jobs, cancelling one; and this engine's workers, which run jobs through the
documents service as each job's user is when the job runs (`users`: the accounts'
`current_user`).

Tuning jobs (`services/tuning.py`) and scheduled web refreshes (`services/web.py`) go
on the same queue and run on the same workers.

Left out: fine-tuning jobs of the LLM (they run on the LLM's server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from rag.components.store import Store
from rag.core.errors import AccessDeniedError, JobNotFoundError
from rag.core.models import Upload
from rag.core.settings import Settings
from rag.jobs.queue import JobQueue
from rag.jobs.records import Job
from rag.jobs.run import Runner, Users
from rag.jobs.tune_run import TuneRunner
from rag.jobs.web_refresh import RefreshRunner
from rag.jobs.workers import Workers, start_workers
from rag.records.database import Database
from rag.services.gate import Gate
from rag.team.access import User


class UploadService:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database,
        store: Store,
        gate: Gate,
        runner: Runner,
        users: Users,
        tune_runner: TuneRunner | None = None,
        refresh_runner: RefreshRunner | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.gate = gate
        self._runner = runner
        self._users = users
        self._tune_runner = tune_runner  # tuning jobs (services/tuning.py) on the same queue
        self._refresh_runner = refresh_runner  # scheduled web refreshes (services/web.py)
        self._queue: JobQueue | None = None
        self._workers: Workers | None = None
        self._closed = False  # stop_workers ran: no workers start again
        self._guard = threading.Lock()

    @property
    def queue(self) -> JobQueue:
        """The job queue, opened on first use (a page that shows no jobs opens none)."""
        with self._guard:
            if self._queue is None:
                self._queue = JobQueue(self.settings, self.db, runner=self._runner,
                                       users=self._users,
                                       tune_runner=self._tune_runner,
                                       refresh_runner=self._refresh_runner)  # fmt: skip
            return self._queue

    def start_workers(self) -> Workers | None:
        """This engine's background workers, started once (again: the same ones); None
        when `workers` is 0 (a job runs in the process that submits it) or after
        `stop_workers` (a closed engine takes no more jobs)."""
        if self.settings.workers <= 0:
            return None  # and no queue opened: a page that shows no jobs opens none
        queue = self.queue
        with self._guard:
            if self._workers is None and not self._closed:
                self._workers = start_workers(queue)
            return self._workers

    def stop_workers(self) -> None:
        """Stop the workers for good (the jobs under way finish first)."""
        with self._guard:
            workers, self._workers, self._closed = self._workers, None, True
        if workers is not None:
            workers.stop()

    def submit(self, user: User, uploads: Iterable[Upload], collection: str | None) -> Job:
        """The files as a background job into the collection (made by the job if new).

        Refused at once, as the Upload page refuses: a name someone else holds, and a
        collection the user may read but not add to.
        """
        name = self.gate.name(collection)
        if self.store.has_collection(name):
            if not self.gate.may(user, "read", name):
                raise AccessDeniedError(f"The name {name!r} is taken: choose another.")
            if not self.gate.may(user, "upload", name):
                raise AccessDeniedError(
                    f"You may read {name!r} but not add to it: ask its owner for the editor "
                    "role, or upload into a collection of your own."
                )
        return self.queue.submit(user, name, list(uploads))

    def jobs(self, user: User) -> list[Job]:
        """`user`'s recent jobs (an administrator's: everyone's), newest first."""
        return self.queue.jobs(None if user.admin else user.id)

    def job(self, user: User, job_id: str) -> Job:
        """One of `user`'s jobs (`JobNotFoundError` for anyone else's)."""
        job = self.queue.job(job_id)
        if not user.admin and job.user != user.id:
            raise JobNotFoundError(f"No job {job_id!r}.")
        return job

    def cancel(self, user: User, job_id: str) -> Job:
        self.job(user, job_id)  # the caller's, or not found
        return self.queue.cancel(job_id)
