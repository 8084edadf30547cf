"""Where the characters of one text of a page are in another text of the same page.

The loader's text of a PDF page comes from pypdf (or OCR, or Markdown tables); the
boxes to highlight come from pdfium's characters. The two texts say the same
thing with different spacing, line breaks, ligatures ("ﬁ" against "fi"), hyphens
and, on multi-column or table pages, sometimes in a different order. `align` maps
every character of the first to the character of the second that shows it:

1. Both sides drop whitespace and are NFKD-normalized without combining marks (one
   ligature becomes two letters, each pointing at the ligature's one character; "Ũ"
   and "U" with a combining tilde become "U").
2. difflib's longest common blocks give the matches in order; blocks shorter than
   `MIN_BLOCK` are dropped (on a page the engines order differently, difflib pairs
   stray letters across the page, which would take the letters the next passes need).
3. Runs still unmatched (text the two engines put in a different order) are
   searched for among the other side's unmatched characters, longest first, then
   backwards (right-to-left text: pdfium gives it in visual order).
4. What is left between two matched neighbours is matched within the gap between
   their counterparts (a hyphen or a footnote mark that split a block).

Left out: matching text that differs in its letters (a wrong ToUnicode map in one
engine), and characters one engine shows twice (fake bold drawn two times): the
second copy stays unmatched.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence

# pdfium writes a hyphen at a line break as \x02 (and some files use a soft hyphen).
_SAME = {"\x02": "-", "\xad": "-", "\u2010": "-", "\u2011": "-"}
MIN_RUN = 4  # shorter unmatched runs are not searched elsewhere: too many false hits
MIN_BLOCK = 3  # shorter blocks of the first pass are taken as chance (see step 2)
_MAX_RUNS = 400  # unmatched runs searched per page (a page in a different script is
# mostly unmatched; the first pass already placed what can be placed)


def keys(text: str) -> tuple[str, list[int]]:
    """`text` without whitespace, normalized, and each kept character's index."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        ch = _SAME.get(ch, ch)
        if ch.isspace() or ch == "\x00" or ch == "\ufffe":
            continue
        norm = unicodedata.normalize("NFKD", ch) if ord(ch) > 127 else ch
        for k in norm:
            # Accents and vowel marks are dropped: one engine gives "Ũ", the other "U"
            # and a combining tilde before or after it.
            if not k.isspace() and not unicodedata.combining(k):
                out.append(k)
                where.append(i)
    return "".join(out), where


def align(source: str, target: str) -> list[int]:
    """For each character of `source`, the index of the character of `target` that
    shows it, or -1 (whitespace, and text `target` does not have)."""
    a, a_at = keys(source)
    b, b_at = keys(target)
    mapped = [-1] * len(source)
    if not a or not b:
        return mapped
    pair = [-1] * len(a)  # the key of `b` each key of `a` is matched with
    used = [False] * len(b)
    if a == b:
        blocks: Sequence[tuple[int, int, int]] = [(0, 0, len(a))]
    else:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        blocks = [(m.a, m.b, m.size) for m in matcher.get_matching_blocks()
                  if m.size >= MIN_BLOCK]  # fmt: skip
    for i, j, size in blocks:
        for k in range(size):
            pair[i + k] = j + k
            used[j + k] = True
    _place_runs(a, b, pair, used)
    _fill_gaps(a, b, pair, used)
    for i, j in enumerate(pair):
        if j >= 0:
            mapped[a_at[i]] = b_at[j]
    return mapped


def _match(a: str, a0: int, a1: int, b: str, free: list[int], pair: list[int],
           used: list[bool], min_size: int, backwards: bool = False) -> None:  # fmt: skip
    """Match `a[a0:a1]` (read backwards with `backwards`) against the keys `free` of
    `b` (in order), blocks of at least `min_size` that no earlier match took."""
    rest = "".join(b[j] for j in free)
    run = a[a0:a1][::-1] if backwards else a[a0:a1]
    matcher = difflib.SequenceMatcher(None, run, rest, autojunk=False)
    for m in matcher.get_matching_blocks():
        if m.size < min_size:
            continue
        spots = [free[m.b + k] for k in range(m.size)]
        if any(used[j] for j in spots):
            continue  # taken by a longer run placed before
        for k, j in enumerate(spots):
            i = a1 - 1 - (m.a + k) if backwards else a0 + m.a + k
            if pair[i] < 0:
                pair[i] = j
                used[j] = True


def _place_runs(a: str, b: str, pair: list[int], used: list[bool]) -> None:
    """Step 3: long unmatched runs of `a` anywhere among the unused keys of `b`."""
    runs = [r for r in _runs(pair) if r[1] - r[0] >= MIN_RUN]
    if not runs:
        return
    free = [j for j, u in enumerate(used) if not u]
    runs.sort(key=lambda r: r[1] - r[0], reverse=True)
    for start, end in runs[:_MAX_RUNS]:
        _match(a, start, end, b, free, pair, used, MIN_RUN)
    # Right-to-left text: one engine gives it in logical order, pdfium in visual order.
    for start, end in _runs(pair)[:_MAX_RUNS]:
        if end - start >= MIN_RUN:
            free = [j for j, u in enumerate(used) if not u]
            _match(a, start, end, b, free, pair, used, MIN_RUN, backwards=True)


def _fill_gaps(a: str, b: str, pair: list[int], used: list[bool]) -> None:
    """Step 4: each unmatched run of `a` against the unused keys of `b` between the
    counterparts of its matched neighbours."""
    for start, end in _runs(pair):
        lo = pair[start - 1] if start > 0 else -1
        hi = pair[end] if end < len(a) else len(b)
        if hi <= lo + 1 or (start > 0 and lo < 0):
            continue
        free = [j for j in range(lo + 1, hi) if not used[j]]
        if free and len(free) <= 4 * (end - start) + 8:  # else not this run's place
            _match(a, start, end, b, free, pair, used, 1)


def _runs(pair: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each stretch of unmatched keys."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, j in enumerate([*pair, 0]):
        if j < 0 and start is None:
            start = i
        elif j >= 0 and start is not None:
            runs.append((start, i))
            start = None
    return runs
