"""A background upload's record: the job, its files, their statuses and progress.

Plain frozen dataclasses, kept as rows by the ledger (`jobs/ledger.py`); what a
pipeline report or an ingest result means for a file's record is decided here.

Left out: where records are kept (the record store, through the ledger) and who may
read them (the uploads service).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from rag.core.models import IngestResult

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# A file is "rejected" when it is the file's fault (unreadable, hostile, over a limit:
# the word the app and the CLI have always used), "failed" when the job could not
# finish it (the store went away).
REJECTED = "rejected"
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FILE_STATUSES = (QUEUED, RUNNING, "indexed", "unchanged", REJECTED, FAILED, CANCELLED)
ENDED = (DONE, FAILED, CANCELLED)  # a job's record is never rewritten once in one of these
_ENDED = frozenset(ENDED)
_FILE_ENDED = frozenset({"indexed", "unchanged", REJECTED, FAILED, CANCELLED})
# Where each stage starts on a file's progress bar (embedding takes most of the time).
_STAGE_START = {"extracting": 0.02, "ocr": 0.02, "splitting": 0.15, "embedding": 0.2,
                "storing": 0.95}  # fmt: skip


@dataclass(frozen=True)
class JobFile:
    """One file of a job: what it is, where it stands, how it ended."""

    name: str
    sha256: str
    size: int
    status: str = QUEUED  # FILE_STATUSES
    message: str = ""  # what is happening ("OCR page 3/40"), or how it ended
    progress: float = 0.0  # 0 to 1
    doc_id: str = ""
    error: str = ""  # why it failed, naming the file

    @property
    def finished(self) -> bool:
        return self.status in _FILE_ENDED


@dataclass(frozen=True)
class Job:
    """One upload run in the background: its files, its user and collection, its state."""

    id: str
    user: str  # its user's id: the job runs with that user's rights as they are then
    collection: str
    status: str  # JOB_STATUSES
    files: tuple[JobFile, ...]
    created: float
    updated: float
    error: str = ""  # why the job as a whole failed (the store went away, no access)
    attempt: int = 0  # 1 more each time it is put back after its worker stopped
    worker: str = ""  # host:pid of the worker running it
    lease_until: float = 0.0  # the worker's lease (time.time()) while it runs
    cancel_requested: bool = False  # its user cancelled it (kept once the job has ended)

    @property
    def finished(self) -> bool:
        return self.status in _ENDED

    def counts(self) -> dict[str, int]:
        """How many files are in each status (statuses with none left out)."""
        out: dict[str, int] = {}
        for f in self.files:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: "2 indexed, 1 rejected of 3 file(s)"."""
        parts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        return f"{parts} of {len(self.files)} file(s)"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = [asdict(f) for f in self.files]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        files = tuple(
            JobFile(**{k: v for k, v in f.items() if k in _FILE_FIELDS}) for f in d.get("files", ())
        )
        known = {k: v for k, v in d.items() if k in _JOB_FIELDS and k != "files"}
        return cls(files=files, **known)


_JOB_FIELDS = frozenset(Job.__dataclass_fields__)
_FILE_FIELDS = frozenset(JobFile.__dataclass_fields__)


def file_stage(stage: str, done: int, total: int) -> tuple[str, float]:
    """A pipeline progress report as (message, progress) of the file's bar."""
    frac = _STAGE_START.get(stage, 0.0)
    if stage == "ocr" and total:
        return f"OCR page {done}/{total}", 0.02 + 0.13 * done / total
    if stage == "embedding" and total:
        if done >= total:  # written next, in the writer thread
            return f"storing {total} chunks", _STAGE_START["storing"]
        return f"embedding {done}/{total} chunks", 0.2 + 0.75 * done / total
    if stage == "storing":
        return f"storing {total} chunks", frac
    return stage, frac


def file_result(f: JobFile, r: IngestResult) -> JobFile:
    if r.status == "rejected":
        reason = r.reason if r.reason.startswith(r.file) else f"{r.file}: {r.reason}"
        return replace(f, status=REJECTED, message=REJECTED, error=reason, progress=1.0)
    if r.status == "unchanged":
        message = f"already indexed ({r.chunks} chunks)"
    else:
        message = f"{r.pages} page(s), {r.chunks} chunk(s) in {r.seconds:.1f} s"
    # The warnings (a page read by OCR, a fallback to pdfium) go with the result, as the
    # Upload page showed them before uploads were jobs.
    message = "; ".join([message, *r.warnings])
    return replace(f, status=r.status, message=message, doc_id=r.doc_id, progress=1.0)


def ended(job: Job, status: str, error: str) -> Job:
    """The job ended with `status`; files that had not ended end with it."""
    left = CANCELLED if status == CANCELLED else FAILED
    files = tuple(
        f if f.finished else replace(f, status=left, message=left, progress=1.0,
                                     error=f"{f.name}: {error}" if error else "")
        for f in job.files
    )  # fmt: skip
    return replace(job, status=status, files=files, error=error, updated=time.time(),
                   lease_until=0.0,
                   cancel_requested=job.cancel_requested or status == CANCELLED)  # fmt: skip
