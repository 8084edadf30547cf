"""Background uploads: records (`records`) kept in the record store (`ledger`), the
queue on Huey (`queue`), one run of a job (`run`) and the workers that consume the
queue (`workers`). Tuning jobs share the queue and its workers: their records
(`tune_records`) and runs (`tune_run`); so do scheduled web refreshes (`web_refresh`)."""

from rag.jobs.queue import JobQueue
from rag.jobs.records import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    REJECTED,
    RUNNING,
    Job,
    JobFile,
)
from rag.jobs.run import Runner
from rag.jobs.workers import Workers, start_workers

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "QUEUED",
    "REJECTED",
    "RUNNING",
    "Job",
    "JobFile",
    "JobQueue",
    "Runner",
    "Workers",
    "start_workers",
]
