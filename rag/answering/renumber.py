"""Citations renumbered as a streamed answer passes: a summary's final answer cites the
document's passages by their numbers in the whole document ([17], [243]); the user
sees the cited passages numbered 1 to m, in order of first citation, in the text and
in the sources alike.

`Renumber.feed` takes text deltas and returns them with every complete citation
rewritten; an opening bracket that may still become a citation is held back until it
closes (or plainly is not one). Numbers outside the document are dropped, and so is a
bracket left with none. Citations are `rag.core.text`'s: [1], [1, 2], [3-5], [1][2].

Left out: citations of another shape ("(source 3)", footnotes).
"""

from __future__ import annotations

import re

from rag.core.text import CITATION, citations

_MAYBE = re.compile(r"\[[\d\s,\-\u2013]{0,24}$")  # what may still grow into a citation


class Renumber:
    def __init__(self, valid: int) -> None:
        self.valid = valid  # passages are numbered 1..valid
        self.order: list[int] = []  # the passage numbers cited, in order of first use
        self._new: dict[int, int] = {}
        self._held = ""

    def feed(self, delta: str) -> str:
        """The text ready to show: `delta` after what was held, citations rewritten."""
        text = self._held + delta
        hold = _MAYBE.search(text)
        cut = hold.start() if hold else len(text)
        self._held = text[cut:]
        return CITATION.sub(self._rewrite, text[:cut])

    def flush(self) -> str:
        """What is still held, at the end of the text."""
        text, self._held = self._held, ""
        return CITATION.sub(self._rewrite, text)

    def text(self, text: str) -> str:
        """A whole text renumbered (continuing the numbering so far)."""
        return self.feed(text) + self.flush()

    def number(self, n: int) -> int:
        """The new number of passage `n` (given on first use)."""
        if n not in self._new:
            self.order.append(n)
            self._new[n] = len(self.order)
        return self._new[n]

    def _rewrite(self, m: re.Match[str]) -> str:
        found = [n for n in citations(m.group(0)) if 1 <= n <= self.valid]
        new = list(dict.fromkeys(self.number(n) for n in found))
        return "".join(f"[{n}]" for n in new)
