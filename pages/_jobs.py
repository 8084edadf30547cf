"""Background work the pages follow: an upload's jobs with per-file progress and a
Cancel button, the table of recent uploads, and a re-index with live progress.

Left out: starting the workers (the engine does, `rag/hosting.py`).
"""

from __future__ import annotations

import time

import streamlit as st

from pages._render import when
from rag import DocChat, Job, RagError, escape_markdown

JOB_REFRESH_S = 0.5  # how often a followed job is read again


def follow_jobs(app: DocChat, job_ids: list[str]) -> list[Job]:
    """Each job's files with their progress ("OCR page 3/40"), redrawn until every job
    has ended, a Cancel button beside each one still running; returns the jobs as they
    ended. Leaving the page stops only the following: the jobs go on in the workers."""
    jobs = [app.job(i) for i in job_ids]
    buttons = st.empty()  # emptied with the progress: no Cancel left beside an ended job
    with buttons.container():
        for j in jobs:
            if not j.finished and st.button(f"Cancel the upload of {len(j.files)} file(s)",
                                            key=f"cancel-job-{j.id}"):  # fmt: skip
                app.cancel_job(j.id)
    box = st.empty()
    while True:
        with box.container():
            for j in jobs:
                if j.finished:
                    continue
                st.caption(f"Upload into {escape_markdown(j.collection)}: {j.status}, "
                           f"{escape_markdown(j.summary())}")  # fmt: skip
                for f in j.files:
                    text = escape_markdown(f"{f.name}: {f.message or f.status}")
                    st.progress(min(f.progress, 1.0), text=text)
        if all(j.finished for j in jobs):
            box.empty()
            buttons.empty()
            return jobs
        time.sleep(JOB_REFRESH_S)
        jobs = [app.job(i) for i in job_ids]


def jobs_table(app: DocChat, jobs: list[Job]) -> None:
    """Recent uploads: one row a job, by whom (records name a user by id)."""
    names = {app.user.id: app.user.name, **dict(app.people())}
    st.dataframe(
        [
            {
                "started": when(j.created),
                "collection": j.collection,
                "status": j.status,
                "files": j.summary(),
                "by": names.get(j.user, "(a removed or disabled user)"),
                "details": j.error or "; ".join(f.error for f in j.files if f.error),
            }
            for j in jobs
        ],
        hide_index=True,
        width="stretch",
    )



def reindex(app: DocChat, collection: str, chunk_tokens: int, chunk_overlap: int) -> int | None:
    """Re-index a collection with live progress: the number of documents, or None after
    showing why it failed (the old index is then kept)."""
    with st.status("Re-indexing\u2026", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(doc: str, i: int, n: int) -> None:
            bar.progress(i / max(n, 1), text=f"{escape_markdown(doc)} ({i + 1}/{n})")

        try:
            results = app.reindex(
                collection=collection,
                chunk_tokens=chunk_tokens,
                chunk_overlap=chunk_overlap,
                progress=progress,
            )
        except RagError as e:
            status.update(label="Re-indexing failed; the old index is kept", state="error")
            st.error(escape_markdown(str(e)))
            return None
        status.update(label=f"Re-indexed {len(results)} document(s)", state="complete")
        return len(results)

