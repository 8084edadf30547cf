"""BM25 (rag.components.bm25, rag.components.lexical): tokens, the index and its
persistence, and the fusion with the dense side.

Keeping BM25 in step with the store and hybrid search over an index are in
tests/integration/test_lexical.py (its three documents are repeated here)."""

from __future__ import annotations

import numpy as np
import pytest

from rag import Chunk
from rag.components.bm25 import LexicalIndex
from rag.components.bm25_file import INDEX_VERSION
from rag.components.bm25_terms import tokenize
from rag.retrieval.adjustments import (
    COVERAGE_FULL,
    COVERAGE_MAX_DENSE,
    FIGURE_TOP,
    FIGURE_WEIGHT,
    SENTENCE_WEIGHT,
    coverage_shift,
    figure_density,
    figure_weight,
    repeated,
)
from rag.retrieval.fusion import fuse

CATS = b"Cats sleep sixteen hours a day. Cats eat fish and mice when they are hungry.\n"
DOGS = b"Dogs bark at strangers. Dogs love long walks in the park every morning.\n"
BIRDS = b"Birds migrate south in winter. Some birds infect others with avian influenza.\n"


def chunk(doc: str, i: int, text: str) -> Chunk:
    return Chunk(doc_id=doc, file=f"{doc}.txt", index=i, text=text, start=0, end=len(text))


def test_tokenize_lowercases_stems_and_drops_stop_words() -> None:
    assert tokenize("What are the Infections of the lungs?") == ["infect", "lung"]
    assert tokenize("COVID-19 in 2020") == ["covid", "19", "2020"]
    assert tokenize("the of and") == []


def test_figures_are_not_terms_but_plain_numbers_are() -> None:
    # Table rows are mostly figures: as digit groups they made chunks look long.
    assert tokenize("Total net sales $ 82,959 $ 81,434 (3)% 25.3") == ["total", "net", "sale", "3"]
    assert tokenize("HIV-1 cases in 2023") == ["hiv", "1", "case", "2023"]


def test_the_running_header_is_indexed_and_embedded_with_each_chunk() -> None:
    from rag.components.bm25_terms import chunk_header
    from rag.ingest.stages import embedding_text

    c = Chunk(doc_id="d", file="2022 Q3 AAPL.pdf", index=0, text="Net sales rose.", start=0,
              end=15, page=3, context="Apple Inc. | Q3 2022 Form 10-Q")  # fmt: skip
    assert "Apple Inc." in chunk_header(c) and "2022 Q3 AAPL" in chunk_header(c)
    assert embedding_text(c) == "Apple Inc. | Q3 2022 Form 10-Q\nNet sales rose."
    assert embedding_text(chunk("d", 0, "plain")) == "plain"  # no header, no prefix


def test_dense_query_keeps_the_question_whole() -> None:
    from rag.retrieval.query import dense_query

    q = "Hey, could you please tell me what the incubation period of COVID-19 is?"
    assert dense_query(q) == "what the incubation period of COVID-19 is?"
    assert dense_query("please") == "please"  # nothing left: the original


def test_index_ranks_adds_removes_and_filters() -> None:
    idx = LexicalIndex()
    idx.add("a", [chunk("a", 0, "cats eat fish"), chunk("a", 1, "cats sleep all day")])
    idx.add("b", [chunk("b", 0, "dogs eat meat")])
    r = idx.search("what do cats eat?", 5)
    assert r.top[0][0] == "a:0" and {cid for cid, _ in r.top} == {"a:0", "a:1", "b:0"}
    assert r.bm25["a:0"] > r.bm25["a:1"] > 0 and "nope:0" not in r.bm25
    assert [cid for cid, _ in idx.search("eat", 5, doc_ids=["b"]).top] == ["b:0"]
    idx.remove("a")
    assert [cid for cid, _ in idx.search("cats eat", 5).top] == ["b:0"]
    assert idx.search("zebra", 5).top == []


def test_word_pairs_and_best_sentence() -> None:
    idx = LexicalIndex()
    idx.add("a", [chunk("a", 0, "Infection causes fever. Children rarely get it.")])
    idx.add("b", [chunk("b", 0, "Children get fever. Infection causes it in adults.")])
    idx.add("c", [chunk("c", 0, "Nothing relevant here at all.")])
    # Same words in both; "infection causes fever" as a phrase only in a.
    r = idx.search("Which infection causes fever?", 5, also=["c:0", "x:9"])
    assert r.top[0][0] == "a:0" and r.bm25["a:0"] > r.bm25["b:0"]
    # a:0 has all three words in one sentence; b:0 splits them over two.
    assert r.sentence["a:0"] > r.sentence["b:0"] > 0 == r.sentence["c:0"]
    assert "x:9" not in r.sentence


