"""DocChat's frame: page config, navigation over `pages/`, and the sidebar every page shares.

`streamlit run app.py` starts here on every rerun; the page the user is on runs at
`page.run()`. Adding a page is one line in PAGES.

Left out: authentication (run it on localhost or behind an authenticating proxy).
"""

from __future__ import annotations

import streamlit as st

from pages import _ui

st.set_page_config(page_title="DocChat", page_icon="💬", layout="wide")

# No page icons: a page's icon becomes the favicon, and a ":material/...:" favicon is
# fetched from fonts.gstatic.com (DocChat stays offline); emoji need an emoji font.
PAGES = [
    st.Page("pages/chat.py", title="Chat", default=True),
    st.Page("pages/upload.py", title="Upload"),
    st.Page("pages/library.py", title="Library"),
    st.Page("pages/finetune.py", title="Fine-tuning"),
    st.Page("pages/compare.py", title="Compare"),
    st.Page("pages/evaluate.py", title="Evaluate"),
]

page = st.navigation(PAGES)
_ui.sidebar()
page.run()
