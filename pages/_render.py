"""What pages draw of answers and their sources: the question and answer bubbles,
the notes under an answer, and each source beside its page (the passage marked) or
the text around it; and small formatters the pages share.

Every piece of document or model text goes through `rag.views.markdown` before it
reaches a Markdown-rendering call; the one HTML written here is an anchor id DocChat
makes. Left out: the chat loop itself (`pages/chat.py`).
"""

from __future__ import annotations

import re
import time

import streamlit as st

from pages._ui import active_collection, chat_with, engine
from rag import (
    Answer,
    Chunk,
    RagError,
    Source,
    Turn,
    claims_line,
    escape_markdown,
    highlight,
    link_citations,
    marked_answer,
    safe_markdown,
    source_label,
    supporting_span,
    text_view_html,
)


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



def render_question(question: str) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(question, fold=False).replace("\n", "  \n"))


def render_answer(turn: Turn, index: int, *, latest: bool) -> None:
    """A saved answer (inside its chat message): the text (each sentence its sources
    do not back underlined, with why), then its details."""
    a = turn.answer
    if a.text:
        # HTML on only for a checked answer: its only tags are marked_answer's own.
        st.markdown(answer_markdown(a, index), unsafe_allow_html=bool(a.claims))
    render_answer_details(a, index, stopped=turn.stopped, latest=latest)


def render_claims(answer: Answer, index: int) -> None:
    """'4 of 5 sentences backed by their sources', and each sentence with its verdict;
    a backed one opens its evidence, marked on its page, in the sources below."""
    st.caption(f"Checked: {claims_line(answer.claims)}.")
    with st.expander("Each sentence and its evidence", key=f"claims-{index}"):
        for i, c in enumerate(answer.claims):
            icon, why = _VERDICTS[c.verdict], c.operation or c.reason
            text = escape_markdown(c.sentence) + (f" *({escape_markdown(why)})*" if why else "")
            if c.source and c.verdict in ("supported", "computed"):
                if st.button(f"{icon} {text}", key=f"claim-{index}-{i}", type="tertiary"):
                    st.session_state[f"evidence-{index}"] = (c.source, c.span)
                    st.rerun()
            else:
                st.markdown(f"{icon} {text}")


_VERDICTS = {
    "supported": ":green[✓]",
    "computed": ":green[=]",
    "not_found": ":orange[⚠]",
    "uncited": ":orange[?]",
}


def render_answer_details(answer: Answer, index: int, *, stopped: bool, latest: bool) -> None:
    """Everything under an answer: failure or stop notes, query, prompt size, retrieval
    notes (a skipped re-ranking), sources."""
    if stopped:
        st.caption("Stopped before the end.")
    if answer.error:
        more = " The sources found are below." if answer.sources else ""
        # The error may quote the LLM server's own words: shown as text, never as Markdown.
        error = escape_markdown(answer.error)
        st.error(f"The answer failed: {error}{more} The conversation is kept.")
    facts = []
    if answer.kind == "summary":
        facts.append("read the whole document")
    elif answer.query:
        facts.append(f"Searched for: {escape_markdown(answer.query)}")
    if answer.kind == "summary" and answer.mode == "llm":
        used, made = answer.prompt_tokens, answer.completion_tokens
        facts.append(f"{answer.llm_calls} LLM call(s), about {used + made:,} tokens "
                     f"({used:,} in, {made:,} out)")  # fmt: skip
    elif answer.mode == "llm":
        facts.append(f"prompt: about {answer.prompt_tokens:,} tokens")
    elif answer.mode == "extractive":
        facts.append("extractive mode: no prompt sent")
    if facts:
        st.caption(" · ".join(facts))
    for note in answer.notes:  # e.g. re-ranking skipped: DocChat's own words, escaped anyway
        st.caption(escape_markdown(note))
    if answer.left_out:
        ranks = ", ".join(str(r) for r in answer.left_out)
        st.caption(
            f"{len(answer.left_out)} retrieved chunk(s) left out to fit the prompt budget "
            f"(ranks {ranks})."
        )
    if answer.claims:
        render_claims(answer, index)
    if answer.sources:
        render_sources(answer, index, latest=latest)


def answer_markdown(answer: Answer, index: int) -> str:
    """The answer, safe, its citations [n] linked to the sources below it (and, once
    checked, its unbacked sentences marked: render with HTML allowed then)."""
    known = {s.n for s in answer.sources}

    def anchor(n: int) -> str | None:
        return source_anchor(index, n) if n in known else None

    if answer.claims:
        return marked_answer(answer.text, answer.claims, anchor)
    return link_citations(safe_markdown(answer.text), anchor)


def source_anchor(index: int, n: int) -> str:
    return f"source-{index}-{n}"


def render_sources(answer: Answer, index: int, *, latest: bool) -> None:
    """One expander per source, labelled [n] like the citations in the answer: the
    chunk's text beside its page (PDFs, images) or the text around it."""
    st.markdown("**Sources**")
    evidence = st.session_state.get(f"evidence-{index}")  # a sentence's, picked above
    for s in answer.sources:
        cited = s.n in answer.cited
        # An anchor for the answer's [n] links: an id DocChat writes, nothing else.
        st.markdown(f'<div id="{source_anchor(index, s.n)}"></div>', unsafe_allow_html=True)
        shows = evidence is not None and evidence[0] == s.n
        opened = shows or (latest and not evidence and (cited or (not answer.cited and s.n == 1)))
        # A lazy expander: its page is rendered when it is opened (a rerun), not before.
        box = st.expander(source_title(s, cited=cited), expanded=opened,
                          key=f"src-{index}-{s.n}", on_change="rerun")  # fmt: skip
        with box:
            span = supporting_span(answer.text, s.n, s.chunk.text) if answer.text else None
            if evidence is not None and shows and evidence[1]:
                span = (int(evidence[1][0]), int(evidence[1][1]))  # the picked sentence's
            render_source_view(s.chunk, f"{index}-{s.n}", span, shown=box.open is not False)
            if st.button("Chat with this document", icon=":material/forum:",
                         key=f"focus-{index}-{s.n}"):  # fmt: skip
                chat_with(active_collection(), s.chunk.doc_id)


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
        if c.url:  # a web page's chunk: its section on the page itself
            text_col.link_button("Open the page", c.url, icon=":material/open_in_new:",
                                 key=f"open-{key}")  # fmt: skip
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
