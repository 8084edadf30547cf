"""The chat page's parts: which conversation is open, the conversation list in the
sidebar, its answer settings, and the controls on a turn (another answer, edit).

The open conversation is the session's `OPEN` and the page's `?chat=` query
parameter, so a reload opens it again. Opening one from the list switches the
active collection to its own; choosing another collection in the sidebar opens that
collection's latest conversation. Other pages start a conversation on one document
with `_ui.chat_with`.

Left out: the chat loop (`pages/chat.py`) and drawing answers (`pages/_render.py`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages import _render, _ui
from rag import Chats, ChatSettings, Conversation, ConversationInfo, RagError, Turn, escape_markdown

OPEN = "chat-open"  # session key: the open conversation's id ("" : a new chat)
SHOWN = "chat-shown-collection"  # the collection the chat page showed last
PENDING = "chat-pending"  # what to answer on this run: ("ask"|"regenerate"|"edit"|"summarize", ...)
EDITING = "chat-editing"  # the id of the turn whose question is being edited
LISTED = 30  # conversations listed without a search; the search reaches every one


def open_conversation(cid: str, collection: str | None = None) -> None:
    """Show conversation `cid` ("" : a new chat) on the next run."""
    st.session_state[OPEN] = cid
    st.session_state.pop(EDITING, None)
    for what in ("docs", "topk", "min", "model", "temp"):  # a new chat starts from the defaults
        st.session_state.pop(f"chat-{what}-new", None)
    if cid:
        st.query_params["chat"] = cid
    else:
        st.query_params.pop("chat", None)
    if collection:
        _ui.set_active_collection(collection)
        st.session_state[SHOWN] = collection


def current(chats: Chats, active: str) -> Conversation | None:
    """The open conversation: the one this session opened, the reloaded page's, or the
    latest one on the active collection; None for a new chat. Reruns when the open
    conversation's collection must become the active one."""
    state = st.session_state
    fresh = SHOWN not in state  # a new browser session: a reload, or a shared link
    if state.get(SHOWN, active) != active:  # the sidebar switched the collection
        latest = chats.latest(active)
        open_conversation(latest.id if latest else "", active)
    elif OPEN not in state:
        wanted = st.query_params.get("chat") or ""
        latest = None if wanted else chats.latest(active)
        open_conversation(wanted or (latest.id if latest else ""))
    state[SHOWN] = active
    cid = str(state.get(OPEN) or "")
    if not cid:
        return None
    try:
        conv = chats.open(cid)
    except RagError:  # deleted in another tab, or its collection is gone or closed to us
        open_conversation("")
        return None
    if conv.collection != active:
        if fresh and not state.get(_ui.PICKED):
            # A reload of a conversation on another collection: follow it (unless the
            # user chose a collection in this session: a stale ?chat= does not win).
            open_conversation(cid, conv.collection)
            st.rerun()
        latest = chats.latest(active)
        open_conversation(latest.id if latest else "")
        return chats.open(latest.id) if latest else None
    return conv


def conversation_list(chats: Chats, open_id: str) -> None:
    """'New chat', a search, and the user's conversations, newest first."""
    with st.sidebar:
        st.subheader("Conversations")
        if st.button("New chat", icon=":material/add:", key="chat-new", width="stretch"):
            open_conversation("")
            st.rerun()
        query = st.text_input("Search conversations", key="chat-search",
                              placeholder="Words of a title, question or answer")  # fmt: skip
        try:
            found = chats.list(query)
        except RagError as e:
            st.error(escape_markdown(str(e)))
            return
        if query.strip() and not found:
            st.caption("No conversation has all these words.")
        shown = found if query.strip() else found[:LISTED]
        for info in shown:
            _list_entry(info, info.id == open_id)
        if len(found) > len(shown):
            st.caption(f"{len(found) - len(shown)} older: search to find them.")


def _list_entry(info: ConversationInfo, is_open: bool) -> None:
    label = escape_markdown(info.title or "New chat")
    where = f"{info.collection} · {_render.when(info.updated)}"
    if st.button(label, key=f"chat-open-{info.id}", type="primary" if is_open else "secondary",
                 help=where, width="stretch"):  # fmt: skip
        open_conversation(info.id, info.collection)
        st.rerun()


