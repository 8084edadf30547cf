"""The Fine-tuning studio's parts: its review table in the session, the Build tab,
and the Train tab (`pages/finetune.py` lays them out).

Render only, like the page: widgets are read here and the work is done by rag
(rag/finetune/, through `DocChat`). The name starts with "_" so Streamlit does not
list it as a page.

Left out: the Review and Export tabs, the studio's header and its session defaults
(the page itself).
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from pages import _render, _ui
from rag import (
    DocChat,
    GenerationProgress,
    QAPair,
    RagError,
    TrainingSet,
    discard_journal,
    escape_markdown,
    generate_pairs,
    import_pairs,
    journal_path,
    load_journal,
    select_chunks,
)

COLUMNS = ["use", "question", "answer", "file", "page", "kind", "chunk_id", "doc_id"]

state = st.session_state  # a proxy: each session reads and writes its own state


def set_table(table: pd.DataFrame, source: str = "") -> None:
    """Replace the review table (edits made so far must already be in `table`)."""
    state.ft_table = table.reset_index(drop=True)
    state.ft_source = source or state.ft_source
    state.ft_version += 1


def current_table() -> pd.DataFrame:
    """The table as last shown, with the user's edits."""
    return state.get("ft_edited", state.ft_table)


def to_frame(pairs: list[QAPair]) -> pd.DataFrame:
    rows = [{"use": True, **p.to_dict()} for p in pairs]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"page": "Int64"})


def from_frame(frame: pd.DataFrame) -> tuple[list[QAPair], list[int]]:
    """The pairs ticked "use", and their (0-based) positions in the table."""
    pairs: list[QAPair] = []
    rows: list[int] = []
    for i, row in enumerate(frame.to_dict("records")):
        if row.get("use"):
            pairs.append(QAPair.from_row(row))
            rows.append(i)
    return pairs, rows


def source_text(app: DocChat, chunk_id: str, doc_id: str, collection: str) -> str | None:
    """The text of a pair's source chunk (fetched alone: this runs on every rerun)."""
    if not (chunk_id and doc_id and collection):
        return None
    try:
        chunk = app.chunk(chunk_id, collection=collection)
    except RagError:
        return None
    return chunk.text if chunk.doc_id == doc_id else None


def build_tab(app: DocChat) -> None:
    """Generate pairs from the active collection, or import a Q&A file."""
    llm = app.llm
    name = _ui.active_collection()
    if llm is not None and name not in _ui.collection_names(app):
        st.info(
            f"The collection {escape_markdown(name)} has no documents yet: add some on the "
            "Upload page, or choose another collection in the sidebar."
        )
    elif llm is not None:
        st.subheader(f"Generate pairs from {escape_markdown(name)}")
        docs = app.documents(name)
        chosen = st.multiselect(
            "Documents (none chosen: all)", docs, format_func=lambda d: d.name, key="ft_docs"
        )
        c1, c2, c3 = st.columns(3)
        per_chunk = int(c1.number_input("Questions per chunk", 1, 10, 3, key="ft_per_chunk"))
        sample = int(c2.number_input("Sample N chunks (0: all)", 0, 100_000, 0, key="ft_sample"))
        decline = int(
            c3.number_input(
                "Decline pairs",
                0,
                200,
                0,
                key="ft_decline",
                help="Questions outside the field, answered with a polite refusal.",
            )
        )
        style = st.text_input(
            "Answer style (optional)",
            placeholder="e.g. answer in the voice of a patient tutor, in two sentences",
            key="ft_style",
        )
        field = st.text_input(
            "The field, in a few words", f"the documents in '{name}'", key="ft_field"
        )
        journal = journal_path(app.settings.data_dir, name)
        earlier = load_journal(journal)
        if earlier:
            st.info(
                f"An earlier run made {len(earlier)} pair(s) for this collection. "
                "Generating resumes it (chunks already done are skipped); "
                "Start over forgets them."
            )
        go, stop, again = st.columns(3)
        # Clicking Stop while a run is going makes Streamlit rerun, which ends the run
        # at its next progress update; what it made is already in the journal.
        if stop.button("Stop", key="ft_stop") and earlier:
            set_table(to_frame(earlier), name)
            st.info(f"Stopped. {len(earlier)} pair(s) are kept; Resume continues the run.")
        if go.button("Resume" if earlier else "Generate", type="primary", key="ft_generate"):
            chunks = select_chunks(
                app.all_chunks(name),
                doc_ids={d.doc_id for d in chosen} or None,
                sample=sample or None,
            )
            bar = st.progress(0.0, text="Starting…")

            def show(p: GenerationProgress) -> None:
                bar.progress(
                    p.done / max(p.total, 1),
                    text=f"{p.done}/{p.total} chunks · {p.pairs} pairs · "
                    f"{p.prompt_tokens:,} prompt + {p.completion_tokens:,} completion tokens",
                )

            try:
                result = generate_pairs(
                    chunks,
                    llm,
                    journal=journal,
                    per_chunk=per_chunk,
                    style=style,
                    decline=decline,
                    field=field,
                    progress=show,
                )
            except RagError as e:
                kept = "The pairs made so far are kept: generate again to resume."
                st.error(f"{escape_markdown(str(e))} {kept}")
                set_table(to_frame(load_journal(journal)), name)
            else:
                set_table(to_frame(list(result.pairs)), name)
                state.ft_summary = (
                    f"{len(result.pairs)} pair(s) from {result.done} of {result.total} "
                    f"chunk(s) ({result.resumed} from an earlier run) · cost "
                    f"{result.prompt_tokens:,} prompt + {result.completion_tokens:,} "
                    "completion tokens"
                )
                state.ft_failed = [reason for _, reason in result.failed]
        if again.button("Start over", key="ft_restart", disabled=not earlier):
            discard_journal(journal)
            set_table(to_frame([]), name)
            state.ft_summary = ""
            st.rerun()
        if state.get("ft_summary"):
            st.success(state.ft_summary + " · review them in the Review tab.")
        for reason in state.get("ft_failed", []):
            st.warning(f"Skipped {escape_markdown(reason)}; generate again to retry it.")
        st.caption(
            "Stop any time (or leave the page): pairs are saved as they are made, and the "
            "next run resumes."
        )

    st.subheader("Import a Q&A file")
    upload = st.file_uploader(
        "CSV with question and answer columns, or JSONL (question/answer or chat messages)",
        type=["csv", "jsonl", "json"],
        key="ft_import",
    )
    if upload is not None:
        add = st.checkbox("Add to the current set instead of replacing it", key="ft_add")
        if st.button("Use this file", key="ft_use_file"):
            try:
                imported = import_pairs(upload.name, upload.getvalue())
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                table = to_frame(imported)
                set_table(pd.concat([current_table(), table]) if add else table)
                st.success(f"Imported {len(imported)} pair(s) from {escape_markdown(upload.name)}.")


