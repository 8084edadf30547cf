"""Fine-tuning jobs on OpenAI or any server with the same files and fine_tuning API.

`FineTuneJobs` uploads the train and validation JSONL (purpose "fine-tune"), creates
a supervised job with a base model and a number of epochs, follows its status and
events, and keeps a record of every job it started in the record store
(`finetune_jobs`, one row per job with its user's id), so past jobs and their
resulting models survive restarts and are seen by every process.
Client calls go through `LLM.call_api`, so failures are the same `LLMError`s as chat
and the job objects are turned into frozen `JobInfo` / `JobEvent` here, at once.

Left out: DPO and reinforcement fine-tuning, checkpoints, result files (metrics
CSV), deleting uploaded files or models, and jobs started elsewhere (the list shows
the jobs started from this DocChat).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, Text, cast, insert, select, update

from rag.components.generation import LLM
from rag.core.errors import ConfigError, DatasetError, LLMError
from rag.records.database import Database
from rag.records.schema import LOCAL_ID, finetune_jobs

log = logging.getLogger(__name__)
TERMINAL = ("succeeded", "failed", "cancelled")
# The record as text: one the JSON decoder chokes on is skipped, not fatal to the list.
_RAW = cast(finetune_jobs.c.record, Text).label("raw")


@dataclass(frozen=True)
class JobInfo:
    """A fine-tuning job as last seen."""

    id: str
    status: str  # validating_files, queued, running, succeeded, failed, cancelled
    base_model: str
    fine_tuned_model: str = ""  # set once the job succeeded
    created: float = 0.0  # unix time
    finished: float | None = None
    epochs: int | None = None  # None: the server chooses
    training_file: str = ""
    validation_file: str = ""
    error: str = ""  # why it failed
    trained_tokens: int | None = None
    server: str = ""  # where it runs, for people
    collection: str = ""  # the collection its data came from
    examples: int = 0  # training examples uploaded

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class JobEvent:
    id: str
    created: float
    level: str  # info, warn, error
    message: str


class FineTuneJobs:
    """Start and follow fine-tuning jobs; `history()` lists the ones `owner` (a user
    id; single-user mode's is `LOCAL_ID`) started here."""

    def __init__(self, llm: LLM, records: Database, owner: str = LOCAL_ID) -> None:
        self.llm = llm
        self.records = records
        self.owner = owner or LOCAL_ID  # "" meant single-user mode's user before ids
        self.server = llm.server

    # ---- calls ---------------------------------------------------------------

    def start(
        self,
        train_jsonl: str,
        validation_jsonl: str = "",
        *,
        base_model: str,
        epochs: int | None = None,
        suffix: str = "docchat",
        collection: str = "",
        examples: int = 0,
    ) -> JobInfo:
        """Upload the files and create the job; the job is recorded at once."""
        if not train_jsonl.strip():
            raise DatasetError("There is no training data to upload.")
        if epochs is not None and not 1 <= epochs <= 50:
            raise ConfigError("Epochs must be between 1 and 50.")
        train_id = self._upload("train.jsonl", train_jsonl)
        validation_id = (
            self._upload("validation.jsonl", validation_jsonl) if validation_jsonl.strip() else ""
        )
        kwargs: dict[str, Any] = {"model": base_model, "training_file": train_id}
        if validation_id:
            kwargs["validation_file"] = validation_id
        clean_suffix = re.sub(r"[^a-z0-9-]+", "-", suffix.lower()).strip("-")[:40]
        if clean_suffix:
            kwargs["suffix"] = clean_suffix
        if epochs is not None:
            kwargs["method"] = {
                "type": "supervised",
                "supervised": {"hyperparameters": {"n_epochs": epochs}},
            }
        job = self._call("start the fine-tuning job", lambda c: c.fine_tuning.jobs.create(**kwargs))
        info = replace(_job_info(job, self.server), collection=collection, examples=examples)
        self._record(info)
        return info

    def refresh(self, job_id: str) -> JobInfo:
        """The job's current state (recorded, keeping what only this side knows)."""
        job = self._call("read the job", lambda c: c.fine_tuning.jobs.retrieve(job_id))
        return self._record(_job_info(job, self.server))

    def events(self, job_id: str, *, limit: int = 50) -> list[JobEvent]:
        """The job's latest events, oldest first."""
        page = self._call(
            "read the job's events",
            lambda c: c.fine_tuning.jobs.list_events(job_id, limit=limit).data,
        )
        events = [
            JobEvent(e.id, float(e.created_at), str(e.level), str(e.message))
            for e in reversed(page)  # the API sends newest first
        ]
        return sorted(events, key=lambda e: e.created)  # stable: same-second order kept

    def cancel(self, job_id: str) -> JobInfo:
        job = self._call("cancel the job", lambda c: c.fine_tuning.jobs.cancel(job_id))
        return self._record(_job_info(job, self.server))

    def wait(
        self,
        job_id: str,
        *,
        interval: float = 10.0,
        timeout: float | None = None,
        on_update: Callable[[JobInfo], None] | None = None,
    ) -> JobInfo:
        """Poll until the job ends (or `timeout` seconds pass: then the last state)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.refresh(job_id)
            if on_update:
                on_update(info)
            if info.done or (deadline is not None and time.monotonic() >= deadline):
                return info
            time.sleep(interval)

    # ---- records -------------------------------------------------------------

    def history(self) -> list[JobInfo]:
        """Jobs `owner` started, newest first."""
        return sorted(self._load().values(), key=lambda j: j.created, reverse=True)

    def fine_tuned_models(self) -> list[str]:
        return [j.fine_tuned_model for j in self.history() if j.fine_tuned_model]

    def _load(self) -> dict[str, JobInfo]:
        rows = self.records.read(
            lambda c: c.execute(select(_RAW).where(finetune_jobs.c.owner_id == self.owner)).all()
        )
        jobs: dict[str, JobInfo] = {}
        for row in rows:
            try:
                info = _job(row.raw)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                # A damaged record must not hide the page: the others are listed.
                log.warning("a fine-tuning job record cannot be read (%s)", type(e).__name__)
                continue
            jobs[info.id] = info
        return jobs

    def _record(self, info: JobInfo) -> JobInfo:
        """Save the job as last seen, keeping what only this side knows (its collection
        and number of examples) from the stored record, in one transaction."""

        def write(conn: Connection) -> JobInfo:
            row = conn.execute(select(_RAW).where(finetune_jobs.c.id == info.id)).first()
            if row is None:
                conn.execute(
                    insert(finetune_jobs).values(
                        id=info.id, owner_id=self.owner, created=info.created,
                        record=info.to_dict(),
                    )
                )  # fmt: skip
                return info
            try:
                old = _job(row.raw)
                merged = replace(
                    info,
                    collection=info.collection or old.collection,
                    examples=info.examples or old.examples,
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                merged = info  # a damaged record is replaced by the server's word
            conn.execute(
                update(finetune_jobs)
                .where(finetune_jobs.c.id == info.id)
                .values(created=merged.created, record=merged.to_dict())
            )
            return merged

        return self.records.write(write)

    # ---- helpers ---------------------------------------------------------------

    def _upload(self, name: str, text: str) -> str:
        data = text.encode("utf-8")
        uploaded = self._call(
            f"upload {name}",
            lambda c: c.files.create(file=(name, data, "application/jsonl"), purpose="fine-tune"),
        )
        return str(uploaded.id)

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return self.llm.call_api(fn)
        except LLMError as e:
            raise LLMError(f"Could not {what}: {e}") from None


def _job(raw: str) -> JobInfo:
    """A stored record (ValueError, KeyError, TypeError or AttributeError if damaged)."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("not an object")
    return JobInfo.from_dict(data)


def _job_info(job: Any, server: str) -> JobInfo:
    """A client `FineTuningJob` as a `JobInfo` (the only place that reads its shape)."""
    epochs = getattr(job.hyperparameters, "n_epochs", None) if job.hyperparameters else None
    method = getattr(job, "method", None)
    supervised = getattr(method, "supervised", None) if method else None
    if not isinstance(epochs, int) and supervised is not None and supervised.hyperparameters:
        epochs = getattr(supervised.hyperparameters, "n_epochs", None)
    error = ""
    if job.error is not None and (job.error.message or job.error.code):
        error = str(job.error.message or job.error.code)
    return JobInfo(
        id=str(job.id),
        status=str(job.status),
        base_model=str(job.model),
        fine_tuned_model=str(job.fine_tuned_model or ""),
        created=float(job.created_at or 0),
        finished=float(job.finished_at) if job.finished_at else None,
        epochs=epochs if isinstance(epochs, int) else None,
        training_file=str(job.training_file or ""),
        validation_file=str(job.validation_file or ""),
        error=error,
        trained_tokens=job.trained_tokens,
        server=server,
    )
