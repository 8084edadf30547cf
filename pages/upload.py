"""Upload: drop many files at once into a collection, watch them being indexed, see each result.

The files go to the background workers as one job (`DocChat.submit_upload`); the page
follows it, each file's progress and a Cancel button, and shows each file's result
(indexed, unchanged, rejected with the reason). Leaving the page or closing the browser
does not stop the job: coming back shows it still running, then under Recent uploads.
Each file's job is remembered in the session by collection and upload id, so reruns
never submit a file twice (the engine would also answer "unchanged"). A file rejected
for its password is tried again when the password changes.

Left out: uploading folders (the browser's picker takes files; the CLI takes folders).
"""

from __future__ import annotations

import contextlib

import streamlit as st

from pages import _jobs, _ui, _web
from rag import SUPPORTED_EXTENSIONS, Job, JobFile, RagError, Upload, escape_markdown

NEW = "\u2795 New collection\u2026"
STATUSES = ("indexed", "unchanged", "rejected", "failed", "cancelled")

app = _ui.engine()
settings = app.settings
state = st.session_state
# (collection, file_id) -> (job id, the file's index in it, the password it was given)
state.setdefault("up_files", {})
state.setdefault("up_round", 0)  # bumped to empty the drop zone

st.title("Upload documents")
st.caption(
    "PDF, Word (.docx), HTML, Markdown, text, source code and images (PNG, JPEG, TIFF, "
    "WebP: read by OCR, as are scanned PDF pages). Drop several files at once; each is "
    "extracted, split into chunks, embedded and stored."
)

names = _ui.collection_names(app)
active = _ui.active_collection()
options = names if active in names else [active, *names]
left, right = st.columns([2, 1])
target = left.selectbox(
    "Into collection",
    [*options, NEW],
    index=options.index(active),
    format_func=lambda n: n if n in names or n == NEW else f"{n} (new)",
)
if target == NEW:
    target = left.text_input("Name of the new collection", key="up_new_name").strip()
exists = target in names
if not exists and target and app.exists_elsewhere(target):
    st.warning(f"The name {escape_markdown(target)} is taken: choose another.")
    st.stop()
if exists and not app.may("upload", target):
    st.info(f"You may read {escape_markdown(target)} but not add to it: ask its owner "
            "for the editor role, or upload into a collection of your own.")  # fmt: skip
    st.stop()

# Chunk settings: a new collection takes them as they are; an existing one keeps its
# own unless it is re-indexed with the new values.
info = app.collection(target) if exists else None
tokens_default = info.chunk_tokens if info else app.settings.chunk_tokens
overlap_default = info.chunk_overlap if info else app.settings.chunk_overlap
c1, c2 = right.columns(2)
chunk_tokens = int(
    c1.number_input(
        "Chunk size (tokens)",
        min_value=16,
        max_value=512,
        value=tokens_default,
        step=10,
        key=f"up_tokens-{target}",
        help="Model tokens per chunk (all-MiniLM-L6-v2 reads at most 254).",
    )
)
chunk_overlap = int(
    c2.number_input(
        "Overlap (tokens)",
        min_value=0,
        max_value=256,
        value=overlap_default,
        step=5,
        key=f"up_overlap-{target}",
        help="Tokens shared by neighbouring chunks.",
    )
)
if info and (chunk_tokens, chunk_overlap) != (info.chunk_tokens, info.chunk_overlap):
    right.warning(
        f"{escape_markdown(target)} is indexed with {info.chunk_tokens}/{info.chunk_overlap}. "
        "New files use the collection's settings unless you re-index it."
    )
    label = f"Re-index its {info.documents} document(s) with these settings"
    if right.button(label) and _jobs.reindex(app, target, chunk_tokens, chunk_overlap) is not None:
        st.rerun()
elif not info:
    right.caption("Settings of the new collection (change them later with a re-index).")

