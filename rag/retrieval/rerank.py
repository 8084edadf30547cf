"""Re-ranking the fused hits (optional: `DOCCHAT_RERANK`), never at the cost of an answer.

`rerank` sends the top `candidates` hits (best first, as fusion ranked them) to a
re-ranker (rag/components/rerankers.py) and puts them in the order of its scores, ties
in their fused order; the hits after them keep their fused order, after them. It is
bounded in time: the re-ranker runs in a daemon thread and is waited for at most its
`timeout` seconds (an LLM client's own timeout and retries are longer, and a hung
server must not hold a question up). When it fails, is late, or sends scores that do
not cover every candidate, the fused order is used as it is and a note says why, e.g.
"Re-ranking was skipped: the re-ranking service did not answer in 5 s; the fused order
is used."

What a re-ranked hit's `Hit.score` is: its fused score, unchanged. Re-ranking changes
the order, not the scores, so a score means the same whether or not the re-ranker
answered (a re-ranker's scale is its own: a cross-encoder's probability, a grade out of
10); after re-ranking the hits are no longer sorted by score. The `min_score` filter
reads `dense_score`, so it is unaffected.

Left out: which re-ranker (the settings pick it, in the wiring), and re-ranking a
question's whole candidate pool (only the fused top `candidates` are sent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from rag.components.rerankers import Ranking, Reranker
from rag.core.errors import RagError, RerankError
from rag.core.models import Hit

log = logging.getLogger(__name__)


def reorder(hits: Sequence[Hit], scores: Mapping[int, float], candidates: int) -> list[Hit] | None:
    """The first `candidates` hits sorted by `scores` (index -> score, higher first;
    ties keep their order), the rest after them as they were; None when `scores` does
    not give every one of the first `candidates` a score."""
    n = min(candidates, len(hits))
    if any(i not in scores for i in range(n)):
        return None
    top = sorted(range(n), key=lambda i: -scores[i])  # sorted() is stable: ties keep order
    return [hits[i] for i in top] + list(hits[n:])


def rerank(query: str, hits: Sequence[Hit], reranker: Reranker) -> tuple[list[Hit], str]:
    """(hits, note): the hits re-ranked, note ""; or the hits as they came and a note
    that says why re-ranking was skipped. Fewer than 2 hits are returned as they are,
    without a call (there is no order to change)."""
    n = min(reranker.candidates, len(hits))
    if n < 2:
        return list(hits), ""
    texts = [h.chunk.text for h in hits[:n]]
    try:
        ranking = within(reranker.timeout, lambda: reranker.rerank(query, texts), reranker.label)
    except RagError as e:
        return list(hits), skipped(str(e))
    ordered = reorder(hits, ranking.scores, n)
    if ordered is None:
        got = sum(1 for i in range(n) if i in ranking.scores)
        return list(hits), skipped(f"{reranker.label} scored {got} of the {n} candidates")
    return ordered, ""


def skipped(reason: str) -> str:
    """The note for the user: `reason` (a sentence or a clause) in one line."""
    reason = reason.strip().rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return f"Re-ranking was skipped: {reason}; the fused order is used."


def within(seconds: float, call: Callable[[], Ranking], label: str) -> Ranking:
    """`call()`'s ranking, or RerankError when it takes more than `seconds`.

    A daemon thread, not a pool: a call that outlives the limit is left to end on its
    client's own timeout, and must neither keep the process alive nor take a worker
    that the next question's re-ranking would queue behind."""
    box: list[Ranking | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(call())
        except BaseException as e:  # handed to the caller's thread below
            box.append(e)
        finally:
            done.set()

    threading.Thread(target=run, name="docchat-rerank", daemon=True).start()
    if not done.wait(seconds):
        raise RerankError(f"{label} did not answer in {seconds:g} s")
    outcome = box[0]
    if isinstance(outcome, RagError):
        raise outcome
    if isinstance(outcome, BaseException):
        # A bug in a re-ranker must not cost the user the answer: logged, then skipped.
        log.error("re-ranking failed", exc_info=outcome)
        raise RerankError(f"{label} failed unexpectedly")
    return outcome
