"""What every page shares: the cached engine, the active collection, small render helpers.

The `DocChat` engine (store, LLM client; the embedder loads on first use) and the
conversation store are built here, once per process and settings, with
`st.cache_resource`. Pages call `engine()` and render; they never build resources.

Every piece of document or model text goes through `rag.views.markdown` before it reaches
a Markdown-rendering call; nothing here uses `unsafe_allow_html`.

Who is signed in is settled here too (`signed_in_user`): single-user mode's one user,
a built-in account's session cookie, or `st.user` for OIDC; `engine()` is the shared
engine acting for that user, so every page sees only what the rules let them.

Left out: per-user state on the server beyond what `rag` keeps (each browser session
has its own active collection and widgets).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import streamlit as st

from rag import (
    Answer,
    Chunk,
    Conversations,
    DocChat,
    Embedder,
    Job,
    RagError,
    Settings,
    Source,
    Turn,
    escape_markdown,
    highlight,
    link_citations,
    safe_markdown,
    source_label,
    supporting_span,
    text_view_html,
)
from rag.jobs.queue import start_workers
from rag.team.access import LOCAL, User
from rag.team.signin import COOKIE, Identity

# Tests set this to build the engine with a fast fake embedder; nothing else does.
EMBEDDER_FACTORY: Callable[[], Embedder] | None = None

ACTIVE = "active_collection"  # session key of the collection every page works on


@st.cache_resource(show_spinner=False)
def _build(key: str, _settings: Settings) -> DocChat:
    # `key` is what the cache is keyed on (settings and the embedder hook); the
    # underscore-prefixed argument is not hashed.
    embedder = EMBEDDER_FACTORY() if EMBEDDER_FACTORY is not None else None
    return DocChat(_settings, embedder=embedder)


def _require_app_frame() -> None:
    """Run pages inside app.py's navigation, never on their own.

    Streamlit starts in its old pages/-folder mode when a pages/ folder exists, until
    some session runs `st.navigation`: if the first visitor of a fresh server opens
    e.g. /upload, Streamlit runs pages/upload.py alone (no sidebar, every file in
    pages/ listed as a page). Leave that mode and rerun: app.py then runs the page.
    (Only the first run of a server can be in that mode. AppTest restarts in it on
    every run and runs page files directly; a rerun there would drop the widget
    events of the run, so AppTest is left alone.)
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


# The secrets file `Settings.from_env` reads by default (named once, in rag/settings.py).
_SECRETS = Path(inspect.signature(Settings.from_env).parameters["secrets_path"].default)


@functools.lru_cache(maxsize=4)
def _settings(environ: frozenset[tuple[str, str]], secrets_mtime: float) -> Settings:
    # Keyed on what it is read from (`environ` is os.environ at the same moment), so
    # it is read again only when the environment or the secrets file changes.
    return Settings.from_env()


def current_settings() -> Settings:
    """The settings, read once per process (again when the environment or secrets change)."""
    mtime = _SECRETS.stat().st_mtime if _SECRETS.is_file() else 0.0
    return _settings(frozenset(os.environ.items()), mtime)


