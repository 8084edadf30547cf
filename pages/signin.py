"""Sign in: a built-in account's name and password, or the identity provider
(`st.login`), or, on the first start with accounts on, the first administrator.

Only this page is served until the browser session is signed in (app.py).
"""

from __future__ import annotations

import streamlit as st

from pages import _ui
from rag import RagError, escape_markdown

door = _ui.shared_engine().signin

st.title("Sign in to DocChat")
if error := st.session_state.pop(_ui.OIDC_ERROR, None):
    st.error(escape_markdown(error))

if door.needs_first_admin():
    st.info("No administrator yet: create the first one (it manages users and sees "
            "every collection).")  # fmt: skip
    with st.form("first_admin"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        again = st.text_input("Password again", type="password")
        if st.form_submit_button("Create the administrator and sign in", type="primary"):
            try:
                if password != again:
                    raise RagError("The two passwords differ.")
                door.create_first_admin(name, password)
                _ui.sign_in(name, password)
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                st.rerun()
elif door.passwords:
    with st.form("sign_in"):
        name = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                _ui.sign_in(name, password)
            except RagError as e:
                st.error(escape_markdown(str(e)))
            else:
                st.rerun()

if door.oidc:
    if door.passwords:
        st.caption("or")
    for provider, label in _ui.oidc_providers():
        if st.button(f"Sign in with {label}", key=f"login-{provider or 'default'}"):
            st.login(provider) if provider else st.login()