def train_tab(app: DocChat, training: TrainingSet | None, base_model: str) -> None:
    """Start a fine-tuning job on the exported set, and follow the jobs started here."""
    if app.llm is None:
        st.info("Training needs an LLM server with the fine-tuning API (see above).")
    else:
        jobs = app.fine_tune_jobs()
        st.caption(
            f"Jobs run on {escape_markdown(jobs.server)}, which must offer OpenAI's "
            "fine-tuning API."
        )
        if training is None:
            st.info("Export a valid set first (the Export tab says what is missing).")
        else:
            c1, c2 = st.columns(2)
            epochs = int(c1.number_input("Epochs (0: let the server choose)", 0, 50, 0))
            suffix = c2.text_input("Model name suffix", "docchat", key="ft_suffix")
            if st.button(f"Start fine-tuning {base_model}", type="primary", key="ft_start"):
                try:
                    job = jobs.start(
                        training.train_jsonl,
                        training.validation_jsonl,
                        base_model=base_model,
                        epochs=epochs or None,
                        suffix=suffix,
                        collection=state.ft_source,
                        examples=training.train_examples,
                    )
                except RagError as e:
                    st.error(escape_markdown(str(e)))
                else:
                    state.ft_job = job.id
                    st.success(f"Started job {escape_markdown(job.id)}.")
        history = jobs.history()
        if history:
            st.subheader("Jobs")
            ids = [j.id for j in history]
            current = state.get("ft_job")
            job_id = st.selectbox(
                "Job",
                ids,
                index=ids.index(current) if current in ids else 0,
                format_func=lambda i: next(
                    f"{j.id} · {j.base_model} · {_render.when(j.created)}"
                    for j in history
                    if j.id == i
                ),
                key="ft_job_pick",
            )
            follow = st.toggle("Follow (refresh every 5 s)", value=True, key="ft_follow")
            running = not next(j for j in history if j.id == job_id).done

            def job_panel() -> None:
                recorded = next((j for j in jobs.history() if j.id == job_id), None)
                try:
                    job = recorded if recorded and recorded.done else jobs.refresh(job_id)
                    events = jobs.events(job_id)
                except RagError as e:
                    st.error(escape_markdown(str(e)))
                    return
                st.write(f"**Status:** {escape_markdown(job.status)}")
                if job.fine_tuned_model:
                    st.success(
                        f"Fine-tuned model: {escape_markdown(job.fine_tuned_model)}. "
                        "Try it on the Compare page."
                    )
                if job.error:
                    st.error(f"The job failed: {escape_markdown(job.error)}")
                if events:
                    st.dataframe(
                        [
                            {
                                "time": time.strftime("%H:%M:%S", time.localtime(e.created)),
                                "level": e.level,
                                "message": e.message,
                            }
                            for e in events
                        ],
                        hide_index=True,
                    )
                if not job.done and st.button("Cancel this job", key="ft_cancel"):
                    try:
                        jobs.cancel(job_id)
                    except RagError as e:
                        st.error(escape_markdown(str(e)))
                    st.rerun()
                st.caption("All jobs started from this app:")
                st.dataframe(
                    [
                        {
                            "job": j.id,
                            "status": j.status,
                            "base model": j.base_model,
                            "fine-tuned model": j.fine_tuned_model,
                            "collection": j.collection,
                            "examples": j.examples,
                            "started": _render.when(j.created),
                            "error": j.error,
                        }
                        for j in jobs.history()  # read after the refresh above
                    ],
                    hide_index=True,
                )

            # A fragment: while the job runs, only this panel reruns every few seconds.
            st.fragment(job_panel, run_every=5 if follow and running else None)()
