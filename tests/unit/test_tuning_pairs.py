"""Tuning pairs: their sources, hard negatives, and the split by document."""

from __future__ import annotations

import json

import pytest

from rag.core.errors import TuningError
from rag.core.models import Chunk
from rag.finetune.dataset import QAPair
from rag.finetune.tuning_pairs import (
    TuningPair,
    hard_negatives,
    pairs_from_qa,
    pairs_hash,
    pseudo_pairs,
    read_pairs_file,
    split_by_document,
)

TEXT = (
    "Coronaviruses are enveloped viruses with a positive-sense RNA genome. "
    "The spike protein binds the ACE2 receptor on the surface of human cells. "
    "Incubation lasts between two and fourteen days in most reported cases."
)


def chunk(doc: str, index: int, text: str = TEXT, file: str = "") -> Chunk:
    return Chunk(doc, file or f"{doc}.txt", index, text, 0, len(text))


def test_split_keeps_each_document_on_one_side() -> None:
    pairs = [TuningPair(f"q{i}", "p", f"doc{i % 7}", f"doc{i % 7}:{i}") for i in range(70)]
    split = split_by_document(pairs, 0.3)
    assert split.train_docs.isdisjoint(split.test_docs)
    assert split.train_docs | split.test_docs == {p.doc_id for p in pairs}
    assert {p.doc_id for p in split.test} == split.test_docs
    assert {p.doc_id for p in split.train} == split.train_docs
    assert len(split.test_docs) == 2  # round(7 * 0.3)
    assert split == split_by_document(pairs, 0.3)  # seeded


def test_split_needs_two_documents_and_never_tests_on_all() -> None:
    with pytest.raises(TuningError, match="at least 2 documents"):
        split_by_document([TuningPair("q", "p", "one")] * 3, 0.3)
    split = split_by_document([TuningPair("q", "p", "a"), TuningPair("q2", "p", "b")], 0.9)
    assert len(split.train_docs) == 1 and len(split.test_docs) == 1


def test_pseudo_pairs_take_a_sentence_out_of_its_chunk() -> None:
    chunks = [chunk("d1", 0), chunk("d2", 0, "Too short. Really.")]
    pairs = pseudo_pairs(chunks, limit=10)
    assert len(pairs) == 1  # the short chunk gives no query of 6 words
    (p,) = pairs
    assert p.question in TEXT and p.question not in p.passage
    assert p.doc_id == "d1" and p.chunk_id == "d1:0"


def test_hard_negative_is_another_documents_best_bm25_chunk() -> None:
    same, other = chunk("d1", 1, "same document"), chunk("d2", 0, "other document")
    pairs = [TuningPair("q", "p", "d1", "d1:0"), TuningPair("lonely", "p", "d1")]

    def bm25(question: str) -> list[Chunk]:
        return [same, other] if question == "q" else [same]

    out = hard_negatives(pairs, bm25)
    assert out[0].negative == "other document"
    assert out[1].negative == ""


def test_studio_pairs_keep_only_grounded_ones_with_their_chunk() -> None:
    c = chunk("d1", 0)
    pairs = [
        QAPair("What binds ACE2?", "The spike protein.", c.id, "d1"),
        QAPair("Gone?", "Yes.", "d9:0", "d9"),
        QAPair("Weather?", "Not covered.", "", "", kind="decline"),
    ]
    out = pairs_from_qa(pairs, {c.id: c})
    assert [p.question for p in out] == ["What binds ACE2?"]
    assert out[0].passage == TEXT


def test_question_file_rows_resolve_by_chunk_id_or_verbatim_answer() -> None:
    a, b = chunk("d1", 0, file="intro.txt"), chunk("d2", 3, "Other text about bats.")
    rows = [
        {"question": "By id", "chunk_id": b.id},
        {"question": "By answer", "answer": "two and FOURTEEN  days", "source": "intro"},
        {"question": "Not found", "answer": "nowhere in the collection"},
        {"question": "Wrong source", "answer": "spike protein", "source": "other.txt"},
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    out = read_pairs_file(data, "set.jsonl", [a, b])
    assert [(p.question, p.chunk_id) for p in out] == [("By id", b.id), ("By answer", a.id)]
    csv_data = b"question,answer\nWhat binds the receptor?,The spike protein binds\n"
    assert read_pairs_file(csv_data, "set.csv", [a])[0].chunk_id == a.id
    with pytest.raises(TuningError, match="no row names a chunk"):
        read_pairs_file(b'{"question": "x", "answer": "absent"}', "set.jsonl", [a])
    with pytest.raises(TuningError, match="cannot be read"):
        read_pairs_file(b"{not json", "set.jsonl", [a])


def test_pairs_hash_changes_with_the_pairs() -> None:
    p = [TuningPair("q", "p", "d")]
    assert pairs_hash(p) == pairs_hash(list(p))
    assert pairs_hash(p) != pairs_hash([TuningPair("q", "p", "d", negative="n")])
