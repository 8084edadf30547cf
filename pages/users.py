"""Users (administrators only): add a user, rename one, reset a password, make or
unmake an administrator, disable, remove (their collections handed over to the
administrator removing them, or deleted). The rules (administrators only, never
leaving no administrator) are in `rag.team.signin.UserAdmin`; this page renders.

Left out: e-mail invitations, groups.
"""

from __future__ import annotations

import streamlit as st

from pages import _render, _ui
from rag import RagError, escape_markdown

app = _ui.engine()
users = app.users

st.title("Users")
try:
    accounts = users.list()
except RagError as e:
    st.error(escape_markdown(str(e)))
    st.stop()

st.dataframe(
    [
        {
            "user": a.name,
            "role": "administrator" if a.admin else "user",
            "sign-in": "password" if a.password_hash else "identity provider",
            "state": "disabled" if a.disabled else "active",
            "since": _render.when(a.created),
        }
        for a in accounts
    ],
    hide_index=True,
    width="stretch",
)


# What happens to a removed user's collections: handed over, or deleted.
REMOVAL = {"hand them over to me": False, "delete them": True}


def done(message: str) -> None:
    st.session_state["_users_done"] = message
    st.rerun()


if message := st.session_state.pop("_users_done", None):
    st.success(escape_markdown(message))

with st.expander("Add a user", expanded=not accounts), st.form("add_user", clear_on_submit=True):
    name = st.text_input("User name")
    password = st.text_input("Password", type="password", autocomplete="new-password")
    admin = st.checkbox("Administrator")
    if st.form_submit_button("Add"):
        try:
            users.add(name, password, admin=admin)
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            done(f"Added {name.strip().lower()}.")

if accounts:
    st.subheader("Change a user")
    names = [a.name for a in accounts]
    pick = st.selectbox("User", names, key="_users_pick")
    account = next(a for a in accounts if a.name == pick)
    yourself = account.id == app.user.id
    try:
        c1, c2 = st.columns(2)
        if c1.button("Make user" if account.admin else "Make administrator"):
            users.set_role(account.name, admin=not account.admin)
            done(f"{account.name} is now {'a user' if account.admin else 'an administrator'}.")
        if c2.button("Enable" if account.disabled else "Disable"):
            users.set_disabled(account.name, not account.disabled)
            done(f"{account.name} is {'enabled' if account.disabled else 'disabled'}.")
        with st.form("rename_user", clear_on_submit=True):
            new_name = st.text_input("New name", help="Everything the user has stays theirs.")
            if st.form_submit_button("Rename"):
                renamed = users.rename(account.name, new_name)
                done(f"{account.name} is now {renamed.name}.")
        if account.password_hash:
            with st.form("reset_password", clear_on_submit=True):
                new = st.text_input("New password", type="password", autocomplete="new-password")
                if st.form_submit_button("Reset the password"):
                    users.reset_password(account.name, new)
                    done(f"New password set for {account.name}; their sessions ended.")
        with st.form("remove_user"):
            st.caption("Removing a user ends their sessions and revokes their API keys; "
                       "a new account of the same name starts with nothing.")  # fmt: skip
            choice = st.radio("Their collections", list(REMOVAL), horizontal=True)
            sure = st.checkbox(f"Yes, remove {account.name}", disabled=yourself)
            if st.form_submit_button("Remove", disabled=yourself):
                if not sure:
                    raise RagError("Tick the box to confirm the removal.")
                delete = REMOVAL[choice]
                gone = users.remove(account.name, delete_collections=delete)
                what = "deleted" if delete else "now yours"
                listed = f": {', '.join(gone)}" if gone else ""
                done(f"Removed {account.name}; {len(gone)} collection(s) of theirs {what}"
                     f"{listed}.")  # fmt: skip
    except RagError as e:
        st.error(escape_markdown(str(e)))
