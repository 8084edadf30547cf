"""Fine-tuning studio: a collection -> question/answer pairs -> reviewed, validated
JSONL -> a fine-tuning job -> a model to compare with RAG (Compare page).

Render only: the work is done by rag (rag/finetune/, through `DocChat`). The working
set lives in the session as a table; what survives a reload is the generation
journal under the data dir (generating again resumes it) and the job records.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from pages import _ui
from rag import (
    DocChat,
    GenerationProgress,
    QAPair,
    RagError,
    TrainingSet,
    ValidationReport,
    build_training_set,
    default_system_prompt,
    discard_journal,
    escape_markdown,
    eval_questions_jsonl,
    generate_pairs,
    import_pairs,
    journal_path,
    load_journal,
    pairs_jsonl,
    select_chunks,
    validate_pairs,
)

GUIDE = """
**RAG** looks facts up in your documents at question time. **Fine-tuning** changes
the model itself, from question/answer examples.

- **Fresh or changing data, facts, sources to quote and check** → RAG. A new file is
  searchable at once; every answer shows where it came from.
- **A style or voice, a fixed format, focus on one field** (and declining questions
  outside it) → fine-tuning.
- **Short prompts, low latency, a small fast specialist** → fine-tuning: no sources
  to send with every question.
- **Both**: a fine-tuned model for style and focus, with RAG for the facts. The
  Compare page shows all four combinations side by side.
"""

COLUMNS = ["use", "question", "answer", "file", "page", "kind", "chunk_id", "doc_id"]

app: DocChat = _ui.engine()
st.title("Fine-tuning studio")
st.caption(
    "Turn a collection into question/answer training data, fine-tune a model on it, "
    "and compare it with RAG."
)
with st.expander("RAG or fine-tuning? When each fits"):
    st.markdown(GUIDE)

llm = app.llm
state = st.session_state
state.setdefault("ft_table", pd.DataFrame(columns=COLUMNS))  # the review table's input
state.setdefault("ft_version", 0)  # bumped when the table is replaced: resets the editor
state.setdefault("ft_pairs", [])  # the pairs in use after review (the Compare page reads them)
state.setdefault("ft_source", "")  # the collection the pairs came from

if llm is None:
    st.warning(
        "**The studio needs an LLM** to write question/answer pairs and to run "
        "fine-tuning jobs. Set `OPENAI_API_KEY` (or `OPENAI_BASE_URL` for an "
        "OpenAI-compatible server) and restart the app. Meanwhile you can **import a "
        "Q&A file** you already have (Build tab), then review, validate and export it."
    )


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


def source_text(chunk_id: str, doc_id: str, collection: str) -> str | None:
    """The text of a pair's source chunk (fetched alone: this runs on every rerun)."""
    if not (chunk_id and doc_id and collection):
        return None
    try:
        chunk = app.chunk(chunk_id, collection=collection)
    except RagError:
        return None
    return chunk.text if chunk.doc_id == doc_id else None


build, review, export, train = st.tabs(["1 · Build", "2 · Review", "3 · Export", "4 · Train"])

# ---- 1. build ---------------------------------------------------------------------------

with build:
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

# ---- 2. review ----------------------------------------------------------------------------

