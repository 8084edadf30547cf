"""A job's results without a queue: each file's warnings stay with its result.

Jobs on the real SQLite Huey queue, run by consumer threads over an engine, are in
tests/integration/test_jobs.py."""

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
