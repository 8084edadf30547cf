"""API: where DocChat's HTTP API answers, and the signed-in user's API keys (make one,
shown once; revoke). The keys are kept as hashes (`rag.team.keys`); an OpenAI client takes
the address as its base URL and a key as its API key.

Left out: key scopes and expiry.
"""

from __future__ import annotations

import streamlit as st

from pages import _render, _ui
from rag import RagError, escape_markdown

app = _ui.engine()
st.title("API")
address = _ui.api_address() or "(DOCCHAT_API=false: start it with python -m rag serve)"
st.markdown(f"**Address:** {escape_markdown(address)} · interactive docs at /docs")
st.caption("Any OpenAI client works: its base URL is the address, its model "
           "docchat/<collection>, its API key one of yours.")  # fmt: skip
if not app.signin.required:
    st.caption("Single-user mode: on 127.0.0.1 the API needs no key.")

if new := st.session_state.pop("_new_api_key", None):
    st.success("Your new key, shown this once: copy it now.")
    st.code(new, language=None)

with st.form("new_key", clear_on_submit=True):
    name = st.text_input("What the key is for (optional)", max_chars=80)
    if st.form_submit_button("Make a key"):
        try:
            st.session_state["_new_api_key"] = app.create_api_key(name)[1]
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            st.rerun()

keys = app.api_keys()
if not keys:
    st.info("No API keys yet.")
for k in keys:
    row = st.container(horizontal=True)
    row.text(f"{k.id}…  {k.name}  made {_render.when(k.created)}")
    if row.button("Revoke", key=f"revoke-{k.id}"):
        try:
            app.revoke_api_key(k.id)
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            st.rerun()
