"""Evaluate: how well search finds the answers to your own questions, and how fast.

Upload a CSV or JSONL question set (a `question` and an expected `answer` text or
`source` file per row), pick a collection and the retrieval settings, run: the page
shows answer_in_context@4000/@2000, doc_hit@5, mrr@10 and search time, and a table
of the questions whose answer did not reach 4,000 characters of context. A second
setting can run on the same index for a side-by-side comparison.

Only settings that need no re-index are offered (search mode and fusion weight);
chunk size and embedding model are compared with `python -m rag eval` instead.

Left out: saving runs across sessions, judging generated answers.
"""

from __future__ import annotations

import json

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from pages import _render, _ui
from rag import EvalReport, RagError, escape_markdown, evaluate, read_question_set

MODES = {
    "Hybrid (dense + keywords)": "hybrid",
    "Dense only": "dense",
    "Keywords only (BM25)": "bm25",
}
METRICS = [
    ("answer_in_context@4000", "Answer in 4,000 chars"),
    ("answer_in_context@2000", "Answer in 2,000 chars"),
    ("doc_hit@5", "Right document in top 5"),
    ("mrr@10", "MRR@10"),
]

app = _ui.engine()
state = st.session_state

st.title("Evaluate retrieval")
st.caption(
    "Upload questions with the answers or sources you expect; DocChat searches the "
    "collection for each and reports how often the answer reaches the prompt."
)

names = _ui.collection_names(app)
if not names:
    st.info("No collection yet: upload documents first.")
    st.stop()
active = _ui.active_collection()
collection = st.selectbox(
    "Collection", names, index=names.index(active) if active in names else 0, key="eval_collection"
)

upload = st.file_uploader(
    "Question set (CSV or JSONL)",
    type=["csv", "tsv", "jsonl", "json"],
    help=(
        "Columns / keys: `question`, and `answer` (text as it appears in a document) "
        "and/or `source` (the file name). The retrieval set from Fine-tuning works as is."
    ),
)
with st.expander("Example files"):
    st.code("question,answer,source\nWhat do cats eat?,fish and mice,cats.txt\n", language="csv")
    st.code('{"question": "Who barks at strangers?", "source": "dogs.txt"}', language="json")


def setting_inputs(label: str, key: str, default_mode: str) -> tuple[str, bool, float]:
    st.markdown(f"**{label}**")
    modes = list(MODES)
    mode = st.radio(
        "Search", modes, index=modes.index(default_mode), key=f"{key}_mode", horizontal=True
    )
    weight = app.settings.dense_weight
    if MODES[mode] == "hybrid":
        weight = st.slider(
            "Dense weight",
            0.0,
            1.0,
            float(app.settings.dense_weight),
            0.05,
            key=f"{key}_w",
            help="0 = keywords only, 1 = dense only.",
        )
    kind = MODES[mode]
    return mode, kind != "dense", 0.0 if kind == "bm25" else weight


default = "Hybrid (dense + keywords)" if app.settings.hybrid else "Dense only"
compare = st.toggle("Compare two settings side by side", key="eval_compare")
cols = st.columns(2 if compare else 1)
with cols[0]:
    setting_a = setting_inputs("Setting A", "eval_a", default)
setting_b = None
if compare:
    with cols[1]:
        setting_b = setting_inputs("Setting B", "eval_b", "Dense only")

if st.button("Run evaluation", type="primary", disabled=upload is None):
    assert upload is not None
    try:
        questions = read_question_set(upload.name, upload.getvalue())
        runs: list[tuple[str, EvalReport]] = []
        for label, setting in (("A", setting_a), ("B", setting_b)):
            if setting is None:
                continue
            mode, hybrid, weight = setting
            bar = st.progress(0.0, text=f"Setting {label}: asking {len(questions)} questions")

            def show(
                stage: str, done: int, total: int, bar: DeltaGenerator = bar, label: str = label
            ) -> None:
                bar.progress(done / total, text=f"Setting {label}: {done}/{total} questions")

            report = evaluate(
                app,
                questions,
                collection=collection,
                hybrid=hybrid,
                dense_weight=weight,
                progress=show,
            )
            bar.empty()
            runs.append((f"{label}: {mode}" + (f", weight {weight:.2f}" if hybrid else ""), report))
        state["eval_runs"] = {"collection": collection, "file": upload.name, "runs": runs}
    except RagError as e:
        st.error(escape_markdown(str(e)))

result = state.get("eval_runs")
if result and result["collection"] == collection:
    runs = result["runs"]
    first = runs[0][1]
    st.subheader("Results")
    st.caption(
        f"{escape_markdown(result['file'])}: {first.questions} questions on "
        f"{escape_markdown(collection)} ({first.documents} documents, {first.chunks} chunks)."
    )
    cols = st.columns(len(runs))
    for i, (label, report) in enumerate(runs):
        d = report.to_dict()
        base = runs[0][1].to_dict() if i else None
        with cols[i]:
            st.markdown(f"**{escape_markdown(label)}**")
            for key, title in METRICS:
                v = d[key]
                if v is None:
                    st.metric(title, "n/a", help="No question in the set gives this.")
                    continue
                delta = None
                if base is not None and base[key] is not None:
                    delta = f"{v - base[key]:+.3f}"  # type: ignore[operator]
                st.metric(title, f"{v:.3f}", delta=delta)
            ms = f"{report.search_ms_p50:.0f} / {report.search_ms_p95:.0f}"
            st.metric("Search ms p50 / p95", ms)

    for label, report in runs:
        misses = report.misses
        with st.expander(f"{escape_markdown(label)}: {len(misses)} question(s) missed"):
            if not misses:
                st.write("Every answer reached 4,000 characters of context.")
            else:
                st.dataframe(
                    [
                        {
                            "question": r.question.question,
                            "expected": r.question.answer or r.question.chunk_id,
                            "source": r.question.source,
                            "answer rank": r.answer_rank,
                            "document rank": r.doc_rank,
                            "top results": ", ".join(r.top),
                        }
                        for r in misses
                    ],
                    hide_index=True,
                    width="stretch",
                )
    payload = [{"setting": label, **r.to_dict(with_results=True)} for label, r in runs]
    st.download_button(
        "Download results (JSON)",
        json.dumps(payload, indent=2, default=str),
        file_name=_render.safe_file_name(f"eval-{collection}", ".json"),
        mime="application/json",
    )