def test_index_save_load_round_trip_and_bad_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    idx = LexicalIndex()
    idx.add("a", [chunk("a", 0, "cats eat fish"), chunk("a", 1, "")], "1.5 2 a.txt")
    idx.add("b", [chunk("b", 0, "dogs eat meat")], "2.5 1 b.txt")
    idx.stamp = "7 animals"
    path = tmp_path / "x" / "lexical.npz"
    idx.save(path)
    again = LexicalIndex.load(path)
    assert again is not None and set(again.docs) == {"a", "b"}
    assert again.search("fish", 3) == idx.search("fish", 3)
    # The marks are in the same file as the terms they describe; the stamp is not
    # saved (the loaded index is synced once before it is trusted).
    assert again.marks == {"a": "1.5 2 a.txt", "b": "2.5 1 b.txt"} and again.stamp == ""
    assert not again.unsaved
    assert LexicalIndex.load(tmp_path / "missing.npz") is None
    path.write_bytes(b"not a zip")
    assert LexicalIndex.load(path) is None
    np.savez(path, version=np.asarray(["old-" + INDEX_VERSION]))
    assert LexicalIndex.load(path) is None


def test_marks_follow_their_documents() -> None:
    idx = LexicalIndex()
    idx.add("a", [chunk("a", 0, "cats eat fish")], "m1")
    idx.add("b", [chunk("b", 0, "dogs eat meat")])
    assert idx.marks == {"a": "m1", "b": ""}
    idx.remove("a")
    assert idx.marks == {"b": ""} and set(idx.docs) == {"b"}


def test_fuse_weights_pick_each_side() -> None:
    chunks = [chunk("a", i, f"t{i}") for i in range(3)]
    dense = np.asarray([0.9, 0.5, 0.1], dtype=np.float32)
    lexical = np.asarray([0.0, 2.0, 9.0], dtype=np.float32)
    assert [h.chunk.index for h in fuse(chunks, dense, lexical, 1.0)] == [0, 1, 2]
    assert [h.chunk.index for h in fuse(chunks, dense, lexical, 0.0)] == [2, 1, 0]
    hits = fuse(chunks, dense, lexical, 0.5)
    assert hits[0].dense_score == pytest.approx(float(dense[hits[0].chunk.index]))
    assert fuse([], dense[:0], lexical[:0], 0.5) == []


def test_coverage_is_the_best_top_chunks_share_of_the_query_idf() -> None:
    idx = LexicalIndex()
    idx.add("a", [chunk("a", 0, "Cats eat fish."), chunk("a", 1, "Dogs bark loudly.")])
    idx.add("b", [chunk("b", 0, "Birds migrate south."), chunk("b", 1, "Cats sleep.")])
    assert idx.search("cats eat fish", 5).coverage == pytest.approx(1.0)
    # No chunk holds both "cats" and "bark": the better one holds only part of the idf.
    part = idx.search("cats bark", 5).coverage
    assert 0.3 < part < 0.7
    assert idx.search("zebra", 5).coverage == 1.0  # nothing known: nothing to judge


def test_low_coverage_leans_on_the_dense_side() -> None:
    assert coverage_shift(0.4, 1.0) == (0.4, SENTENCE_WEIGHT)
    assert coverage_shift(0.4, COVERAGE_FULL) == (0.4, SENTENCE_WEIGHT)
    w, s = coverage_shift(0.4, COVERAGE_FULL / 2)
    assert 0.4 < w <= COVERAGE_MAX_DENSE and s == pytest.approx(SENTENCE_WEIGHT / 2)
    assert coverage_shift(0.4, 0.0) == (COVERAGE_MAX_DENSE, 0.0)
    assert coverage_shift(0.97, 0.0)[0] == 0.97  # never below the weight asked for


