"""The retrieval adjustments as named steps: each can be switched off, none by default."""

from __future__ import annotations

import numpy as np
import pytest

from rag import Chunk, Settings
from rag.components.bm25 import LexicalIndex
from rag.core.errors import ConfigError
from rag.retrieval.adjustments import NAMED_TOP, STEP_NAMES, STEPS
from rag.retrieval.fusion import fuse, minmax
from rag.retrieval.options import SearchOptions


def chunk(doc: str, i: int, text: str) -> Chunk:
    return Chunk(doc_id=doc, file=f"report-{doc}.txt", index=i, text=text, start=0, end=len(text))


def test_every_step_has_a_name_and_a_summary() -> None:
    assert STEP_NAMES == ("sentence", "coverage", "names", "periods", "figures", "boilerplate")
    assert all(s.summary and len(s.summary) < 80 for s in STEPS)


def test_search_options_switch_steps_off_by_name_only() -> None:
    s = Settings(top_k=5, min_score=0.3, hybrid=True, dense_weight=0.6)
    assert SearchOptions.from_settings(s).without == frozenset()
    got = SearchOptions.from_settings(s, without=["periods", "names"])
    assert got.without == {"periods", "names"} and not got.on("periods") and got.on("figures")
    with pytest.raises(ConfigError, match="nonsense"):
        SearchOptions.from_settings(s, without=["periods", "nonsense"])


def test_a_step_switched_off_is_the_fusion_without_its_input() -> None:
    chunks = [chunk(d, i, f"text {d} {i}") for d in "abc" for i in range(3)]
    rng = np.random.default_rng(7)
    dense, lexical, sentence = (rng.random(9, dtype=np.float32) for _ in range(3))
    period = np.asarray([1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    both = fuse(chunks, dense, lexical, 0.4, sentence, period=period)
    assert both == fuse(chunks, dense, lexical, 0.4, sentence, period=period, without=())
    assert fuse(chunks, dense, lexical, 0.4, sentence, without={"sentence"}) == fuse(
        chunks, dense, lexical, 0.4
    )
    assert fuse(chunks, dense, lexical, 0.4, period=period, without={"periods"}) == fuse(
        chunks, dense, lexical, 0.4
    )
    # With every step off, it is the weighted sum of the two scaled scores.
    bare = fuse(chunks, dense, lexical, 0.4, sentence, period=period, without=STEP_NAMES)
    expected = 0.4 * minmax(dense) + 0.6 * minmax(lexical)
    assert [h.score for h in bare] == pytest.approx(sorted(expected.tolist(), reverse=True))


def test_names_off_leaves_the_name_no_top_chunk_carries_unused() -> None:
    idx = LexicalIndex()
    apple = [chunk("apple", i, f"Total net sales of the quarter, {i}.") for i in range(4)]
    nvidia = [chunk("nvidia", i, f"Revenue of the quarter, {i}.") for i in range(4)]
    nvidia[0] = chunk("nvidia", 0, "NVIDIA Corporation, quarterly report.")
    idx.add("apple", apple)
    idx.add("nvidia", nvidia)
    chunks = [*apple, *nvidia[1:]]
    r = idx.search("NVIDIA total net sales", 10, also=[c.id for c in chunks])
    dense = np.asarray([0.50] * 4 + [0.52] * 3, dtype=np.float32)
    lexical = np.asarray([r.bm25.get(c.id, 0.0) for c in chunks], dtype=np.float32)
    named = fuse(chunks, dense, lexical, 0.4, names=r)
    assert {h.chunk.doc_id for h in named[:NAMED_TOP]} == {"nvidia"}
    unnamed = fuse(chunks, dense, lexical, 0.4, names=r, without={"names"})
    assert {h.chunk.doc_id for h in unnamed[:NAMED_TOP]} == {"apple"}
    # The lexical result's other uses (coverage, figures) off too: no `names` at all.
    off = {"names", "coverage", "figures"}
    assert fuse(chunks, dense, lexical, 0.4, names=r, without=off) == fuse(
        chunks, dense, lexical, 0.4
    )


def test_boilerplate_off_keeps_the_repeated_text_where_it_was() -> None:
    boiler = "We certify that this quarterly report fully complies with the Exchange Act of 1934."
    chunks = [chunk("q1", 0, boiler), chunk("q2", 0, boiler), chunk("q2", 1, "Revenue rose 5%."),
              chunk("q1", 1, boiler + " Revenue fell 3%.")]  # fmt: skip
    dense = np.asarray([0.60, 0.59, 0.55, 0.2], dtype=np.float32)
    lexical = np.asarray([1.0, 1.0, 0.9, 0.1], dtype=np.float32)
    assert [h.chunk.id for h in fuse(chunks, dense, lexical, 0.4)[:2]] == ["q1:0", "q2:1"]
    kept = fuse(chunks, dense, lexical, 0.4, without={"boilerplate"})
    assert [h.chunk.id for h in kept[:2]] == ["q1:0", "q2:0"]
