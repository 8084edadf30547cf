"""A user's view of tuning (`DocChat.tuning`): start a tuning job on a collection, follow
and cancel their jobs, list a collection's tuned models, and switch the model a
collection uses.

Starting needs the editor's right on the collection ("reindex"), and so does
switching; a job's pairs are resolved to chunks here, so a file or a studio set that
names none is refused at once, before anything is queued. The jobs are the user's own
(an administrator sees everyone's), as uploads are.

Left out: the job's flow and the switch themselves (`services/tuning.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.components.tuned_models import TunedModelInfo
from rag.core.errors import JobNotFoundError, TuningError
from rag.core.models import CollectionInfo
from rag.finetune.dataset import QAPair
from rag.finetune.tuning import TrainOptions
from rag.finetune.tuning_pairs import (
    TuningPair,
    pairs_from_qa,
    read_pairs_file,
    split_by_document,
)
from rag.jobs.tune_records import SOURCES, TuneJob, TuneRequest
from rag.jobs.tune_run import TuneQueue
from rag.services.tuning import Progress, TuningService
from rag.services.uploads import UploadService
from rag.team.access import User


class Tuning:
    """`user`'s tuning of collections' embedding models (see the module docstring)."""

    def __init__(self, service: TuningService, uploads: UploadService, user: User) -> None:
        self._s = service
        self._uploads = uploads  # whose queue runs the jobs
        self.user = user

    def cost(self) -> tuple[int, float]:
        """A job's most training steps under the settings, and about how many seconds
        they take here (shown before a job is started)."""
        options = TrainOptions.from_settings(self._s.settings)
        return options.most_steps, options.estimated_seconds()

    @property
    def _queue(self) -> TuneQueue:
        return self._uploads.queue.tunes

    def start(
        self,
        collection: str | None = None,
        *,
        source: str = "pseudo",
        pairs: bytes = b"",
        pairs_name: str = "",
        qa_pairs: Sequence[QAPair] = (),
        max_steps: int = 0,
    ) -> TuneJob:
        """Tune the collection's embedding model from `source`: "pairs" (a question
        file's bytes and its name), "studio" (the reviewed pairs, `qa_pairs`) or "pseudo"
        (pseudo-queries made from its chunks). `max_steps` ends training early (0: the
        settings' epochs decide). With `workers` 0 the job has run when this returns."""
        name = self._s.gate.open(self.user, collection, "reindex")
        if source not in SOURCES:
            raise TuningError(f"Unknown source {source!r}: one of {', '.join(SOURCES)}.")
        if max_steps < 0:
            raise TuningError("max_steps must be 0 (the epochs decide) or more.")
        found: list[TuningPair] = []
        if source == "pseudo":
            if self._s.store.collection_info(name).documents < 2:
                raise TuningError(f"{name} needs at least 2 documents to be tuned: its model "
                                  "is tested on documents it was not trained on.")  # fmt: skip
        else:
            chunks = list(self._s.store.all_chunks(name))
            if source == "pairs":
                found = read_pairs_file(pairs, pairs_name or "pairs", chunks)
            else:
                found = pairs_from_qa(qa_pairs, {c.id: c for c in chunks})
                if not found:
                    raise TuningError(f"None of the studio's pairs names a chunk of {name}.")
            split_by_document(found, self._s.settings.tune_held_out)  # 2 documents at least
        request = TuneRequest(tuple((p.question, p.chunk_id) for p in found), max_steps)
        return self._queue.submit(self.user, name, source, request)

    def job(self, job_id: str) -> TuneJob:
        """One of the user's jobs (`JobNotFoundError` for anyone else's)."""
        job = self._queue.job(job_id)
        if not self.user.admin and job.user != self.user.id:
            raise JobNotFoundError(f"No tuning job {job_id!r}.")
        return job

    def jobs(self, collection: str | None = None) -> list[TuneJob]:
        """The user's recent jobs (an administrator's: everyone's), newest first; on one
        collection, or (None) on any."""
        return self._queue.jobs(None if self.user.admin else self.user.id, collection)

    def cancel(self, job_id: str) -> TuneJob:
        """Stop a job: the collection keeps its model (a job past its swap has ended)."""
        self.job(job_id)
        return self._queue.cancel(job_id)

    def models(self, collection: str | None = None) -> list[TunedModelInfo]:
        """The collection's tuned models with their figures and decisions, newest first."""
        name = self._s.gate.open(self.user, collection, "read")
        return self._s.embedder.tuned.list(name)

    def current(self, collection: str | None = None) -> str:
        """The name of the model the collection is searched with."""
        return self._s.store.collection_info(self._s.gate.open(self.user, collection, "read")).model

    def use(self, model: str, collection: str | None = None,
            progress: Progress | None = None) -> CollectionInfo:  # fmt: skip
        """Switch the collection to `model` ("" or the base model's name: back to the
        base; a tuned model of this collection), re-embedding it; `progress(done, total)`
        in chunks."""
        return self._s.use(self.user, model, collection, progress)
