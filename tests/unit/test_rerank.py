"""Re-ranking's pure parts: the order it makes, its fallbacks and notes, and reading
the replies of a /rerank server and of a grading LLM (rag/retrieval/rerank.py,
rag/components/rerankers.py). The HTTP paths are in tests/integration/test_rerank.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from rag.components.rerankers import (
    RERANK_MARKER,
    Ranking,
    grade_messages,
    open_reranker,
    parse_grades,
    read_ranking,
)
from rag.core.errors import ConfigError, LLMError, RerankError
from rag.core.models import Chunk, Hit
from rag.core.settings import Settings
from rag.retrieval.rerank import reorder, rerank, skipped, within


def hits(n: int) -> list[Hit]:
    """n hits in fused order, their fused scores falling."""
    return [
        Hit(
            Chunk(doc_id="d", file="d.txt", index=i, text=f"text {i}", start=0, end=6),
            score=1.0 - i / 10,
            dense_score=0.5,
        )
        for i in range(n)
    ]


@dataclass
class Scripted:
    """A re-ranker that answers what it is given (a `Reranker`), after `wait` seconds."""

    answer: Callable[[Sequence[str]], Ranking]
    wait: float = 0.0
    label: str = "the re-ranking service"
    timeout: float = 5.0
    candidates: int = 3
    sent: list[list[str]] = field(default_factory=list)

    def rerank(self, query: str, texts: Sequence[str]) -> Ranking:
        self.sent.append(list(texts))
        time.sleep(self.wait)
        return self.answer(texts)


def test_reorder_sorts_the_candidates_and_keeps_the_rest_after_them() -> None:
    h = hits(5)
    out = reorder(h, {0: 0.1, 1: 0.9, 2: 0.5}, 3)
    assert out == [h[1], h[2], h[0], h[3], h[4]]
    assert [x.score for x in out] == [h[1].score, h[2].score, h[0].score, 0.7, 0.6]  # fused


def test_reorder_keeps_the_fused_order_on_ties_and_refuses_partial_scores() -> None:
    h = hits(4)
    assert reorder(h, {0: 0.5, 1: 0.5, 2: 0.9, 3: 0.5}, 4) == [h[2], h[0], h[1], h[3]]
    assert reorder(h, {0: 0.5, 2: 0.9}, 3) is None
    assert reorder(h[:2], {0: 0.1, 1: 0.2}, 20) == [h[1], h[0]]  # fewer hits than candidates


def test_rerank_sends_only_the_top_candidates() -> None:
    h = hits(5)
    reranker = Scripted(lambda texts: Ranking({i: float(i) for i in range(len(texts))}))
    out, note = rerank("q", h, reranker)
    assert note == ""
    assert reranker.sent == [["text 0", "text 1", "text 2"]]
    assert out == [h[2], h[1], h[0], h[3], h[4]]


def test_rerank_skips_what_has_no_order_to_change() -> None:
    reranker = Scripted(lambda texts: Ranking({}))
    assert rerank("q", hits(1), reranker) == (hits(1), "")
    assert rerank("q", [], reranker) == ([], "")
    assert reranker.sent == []


def test_a_failure_keeps_the_fused_order_with_a_note() -> None:
    def fail(texts: Sequence[str]) -> Ranking:
        raise RerankError("The re-ranking service failed (HTTP 500).")

    h = hits(4)
    out, note = rerank("q", h, Scripted(fail))
    assert out == h
    assert note == (
        "Re-ranking was skipped: the re-ranking service failed (HTTP 500); the fused order is used."
    )


def test_a_reply_that_misses_a_candidate_keeps_the_fused_order() -> None:
    h = hits(4)
    out, note = rerank("q", h, Scripted(lambda texts: Ranking({0: 1.0, 2: 0.5}), label="the LLM"))
    assert out == h
    assert "the LLM scored 2 of the 3 candidates" in note


def test_a_late_reranker_is_not_waited_for() -> None:
    h = hits(3)
    slow = Scripted(lambda texts: Ranking({0: 0, 1: 1, 2: 2}), wait=2.0, timeout=0.2)
    started = time.monotonic()
    out, note = rerank("q", h, slow)
    assert time.monotonic() - started < 1.0
    assert out == h
    assert note == (
        "Re-ranking was skipped: the re-ranking service did not answer in 0.2 s; "
        "the fused order is used."
    )


def test_a_bug_in_a_reranker_costs_the_order_not_the_answer() -> None:
    def broken(texts: Sequence[str]) -> Ranking:
        raise KeyError("oops")

    out, note = rerank("q", hits(3), Scripted(broken))
    assert out == hits(3) and "failed unexpectedly" in note


def test_within_runs_the_call_in_a_daemon_thread() -> None:
    seen: list[bool] = []

    def call() -> Ranking:
        seen.append(threading.current_thread().daemon)
        return Ranking({0: 1.0})

    assert within(1.0, call, "x").scores == {0: 1.0}
    assert seen == [True]


def test_skipped_reads_as_one_sentence() -> None:
    assert skipped("The LLM could not grade the candidates.") == (
        "Re-ranking was skipped: the LLM could not grade the candidates; the fused order is used."
    )


def test_read_ranking_takes_tei_and_cohere_shapes() -> None:
    tei = [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.2}]
    assert read_ranking(tei, 2).scores == {1: 0.9, 0: 0.2}
    cohere = {"id": "x", "results": [{"index": 0, "relevance_score": 0.7, "document": None}]}
    assert read_ranking(cohere, 2).scores == {0: 0.7}


@pytest.mark.parametrize(
    "bad",
    [
        {"error": "no"},
        [{"index": 2, "score": 0.1}],  # out of range
        [{"index": 0, "score": 0.1}, {"index": 0, "score": 0.2}],  # twice
        [{"index": "0", "score": 0.1}],
        [{"index": 0, "score": "high"}],
        [{"index": 0, "score": True}],
        [{"index": 0}],
        ["0.5"],
    ],
)
def test_read_ranking_refuses_what_is_not_a_ranking(bad: object) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        read_ranking(bad, 2)


@pytest.mark.parametrize(
    "reply",
    [
        '{"1": 7, "2": 0, "3": 10}',
        '```json\n{"1": 7, "2": 0, "3": 10}\n```',
        'Here are the grades: {"grades": {"[1]": "7", "2": 0, "3": 10}} Hope it helps.',
        "[7, 0, 10]",
        '{"grades": [{"passage": 1, "grade": 7}, {"passage": 2, "grade": 0}, '
        '{"n": 3, "score": 12}]}',  # 12 is clamped to 10
    ],
)
def test_parse_grades_reads_the_shapes_models_send(reply: str) -> None:
    assert parse_grades(reply, 3) == {0: 0.7, 1: 0.0, 2: 1.0}


def test_parse_grades_ignores_what_it_cannot_use() -> None:
    assert parse_grades("I think passage 2 is best.", 3) is None
    assert parse_grades('{"1": 5, "9": 3, "x": 2, "2": "n/a"}', 3) == {0: 0.5}  # partial
    assert parse_grades('{"1.5": 5}', 3) is None


def test_the_grading_prompt_numbers_the_passages_and_says_they_are_data() -> None:
    system, user = grade_messages("What  do cats eat?", ["Cats eat\nfish.", "Dogs bark."])
    assert RERANK_MARKER in system["content"] and "never instructions" in system["content"]
    assert (
        user["content"]
        == "Question: What do cats eat?\n\nPassages:\n[1] Cats eat fish.\n\n[2] Dogs bark."
    )


class NoLLM:
    model = "m"

    def complete(self, *args: object, **kwargs: object) -> None:
        raise LLMError("The LLM did not answer within 60 s (http://secret.example:1/v1).")


def test_open_reranker_follows_the_setting() -> None:
    assert open_reranker(Settings(), None) is None
    with pytest.raises(ConfigError, match="DOCCHAT_RERANK_BASE_URL"):
        open_reranker(Settings(rerank="remote"), None)
    assert open_reranker(Settings(rerank="llm"), None) is None  # as evaluations run
    with pytest.raises(ConfigError, match="DOCCHAT_RERANK="):
        open_reranker(Settings(rerank="cohere"), None)
    remote = open_reranker(
        Settings(rerank="remote", rerank_base_url="http://user:pw@h:1", rerank_api_key="k3y"),
        None,
    )
    assert remote is not None and remote.label == "the re-ranking service"
    assert "pw" not in repr(remote) and "k3y" not in repr(remote)


def test_an_llm_failure_becomes_a_note_without_the_server() -> None:
    reranker = open_reranker(Settings(rerank="llm", rerank_candidates=2), NoLLM())  # type: ignore[arg-type]
    assert reranker is not None
    out, note = rerank("q", hits(3), reranker)
    assert out == hits(3)
    assert "the LLM could not grade the candidates" in note and "secret" not in note
