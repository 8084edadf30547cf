"""Web pages in the pages: the Upload page's URL box (pages, a sitemap or a feed) and the
Library's Refresh of a collection's web pages.

Both run in the page's run, under a spinner, and show one row per page (indexed,
unchanged, rejected with the reason: refused, robots.txt, over a limit). The engine
checks the right to add to the collection first (`DocChat.web`). Beside Refresh, the
collection's refresh schedule (every N hours, 0: never), which the workers follow.

Left out: web ingests as background jobs (a crawl is bounded by DOCCHAT_URL_MAX_PAGES).
"""

from __future__ import annotations

import streamlit as st

from rag import DocChat, IngestResult, RagError, escape_markdown


def _show(results: list[IngestResult]) -> None:
    bad = sum(r.status == "rejected" for r in results)
    summary = ", ".join(
        f"{n} {s}" for s in ("indexed", "unchanged", "rejected")
        if (n := sum(r.status == s for r in results))
    )  # fmt: skip
    (st.warning if bad else st.success)(summary or "No pages found.")
    st.dataframe(
        [{"page": r.file, "result": r.status, "details": r.reason or (r.replaced and "replaced")}
         for r in results],
        hide_index=True,
        width="stretch",
    )  # fmt: skip


def url_box(app: DocChat, target: str, *, create: dict[str, int] | None) -> None:
    """Web pages into `target`: one URL a line, or a sitemap's or a feed's. `create`: the
    chunk settings of a collection that does not exist yet."""
    settings = app.settings
    with st.expander("Add web pages", icon=":material/public:"), st.form("web_urls"):
        kind = st.radio("From", ["pages", "a sitemap", "a feed"], horizontal=True,
                        help="A sitemap.xml (or sitemap index), or an RSS or Atom feed: "
                             "each of its pages is added.")  # fmt: skip
        limits = f"At most {settings.url_max_pages} pages, {settings.url_max_mb:g} MB each."
        text = st.text_area("URLs (one a line)", placeholder="https://example.com/guide",
                            help=f"{limits} robots.txt is respected.")  # fmt: skip
        if not st.form_submit_button("Add"):
            return
        urls = [u.strip() for u in text.splitlines() if u.strip()]
        if not urls or not target:
            st.warning("Give a URL, and name the collection." if not target else "Give a URL.")
            return
        try:
            with st.spinner(f"Fetching and indexing ({len(urls)} URL(s))\u2026"):
                if create is not None:
                    app.create_collection(target, **create)
                if kind == "pages":
                    results = app.web.add(urls, collection=target)
                elif kind == "a sitemap":
                    results = app.web.add(sitemap=urls[0], collection=target)
                else:
                    results = app.web.add(feed=urls[0], collection=target)
        except RagError as e:
            st.error(escape_markdown(str(e)))
            return
        _show(results)


def refresh_button(app: DocChat, collection: str) -> None:
    """Fetch the collection's web pages again; the changed ones are replaced."""
    if not any(d.name.startswith(("http://", "https://")) for d in app.documents(collection)):
        return
    if st.button("Refresh web pages", icon=":material/refresh:",
                 help="Fetch each web page again (If-None-Match / If-Modified-Since); a "
                      "changed page replaces its document, an unchanged one stays."):  # fmt: skip
        try:
            with st.spinner("Fetching the web pages again\u2026"):
                results = app.web.refresh(collection)
        except RagError as e:
            st.error(escape_markdown(str(e)))
        else:
            _show(results)
    _schedule(app, collection)


def _schedule(app: DocChat, collection: str) -> None:
    """The collection's refresh schedule, which the background workers follow."""
    with st.form("web_schedule"):
        hours = st.number_input(
            "Refresh every N hours (0: never)", min_value=0.0, step=1.0,
            value=app.web.schedule_of(collection),  # (the engine refuses more than a year)
            help="The background workers fetch the web pages again on this schedule.",
        )  # fmt: skip
        if not st.form_submit_button("Save"):
            return
        try:
            app.web.schedule(hours, collection)
        except RagError as e:
            st.error(escape_markdown(str(e)))
            return
        st.success(f"Refreshed every {hours:g} hours." if hours else "No scheduled refresh.")
