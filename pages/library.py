"""Library: manage collections and their documents, and browse the chunks of a document.

Collections: create, rename, delete (confirmed), re-index with new chunk settings,
share (with sign-in on); per collection its embedding model, chunk settings, counts
and stored file size. Only what the user's role allows is offered (the engine checks
again: `rag.team.access`).
Uploads: the user's running and recent background uploads (an administrator's: all).
Tuning the active collection's embedding model on its own questions (for those who may
re-index it): `pages/_tuning.py`.
Documents of the active collection: a table, then for a chosen one: chat with it (a
conversation focused on it), download the original, delete it (confirmed), and page
through its chunks with a text search.

Left out: per-collection index size on disk (Chroma keeps one database for all
collections; the total is shown, with each collection's original files).
"""

from __future__ import annotations

import math

import streamlit as st

from pages import _jobs, _render, _tuning, _ui, _web
from rag import EDITOR, READER, RagError, Sharing, escape_markdown

PAGE_SIZE = 10

app = _ui.engine()
state = st.session_state

st.title("Library")
if note := state.pop("library_note", None):
    st.success(escape_markdown(note))

# -- collections ----------------------------------------------------------------------------

st.subheader("Collections")
try:
    collections = app.collections()
except RagError as e:
    st.error(escape_markdown(str(e)))
    st.stop()

