"""The gate before a tuned embedding model replaces a collection's: held-out questions
scored with a search (the fused default, on the collection embedded by each model),
and the rule that decides.

A held-out question is answered when its pair's chunk is among the search's top `k`
(`hit@k`); `mrr@10` is the mean of 1/rank of that chunk within the top 10 (0 when it
is not there). The questions are of documents the model never trained on (the split
is by document: `tuning_pairs.split_by_document`), so a better score is the model
having learnt the collection's language, not its questions.

Pseudo-queries (sentences copied from their own chunk) are found by their words alone:
the fused search puts nearly every one first with either model, so it cannot tell the
models apart. A pseudo-query job is therefore decided on the dense search (the side the
tuning changes) and must leave the fused search no worse (`passes`).

Left out: the split itself, and the searches (the tuning service runs them on the old
collection and on the tuned copy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.core.models import Hit
from rag.finetune.tuning_pairs import TuningPair

MRR_DEPTH = 10


@dataclass(frozen=True)
class HeldOutScores:
    """One model's figures on the held-out questions."""

    questions: int
    hit_at_k: float  # share of questions whose chunk is in the top k
    mrr_at_10: float
    k: int

    def to_dict(self) -> dict[str, float | int]:
        """As kept with a tuned model: {"hit@5": x, "mrr@10": x, "questions": n}."""
        return {f"hit@{self.k}": round(self.hit_at_k, 4),
                "mrr@10": round(self.mrr_at_10, 4), "questions": self.questions}  # fmt: skip


def held_out_scores(
    test: Sequence[TuningPair], search: Callable[[str], Sequence[Hit]], k: int
) -> HeldOutScores:
    """`search` (a question -> hits, best first; at least `max(k, 10)` of them when
    there are that many) on each held-out pair's question. Pairs without a chunk id
    cannot be scored and are left out."""
    scored = [p for p in test if p.chunk_id]
    hits = 0
    reciprocal = 0.0
    for pair in scored:
        ids = [h.chunk.id for h in search(pair.question)]
        if pair.chunk_id in ids[:k]:
            hits += 1
        if pair.chunk_id in ids[:MRR_DEPTH]:
            reciprocal += 1.0 / (ids.index(pair.chunk_id) + 1)
    n = len(scored)
    return HeldOutScores(n, hits / n if n else 0.0, reciprocal / n if n else 0.0, k)


def better(tuned: HeldOutScores, base: HeldOutScores) -> bool:
    """Whether the tuned model is better than the base on the held-out questions: a
    strictly higher hit@k, or the same hit@k and a strictly higher mrr@10. A tie is not
    better: a swap re-embeds the whole collection, and is worth it only for a gain.
    Scores of no questions are never better."""
    if tuned.questions == 0 or base.questions == 0:
        return False
    if tuned.hit_at_k != base.hit_at_k:
        return tuned.hit_at_k > base.hit_at_k
    return tuned.mrr_at_10 > base.mrr_at_10


def passes(
    source: str,
    fused: tuple[HeldOutScores, HeldOutScores],
    dense: tuple[HeldOutScores, HeldOutScores] | None = None,
) -> bool:
    """The gate: (base, tuned) scores of the fused search, and for pseudo-queries of the
    dense search too. Questions (a studio set, a question file): the tuned model must be
    `better` on the fused search. Pseudo-queries: `better` on the dense search, and the
    fused search no worse (the base not better than the tuned)."""
    base, tuned = fused
    if source != "pseudo":
        return better(tuned, base)
    if dense is None:
        return False
    return better(dense[1], dense[0]) and not better(base, tuned)