def shared_engine() -> DocChat:
    """The shared engine (built once per settings) acting for no one in particular
    (single-user mode's user), or an error on the page and a stop."""
    _require_app_frame()
    try:
        settings = current_settings()
        hook = getattr(EMBEDDER_FACTORY, "__qualname__", "")
        # Secrets are hidden from repr(settings), so a changed one is keyed by its hash.
        hidden = "\0".join(str(getattr(settings, f.name)) for f in fields(settings) if not f.repr)
        key_hash = hashlib.sha256(hidden.encode()).hexdigest()[:16]
        app = _build(f"{settings!r}|{key_hash}|{hook}", settings)
        start_workers(app)  # this process's background workers, once (DOCCHAT_WORKERS)
        return app
    except RagError as e:
        st.error(f"DocChat cannot start: {escape_markdown(str(e))}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


@st.cache_resource(show_spinner=False)
def _api(key: str, _app: DocChat, host: str, port: int) -> str:
    """Start the HTTP API beside the app, once per process and settings (`key`);
    returns its address, or why it did not start."""
    from rag.api import serve_in_thread

    try:
        serve_in_thread(_app, host, port)
    except RagError as e:
        return f"not started: {e}"
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{shown}:{port}/v1"


def api_address() -> str:
    """Where the API beside the app answers ("" when `DOCCHAT_API=false`)."""
    app = shared_engine()
    if not app.settings.api:
        return ""
    host = str(st.get_option("server.address") or "127.0.0.1")
    return _api(f"{app.settings!r}|{host}", app, host, app.settings.api_port)


def engine() -> DocChat:
    """The shared engine acting for the signed-in user (pages run only when one is)."""
    user = signed_in_user()
    if user is None:
        st.stop()
        raise RuntimeError("unreachable: st.stop() ends the run")
    return shared_engine().as_user(user)


# -- who is signed in -----------------------------------------------------------------------

SESSION = "_docchat_session"  # session key of this browser session's signed cookie value
FORGET = "_docchat_forget_cookie"  # set after signing out: the browser drops the cookie
OIDC_ERROR = "_docchat_oidc_error"


def _cookie() -> str:
    return str(st.session_state.get(SESSION) or st.context.cookies.get(COOKIE) or "")


def signed_in_user() -> User | None:
    """The user this browser session acts as, or None (the sign-in page is shown).
    Checked on every run: a session ended elsewhere (password changed, user removed
    or disabled, signed out in another tab) ends here at the next click."""
    door = shared_engine().signin
    if not door.required:
        return LOCAL
    if door.passwords and not st.session_state.get(FORGET):
        try:
            user = door.user_of(_cookie())
        except RagError as e:
            st.error(escape_markdown(str(e)))
            st.stop()
        if user is not None:
            return user
    if door.oidc:
        identity = Identity(bool(st.user.get("is_logged_in")), str(st.user.get("email") or ""))
        try:
            return door.oidc_user(identity)
        except RagError as e:
            st.session_state[OIDC_ERROR] = str(e)
    return None


def sign_in(name: str, password: str) -> None:
    """Sign in with a built-in account (`RagError` says why not); the caller reruns."""
    cookie = shared_engine().signin.sign_in(name, password, client=st.context.ip_address or "")
    st.session_state[SESSION] = cookie
    st.session_state.pop(FORGET, None)


def sign_out() -> None:
    """End the session here and in the browser (and Streamlit's own, for OIDC)."""
    shared_engine().signin.sign_out(_cookie())
    st.session_state.pop(SESSION, None)
    st.session_state[FORGET] = True
    if st.user.get("is_logged_in"):
        st.logout()
        st.stop()  # not a rerun: its URL change would cancel the browser's way to /auth/logout
    st.rerun()


def _auth_secrets() -> dict[str, object]:
    """The secrets' `[auth]` section (Streamlit's `st.login` settings), or empty."""
    try:
        return dict(st.secrets.get("auth", {}))
    except FileNotFoundError:  # no secrets file at all (StreamlitSecretNotFoundError)
        return {}


def oidc_configured() -> bool:
    return bool(_auth_secrets())


def oidc_providers() -> list[tuple[str, str]]:
    """The identity providers of the secrets' `[auth]` section, as (name for
    `st.login`, label): one unnamed provider, or one per `[auth.<name>]` table."""
    named = [k for k, v in _auth_secrets().items() if hasattr(v, "keys")]
    return [(k, k.replace("_", " ").title()) for k in named] or [("", "single sign-on")]


def keep_cookie() -> None:
    """The browser keeps this session's cookie (or drops it after signing out).

    The cookie is written by a script in a same-origin frame (Streamlit itself only
    reads cookies, `st.context.cookies`); what it holds is signed by the server and
    names a session the server can end, so the browser holding it is all it does.
    """
    value, age = st.session_state.get(SESSION), 0
    if value:
        age = int(shared_engine().settings.session_hours * 3600)
    elif not st.session_state.get(FORGET):
        return
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    cookie = f"{COOKIE}={value or ''}; Path=/; Max-Age={age}; SameSite=Strict{secure}"
    with st.sidebar:
        st.iframe(f"<script>parent.document.cookie = {json.dumps(cookie)};</script>",
                  height=1)  # fmt: skip


def conversations() -> Conversations:
    return engine().conversations


# -- the active collection -------------------------------------------------------------------


def collection_names(app: DocChat) -> list[str]:
    try:
        return app.collection_names()  # every page and the sidebar ask on each rerun
    except RagError as e:
        st.error(escape_markdown(str(e)))
        st.stop()
        raise


def active_collection() -> str:
    """The collection the pages work on (it may not exist yet: then it is created on upload)."""
    name = st.session_state.get(ACTIVE)
    if name:
        return str(name)
    app = engine()
    if app.signin.required and not app.may("read", app.settings.collection):
        return app.user.name  # a signed-in user's own first collection, by their name
    return app.settings.collection


def set_active_collection(name: str) -> None:
    """Switch every page to `name` (the caller reruns so the sidebar shows it)."""
    st.session_state[ACTIVE] = name


def sidebar() -> None:
    """The collection selector and what the app runs on; shown on every page."""
    app = engine()
    names = collection_names(app)
    active = active_collection()
    if active not in names:
        if names and ACTIVE in st.session_state:  # it was deleted or renamed
            active = names[0] if app.settings.collection not in names else app.settings.collection
        st.session_state[ACTIVE] = active
    options = names if active in names else [active, *names]
    # The widget has its own key; the session value is the truth pages can change.
    if st.session_state.get("_collection_pick") != active:
        st.session_state["_collection_pick"] = active

    def picked() -> None:
        st.session_state[ACTIVE] = st.session_state["_collection_pick"]

    with st.sidebar:
        st.selectbox(
            "Collection",
            options,
            key="_collection_pick",
            on_change=picked,
            help="The library of documents every page works on.",
        )
        if active not in names:
            # (a caption, not a formatted option: the widget keeps stale option labels)
            st.caption("Empty: it is created when you upload documents.")
        llm = app.llm
        st.caption(
            f"**LLM:** {escape_markdown(llm.describe())}"
            if llm is not None
            else "**LLM:** extractive mode: no LLM configured"
        )
        state = "loaded" if app.embedder_loaded else "loads on first use"
        # Once loaded, the name a collection records (a remote one's is model@host:port).
        model = app.embedder.name if app.embedder_loaded else app.settings.embedding_model
        st.caption(f"**Embeddings:** {escape_markdown(model)} ({state})")
        if api := api_address():
            st.caption(f"**API:** {escape_markdown(api)}")
        if not app.signin.required:
            st.caption("Single-user mode, no sign-in.")
        else:
            role = " (administrator)" if app.user.admin else ""
            st.caption(f"Signed in as **{escape_markdown(app.user.name)}**{role}")
            if st.button("Sign out", key="_sign_out"):
                sign_out()


# -- small formatters -----------------------------------------------------------------------


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def safe_file_name(name: str, suffix: str) -> str:
    """A download name made of harmless characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "docchat"
    return stem[:80] + suffix


# -- background uploads ----------------------------------------------------------------------

JOB_REFRESH_S = 0.5  # how often a followed job is read again


def follow_jobs(app: DocChat, job_ids: list[str]) -> list[Job]:
    """Each job's files with their progress ("OCR page 3/40"), redrawn until every job
    has ended, a Cancel button beside each one still running; returns the jobs as they
    ended. Leaving the page stops only the following: the jobs go on in the workers."""
    jobs = [app.job(i) for i in job_ids]
    buttons = st.empty()  # emptied with the progress: no Cancel left beside an ended job
    with buttons.container():
        for j in jobs:
            if not j.finished and st.button(f"Cancel the upload of {len(j.files)} file(s)",
                                            key=f"cancel-job-{j.id}"):  # fmt: skip
                app.cancel_job(j.id)
    box = st.empty()
    while True:
        with box.container():
            for j in jobs:
                if j.finished:
                    continue
                st.caption(f"Upload into {escape_markdown(j.collection)}: {j.status}, "
                           f"{escape_markdown(j.summary())}")  # fmt: skip
                for f in j.files:
                    text = escape_markdown(f"{f.name}: {f.message or f.status}")
                    st.progress(min(f.progress, 1.0), text=text)
        if all(j.finished for j in jobs):
            box.empty()
            buttons.empty()
            return jobs
        time.sleep(JOB_REFRESH_S)
        jobs = [app.job(i) for i in job_ids]


def jobs_table(jobs: list[Job]) -> None:
    """Recent uploads: one row a job."""
    st.dataframe(
        [
            {
                "started": when(j.created),
                "collection": j.collection,
                "status": j.status,
                "files": j.summary(),
                "by": j.user,
                "details": j.error or "; ".join(f.error for f in j.files if f.error),
            }
            for j in jobs
        ],
        hide_index=True,
        width="stretch",
    )


# -- re-indexing ------------------------------------------------------------------------------


def reindex(app: DocChat, collection: str, chunk_tokens: int, chunk_overlap: int) -> int | None:
    """Re-index a collection with live progress: the number of documents, or None after
    showing why it failed (the old index is then kept)."""
    with st.status("Re-indexing\u2026", expanded=True) as status:
        bar = st.progress(0.0)

        def progress(doc: str, i: int, n: int) -> None:
            bar.progress(i / max(n, 1), text=f"{escape_markdown(doc)} ({i + 1}/{n})")

        try:
            results = app.reindex(
                collection=collection,
                chunk_tokens=chunk_tokens,
                chunk_overlap=chunk_overlap,
                progress=progress,
            )
        except RagError as e:
            status.update(label="Re-indexing failed; the old index is kept", state="error")
            st.error(escape_markdown(str(e)))
            return None
        status.update(label=f"Re-indexed {len(results)} document(s)", state="complete")
        return len(results)


# -- answers and their sources --------------------------------------------------------------


def render_question(question: str) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(question, fold=False).replace("\n", "  \n"))


def render_turn(turn: Turn, index: int, *, latest: bool) -> None:
    render_question(turn.question)
    with st.chat_message("assistant"):
        if turn.answer.text:
            st.markdown(answer_markdown(turn.answer, index))
        render_answer_details(turn.answer, index, stopped=turn.stopped, latest=latest)


def render_answer_details(answer: Answer, index: int, *, stopped: bool, latest: bool) -> None:
    """Everything under an answer: failure or stop notes, query, prompt size, sources."""
    if stopped:
        st.caption("Stopped before the end.")
    if answer.error:
        more = " The sources found are below." if answer.sources else ""
        # The error may quote the LLM server's own words: shown as text, never as Markdown.
        error = escape_markdown(answer.error)
        st.error(f"The answer failed: {error}{more} The conversation is kept.")
    facts = []
    if answer.query:
        facts.append(f"Searched for: {escape_markdown(answer.query)}")
    if answer.mode == "llm":
        facts.append(f"prompt: about {answer.prompt_tokens:,} tokens")
    elif answer.mode == "extractive":
        facts.append("extractive mode: no prompt sent")
    if facts:
        st.caption(" · ".join(facts))
    if answer.left_out:
        ranks = ", ".join(str(r) for r in answer.left_out)
        st.caption(
            f"{len(answer.left_out)} retrieved chunk(s) left out to fit the prompt budget "
            f"(ranks {ranks})."
        )
    if answer.sources:
        render_sources(answer, index, latest=latest)


def answer_markdown(answer: Answer, index: int) -> str:
    """The answer, safe, its citations [n] linked to the sources below it."""
    known = {s.n for s in answer.sources}
    return link_citations(
        safe_markdown(answer.text), lambda n: source_anchor(index, n) if n in known else None
    )


def source_anchor(index: int, n: int) -> str:
    return f"source-{index}-{n}"


def render_sources(answer: Answer, index: int, *, latest: bool) -> None:
    """One expander per source, labelled [n] like the citations in the answer: the
    chunk's text beside its page (PDFs, images) or the text around it."""
    st.markdown("**Sources**")
    for s in answer.sources:
        cited = s.n in answer.cited
        # An anchor for the answer's [n] links: an id DocChat writes, nothing else.
        st.markdown(f'<div id="{source_anchor(index, s.n)}"></div>', unsafe_allow_html=True)
        opened = latest and (cited or (not answer.cited and s.n == 1))
        # A lazy expander: its page is rendered when it is opened (a rerun), not before.
        box = st.expander(source_title(s, cited=cited), expanded=opened,
                          key=f"src-{index}-{s.n}", on_change="rerun")  # fmt: skip
        with box:
            span = supporting_span(answer.text, s.n, s.chunk.text) if answer.text else None
            render_source_view(s.chunk, f"{index}-{s.n}", span, shown=box.open is not False)


def render_source_view(
    c: Chunk, key: str, span: tuple[int, int] | None, *, shown: bool = True,
    with_text: bool = True,
) -> None:
    """A chunk where it stands: its page with the passage marked, or the text around
    it; nothing but the chunk's text unless `shown` (its expander is open)."""
    ratio = [1, 1] if c.page is None else [2, 3]
    text_col, view_col = st.columns(ratio) if with_text else (None, st.container())
    if text_col is not None:
        text_col.markdown(highlight(c.text, span))
        if span is not None:
            text_col.caption("In bold: the sentence that best supports the answer.")
    if not shown:
        return
    with view_col:
        if c.page is None:
            _text_around(c, span)
        else:
            _page_of(c, key, span)


def _text_around(c: Chunk, span: tuple[int, int] | None) -> None:
    try:
        around = engine().text_view(c, sentence=span, collection=active_collection())
    except RagError as e:
        st.warning(escape_markdown(str(e)))
        return
    st.caption("In its document (marked):")
    st.html(text_view_html(around))


def _page_of(c: Chunk, key: str, span: tuple[int, int] | None) -> None:
    """The chunk's page with the passage marked, and buttons to step through pages."""
    page_key = f"pv-page-{key}"
    page = int(st.session_state.get(page_key, c.page))
    on_page = page == c.page
    try:
        view = engine().page_view(
            c.doc_id, page, chunk=c.index if on_page else None,
            sentence=span if on_page else None, collection=active_collection(),
        )  # fmt: skip
    except RagError as e:
        st.warning(escape_markdown(str(e)))
        return
    how = ", read by OCR" if view.ocr else ""
    marked = ": the passage is marked" if on_page else ""
    st.image(view.png, caption=f"Page {view.page} of {view.pages}{how}{marked}",
             use_container_width=True)  # fmt: skip
    b1, b2, b3 = st.columns(3)
    step = None
    if b1.button("Previous page", key=f"pv-prev-{key}", disabled=view.page <= 1):
        step = view.page - 1
    if b2.button("Next page", key=f"pv-next-{key}", disabled=view.page >= view.pages):
        step = view.page + 1
    if b3.button("The passage", key=f"pv-back-{key}", disabled=on_page):
        step = c.page
    if step is not None:
        st.session_state[page_key] = step
        st.rerun()


def source_title(s: Source, *, cited: bool) -> str:
    mark = " · cited" if cited else ""
    return f"\\[{s.n}\\] {escape_markdown(source_label(s))}{mark}"
