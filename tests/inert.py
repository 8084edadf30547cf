"""Is rendered Markdown inert? Render it as CommonMark (raw HTML on, the worst case) and
list everything in the result that could load, link or run something.

markdown-it-py stands in for Streamlit's renderer (react-markdown + remark-gfm): both
follow CommonMark. GFM's bare-URL autolinking is checked separately, as a URL-looking
run of text outside code (markdown-it-py without linkify leaves those as text).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_TEXT_TAGS = frozenset({
    "p", "em", "strong", "code", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s", "del",
})  # fmt: skip
_HARMLESS_ATTRS = frozenset({"start", "style", "class"})  # list numbering, table alignment
_BARE_URL = re.compile(r"(?i)\b(?:https?|ftp)://|\bwww\.")


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TEXT_TAGS:
            self.problems.append(f"element <{tag}>")
        if tag == "code":
            self._code += 1
        for name, value in attrs:
            if name not in _HARMLESS_ATTRS:
                self.problems.append(f"attribute {tag}[{name}={value!r}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "code":
            self._code -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code and _BARE_URL.search(data):
            self.problems.append(f"autolinkable URL in {data.strip()[:60]!r}")


def render(markdown: str) -> str:
    return _MD.render(markdown)


def live_parts(markdown: str) -> list[str]:
    """Everything in `markdown`'s rendering that is not plain text; [] when inert."""
    checker = _Checker()
    checker.feed(render(markdown))
    checker.close()
    return checker.problems
