"""An answer's unbacked sentences marked for the chat (rag.views.markdown.marked_answer):
the only tags are DocChat's, whatever the model wrote."""

from __future__ import annotations

import re

from rag.core.models import Claim
from rag.views.markdown import marked_answer


def anchor(n: int) -> str | None:
    return f"source-0-{n}" if n == 1 else None


def claim(text: str, sentence: str, verdict: str, reason: str = "") -> Claim:
    start = text.index(sentence)
    return Claim(sentence, start, start + len(sentence), verdict, (1,), reason=reason)  # type: ignore[arg-type]


def test_an_unbacked_sentence_is_underlined_with_its_reason() -> None:
    text = "Revenue grew to $15.3 billion [1]. Costs were 12.4 % of revenue [1]."
    claims = (
        claim(text, "Revenue grew to $15.3 billion [1].", "supported"),
        claim(text, "Costs were 12.4 % of revenue [1].", "not_found", "12.4 % not in [1]"),
    )
    out = marked_answer(text, claims, anchor)
    assert out.count('<span style="text-decoration: underline') == 1
    underlined = re.search(r'underline[^>]*>(.*?)</span>', out)
    assert underlined and underlined.group(1).startswith("Costs were 12")
    assert "⚠ 12\\.4 \\% not in \\[1\\]" in out  # shown as text: [1] is no citation link
    assert out.count("](#source-0-1)") == 2  # the answer's citations still are


def test_the_model_cannot_make_tags_or_marks_of_its_own() -> None:
    text = "Costs were <img src=x onerror=alert(1)> \ue000high\ue001 [1]. Fine [1]."
    claims = (claim(text, "Costs were <img src=x onerror=alert(1)> \ue000high\ue001 [1].",
                    "uncited", '<b>"why"</b>'),)  # fmt: skip
    out = marked_answer(text, claims, anchor)
    tags = re.findall(r"(?<!\\)<(/?[a-z]+)", out)  # (an escaped "\<" starts no tag)
    assert set(tags) <= {"span", "/span"} and tags.count("span") == 2
    assert "\ue000" not in out and "\ue001" not in out
    assert "⚠ \\<b\\>" in out  # the reason is shown as text, not rendered


def test_a_sentence_across_lines_keeps_its_reason_without_an_underline() -> None:
    text = "- Costs were 12.4 %\n- of revenue [1]."
    claims = (claim(text, text, "not_found", "12.4 % not in [1]"),)
    out = marked_answer(text, claims, anchor)
    assert "underline" not in out and "⚠ 12\\.4 \\% not in" in out
    assert out.startswith("- Costs were 12.4 %\n- of revenue")