if collections:
    st.dataframe(
        [
            {
                "collection": c.name,
                "embedding model": c.model,
                "chunk tokens": c.chunk_tokens,
                "overlap": c.chunk_overlap,
                "documents": c.documents,
                "chunks": c.chunks,
                "files": _render.human_bytes(c.size),
                "created": _render.when(c.created),
            }
            for c in collections
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(f"On disk (index and original files): {_render.human_bytes(app.disk_bytes())}")
else:
    st.info(
        "No collections yet. Upload documents (a collection is created on the way) "
        "or create one here."
    )

# Uploads run in the background (rag/jobs.py): the running and recent ones.
if jobs := app.jobs()[:20]:
    st.subheader("Uploads")
    running = sum(not j.finished for j in jobs)
    if running:
        st.caption(f"{running} running; the Upload page shows their progress.")
    _jobs.jobs_table(app, jobs)

with st.expander("New collection"), st.form("new_collection", clear_on_submit=True):
    name = st.text_input("Name")
    c1, c2 = st.columns(2)
    tokens = c1.number_input("Chunk size (tokens)", 16, 512, app.settings.chunk_tokens, 10)
    overlap = c2.number_input("Overlap (tokens)", 0, 256, app.settings.chunk_overlap, 5)
    if st.form_submit_button("Create"):
        try:
            with st.spinner("Creating (loads the embedding model on first use)\u2026"):
                app.create_collection(name, chunk_tokens=int(tokens), chunk_overlap=int(overlap))
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            _ui.set_active_collection(name.strip())
            st.rerun()

active = _ui.active_collection()
info = next((c for c in collections if c.name == active), None)
if info is None:
    st.info(f"The collection {escape_markdown(active)} is empty: upload documents first.")
    st.page_link("pages/upload.py", label="Upload documents", icon=":material/upload_file:")
    st.stop()

st.subheader(f"Collection: {escape_markdown(active)}")
if app.signin.required:
    st.caption(f"Your role: {app.role(active)}")
if app.signin.required and app.may("share", active):
    with st.expander("Sharing"):
        current = app.sharing_of(active)
        people = dict(app.people())  # shares are kept by user id, shown by name
        others = {i: n for i, n in sorted(people.items(), key=lambda p: p[1]) if i != current.owner}
        owner = people.get(current.owner, "a disabled account") if current.owner else None
        roles = {"nobody else": "", "reader": READER, "editor": EDITOR}
        with st.form(f"share-{active}"):
            st.caption(f"Owner: {escape_markdown(owner or 'the administrators')}. Readers "
                       "search and chat; editors also upload, delete documents and "
                       "re-index.")  # fmt: skip
            ids, name_of = list(others), others.__getitem__
            readers = st.multiselect("Readers", ids, [i for i in ids if i in current.readers],
                                     format_func=name_of)  # fmt: skip
            editors = st.multiselect("Editors", ids, [i for i in ids if i in current.editors],
                                     format_func=name_of)  # fmt: skip
            everyone = st.radio("Everyone signed in", list(roles), horizontal=True,
                                index=list(roles.values()).index(current.everyone))  # fmt: skip
            if st.form_submit_button("Save sharing"):
                try:
                    app.share(active, Sharing(current.owner, frozenset(readers),
                                              frozenset(editors), roles[everyone]))  # fmt: skip
                except RagError as e:
                    st.error(escape_markdown(str(e)))
                else:
                    state["library_note"] = f"Sharing of {active} saved."
                    st.rerun()
if not app.may("upload", active):
    st.caption("You may read this collection; its owner manages it.")
manage_rename, manage_reindex, manage_delete = st.columns(3)
if app.may("rename", active):
    with manage_rename:
        new_name = st.text_input("Rename to", value=active, key=f"rename-{active}")
        if st.button("Rename", disabled=new_name.strip() in ("", active)):
            try:
                app.rename_collection(active, new_name)
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                _ui.set_active_collection(new_name.strip())
                st.rerun()

if app.may("reindex", active):
    with manage_reindex:
        r1, r2 = st.columns(2)
        new_tokens = int(
            r1.number_input("Chunk tokens", 16, 512, info.chunk_tokens, 10, key=f"rt-{active}")
        )
        new_overlap = int(
            r2.number_input("Overlap", 0, 256, info.chunk_overlap, 5, key=f"ro-{active}")
        )
        if st.button("Re-index", help="Rebuild every document from its stored original."):
            done = _jobs.reindex(app, active, new_tokens, new_overlap)
            if done is not None:
                state["library_note"] = f"Re-indexed {done} document(s)."
                st.rerun()

if app.may("delete_collection", active):
    with manage_delete:
        st.write("")  # align with the inputs beside it
        confirm_key = f"confirm-delete-{active}"
        if not state.get(confirm_key):
            if st.button("Delete collection\u2026", type="secondary"):
                state[confirm_key] = True
                st.rerun()
        else:
            st.warning(
                f"Delete **{escape_markdown(active)}** with its {info.documents} document(s) "
                "and its conversation? This cannot be undone."
            )
            yes, no = st.columns(2)
            if yes.button("Yes, delete", type="primary"):
                try:
                    app.delete_collection(active)
                except RagError as e:
                    st.error(escape_markdown(str(e)))
                else:
                    state.pop(confirm_key, None)
                    state["library_note"] = f"Deleted the collection {active}."
                    st.rerun()
            if no.button("Cancel"):
                state.pop(confirm_key, None)
                st.rerun()

if app.may("reindex", active):
    _tuning.section(app, active, info.chunks)

# -- documents ------------------------------------------------------------------------------

st.subheader("Documents")
try:
    docs = app.documents(active)
except RagError as e:
    st.error(escape_markdown(str(e)))
    st.stop()
if app.may("upload", active):
    _web.refresh_button(app, active)  # fetch its web pages again (pages/_web.py)
if not docs:
    st.info("No documents in this collection yet.")
    st.page_link("pages/upload.py", label="Upload documents", icon=":material/upload_file:")
    st.stop()

st.dataframe(
    [
        {
            "name": d.name,
            "type": d.kind,
            "pages": d.pages,
            "chunks": d.chunks,
            "size": _render.human_bytes(d.size),
            "added": _render.when(d.added),
            "warnings": "; ".join(d.warnings),
        }
        for d in docs
    ],
    hide_index=True,
    width="stretch",
)

by_id = {d.doc_id: d for d in docs}
doc_id = st.selectbox(
    "Document",
    list(by_id),
    format_func=lambda i: f"{by_id[i].name}  ({by_id[i].doc_id[:8]})",
    key=f"doc-{active}",
)
doc = by_id[doc_id]
actions = st.container(horizontal=True)
if actions.button("Chat with this document", icon=":material/forum:", key=f"chat-{doc_id}"):
    _ui.chat_with(active, doc_id)


def original_bytes() -> bytes:
    # Read when the button is clicked, not on every render.
    return app.original(doc_id, collection=active)[1]


actions.download_button(
    "Download original",
    data=original_bytes,
    file_name=doc.name,
    mime="application/octet-stream",
    on_click="ignore",
    key=f"dl-{doc_id}",
)
delete_key = f"confirm-doc-{doc_id}"
if not app.may("delete_document", active):
    pass  # a reader: nothing to delete
elif not state.get(delete_key):
    if actions.button("Delete document\u2026", key=f"del-{doc_id}"):
        state[delete_key] = True
        st.rerun()
else:
    st.warning(f"Delete **{escape_markdown(doc.name)}** from {escape_markdown(active)}?")
    choice = st.container(horizontal=True)
    if choice.button("Yes, delete it", type="primary"):
        try:
            app.delete_document(doc_id, collection=active)
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            state.pop(delete_key, None)
            state["library_note"] = f"Deleted {doc.name}."
            st.rerun()
    if choice.button("Keep it"):
        state.pop(delete_key, None)
        st.rerun()

# -- chunk browser --------------------------------------------------------------------------

chunk_head = st.container(horizontal=True, vertical_alignment="bottom")
chunk_head.subheader("Chunks")
if chunk_head.button("Chat with this document", icon=":material/forum:",
                     key=f"chunks-chat-{doc_id}"):  # fmt: skip
    _ui.chat_with(active, doc_id)
try:
    chunks = app.chunks(doc_id, collection=active)
except RagError as e:
    st.error(escape_markdown(str(e)))
    st.stop()
query = st.text_input("Search in this document's chunks", key=f"chunk-q-{doc_id}")
if query.strip():
    needle = query.strip().lower()
    chunks = [c for c in chunks if needle in c.text.lower() or needle in c.section.lower()]
pages = max(1, math.ceil(len(chunks) / PAGE_SIZE))
p1, p2 = st.columns([1, 3])
page = int(p1.number_input(f"Page (of {pages})", 1, pages, 1, key=f"chunk-page-{doc_id}-{query}"))
p2.caption(f"{len(chunks)} chunk(s){' matching' if query.strip() else ''}.")
for c in chunks[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
    where = " · ".join(p for p in (c.location, c.section and f"section {c.section}") if p)
    st.caption(f"Chunk {c.index + 1} · {escape_markdown(where)} · {c.tokens} tokens")
    st.text(c.text)
    label = "Where it stands" if c.page is None else f"Where it stands ({c.location})"
    box = st.expander(label, key=f"lib-src-{doc_id}-{c.index}", on_change="rerun")
    with box:
        _render.render_source_view(c, f"lib-{c.index}", None, shown=box.open is not False,
                               with_text=False)  # fmt: skip
