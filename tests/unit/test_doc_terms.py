"""The question's naming words, their weight in whole documents, and their use in fusion."""

from __future__ import annotations

import math

import numpy as np

from rag import Chunk
from rag.components.bm25 import LexicalIndex
from rag.core.doc_terms import K1, B, DocumentWeights, named_words
from rag.retrieval.adjustments import NAMED_TOP, named_prior
from rag.retrieval.fusion import fuse


def chunk(doc: str, i: int, text: str) -> Chunk:
    # Neutral file names: a chunk's file name is indexed with it (bm25_terms.chunk_header).
    return Chunk(doc_id=doc, file=f"report-{len(doc)}{doc[:1]}.txt", index=i, text=text,
                 start=0, end=len(text))  # fmt: skip


def test_named_words_are_capitalized_words_but_not_a_plain_first_word() -> None:
    assert named_words("How has NVIDIA's total net sales trended?") == ["NVIDIA's"]
    assert named_words("Summarize the risk factors to Intel") == ["Intel"]
    assert named_words("MERS-CoV incubation period") == ["MERS-CoV"]
    assert named_words("what is the incubation period") == []
    # Each sentence's first word is a first word; the question is read as asked.
    assert named_words("Has Apple cut costs? If so, why. Please list them.") == ["Apple"]
    assert named_words("In Amazon's Q2 2023 10-Q, (AWS) margins") == ["Amazon's", "Q2", "AWS"]


def test_naming_words_are_taken_from_the_question_as_asked() -> None:
    idx = LexicalIndex()
    idx.add("apple", [chunk("apple", 0, "Apple repurchased shares.")])
    idx.add("intel", [chunk("intel", 0, "Intel repurchased shares.")])
    # The cleaned query ("Apple engaged share repurchase") starts with the name.
    asked = "Has Apple engaged in share repurchase?"
    assert set(idx.search("Apple engaged share repurchase", 5, question=asked).named) == {"appl"}
    assert idx.search("Apple engaged share repurchase", 5).named == {}


def test_document_weights_are_bm25_over_whole_documents() -> None:
    docs = [np.asarray([0, 0, 1]), np.asarray([1, 2]), np.asarray([1])]
    # Postings as bm25_build.py gives them: (word, chunk) pairs by word, here one chunk each.
    owner = np.repeat(np.arange(3), [len(d) for d in docs])
    keys, tf = np.unique(np.concatenate(docs) * 3 + owner, return_counts=True)
    words, rows = np.divmod(keys, 3)
    w = DocumentWeights.build(words, rows, tf, np.asarray([len(d) for d in docs]), n_words=3)
    names = ["a", "b", "c"]
    avg = 2.0
    for word in range(3):
        df = sum(word in d.tolist() for d in docs)
        idf = math.log1p((3 - df + 0.5) / (df + 0.5))
        expected = {}
        for name, d in zip(names, docs, strict=True):
            tf = d.tolist().count(word)
            if tf:
                expected[name] = idf * tf / (tf + K1 * (1 - B + B * len(d) / avg))
        got = w.of(word, names)
        assert got.keys() == expected.keys()
        assert all(math.isclose(got[k], v, rel_tol=1e-5) for k, v in expected.items())
    none = np.zeros(0, np.int64)
    assert w.of(7, names) == {} and DocumentWeights.build(none, none, none, none, 0).of(0, []) == {}


def test_lexical_search_reports_naming_words_and_who_contains_them() -> None:
    idx = LexicalIndex()
    idx.add("apple", [chunk("apple", 0, "Apple designs phones."), chunk("apple", 1, "Net sales.")])
    idx.add("nvidia", [chunk("nvidia", 0, "NVIDIA sells chips."), chunk("nvidia", 1, "Revenue.")])
    r = idx.search("NVIDIA's net sales", 5, also=["nvidia:1"])
    assert set(r.named) == {"nvidia"}
    assert set(r.named["nvidia"]) == {"nvidia"} and r.named["nvidia"]["nvidia"] > 0
    assert "nvidia:1" in r.bm25 and "nvidia:1" not in r.has["nvidia"]


def test_a_name_no_top_chunk_carries_lifts_the_document_that_has_it() -> None:
    # NVIDIA's own table never says "NVIDIA"; Apple's wording matches the question.
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
    plain = fuse(chunks, dense, lexical, 0.4)
    named = fuse(chunks, dense, lexical, 0.4, names=r)
    assert {h.chunk.doc_id for h in plain[:NAMED_TOP]} == {"apple"}
    assert {h.chunk.doc_id for h in named[:NAMED_TOP]} == {"nvidia"}
    assert all(0.0 <= h.score <= 1.0 for h in named)
    # Dense alone and BM25 alone are left as they were.
    assert fuse(chunks, dense, lexical, 1.0, names=r) == fuse(chunks, dense, lexical, 1.0)
    assert fuse(chunks, dense, lexical, 0.0, names=r) == fuse(chunks, dense, lexical, 0.0)


def test_a_name_a_top_chunk_carries_changes_nothing() -> None:
    idx = LexicalIndex()
    docs = {"mers": ["MERS spreads from camels.", "Camels carry it."],
            "review": ["SARS and MERS fatality rates.", "Coronaviruses in general."]}  # fmt: skip
    chunks = [chunk(d, i, t) for d, texts in docs.items() for i, t in enumerate(texts)]
    for d in docs:
        idx.add(d, [c for c in chunks if c.doc_id == d])
    r = idx.search("fatality rate of MERS", 10, also=[c.id for c in chunks])
    dense = np.asarray([0.3, 0.2, 0.6, 0.1], dtype=np.float32)
    lexical = np.asarray([r.bm25.get(c.id, 0.0) for c in chunks], dtype=np.float32)
    assert fuse(chunks, dense, lexical, 0.4, names=r) == fuse(chunks, dense, lexical, 0.4)


def test_the_prior_fires_unless_a_top_chunk_carries_every_name() -> None:
    # "Apple and Intel": top chunks that each name one of the two do not stop it.
    chunks = [chunk("apple", 0, "a"), chunk("intel", 0, "i"), chunk("other", 0, "o"),
              chunk("other", 1, "p")]  # fmt: skip
    fused = np.asarray([0.9, 0.8, 0.7, 0.1], dtype=np.float32)
    named = {"appl": {"apple": 1.0, "other": 0.25}, "intel": {"intel": 1.0, "other": 0.25}}
    each = {"appl": frozenset({"apple:0"}), "intel": frozenset({"intel:0"})}
    prior = named_prior(chunks, fused, named, each)
    assert prior is not None and prior.tolist() == [1.0, 1.0, 0.5, 0.5]
    both = {"appl": frozenset({"apple:0", "other:0"}), "intel": frozenset({"other:0"})}
    assert named_prior(chunks, fused, named, both) is None
    # A chunk with both names below the top 3 does not count.
    assert named_prior(chunks, fused, named, {t: frozenset({"other:1"}) for t in named}) is not None
