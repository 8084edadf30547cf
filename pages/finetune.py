"""Fine-tuning studio: a collection -> question/answer pairs -> reviewed, validated
JSONL -> a fine-tuning job -> a model to compare with RAG (Compare page).

Render only: the work is done by rag (rag/finetune/, through `DocChat`). The working
set lives in the session as a table; what survives a reload is the generation
journal under the data dir (generating again resumes it) and the job records. The
Build and Train tabs, and the table's helpers, are in `_finetune_parts.py`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import _finetune_parts as parts
from pages import _ui
from rag import (
    DocChat,
    QAPair,
    RagError,
    TrainingSet,
    ValidationReport,
    build_training_set,
    default_system_prompt,
    escape_markdown,
    eval_questions_jsonl,
    pairs_jsonl,
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
state.setdefault("ft_table", pd.DataFrame(columns=parts.COLUMNS))  # the review table's input
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

build, review, export, train = st.tabs(["1 · Build", "2 · Review", "3 · Export", "4 · Train"])

# ---- 1. build ---------------------------------------------------------------------------

with build:
    parts.build_tab(app)

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
        used, rows = parts.from_frame(edited)
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
                text = parts.source_text(app, chunk_id, doc_id, state.ft_source)
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
                parts.set_table(edited.drop(index=edited.index[bad]))
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
    parts.train_tab(app, training, base_model)
