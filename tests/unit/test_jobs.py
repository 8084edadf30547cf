"""A job's records without a queue: each file's warnings stay with its result, a
job's end ends its files, records of the earlier shape are read.

Jobs on the real Huey queue and record store, run by consumer threads over an engine,
are in tests/integration/test_jobs.py (the records' races in test_job_records.py and
test_job_races.py)."""

from __future__ import annotations


def test_a_file_s_warnings_go_with_its_result() -> None:
    # The Upload page shows a file's result message: its warnings (OCR, fallbacks) too.
    from rag.core.models import IngestResult
    from rag.jobs.records import JobFile, file_result

    r = IngestResult("scan.pdf", "indexed", "d1", pages=2, chunks=3, seconds=1.0,
                     warnings=("page 1: read by OCR",))  # fmt: skip
    done = file_result(JobFile("scan.pdf", "ab", 10), r)
    assert done.message == "2 page(s), 3 chunk(s) in 1.0 s; page 1: read by OCR"
    assert done.status == "indexed" and done.doc_id == "d1"


def test_a_job_s_end_ends_its_files_and_a_cancel_stays_recorded() -> None:
    from rag.jobs.records import CANCELLED, FAILED, RUNNING, Job, JobFile, ended

    files = (JobFile("a.md", "s1", 1, status="indexed"), JobFile("b.md", "s2", 1, status=RUNNING))
    job = Job("j1", "u1", "notes", RUNNING, files, 1.0, 1.0, lease_until=9.0)
    cancelled = ended(job, CANCELLED, "")
    assert cancelled.finished and cancelled.cancel_requested and cancelled.lease_until == 0.0
    assert [f.status for f in cancelled.files] == ["indexed", CANCELLED]
    failed = ended(job, FAILED, "the store went away")
    assert not failed.cancel_requested
    assert failed.files[1].error == "b.md: the store went away"


def test_a_record_of_the_earlier_shape_is_read() -> None:
    # Records kept the user's admin flag as it was when they were queued: no longer read.
    from rag.jobs.records import Job

    old = {"id": "j1", "user": "local", "collection": "c", "status": "done", "created": 1.0,
           "updated": 2.0, "admin": True, "files": [{"name": "a.md", "sha256": "s", "size": 1,
                                                     "status": "indexed", "gone": 1}]}  # fmt: skip
    job = Job.from_dict(old)
    assert job.user == "local" and job.files[0].status == "indexed"
    assert "admin" not in job.to_dict()
