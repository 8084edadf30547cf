"""Each sentence of an answer checked against its sources: supported, computed, not
found or uncited (docs/claims.md).

`check_claims` takes the answer's claims (`claim_text.answer_sentences`: its sentences,
list items, quoted lines and table rows, without headings and fragments) and decides
each against the sources it cites, or all of them when it cites none, in this order:

1. word for word: a sentence found in a source (citations and spaces aside) is
   supported, by "quote" for a quoted line (an extractive answer passes so);
2. figures (figures.py): each must be a figure of a cited source (`same_figure`), or
   one operation on two of them (`computed_from`: "computed", with the operation);
   else it is not found: "12.4 % not in [2]". When every figure is found and one of
   them tells (not a year or date, not a small count), the figures decide: supported;
3. names: a capitalized word of the sentence (`doc_terms.named_words`), or a naming
   word of the question that the sentence repeats, that no cited source names (in its
   text, its document's running header or file name) is not found: "Pfizer not in [1]";
4. words: the sentence against its best evidence unit (a sentence, or a table's row)
   of the cited sources: the unit with the largest share of the sentence's content
   words. From `LEANS_SUPPORTED` it is supported, below not found (uncited when it
   cites nothing). With an embedder, the cosine similarity of the sentence and its
   candidate units (those sharing the most words; every sentence's embedded in one
   call) makes a verdict sure or not, and saves a sentence in other words (supported,
   unsure). Unsure verdicts (`sure=False`) are what the LLM judge (claim_judge.py)
   re-decides. The evidence of a sentence not found so is its closest unit (what the
   judge is shown).

A sentence without citations that some source backs is supported, with that source
as its evidence. The thresholds were chosen on `python -m rag eval claims`
(docs/claims.md gives the figures).

Left out: what words cannot show: a negation ("did not rise"), a wrong relation
between two right figures ("sales rose from 5 to 4"), the wrong period for a right
figure; a figure's sign when only one side writes it; names written lower case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.answering.claim_figures import FigureCheck, check_figures
from rag.answering.claim_text import (
    Sentence,
    SourceText,
    answer_sentences,
    content_words,
    read_sources,
)
from rag.components.embeddings import Embedder
from rag.core.doc_terms import named_words
from rag.core.models import Claim, Source, Verdict

# Thresholds, chosen on `python -m rag eval claims` (docs/claims.md). A sentence's best
# unit is the one with the largest share of its content words: supported from
# `LEANS_SUPPORTED` (sure from `SURE_SUPPORTED`, or with a cosine of `SURE_COSINE`), not
# found below, sure under `SURE_NOT_FOUND` when the cosine is under `NEAR_COSINE`. Words
# lead because on COVID-QA's sentences decided here the cosine alone separates badly: a
# wrong citation is to a chunk on the same topic (at 0.60 it catches 56 % of them, the
# word share at 0.55 94 %, both marking 3 % of the supported ones). The cosine rescues
# a sentence in other words: `PARAPHRASE_COSINE` makes it supported, unsure.
LEANS_SUPPORTED = 0.55
SURE_SUPPORTED = 0.80
SURE_NOT_FOUND = 0.35
SURE_COSINE = 0.80
NEAR_COSINE = 0.70
PARAPHRASE_COSINE = 0.85
CANDIDATES = 6  # evidence units per sentence that are embedded: those sharing most words
_PERIOD = re.compile(r"^(?:Q[1-4]|H[12]|FY\d*|[A-Z])$")
# A company's legal form names nothing on its own ("Microsoft Corporation").
_FORMS = frozenset(
    "Inc Corp Corporation Company Co Ltd Limited LLC Plc PLC Group Holdings".split()  # noqa: SIM905
)
_MONTHS = frozenset(
    """January February March April May June July August September October November December
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday""".split()  # noqa: SIM905
)


@dataclass
class _Draft:
    """A sentence on its way to a verdict."""

    sentence: Sentence
    pool: list[SourceText]
    figures: FigureCheck = field(default_factory=FigureCheck)
    claim: Claim | None = None  # decided before the words


def check_claims(
    text: str, sources: Sequence[Source], *, embedder: Embedder | None, question: str = ""
) -> tuple[Claim, ...]:
    """Every claim of the answer `text` decided against `sources` (the module docstring
    says how); `embedder` None: words only. `question` lends its naming words."""
    read = read_sources(sources)
    asked = {_bare(w).lower() for w in named_words(question)}
    drafts = [_first_pass(s, read, asked) for s in answer_sentences(text)]
    _by_words([d for d in drafts if d.claim is None], embedder)
    return tuple(d.claim for d in drafts if d.claim is not None)


def _claim(d: _Draft, verdict: Verdict, by: str, **fields: object) -> Claim:
    s = d.sentence
    return Claim(sentence=s.text, start=s.start, end=s.end, verdict=verdict, citations=s.cites,
                 by=by, **fields)  # type: ignore[arg-type]  # fmt: skip


def _where(d: _Draft, what: str) -> str:
    """ "12.4 % not in [2]", or "... not in the sources" for an uncited sentence."""
    if d.sentence.cites:
        return f"{what} not in [{', '.join(str(n) for n in d.sentence.cites)}]"
    return f"{what} not in the sources"


def _missing(d: _Draft, what: str, by: str) -> Claim:
    """Not found (uncited when the sentence cites nothing): `what` is in no source."""
    verdict: Verdict = "not_found" if d.sentence.cites else "uncited"
    return _claim(d, verdict, by, reason=_where(d, what))


def _first_pass(s: Sentence, read: dict[int, SourceText], asked: set[str]) -> _Draft:
    """Word for word, figures and names; what they leave undecided has `claim` None."""
    valid = [read[n] for n in s.cites if n in read]
    d = _Draft(s, valid if s.cites else list(read.values()))
    if not d.pool:
        why = f"[{s.cites[0]}] is not a source" if s.cites else "no sources"
        d.claim = _claim(d, "not_found" if s.cites else "uncited", "words", reason=why)
        return d
    for p in d.pool:
        span = p.find(s.body)
        if span is not None:
            d.claim = _claim(d, "supported", "quote" if s.quote else "words", source=p.n,
                             span=span)  # fmt: skip
            return d
    f = d.figures = check_figures(s.body, d.pool)
    if f.missing:
        d.claim = _missing(d, f.missing, "figures")
        return d
    for name in _names(s.body):
        # A name the question gives is the chunk's often without the chunk saying so
        # ("Intel" in none of a 10-Q's tables): it cannot fail the sentence.
        if name.lower() not in asked and not any(p.names(name) for p in d.pool):
            d.claim = _missing(d, name, "names")
            return d
    if f.operation:
        d.claim = _claim(d, "computed", "figures", source=f.source, span=f.span,
                         operation=f.operation, sure=not f.unsure)  # fmt: skip
    elif f.telling and f.source:
        d.claim = _claim(d, "supported", "figures", source=f.source, span=f.span,
                         sure=not f.unsure)  # fmt: skip
    return d


def _bare(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word)


def _names(body: str) -> list[str]:
    """The names a sentence uses: its capitalized words (not its first, unless more
    capitals follow or it is a possessive: "Microsoft's revenue"); not periods ("Q3"),
    months or weekdays (dates are figures), nor single letters."""
    out = [_bare(w) for w in named_words(body)]
    first = re.match(r"[\"'(\[]*([A-Z][\w&-]*)['\u2019]s\b", body)
    if first:
        out.insert(0, first.group(1))
    return [
        w
        for w in dict.fromkeys(out)
        if len(w) > 1 and not _PERIOD.match(w) and w not in _MONTHS and w not in _FORMS
    ]


def _by_words(drafts: list[_Draft], embedder: Embedder | None) -> None:
    """Decide the rest by words and, with `embedder`, the embeddings of each sentence
    and its candidate evidence units, all in one call."""
    if not drafts:
        return
    picks = []  # per draft: [(source, unit index, word share)]
    for d in drafts:
        words = content_words(d.sentence.body)
        scored = [
            (len(words & p.words[i]) / max(len(words), 1), -p.n, i, p)
            for p in d.pool
            for i in range(len(p.units))
        ]
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        picks.append([(p, i, share) for share, _, i, p in scored[:CANDIDATES]])
    cosines: list[list[float]] = [[] for _ in drafts]
    if embedder is not None:
        texts: list[str] = [d.sentence.body for d in drafts]
        index: dict[tuple[int, int], int] = {}
        for cands in picks:
            for p, i, _ in cands:
                if (p.n, i) not in index:
                    index[(p.n, i)] = len(texts)
                    a, b = p.units[i]
                    texts.append(p.text[a:b])
        vectors = embedder.embed(texts)
        for k, cands in enumerate(picks):
            rows = [index[(p.n, i)] for p, i, _ in cands]
            cosines[k] = (vectors[rows] @ vectors[k]).tolist() if rows else []
    for k, d in enumerate(drafts):
        d.claim = _verdict(d, picks[k], cosines[k])


def _verdict(d: _Draft, cands: list[tuple[SourceText, int, float]], cos: list[float]) -> Claim:
    """The verdict of the words (and cosines, if any) of a sentence's candidate units."""
    cited = d.sentence.cites
    if not cands:
        return _weak(d, "not_found" if cited else "uncited", True, None, None)
    shares = [share for _, _, share in cands]
    cosines = cos or [0.0] * len(cands)
    k = max(range(len(cands)), key=lambda i: (shares[i], cosines[i]))
    share, near = shares[k], max(cosines)
    if share >= LEANS_SUPPORTED:
        sure = share >= SURE_SUPPORTED or cosines[k] >= SURE_COSINE
        return _weak(d, "supported", sure, *cands[k][:2])
    if near >= PARAPHRASE_COSINE:  # in other words: supported, for the judge to confirm
        best = max(range(len(cands)), key=lambda i: cosines[i])
        return _weak(d, "supported", False, *cands[best][:2])
    sure = share < SURE_NOT_FOUND and near < NEAR_COSINE
    return _weak(d, "not_found" if cited else "uncited", sure, *cands[k][:2])


def _weak(d: _Draft, verdict: Verdict, sure: bool, p: SourceText | None, unit: int | None) -> Claim:
    """A verdict of the words, with its evidence: the figures' when they were found (the
    better evidence), else the unit's; unsure when a figure could not be checked."""
    if d.figures.source:
        n, span = d.figures.source, d.figures.span
    else:
        n, span = (p.n, p.units[unit]) if p is not None and unit is not None else (0, None)
    sure = sure and not d.figures.unsure
    if verdict == "supported":
        return _claim(d, verdict, "words", source=n, span=span, sure=sure)
    cited = d.sentence.cites
    where = ", ".join(str(c) for c in cited)
    reason = f"no sentence of [{where}] says this" if cited else "no source says this"
    if d.figures.unchecked:
        reason = _where(d, d.figures.unchecked)
    return _claim(d, verdict, "words", source=n, span=span, reason=reason, sure=sure)
