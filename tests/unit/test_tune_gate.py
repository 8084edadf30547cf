"""The gate before a tuned model replaces a collection's: held-out scores from any
search, and the rule (strictly better hit@k, or the same hit@k and a better mrr@10)."""

from __future__ import annotations

from rag.core.models import Chunk, Hit
from rag.finetune.tune_gate import HeldOutScores, better, held_out_scores, passes
from rag.finetune.tuning_pairs import TuningPair


def _hits(*chunk_ids: str) -> list[Hit]:
    out = []
    for cid in chunk_ids:
        doc, index = cid.split(":")
        out.append(Hit(chunk=Chunk(doc, f"{doc}.md", int(index), "text", 0, 4), score=0.5))
    return out


def test_held_out_scores_count_the_pair_s_chunk_in_the_top_k() -> None:
    test = [TuningPair("q1", "p", "a", "a:0"), TuningPair("q2", "p", "b", "b:1"),
            TuningPair("q3", "p", "c", "c:0"), TuningPair("no chunk", "p", "c")]  # fmt: skip
    ranked = {
        "q1": _hits("a:0", "b:0"),  # rank 1
        "q2": _hits("a:0", "b:0", "c:0", "d:0", "e:0", "b:1"),  # rank 6: past k=5, in mrr@10
        "q3": _hits("a:0"),  # not found
    }
    scores = held_out_scores(test, lambda q: ranked[q], k=5)
    # The pair without a chunk id cannot be scored: left out, not counted as a miss.
    assert scores == HeldOutScores(questions=3, hit_at_k=1 / 3, mrr_at_10=(1 + 1 / 6) / 3, k=5)
    assert scores.to_dict() == {"hit@5": 0.3333, "mrr@10": 0.3889, "questions": 3}
    assert held_out_scores([], lambda q: [], k=5) == HeldOutScores(0, 0.0, 0.0, 5)


def test_only_a_strictly_better_model_passes_the_gate() -> None:
    base = HeldOutScores(10, 0.5, 0.40, 5)
    assert better(HeldOutScores(10, 0.6, 0.30, 5), base)  # hit@k decides first
    assert not better(HeldOutScores(10, 0.4, 0.90, 5), base)
    assert better(HeldOutScores(10, 0.5, 0.41, 5), base)  # same hit@k: mrr@10 decides
    assert not better(HeldOutScores(10, 0.5, 0.40, 5), base)  # a tie is no reason to swap
    assert not better(HeldOutScores(0, 0.0, 0.0, 5), HeldOutScores(0, 0.0, 0.0, 5))
    perfect = HeldOutScores(10, 1.0, 1.0, 5)  # nothing can be better than a perfect base
    assert not better(HeldOutScores(10, 1.0, 1.0, 5), perfect)


def test_pseudo_queries_are_decided_on_the_dense_side_with_the_fused_no_worse() -> None:
    fused = (HeldOutScores(10, 1.0, 0.95, 5), HeldOutScores(10, 1.0, 0.95, 5))  # saturated
    dense = (HeldOutScores(10, 0.7, 0.50, 5), HeldOutScores(10, 0.8, 0.60, 5))
    assert not passes("pairs", fused, dense)  # questions: the fused search must improve
    assert passes("pseudo", fused, dense)
    worse_fused = (fused[0], HeldOutScores(10, 0.9, 0.90, 5))
    assert not passes("pseudo", worse_fused, dense)
    assert not passes("pseudo", fused, (dense[1], dense[0]))
    assert not passes("pseudo", fused, None)
    assert passes("studio", (fused[0], HeldOutScores(10, 1.0, 0.96, 5)))