def test_a_poorly_covered_question_weighs_the_figure_density_of_tables() -> None:
    row = chunk("a", 0, "Total net sales $ 81,797 $ 82,959 (1)% $ 293,787 $ 304,182")
    prose = chunk("a", 1, "Total net sales decreased 1% or $1.2 billion during the quarter.")
    density = figure_density([row, prose, chunk("a", 2, "")])
    assert density[0] == 1.0 and 0.0 < density[1] < 0.5 and density[2] == 0.0
    prose_first = np.asarray([0.1, 0.9, 0.8], dtype=np.float32)  # dense scores
    none = np.zeros(3, dtype=np.float32)
    # covered, and the dense side's best are prose: no weight
    assert figure_weight(1.0, none, prose_first) == 0.0
    assert figure_weight(COVERAGE_FULL, none, prose_first) == 0.0
    assert 0.0 < figure_weight(COVERAGE_FULL * 0.9, none, prose_first) < FIGURE_WEIGHT
    assert figure_weight(0.0, none, prose_first) == FIGURE_WEIGHT
    # covered, but the dense side's best candidates are table rows: full weight
    assert figure_weight(1.0, np.ones(3, dtype=np.float32), prose_first) == FIGURE_WEIGHT
    # one table row among FIGURE_TOP prose candidates: part of the weight, none when
    # the row is not among the dense side's best
    one_row = np.zeros(FIGURE_TOP + 1, dtype=np.float32)
    one_row[0] = 1.0
    row_first = np.linspace(1.0, 0.0, FIGURE_TOP + 1, dtype=np.float32)
    assert 0.0 < figure_weight(1.0, one_row, row_first) < FIGURE_WEIGHT
    assert figure_weight(1.0, one_row, row_first[::-1].copy()) == 0.0


def test_text_a_better_candidate_of_another_document_has_is_pushed_down() -> None:
    boiler = "We certify that this quarterly report fully complies with the Exchange Act of 1934."
    chunks = [chunk("q1", 0, boiler), chunk("q2", 0, boiler), chunk("q2", 1, "Revenue rose 5%."),
              chunk("q1", 1, boiler + " Revenue fell 3%.")]  # fmt: skip
    rep = repeated(chunks, np.asarray([0.9, 0.8, 0.5, 0.4], dtype=np.float32))
    assert rep[0] == 0.0 and rep[1] == 1.0 and rep[2] == 0.0
    assert rep[3] == 0.0  # the same document's own words are not a repeat
    # A chunk shorter than an n-gram is one: the same short text in two documents.
    short = [chunk("q1", 0, "Net sales"), chunk("q2", 0, "net  sales"), chunk("q2", 1, "")]
    assert repeated(short, np.asarray([0.9, 0.8, 0.1], dtype=np.float32)).tolist() == [0, 1, 0]
    dense = np.asarray([0.60, 0.59, 0.55, 0.2], dtype=np.float32)
    lexical = np.asarray([1.0, 1.0, 0.9, 0.1], dtype=np.float32)
    hits = fuse(chunks, dense, lexical, 0.4)
    assert [h.chunk.id for h in hits[:2]] == ["q1:0", "q2:1"]
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    # Dense alone and BM25 alone are left as they were.
    assert [h.chunk.id for h in fuse(chunks, dense, lexical, 1.0)][:2] == ["q1:0", "q2:0"]


def test_built_in_blocks_equals_built_at_once() -> None:
    # The build goes block by block to bound its memory (bm25_build.py, BUILD_BLOCK_ROWS);
    # blocks of one chunk, of a few, and one block must give the same index.
    texts = [CATS.decode(), DOGS.decode(), BIRDS.decode(), "", "Cats and dogs. Birds."]
    docs = {
        f"d{n}": [chunk(f"d{n}", i, texts[(n + i) % len(texts)]) for i in range(n % 4)]
        for n in range(9)
    }
    built = []
    for rows in (1, 3, 10**9):
        idx = LexicalIndex()
        for doc, chunks in docs.items():
            idx.add(doc, chunks)
        idx._build(rows)
        built.append(idx)
    names = ("_indptr", "_post_rows", "_post_weights", "_pair_keys", "_idf", "_row_doc")
    for idx in built[:-1]:
        for name in names:
            assert np.array_equal(getattr(idx, name), getattr(built[-1], name)), name
        for name in ("ptr", "docs", "weights"):
            assert np.array_equal(getattr(idx._named, name), getattr(built[-1]._named, name))
        assert idx.search("do cats eat fish", 5) == built[-1].search("do cats eat fish", 5)
    assert built[0].search("birds", 3).top


def test_term_membership_by_binary_search_equals_isin() -> None:
    # `_holds` relies on each term's posting rows being sorted (built in row order).
    texts = [CATS.decode(), DOGS.decode(), BIRDS.decode(), "Cats and dogs. Birds."]
    idx = LexicalIndex()
    for n in range(6):
        idx.add(f"d{n}", [chunk(f"d{n}", i, texts[(n * i + i) % len(texts)]) for i in range(5)])
    idx._build(7)
    rows = np.arange(len(idx._row_ids) + 2, dtype=np.int64)[::-1]  # and two past the end
    for term in range(len(idx._indptr) - 1):
        posting = idx._post_rows[idx._indptr[term] : idx._indptr[term + 1]]
        assert np.all(np.diff(posting) > 0)
        assert np.array_equal(idx._holds(term, rows), np.isin(rows, posting))
