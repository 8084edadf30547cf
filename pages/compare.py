"""Compare: one question answered by the base and the fine-tuned model, each alone and
with RAG, side by side with latency, prompt tokens and sources.

Render only: `compare` (rag/finetune/compare.py) does the work. The last comparison
stays in the session so it survives reruns.
"""

from __future__ import annotations

import streamlit as st

from pages import _ui
from rag import (
    VARIANTS,
    Comparison,
    DocChat,
    RagError,
    Variant,
    compare,
    default_system_prompt,
    escape_markdown,
    safe_markdown,
)

app: DocChat = _ui.engine()
st.title("Compare: RAG and fine-tuning")
st.caption(
    "One question, four answers: the base model and a fine-tuned model, each alone "
    "and with RAG (the sources your documents give it)."
)

llm = app.llm
state = st.session_state

if llm is None:
    st.warning(
        "**Comparing needs an LLM.** Set `OPENAI_API_KEY` (or `OPENAI_BASE_URL` for an "
        "OpenAI-compatible server) and restart the app."
    )
    st.stop()

collection = _ui.active_collection()
if collection not in _ui.collection_names(app):
    st.info(
        f"The collection {escape_markdown(collection)} has no documents yet: add some on "
        "the Upload page, or choose another collection in the sidebar."
    )
    st.stop()

tuned_models = app.fine_tune_jobs().fine_tuned_models()
st.caption(f"RAG answers search {escape_markdown(collection)} (change it in the sidebar).")
left, right = st.columns(2)
base_model = left.text_input("Base model", llm.model, key="cmp_base")
tuned = right.selectbox(
    "Fine-tuned model",
    [*tuned_models, "(none)"],
    help="Models of the jobs that succeeded (Fine-tuning page), or type another id.",
    accept_new_options=True,
    key="cmp_tuned",
)
system_prompt = st.text_input(
    "System message when a model answers alone",
    state.get("ft_system") or default_system_prompt(f"the documents in '{collection}'"),
    help="The one the model was fine-tuned with.",
    key="cmp_system",
)
generated = [p.question for p in state.get("ft_pairs", [])][:200]
if generated:
    picked = st.selectbox("Pick a generated question (optional)", ["", *generated], key="cmp_pick")
    if picked and picked != state.get("cmp_last_pick"):
        state.cmp_question = picked  # fill the box below once, then let the user edit
        state.cmp_last_pick = picked
question = st.text_area("Question", key="cmp_question", height=80)

if st.button("Compare", type="primary", key="cmp_go"):
    fine_tuned = None if tuned in (None, "", "(none)") else str(tuned)
    slots = {}
    for row in (["base", "base+rag"], ["tuned", "tuned+rag"]):
        cols = st.columns(2)
        for key, col in zip(row, cols, strict=True):
            slots[key] = col.empty()
    for slot in slots.values():
        slot.info("Waiting…")

    def arrived(v: Variant) -> None:
        slots[v.key].info(f"{v.label}: answered in {v.seconds:.1f} s")

    try:
        state.cmp_result = compare(
            app,
            question or "",
            fine_tuned_model=fine_tuned,
            base_model=base_model or None,
            system_prompt=system_prompt,
            collection=collection,
            on_variant=arrived,
        )
    except RagError as e:
        state.cmp_result = None
        st.error(escape_markdown(str(e)))
    for slot in slots.values():
        slot.empty()


def show(v: Variant | None, label: str) -> None:
    with st.container(border=True):
        if v is None:
            st.markdown(f"**{label}**")
            st.caption("Choose a fine-tuned model to fill this in.")
            return
        st.markdown(f"**{v.label}** · {escape_markdown(v.model)}")
        if v.error:
            st.error(escape_markdown(v.error))
            return
        a, b, c = st.columns(3)
        a.metric("Latency", f"{v.seconds:.2f} s")
        b.metric("Prompt tokens", f"{v.prompt_tokens:,}")
        c.metric("Sources", len(v.sources) if v.rag else "none")
        st.markdown(safe_markdown(v.text))
        if v.sources:
            with st.expander(f"{len(v.sources)} source(s)"):
                for s in v.sources:
                    where = ", ".join(p for p in (s.chunk.file, s.chunk.location) if p)
                    st.markdown(
                        f"**\\[{s.n}\\]** {escape_markdown(where)} · score {s.hit.score:.2f}"
                    )
                    st.caption(escape_markdown(s.chunk.text[:600]))


result: Comparison | None = state.get("cmp_result")
if result is not None:
    st.subheader(escape_markdown(result.question))
    st.caption(f"Retrieval (shared by both RAG answers): {result.retrieval_seconds:.2f} s")
    for row in (["base", "base+rag"], ["tuned", "tuned+rag"]):
        cols = st.columns(2)
        for key, col in zip(row, cols, strict=True):
            with col:
                show(result.get(key), VARIANTS[key])
