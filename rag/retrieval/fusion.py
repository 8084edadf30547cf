"""Fusion: the candidates of the dense and BM25 searches, scored together, best first.

Fusion is a weighted sum of normalized scores, not reciprocal-rank fusion: on
COVID-QA, plain RRF loses to BM25 alone because it throws away how far ahead a
strong keyword match is. Every candidate has both real scores (search.py fetches the
missing one); each is min-max scaled over the candidates, then
`dense_weight * dense + (1 - dense_weight) * bm25`, with the weight chosen on the
COVID-QA evaluation (docs/retrieval.md). The adjustments (adjustments.py) then add
their scores, in the order of `adjustments.STEPS`, unless switched off.

Left out: re-ranking with a cross-encoder (no second model is shipped offline).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from rag.components.bm25 import LexicalResult
from rag.core.models import Chunk, Hit
from rag.retrieval.adjustments import (
    BOILERPLATE,
    COVERAGE,
    FIGURES,
    NAMED_WEIGHT,
    NAMES,
    PERIOD_WEIGHT,
    PERIODS,
    REPEAT_WEIGHT,
    SENTENCE,
    SENTENCE_WEIGHT,
    coverage_shift,
    figure_density,
    figure_weight,
    mixes,
    named_prior,
    repeated,
)


def minmax(x: np.ndarray) -> np.ndarray:
    """`x` scaled to 0..1 over its own range (all 0 when it has none)."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def fuse(
    chunks: Sequence[Chunk],
    dense: np.ndarray,
    lexical: np.ndarray,
    dense_weight: float,
    sentence: np.ndarray | None = None,
    names: LexicalResult | None = None,
    period: np.ndarray | None = None,
    without: Collection[str] = frozenset(),
) -> list[Hit]:
    """Candidates with their scores -> hits, best first.

    Each score is min-max scaled over the candidates; the fused score is
    `w * dense + (1 - w) * lexical + s * sentence`, plus
    `NAMED_WEIGHT * named_prior(...)` when `names` (the lexical search) gives one,
    plus `PERIOD_WEIGHT * period` (1 for a chunk of a document of the question's
    period, else 0) when one chunk is, plus `figure_weight(...) * figure_density(...)`
    when `names` is given, divided by its largest possible value so it stays within
    0..1; then `REPEAT_WEIGHT * repeated(...)` is taken off (and the result scaled back
    into 0..1). `w` and `s` are `dense_weight` and `SENTENCE_WEIGHT`, or
    `coverage_shift`'s when `names` is given. `dense_weight` 1 ranks by the dense score
    alone and 0 by BM25 alone (the others are then left out). A step named in
    `without` (adjustments.STEP_NAMES) is left out.
    """
    if not chunks:
        return []
    w = min(max(dense_weight, 0.0), 1.0)
    mixed = mixes(w)
    sentence_weight = SENTENCE_WEIGHT
    if mixed and names is not None and COVERAGE.name not in without:
        w, sentence_weight = coverage_shift(w, names.coverage)
    fused = w * minmax(dense) + (1.0 - w) * minmax(lexical)
    if mixed:
        total = 1.0
        if sentence is not None and SENTENCE.name not in without:
            fused = fused + sentence_weight * minmax(sentence)
            total += sentence_weight
        prior = None
        if names is not None and NAMES.name not in without:
            prior = named_prior(chunks, fused, names.named, names.has)
        if prior is not None:
            fused = fused + NAMED_WEIGHT * minmax(prior)
            total += NAMED_WEIGHT
        # All 0: the question names no period; all 1: it tells no candidate apart.
        on = PERIODS.name not in without
        if on and period is not None and period.any() and not period.all():
            fused = fused + PERIOD_WEIGHT * period
            total += PERIOD_WEIGHT
        if names is not None and FIGURES.name not in without:
            density = figure_density(chunks)
            figure_w = figure_weight(names.coverage, density, dense)
            fused = fused + figure_w * density
            total += figure_w
        fused = fused / total
        if BOILERPLATE.name not in without:
            fused = (fused + REPEAT_WEIGHT * (1.0 - repeated(chunks, fused))) / (
                1.0 + REPEAT_WEIGHT
            )
    # Ties (e.g. w = 1 with equal dense scores) keep the stronger raw score first.
    order = np.lexsort((-(dense if w >= 0.5 else lexical), -fused))
    return [
        Hit(
            chunk=chunks[i],
            score=float(fused[i]),
            dense_score=float(dense[i]),
            lexical_score=float(lexical[i]),
        )
        for i in order.tolist()
    ]
