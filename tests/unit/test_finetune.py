"""The fine-tuning studio without an engine: journals, question sets and imports.

Generating pairs, validation and export, jobs and the comparison (against the fake
OpenAI server, over an index) are in tests/integration/test_finetune.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import (
    DatasetError,
    QAPair,
    eval_questions_jsonl,
    import_pairs,
    journal_path,
    pairs_jsonl,
)
from rag.evaluation.question_set import read_question_set


def test_journal_path_is_per_collection(tmp_path: Path) -> None:
    a, b = journal_path(tmp_path, "Pets & more"), journal_path(tmp_path, "pets & more")
    assert a != b and a.parent.parent == tmp_path / "finetune" and a.name == "pairs.jsonl"


def test_eval_question_set_keeps_the_source_chunk() -> None:
    pairs = [QAPair("Q?", "A.", "abc:3", "abc", "f.pdf", 2), QAPair("Off?", "No.", kind="decline")]
    data = eval_questions_jsonl(pairs)
    (question,) = read_question_set("eval_questions.jsonl", data.encode())  # Evaluate reads it
    assert (question.question, question.chunk_id, question.source) == ("Q?", "abc:3", "f.pdf")
    rows = [json.loads(line) for line in data.splitlines()]
    assert rows == [
        {
            "question": "Q?",
            "answer": "A.",
            "doc_id": "abc",
            "file": "f.pdf",
            "page": 2,
            "chunk_id": "abc:3",
        }
    ]


def test_import_csv_jsonl_chat_and_round_trip() -> None:
    csv_data = b'Question,Answer,page\n"What, exactly?","Line one\nline two",3\n\n"Q2?",,\n'
    pairs = import_pairs("mine.csv", csv_data)
    assert pairs == [
        QAPair("What, exactly?", "Line one\nline two", page=3, kind="imported"),
        QAPair("Q2?", "", kind="imported"),  # kept: validation shows it in review
    ]
    chat = json.dumps(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."},
            ]
        }
    )
    simple = json.dumps({"prompt": "P?", "completion": "C."})
    assert import_pairs("x.jsonl", f"{chat}\n\n{simple}\n".encode()) == [
        QAPair("Hi?", "Hello.", kind="imported"),
        QAPair("P?", "C.", kind="imported"),
    ]
    assert import_pairs("x.json", b'[{"question": "A?", "answer": "B"}]') == [
        QAPair("A?", "B", kind="imported")
    ]
    original = [QAPair("Q?", "A.", "d:1", "d", "f.pdf", 4), QAPair("Off?", "No.", kind="decline")]
    assert import_pairs("saved.jsonl", pairs_jsonl(original).encode()) == original


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.csv", b"q;a\nx;y\n", "needs 'question' and 'answer' columns"),
        ("a.jsonl", b'{"question": "q", "answer": "a"}\n{oops\n', "line 2: not valid JSON"),
        ("a.jsonl", b'{"text": "no pair here"}\n', "line 1: no question and answer"),
        ("a.jsonl", b"\xff\xfe\x00bad", "not UTF-8"),
        ("a.csv", b"  \n", "is empty"),
        ("a.json", b"[1, 2]", "item 1: expected an object"),
    ],
)
def test_import_rejects_unreadable_files(name: str, data: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        import_pairs(name, data)


def test_a_loose_row_becomes_a_pair() -> None:
    row = {"question": " Q? ", "answer": None, "page": float("nan"), "kind": "weird", "use": True}
    assert QAPair.from_row(row) == QAPair("Q?", "", kind="imported")
    kept = {"question": "Q?", "answer": "A.", "chunk_id": "d:1", "page": "4", "kind": "decline"}
    assert QAPair.from_row(kept) == QAPair("Q?", "A.", "d:1", page=4, kind="decline")
