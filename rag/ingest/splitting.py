"""Cut a loaded document into chunks that fit the embedding model.

Structure first: a chunk never crosses a block (page, section, function) boundary.
Inside a block, windows of `chunk_tokens` model tokens with `overlap` tokens shared
between neighbours; a window's end is pulled back to a sentence or line end when
one is near, so chunks read as whole sentences. Sizes are in the embedding model's
own tokens because that is what the model truncates on (MiniLM: 256 incl. specials).

Every chunk's text is exactly the slice `[start:end]` of its page's (or file's)
extracted text, so the UI and the citations can point at it precisely.

Left out: semantic (embedding-based) boundaries, merging tiny neighbouring blocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from rag.core.errors import ConfigError
from rag.core.models import Chunk, LoadedDocument

TokenSpans = Callable[[str], list[tuple[int, int]]]

_SENTENCE_END = (".", "!", "?", ":", ";", "。", "！", "？")


def check_sizes(chunk_tokens: int, overlap: int, max_tokens: int) -> None:
    """Reject sizes the model would silently truncate, or that cannot advance."""
    if chunk_tokens < 16:
        raise ConfigError(f"Chunk size {chunk_tokens} is too small (at least 16 tokens).")
    if chunk_tokens > max_tokens:
        raise ConfigError(
            f"Chunk size {chunk_tokens} tokens is more than the embedding model reads "
            f"({max_tokens}); text past that would be ignored."
        )
    if not 0 <= overlap < chunk_tokens // 2 + 1:
        raise ConfigError(f"Chunk overlap {overlap} must be between 0 and half the chunk size.")


def _is_boundary(text: str, spans: list[tuple[int, int]], j: int) -> bool:
    """True when a chunk may end after token j-1 (sentence end or line break follows)."""
    prev_end = spans[j - 1][1]
    if text[spans[j - 1][0] : prev_end].endswith(_SENTENCE_END):
        return True
    nxt = spans[j][0] if j < len(spans) else len(text)
    return "\n" in text[prev_end:nxt]


def windows(
    text: str, spans: list[tuple[int, int]], chunk_tokens: int, overlap: int
) -> list[tuple[int, int, int]]:
    """(char_start, char_end, n_tokens) of each window over one block's text."""
    n = len(spans)
    if n == 0:
        return []
    if n <= chunk_tokens:
        return [(spans[0][0], spans[-1][1], n)]
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < n:
        j = min(i + chunk_tokens, n)
        if j < n:
            # Pull the end back to a sentence/line boundary, but keep at least 60%.
            floor = i + max(1, (chunk_tokens * 3) // 5)
            for k in range(j, floor, -1):
                if _is_boundary(text, spans, k):
                    j = k
                    break
        out.append((spans[i][0], spans[j - 1][1], j - i))
        if j >= n:
            break
        nxt = max(j - overlap, i + 1)
        # Start the next window at a sentence start inside the overlap when there is one.
        for k in range(nxt, j):
            if _is_boundary(text, spans, k):
                nxt = k
                break
        i = nxt
    return out


def split(
    doc: LoadedDocument,
    token_spans: TokenSpans,
    *,
    chunk_tokens: int,
    overlap: int,
) -> list[Chunk]:
    """Chunks of `doc`, in document order, indexed from 0."""
    chunks: list[Chunk] = []
    newlines: list[int] | None = None
    if any(b.line_start is not None for b in doc.blocks):
        newlines = [i for i, ch in enumerate(doc.texts[0]) if ch == "\n"]
    for block in doc.blocks:
        block_text = doc.text_of(block)
        page_text = doc.texts[(block.page or 1) - 1]
        for a, b, n_tokens in windows(block_text, token_spans(block_text), chunk_tokens, overlap):
            start, end = block.start + a, block.start + b
            line_start = line_end = None
            if newlines is not None and block.line_start is not None:
                line_start = bisect.bisect_left(newlines, start) + 1
                line_end = bisect.bisect_left(newlines, end - 1) + 1
            chunks.append(
                Chunk(
                    doc_id=doc.doc_id,
                    file=doc.name,
                    index=len(chunks),
                    text=page_text[start:end],
                    start=start,
                    end=end,
                    page=block.page,
                    section=block.section,
                    line_start=line_start,
                    line_end=line_end,
                    tokens=n_tokens,
                    ocr=block.ocr,
                    context=doc.context,
                    anchor=block.anchor,
                )
            )
    return chunks