password = st.text_input(
    "Password for encrypted PDFs (optional)",
    type="password",
    help="Used for every encrypted PDF in this upload; never stored.",
)
files = st.file_uploader(
    "Drop files here, or browse",
    accept_multiple_files=True,
    key=f"uploader-{state.up_round}",
    help=(
        "Supported: "
        + ", ".join(sorted(SUPPORTED_EXTENSIONS))
        + f". Limits: {settings.max_file_mb:g} MB and {settings.max_pages:,} pages per file, "
        f"{settings.max_upload_chunks:,} chunks per upload."
    ),
)

# Web pages beside the drop zone: fetched and indexed now (pages/_web.py).
_web.url_box(app, target, create=None if exists else
             {"chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap})  # fmt: skip


def read_jobs(job_ids: list[str]) -> dict[str, Job]:
    """The jobs of these ids, each read once (a job gone, e.g. expired, is left out)."""
    out: dict[str, Job] = {}
    for job_id in dict.fromkeys(job_ids):
        with contextlib.suppress(RagError):
            out[job_id] = app.job(job_id)
    return out


def file_of(jobs: dict[str, Job], entry: tuple[str, int, str]) -> JobFile | None:
    """The file an entry of `up_files` names, in its job as read (None: job gone)."""
    job = jobs.get(entry[0])
    return job.files[entry[1]] if job and entry[1] < len(job.files) else None


if files and not target:
    st.warning("Name the new collection first.")
elif files:
    seen: dict[tuple[str, str], tuple[str, int, str]] = state.up_files
    todo = []
    known = read_jobs([e[0] for f in files if (e := seen.get((target, f.file_id)))])
    for f in files:
        entry = seen.get((target, f.file_id))
        ended = file_of(known, entry) if entry is not None else None
        retry = ended is not None and ended.status in ("rejected", "failed")
        if ended is None or (retry and entry and entry[2] != password):
            todo.append(f)
    if todo:
        if not exists:
            try:
                with st.spinner("Creating the collection (loads the embedding model on first "
                                "use)\u2026"):  # fmt: skip
                    app.create_collection(
                        target, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap
                    )
            except RagError as e:
                st.error(escape_markdown(str(e)))
                st.stop()
        uploads = [Upload(f.name, f.getvalue(), password or None) for f in todo]
        try:
            job = app.submit_upload(uploads, collection=target)
        except RagError as e:
            st.error(escape_markdown(str(e)))
            st.stop()
        known[job.id] = job
        for i, f in enumerate(todo):
            seen[(target, f.file_id)] = (job.id, i, password)
        if target != active or not exists:
            _ui.set_active_collection(target)
            st.rerun()  # the sidebar shows the collection the files go into

    mine = [seen[(target, f.file_id)] for f in files if (target, f.file_id) in seen]
    # Follow the jobs that exist (a gone one has no results to show); the files' results
    # are the jobs as they ended, not each read again per file.
    live = [i for i in dict.fromkeys(e[0] for e in mine) if i in known]
    ended_jobs = {j.id: j for j in _jobs.follow_jobs(app, live)}
    results = [r for r in (file_of(ended_jobs, e) for e in mine) if r is not None]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if counts["rejected"] or counts["failed"] or counts["cancelled"]:
        st.warning(f"{summary} in {escape_markdown(target)}.")
    else:
        st.success(f"{summary} in {escape_markdown(target)}. Ask about them on the Chat page.")
    for r in results:
        if r.error:
            st.error(escape_markdown(r.error))
    st.dataframe(
        [{"file": r.name, "result": r.status, "details": r.message if not r.error else r.error}
         for r in results],
        hide_index=True,
        width="stretch",
    )  # fmt: skip
    if st.button("Clear the list"):
        state.up_round += 1
        st.rerun()
else:
    st.info(
        f"Nothing uploaded yet. Files go into **{escape_markdown(target or '?')}** with "
        f"chunks of {chunk_tokens} tokens ({chunk_overlap} overlap)."
    )

# Uploads still running (from an earlier visit, another tab, the API or the CLI), then
# the recent ones.
recent = app.jobs()
_jobs.follow_jobs(app, [j.id for j in recent if not j.finished])
if recent:
    st.subheader("Recent uploads")
    _jobs.jobs_table(app, app.jobs()[:10])  # read again: the ones followed above have ended
