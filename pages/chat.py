"""Chat: conversations with the active collection; each answer streams in, with its
numbered sources under it.

The sidebar lists the user's conversations, newest first (`pages/_chats.py`): "New
chat", a search over their words, and each one by its title; opening one restores
its collection, document filter and answer settings. A conversation can be renamed,
deleted and downloaded as Markdown. Under the last answer, Regenerate asks again
(the earlier answer stays: "answer 1 of 2", with arrows); Edit question asks another
question in a turn's place, the later turns kept on the other branch. A conversation
focused on one document (from the Library, a source, the chunk browser) shows the
filter, which can be removed, and offers Summarize; a question about the whole
document ("summarize it", "list every risk it names") reads all of it, with progress.

The chat box turns into a stop button while an answer streams; stopping keeps what
arrived so far. Failures show in the chat and are kept with the conversation; a
question over the length limit (`DOCCHAT_MAX_QUESTION_CHARS`) is refused at once and
not saved. Model output is sanitized while it streams and once complete.

Left out: sharing a conversation with another user.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import streamlit as st

from pages import _chats, _render, _ui
from rag import (
    SUMMARIZE,
    ChatSettings,
    Conversation,
    LLMError,
    RagError,
    SafeMarkdownStream,
    SummaryProgress,
    escape_markdown,
)

app = _ui.engine()
chats = app.chats
state = st.session_state
name = _ui.active_collection()

if focus := state.pop(_ui.FOCUS, None):  # "Chat with this document" on another page
    collection, doc_id = focus
    try:
        started = chats.start(collection, ChatSettings(doc_ids=(doc_id,)))
    except RagError as e:
        st.error(escape_markdown(str(e)))
    else:
        _chats.open_conversation(started.id, collection)
        st.rerun()

try:
    docs = app.documents(name) if name in _ui.collection_names(app) else []
    conv = _chats.current(chats, name)
except RagError as e:  # e.g. the Chroma server went away
    st.error(escape_markdown(str(e)))
    st.stop()

_chats.conversation_list(chats, conv.id if conv else "")
doc_names = {d.doc_id: d.name for d in docs}
llm_model = app.llm.model if app.llm else app.settings.chat_model
wanted = _chats.answer_settings(conv, doc_names, llm_model, app.llm is not None)
if conv is not None and wanted != conv.settings:
    chats.update_settings(conv.id, wanted)
    conv = chats.open(conv.id)

st.title(conv.title if conv and conv.title else "Chat")
if conv is not None:
    head = st.container(horizontal=True)
    with head.popover("Rename", icon=":material/edit:"):
        title = st.text_input("Title", conv.title, key=f"title-{conv.id}", max_chars=200)
        if st.button("Save title", key=f"title-save-{conv.id}"):
            try:
                chats.rename(conv.id, title)
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                st.rerun()
    with head.popover("Delete", icon=":material/delete:"):
        st.write("Delete this conversation? It cannot be undone.")
        if st.button("Yes, delete it", type="primary", key=f"delete-{conv.id}"):
            chats.delete(conv.id)
            _chats.open_conversation("")
            st.rerun()
    if conv.turns:
        head.download_button(
            "Download as Markdown",
            data=conv.to_markdown(),
            file_name=_render.safe_file_name(f"docchat-{conv.title or name}", ".md"),
            mime="text/markdown",
            on_click="ignore",
            icon=":material/download:",
        )

focused = [doc_names.get(d, "a removed document") for d in wanted.doc_ids]
if focused:
    row = st.container(horizontal=True, vertical_alignment="center")
    row.markdown("Only from: " + ", ".join(f"**{escape_markdown(n)}**" for n in focused))
    if conv is not None and row.button("Remove filter", icon=":material/close:"):
        chats.update_settings(conv.id, replace(wanted, doc_ids=()))
        _chats.forget_filter_widget(conv)
        st.rerun()
    if conv is not None and len(focused) == 1:
        row.button("Summarize", icon=":material/summarize:", key="summarize",
                   disabled=_chats.PENDING in state, on_click=_chats.ask_later,
                   args=("summarize",))  # fmt: skip

if not docs:
    st.info(f"No documents in **{escape_markdown(name)}** yet: upload some, then ask about them.")
    st.page_link("pages/upload.py", label="Upload documents", icon=":material/upload_file:")
elif conv is None or not conv.turns:
    st.caption(
        f"Ask about the {len(docs)} document(s) in {escape_markdown(name)}. "
        "Every answer lists its sources, numbered like its citations. Ask for a summary, "
        "or for every item of a kind, to have a whole document read."
    )


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
pending = state.pop(_chats.PENDING, None)
if question and question.strip():
    pending = ("ask", question)
replaced = pending[1] if pending and pending[0] in ("regenerate", "edit") else None


def show_turns(conv: Conversation) -> None:
    """The shown branch; a turn being answered again, and those after it, are left out."""
    for i, turn in enumerate(conv.turns):
        if turn.id == replaced:
            return
        _render.render_question(turn.question)
        if state.get(_chats.EDITING) == turn.id:
            _chats.edit_form(turn)
        with st.chat_message("assistant"):
            _render.render_answer(turn, i, latest=i == len(conv.turns) - 1)
            if not pending:
                _chats.turn_controls(chats, conv, turn, last=i == len(conv.turns) - 1)


if conv is not None:
    show_turns(conv)


def answer(conv: Conversation | None) -> None:
    """Ask what `pending` says, streaming the answer; the turn is saved when it ends.
    The first question of a new chat starts its conversation."""
    kind = pending[0]
    asked = {"ask": pending[-1], "edit": pending[-1], "summarize": SUMMARIZE}
    turns = conv.turns if conv is not None else ()
    shown = asked.get(kind) or next((t.question for t in turns if t.id == replaced), "")
    _render.render_question(shown)
    with st.chat_message("assistant"):
        progress = st.empty()

        def reading(p: SummaryProgress) -> None:
            progress.progress(p.done / max(1, p.total), text=escape_markdown(p.label))

        waiting = "Searching the documents\u2026"
        if not app.embedder_loaded:
            waiting = "Loading the embedding model (first question only), then searching\u2026"
        try:
            with st.spinner(waiting):
                if conv is None:
                    cid, stream = chats.ask_new(name, pending[1], wanted, on_progress=reading)
                    _chats.open_conversation(cid, name)
                elif kind == "ask":
                    stream = chats.ask(conv.id, pending[1], on_progress=reading)
                elif kind == "regenerate":
                    stream = chats.regenerate(conv.id, pending[1], on_progress=reading)
                elif kind == "edit":
                    stream = chats.edit(conv.id, pending[1], pending[2], on_progress=reading)
                else:
                    stream = chats.summarize(conv.id, on_progress=reading)
        except RagError as e:  # refused before anything was saved (e.g. too long)
            st.error(escape_markdown(str(e)))
            return
        box = st.empty()
        # Leaving the block ends the stream however it went (complete, failed, or
        # stopped: Streamlit ends the run), and the turn is saved.
        with stream:
            try:
                with box.container():
                    st.write_stream(safe_deltas(stream))
            except LLMError:
                pass  # the stream's answer carries the error and the sources
        progress.empty()
    st.rerun()  # the saved turn, with its controls


if pending and docs:
    answer(conv)
