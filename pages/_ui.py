"""What every page shares: the engine, who is signed in, the active collection and
the sidebar.

The `DocChat` engine is this process's one engine for the current settings
(`rag.hosting.Host`): built on first use, with its background workers and the HTTP
API beside it, and rebuilt (the old one closed) when the environment or the secrets
file changes. Pages call `engine()` and render; they never build resources.

Who is signed in is settled here too (`signed_in_user`): single-user mode's one user,
a built-in account's session cookie, or `st.user` for OIDC; `engine()` is the shared
engine acting for that user, so every page sees only what the rules let them.
Rendering answers and sources is `pages/_render.py`; following jobs `pages/_jobs.py`.

Left out: per-user state on the server beyond what `rag` keeps (each browser session
has its own active collection and widgets).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from pathlib import Path

import streamlit as st

from rag import (
    COOKIE,
    LOCAL,
    DocChat,
    Host,
    Identity,
    RagError,
    Settings,
    User,
    escape_markdown,
)

ACTIVE = "active_collection"  # session key of the collection every page works on
FOCUS = "chat-focus"  # session key: (collection, doc_id) to start a focused chat on
PICKED = "collection-picked"  # session key: the user chose the active collection here
HOST = Host()  # this process's engine, its workers and its API


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


# The secrets file `Settings.from_env` reads by default (named once, in rag/core/settings.py).
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
    """The engine for the current settings acting for no one in particular
    (single-user mode's user), or an error on the page and a stop."""
    _require_app_frame()
    try:
        return HOST.engine(current_settings())
    except RagError as e:
        st.error(f"DocChat cannot start: {escape_markdown(str(e))}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


def api_address() -> str:
    """Where the API beside the app answers ("" when `DOCCHAT_API=false`)."""
    settings = shared_engine().settings
    if not settings.api:
        return ""
    return HOST.api(settings, str(st.get_option("server.address") or "127.0.0.1"))


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


def chat_with(collection: str, doc_id: str) -> None:
    """Open the chat page on a new conversation focused on one document (the chat
    page takes `FOCUS` from the session)."""
    st.session_state[FOCUS] = (collection, doc_id)
    st.switch_page("pages/chat.py")


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
    return engine().default_collection()


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
        st.session_state[PICKED] = True  # chosen by the user in this session

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