def answer_settings(conv: Conversation | None, doc_names: dict[str, str], llm_model: str,
                    has_llm: bool) -> ChatSettings:  # fmt: skip
    """The sidebar's answer settings, starting from what the conversation remembers."""
    settings = _ui.engine().settings
    s = conv.settings if conv is not None else ChatSettings()
    key = conv.id if conv is not None else "new"
    with st.sidebar:
        st.subheader("Answer settings")
        docs = st.multiselect(
            "Only these documents",
            list(doc_names),
            default=[d for d in s.doc_ids if d in doc_names],
            format_func=lambda i: doc_names.get(i, i),
            key=f"chat-docs-{key}",
            placeholder="All documents",
        )
        top_k = st.slider("Sources per question (top-k)", 1, 20, s.top_k or settings.top_k,
                          key=f"chat-topk-{key}")  # fmt: skip
        min_score = st.slider(
            "Relevance threshold", 0.0, 1.0,
            float(settings.min_score if s.min_score is None else s.min_score), 0.05,
            help="Chunks scoring below this (cosine similarity) are not used.",
            key=f"chat-min-{key}",
        )  # fmt: skip
        model = st.text_input("Chat model", s.model or llm_model, disabled=not has_llm,
                              help=None if has_llm else "Extractive mode needs no model.",
                              key=f"chat-model-{key}")  # fmt: skip
        temp = float(settings.temperature if s.temperature is None else s.temperature)
        temperature = st.slider("Temperature", 0.0, 2.0, temp, 0.05, disabled=not has_llm,
                                key=f"chat-temp-{key}")  # fmt: skip
    return ChatSettings(
        doc_ids=tuple(docs),
        top_k=None if top_k == settings.top_k else top_k,
        min_score=None if min_score == settings.min_score else min_score,
        model="" if model.strip() == llm_model else model.strip(),
        temperature=None if temperature == settings.temperature else temperature,
    )


def forget_filter_widget(conv: Conversation) -> None:
    """Let the document filter show the conversation's (it was changed elsewhere)."""
    st.session_state.pop(f"chat-docs-{conv.id}", None)


def ask_later(*action: Any) -> None:
    """Answer `action` on the next run (a button's callback)."""
    st.session_state[PENDING] = action
    st.session_state.pop(EDITING, None)


def turn_controls(chats: Chats, conv: Conversation, turn: Turn, *, last: bool) -> None:
    """Under an answer: its alternatives (arrows), Regenerate on the last one, Edit."""
    row = st.container(horizontal=True, vertical_alignment="center")
    busy = PENDING in st.session_state
    if turn.alternatives > 1:
        i = turn.index
        if row.button("Previous", icon=":material/chevron_left:", key=f"alt-prev-{turn.id}",
                      disabled=i == 0):  # fmt: skip
            chats.select(conv.id, turn.siblings[i - 1])
            st.rerun()
        row.markdown(f"answer {i + 1} of {turn.alternatives}")
        if row.button("Next", icon=":material/chevron_right:", key=f"alt-next-{turn.id}",
                      disabled=i == turn.alternatives - 1):  # fmt: skip
            chats.select(conv.id, turn.siblings[i + 1])
            st.rerun()
    if last:
        row.button("Regenerate", icon=":material/refresh:", key=f"regen-{turn.id}",
                   disabled=busy, on_click=ask_later, args=("regenerate", turn.id))  # fmt: skip
    row.button("Edit question", icon=":material/edit:", key=f"edit-{turn.id}", disabled=busy,
               on_click=lambda: st.session_state.update({EDITING: turn.id}))  # fmt: skip


def edit_form(turn: Turn) -> None:
    """The question of `turn` in a box to change and send again."""
    with st.form(f"edit-form-{turn.id}", border=True):
        question = st.text_area("Edit the question", turn.question, key=f"edit-q-{turn.id}")
        send, cancel = st.columns(2)
        if send.form_submit_button("Send", type="primary"):
            ask_later("edit", turn.id, question)
            st.rerun()
        if cancel.form_submit_button("Cancel"):
            st.session_state.pop(EDITING, None)
            st.rerun()
