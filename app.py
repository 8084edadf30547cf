"""DocChat's frame: page config, sign-in, navigation over `pages/`, and the sidebar
every page shares.

`streamlit run app.py` starts here on every rerun; the page the user is on runs at
`page.run()`. Adding a page is one line in PAGES.

With no sign-in configured (`DOCCHAT_AUTH` unset) it serves only on a loopback
address: elsewhere every page is refused with the line that says what to set
(`make run` checks the same before it starts the server). With sign-in on, a browser
session that is not signed in gets the sign-in page and nothing else: every other
page's URL leads there.
"""

from __future__ import annotations

import streamlit as st

from pages import _ui
from rag import RagError, check_serving

st.set_page_config(page_title="DocChat", page_icon="💬", layout="wide")

try:
    check_serving(
        str(st.get_option("server.address") or ""),
        _ui.current_settings().auth,
        oidc_configured=_ui.oidc_configured(),
    )
    _ui.shared_engine().signin.bootstrap()  # DOCCHAT_ADMIN_USER, when no admin exists
except RagError as e:
    st.error(str(e))
    st.stop()

# No page icons: a page's icon becomes the favicon, and a ":material/...:" favicon is
# fetched from fonts.gstatic.com (DocChat stays offline); emoji need an emoji font.
PAGES = [
    st.Page("pages/chat.py", title="Chat", default=True),
    st.Page("pages/upload.py", title="Upload"),
    st.Page("pages/library.py", title="Library"),
    st.Page("pages/finetune.py", title="Fine-tuning"),
    st.Page("pages/compare.py", title="Compare"),
    st.Page("pages/evaluate.py", title="Evaluate"),
    st.Page("pages/api_keys.py", title="API"),
]
USERS = st.Page("pages/users.py", title="Users")  # administrators, with sign-in on

user = _ui.signed_in_user()
_ui.keep_cookie()
if user is None:
    st.navigation([st.Page("pages/signin.py", title="Sign in", default=True)]).run()
    st.stop()
admin_pages = [USERS] if user.admin and _ui.shared_engine().signin.required else []
page = st.navigation(PAGES + admin_pages)
_ui.sidebar()
page.run()
