"""How a whole-document summary's work is cut up within its bounds: the parts that
each fit one call, how many partial summaries one combining call takes, the calls a
summary of so many parts makes, and how many parts the call cap lets it read.

Sizes are estimates (`prompts.estimate_tokens`, about 4 characters a token), like
every prompt budget in DocChat: safe, not exact.

Left out: running the calls (summary.py), the messages (summary_prompts.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.prompts import estimate_tokens
from rag.answering.summary_prompts import Passage
from rag.core.models import Chunk

Partial = tuple[int, int, str]  # a partial summary: its first and last passage, its text
_LABEL = 12  # tokens of a partial's heading ("Partial summary of pages 10-13 of 80:")


@dataclass(frozen=True)
class Plan:
    budget: int  # tokens of one call's prompt (`context_tokens`)
    max_calls: int
    map_overhead: int  # tokens of a map call's messages besides its passages
    combine_overhead: int  # of a combining or final call's, besides its partials

    @property
    def partial_tokens(self) -> int:
        """The longest partial summary (a map or combining call's `max_tokens`): an
        eighth of the budget, 375 of the default 3,000, so about six fit one call."""
        return max(100, self.budget // 8)

    @property
    def partial_words(self) -> int:
        return self.partial_tokens * 3 // 4  # about 0.75 English words a token

    def parts(self, numbered: Sequence[Passage]) -> list[list[Passage]]:
        """Consecutive passages in parts that each fit one call."""
        room = self.budget - self.map_overhead
        parts: list[list[Passage]] = [[]]
        used = 0
        for p in numbered:
            if parts[-1] and used + p.tokens > room:
                parts.append([])
                used = 0
            parts[-1].append(p)
            used += p.tokens
        return parts

    def fan_in(self) -> int:
        """About how many partial summaries one combining call takes."""
        room = self.budget - self.combine_overhead
        return max(2, room // (self.partial_tokens + _LABEL))

    def calls(self, parts: int) -> int:
        """The calls a summary of `parts` parts makes: one per part, the combining
        levels, the final call (one call alone when one part holds the document)."""
        if parts <= 1:
            return 1
        n, calls, fan_in = parts, parts + 1, self.fan_in()
        while n > fan_in:
            n = math.ceil(n / fan_in)
            calls += n
        return calls

    def affordable(self, parts: int) -> int:
        """The most parts that can be read within `max_calls` (at least one)."""
        m = parts
        while m > 1 and self.calls(m) > self.max_calls:
            m -= 1
        return m

    def groups(self, partials: Sequence[Partial]) -> list[list[Partial]]:
        """Consecutive partial summaries in groups that each fit one combining call."""
        room = self.budget - self.combine_overhead
        groups: list[list[Partial]] = [[]]
        used = 0
        for p in partials:
            cost = estimate_tokens(p[2]) + _LABEL
            if groups[-1] and used + cost > room:
                groups.append([])
                used = 0
            groups[-1].append(p)
            used += cost
        return groups

    def squeeze(self, partials: Sequence[Partial]) -> list[Partial]:
        """The partials cut at line ends to fit one call together: the last resort when
        time or calls ran out before they were combined."""
        room = max(20, (self.budget - self.combine_overhead) // max(1, len(partials)) - _LABEL)
        out = []
        for first, last, text in partials:
            kept: list[str] = []
            used = 0
            for line in text.strip().splitlines():
                used += estimate_tokens(line) + 1
                if used > room:
                    break
                kept.append(line)
            out.append((first, last, "\n".join(kept) or text[: room * 4]))
        return out


def label(chunks: Sequence[Chunk], first: int, last: int, *, of: int = 0) -> str:
    """Where passages first..last (1-based) are: "pages 7-9" ("... of 80" with `of`),
    or "passages 30-41" when the document has no pages."""
    a, b = chunks[first - 1], chunks[last - 1]
    if a.page is not None and b.page is not None:
        where = f"page {a.page}" if a.page == b.page else f"pages {a.page}-{b.page}"
    else:
        where = f"passages {first}-{last}"
    return f"{where} of {of}" if of else where
