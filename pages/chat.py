"""Chat: ask the active collection; each answer streams in, with its numbered sources under it.

The conversation is kept per collection in the record store
(`rag.components.conversations`), so it survives a reload; it can be cleared and
downloaded as Markdown. Follow-ups send the history along (the engine rewrites them
into stand-alone questions when an LLM is configured). The chat box turns into a stop
button while an answer streams; stopping keeps what arrived so far. LLM failures show
in the chat with the sources that were found, and the conversation is kept. A
question over the length limit (`DOCCHAT_MAX_QUESTION_CHARS`) is refused at once
with the reason, and not saved.

Model output is sanitized while it streams and once complete (`rag.views.markdown`): it
can never load an image or become a link.

Left out: editing or regenerating an earlier answer, several conversations per
collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import streamlit as st

from pages import _render, _ui
from rag import (
    Answer,
    LimitExceededError,
    LLMError,
    RagError,
    SafeMarkdownStream,
    escape_markdown,
)

app = _ui.engine()
convs = _ui.conversations()
settings = app.settings
name = _ui.active_collection()
try:
    docs = app.documents(name) if name in _ui.collection_names(app) else []
except RagError as e:  # e.g. the Chroma server went away
    st.error(escape_markdown(str(e)))
    st.stop()

with st.sidebar:
    st.subheader("Answer settings")
    by_id = {d.doc_id: d.name for d in docs}
    doc_ids = st.multiselect(
        "Only these documents",
        list(by_id),
        format_func=lambda i: by_id.get(i, i),
        key=f"chat-docs-{name}",
        placeholder="All documents",
    )
    top_k = st.slider("Sources per question (top-k)", 1, 20, settings.top_k)
    min_score = st.slider(
        "Relevance threshold",
        0.0,
        1.0,
        float(settings.min_score),
        0.05,
        help="Chunks scoring below this (cosine similarity) are not used.",
    )
    no_llm = app.llm is None
    model = st.text_input(
        "Chat model",
        app.llm.model if app.llm else settings.chat_model,
        disabled=no_llm,
        help="Extractive mode needs no model." if no_llm else None,
    )
    temperature = st.slider(
        "Temperature", 0.0, 2.0, float(settings.temperature), 0.05, disabled=no_llm
    )

st.title("Chat")
conv = convs.load(name)
if not docs:
    st.info(f"No documents in **{escape_markdown(name)}** yet: upload some, then ask about them.")
    st.page_link("pages/upload.py", label="Upload documents", icon=":material/upload_file:")
elif not conv.turns:
    st.caption(
        f"Ask about the {len(docs)} document(s) in {escape_markdown(name)}. "
        "Every answer lists its sources, numbered like its citations."
    )

for i, turn in enumerate(conv.turns):
    _render.render_turn(turn, i, latest=i == len(conv.turns) - 1)


def safe_deltas(deltas: Iterable[str]) -> Iterator[str]:
    """The answer's text, sanitized piece by piece as it streams."""
    sanitizer = SafeMarkdownStream()
    for delta in deltas:
        if out := sanitizer.feed(delta):
            yield out
    if tail := sanitizer.flush():
        yield tail


question = st.chat_input(
    "Ask a question about your documents", disabled=not docs, submit_mode="stop"
)
if question and question.strip():
    index = len(conv.turns)
    _render.render_question(question)
    answer: Answer | None = None
    with st.chat_message("assistant"):
        waiting = "Searching the documents\u2026"
        if not app.embedder_loaded:
            waiting = "Loading the embedding model (first question only), then searching\u2026"
        try:
            with st.spinner(waiting):
                retrieval = app.retrieve(
                    question,
                    collection=name,
                    history=conv.history(),
                    top_k=top_k,
                    min_score=min_score,
                    doc_ids=doc_ids or None,
                )
        except LimitExceededError as e:  # nothing was searched: nothing to keep
            st.error(escape_markdown(str(e)))
        except RagError as e:
            answer = app.chat_failed(question, str(e), collection=name)
        else:
            box = st.empty()
            # Leaving the block ends the stream however it went (complete, failed, or
            # stopped: Streamlit ends the run), and the engine saves the turn.
            with app.chat(
                retrieval, collection=name, model=model.strip() or None, temperature=temperature
            ) as stream:
                try:
                    with box.container():
                        st.write_stream(safe_deltas(stream))
                except LLMError:
                    pass  # the stream's answer carries the error and the sources
            answer = stream.result()
            if answer.text:
                box.markdown(_render.answer_markdown(answer, index))  # safe, citations linked
            else:
                box.empty()
        if answer is not None:
            _render.render_answer_details(answer, index, stopped=False, latest=True)
    conv = convs.load(name)

if conv.turns:
    row = st.container(horizontal=True)
    if row.button("Clear conversation", icon=":material/delete:"):
        convs.clear(name)
        st.rerun()
    row.download_button(
        "Download as Markdown",
        data=conv.to_markdown(),
        file_name=_render.safe_file_name(f"docchat-{name}", ".md"),
        mime="text/markdown",
        on_click="ignore",
        icon=":material/download:",
    )