used: list[QAPair] = []
report: ValidationReport | None = None
with review:
    with st.expander("Training format", expanded=False):
        base_model = st.text_input(
            "Base model to fine-tune",
            app.settings.chat_model,
            key="ft_base_model",
            help="Token limits are checked for this model.",
        )
        field_name = state.get("ft_field") or f"the documents in '{state.ft_source or 'default'}'"
        system_prompt = st.text_area(
            "System message of every example",
            default_system_prompt(field_name),
            key="ft_system",
            help="Use the same one when you call the fine-tuned model (Compare does).",
        )
    if state.ft_table.empty:
        state.ft_pairs = []
        st.info("No pairs yet: generate them or import a file (Build tab).")
    else:
        left, right = st.columns([3, 2])
        with left:
            edited = st.data_editor(
                state.ft_table,
                key=f"ft_editor_{state.ft_version}",
                num_rows="dynamic",
                disabled=["file", "page", "kind", "chunk_id", "doc_id"],
                column_order=["use", "question", "answer", "file", "page", "kind"],
                column_config={
                    "use": st.column_config.CheckboxColumn(
                        "use", help="approved for export", default=True
                    ),
                    "question": st.column_config.TextColumn("question", width="medium"),
                    "answer": st.column_config.TextColumn("answer", width="large"),
                },
            )
        state.ft_edited = edited
        used, rows = from_frame(edited)
        state.ft_pairs = used
        with right:
            records = edited.to_dict("records")
            pick = st.selectbox(
                "Source chunk of row",
                range(len(records)),
                format_func=lambda i: f"{i}: {str(records[i].get('question') or '')[:70]}",
                key="ft_pick",
            )
            if pick is not None and pick < len(records):
                row = records[pick]
                chunk_id, doc_id = str(row.get("chunk_id") or ""), str(row.get("doc_id") or "")
                text = source_text(chunk_id, doc_id, state.ft_source)
                page = row.get("page")
                where = str(row.get("file") or "") + ("" if pd.isna(page) else f", page {page}")
                if text is None:
                    st.caption("No source chunk for this row (a decline or imported pair).")
                else:
                    st.caption(f"Source: {escape_markdown(where)}")
                    st.markdown(f"> {escape_markdown(text)}")
        report = validate_pairs(used, system_prompt=system_prompt, model=base_model)
        st.write(
            f"**Validation:** {len(used)} of {len(records)} row(s) in use · "
            + escape_markdown(report.summary())
        )
        if report.errors:
            st.error(f"{len(report.errors)} problem(s) block export:")
            st.dataframe(
                [
                    {"row": rows[i.row], "problem": i.code, "details": i.message}
                    for i in report.errors
                ],
                hide_index=True,
            )
            if st.button("Drop the rows with problems", key="ft_drop"):
                bad = sorted(rows[r] for r in report.bad_rows)
                set_table(edited.drop(index=edited.index[bad]))
                st.rerun()
        for w in report.warnings:
            st.warning(escape_markdown(w.message))

# ---- 3. export ----------------------------------------------------------------------------

training: TrainingSet | None = None
with export:
    if not used:
        st.info("Nothing to export yet: generate or import pairs, then review them.")
    else:
        share = st.slider("Validation share", 0.0, 0.5, 0.2, 0.05, key="ft_share")
        try:
            training = build_training_set(
                used,
                system_prompt=system_prompt,
                model=base_model,
                validation_fraction=share,
            )
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            st.success(
                f"Valid: {training.train_examples} training + {training.validation_examples} "
                "validation example(s) in the OpenAI chat fine-tuning format."
            )
            c1, c2 = st.columns(2)
            c1.download_button(
                "Download train.jsonl", training.train_jsonl, "train.jsonl", "application/jsonl"
            )
            c2.download_button(
                "Download validation.jsonl",
                training.validation_jsonl,
                "validation.jsonl",
                "application/jsonl",
                disabled=not training.validation_examples,
            )
        c3, c4 = st.columns(2)
        c3.download_button(
            "Download the reviewed pairs (re-importable)",
            pairs_jsonl(used),
            "pairs.jsonl",
            "application/jsonl",
        )
        c4.download_button(
            "Download as an evaluation question set",
            eval_questions_jsonl(used),
            "eval_questions.jsonl",
            "application/jsonl",
            help="Each question with the chunk that holds its answer: load it on the "
            "Evaluate page to see how well retrieval finds it.",
        )

# ---- 4. train -------------------------------------------------------------------------------

with train:
    if llm is None:
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
                    f"{j.id} · {j.base_model} · {_ui.when(j.created)}" for j in history if j.id == i
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
                            "started": _ui.when(j.created),
                            "error": j.error,
                        }
                        for j in jobs.history()  # read after the refresh above
                    ],
                    hide_index=True,
                )

            # A fragment: while the job runs, only this panel reruns every few seconds.
            st.fragment(job_panel, run_every=5 if follow and running else None)()
