"""Upload: drop many files at once into a collection, watch them being indexed, see each result.

Each file's result (indexed, unchanged, rejected with the reason) is remembered in
the session by collection and upload id, so reruns never index a file twice (the
engine would also answer "unchanged"). A file rejected for its password is tried
again when the password changes. One bad file never stops the others.

Left out: uploading folders (the browser's picker takes files; the CLI takes folders).
"""

from __future__ import annotations

import streamlit as st

from pages import _ui
from rag import SUPPORTED_EXTENSIONS, IngestResult, RagError, Upload, escape_markdown

NEW = "\u2795 New collection\u2026"
STATUSES = ("indexed", "unchanged", "rejected")

app = _ui.engine()
settings = app.settings
state = st.session_state
state.setdefault("up_results", {})  # (collection, file_id) -> (IngestResult, password)
state.setdefault("up_round", 0)  # bumped to empty the drop zone

st.title("Upload documents")
st.caption(
    "PDF, Word (.docx), HTML, Markdown, text and source code. Drop several files at "
    "once; each is extracted, split into chunks, embedded and stored."
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
    if right.button(label) and _ui.reindex(app, target, chunk_tokens, chunk_overlap) is not None:
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


def stage_text(name: str, stage: str, done: int, total: int) -> str:
    shown = escape_markdown(name)
    if stage == "embedding":
        return f"{shown}: embedding {done}/{total} chunks"
    if stage == "storing":
        return f"{shown}: storing {total} chunks"
    if stage == "ocr":
        return f"{shown}: OCR page {done}/{total}"
    return f"{shown}: {stage}"


STAGE_START = {"extracting": 0.02, "splitting": 0.15, "embedding": 0.2, "storing": 0.95}


if files and not target:
    st.warning("Name the new collection first.")
elif files:
    done: dict[tuple[str, str], tuple[IngestResult, str]] = state.up_results
    todo = []
    for f in files:
        seen = done.get((target, f.file_id))
        if seen is None or (seen[0].status == "rejected" and seen[1] != password):
            todo.append(f)
    if todo:
        with st.status(f"Indexing {len(todo)} file(s)\u2026", expanded=True) as status:
            if not app.embedder_loaded:
                st.write("Loading the embedding model (first use only)\u2026")
                _ = app.embedder
            if not exists:
                try:
                    app.create_collection(
                        target, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap
                    )
                except RagError as e:
                    status.update(label="Cannot create the collection", state="error")
                    st.error(escape_markdown(str(e)))
                    st.stop()
            bars = [st.progress(0.0, text=stage_text(f.name, "waiting", 0, 0)) for f in todo]

            def progress(i: int, stage: str, n: int, total: int) -> None:
                frac = STAGE_START.get(stage, 0.0)
                if stage == "ocr" and total:
                    frac = 0.02 + 0.13 * n / total
                if stage == "embedding" and total:
                    frac = 0.2 + 0.75 * n / total
                    if n == total:  # written next, in the background
                        stage, frac = "storing", STAGE_START["storing"]
                bars[i].progress(min(frac, 1.0), text=stage_text(todo[i].name, stage, n, total))

            def finished(i: int, result: IngestResult) -> None:
                done[(target, todo[i].file_id)] = (result, password)
                bars[i].progress(1.0, text=f"{escape_markdown(todo[i].name)}: {result.status}")

            uploads = (Upload(f.name, f.getvalue(), password or None) for f in todo)
            try:
                app.ingest_many(uploads, collection=target, progress=progress, on_result=finished)
            except RagError as e:  # e.g. the store went away before the first file
                status.update(label="Indexing failed", state="error")
                st.error(escape_markdown(str(e)))
                st.stop()
            bad = sum(done[(target, f.file_id)][0].status == "rejected" for f in todo)
            status.update(
                label=f"Indexed {len(todo) - bad} of {len(todo)} file(s)",
                state="error" if bad == len(todo) else "complete",
                expanded=False,
            )
        if target != active or not exists:
            _ui.set_active_collection(target)
            st.rerun()  # the sidebar shows the collection the files went into

    results = [done[(target, f.file_id)][0] for f in files if (target, f.file_id) in done]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if counts["rejected"]:
        st.warning(f"{summary} in {escape_markdown(target)}.")
    else:
        st.success(f"{summary} in {escape_markdown(target)}. Ask about them on the Chat page.")
    for r in results:
        if r.status == "rejected":
            reason = r.reason if r.reason.startswith(r.file) else f"{r.file}: {r.reason}"
            st.error(escape_markdown(reason))
    st.dataframe(
        [
            {
                "file": r.file,
                "result": r.status,
                "pages": r.pages or None,
                "chunks": r.chunks or None,
                "seconds": round(r.seconds, 2),
                "details": r.reason or "; ".join(r.warnings),
            }
            for r in results
        ],
        hide_index=True,
        width="stretch",
    )
    if st.button("Clear the list"):
        state.up_round += 1
        st.rerun()
else:
    st.info(
        f"Nothing uploaded yet. Files go into **{escape_markdown(target or '?')}** with "
        f"chunks of {chunk_tokens} tokens ({chunk_overlap} overlap)."
    )
