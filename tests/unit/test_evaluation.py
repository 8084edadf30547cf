"""The evaluation harness without an index: scoring, question sets, the eval command's
settings and errors.

COVID-QA on a small slice, evaluating a question set and the Evaluate page are in
tests/integration/test_evaluation.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Chunk, Hit
from rag.cli.eval import build_parser, settings_from, without_from
from rag.core.errors import DatasetError
from rag.evaluation.measures import EvalQuestion, score_question
from rag.evaluation.question_set import read_question_set


def hit(doc: str, start: int, end: int, file: str = "a.txt", index: int = 0) -> Hit:
    text = "x" * (end - start)
    c = Chunk(doc_id=doc, file=file, index=index, text=text, start=start, end=end)
    return Hit(chunk=c, score=1.0)


def test_score_question_spans_budgets_and_ranks() -> None:
    q = EvalQuestion("q?", doc_id="d", start=1500, end=1550, source="a.txt")
    hits = [
        hit("e", 0, 1500, file="b.txt"),  # wrong document
        hit("d", 0, 1000, index=1),  # right document, misses the span
        hit("d", 1400, 1600, index=2),  # covers it; 2,700 characters so far
    ]
    r = score_question(q, hits, 3.0)
    assert (r.answer_rank, r.doc_rank) == (3, 2)
    assert r.in_context == {4000: True, 2000: False}
    assert score_question(q, hits[:2], 1.0).answer_rank is None

    by_text = EvalQuestion("q?", answer=" XXX ")  # case and outer whitespace do not matter
    assert score_question(by_text, hits, 1.0).answer_rank == 1
    by_chunk = EvalQuestion("q?", chunk_id="d:2")
    assert score_question(by_chunk, hits, 1.0).answer_rank == 3


def test_read_question_sets() -> None:
    csv_data = b"question,answer,source\nWhat do cats eat?,fish,cats.txt\nWho barks?,,dogs\n"
    qs = read_question_set("set.csv", csv_data)
    assert [(q.question, q.answer, q.source) for q in qs] == [
        ("What do cats eat?", "fish", "cats.txt"),
        ("Who barks?", "", "dogs"),
    ]
    jsonl = b'{"question": "Q1", "answer": "A1"}\n\n{"question": "Q2", "file": "f.pdf"}\n'
    assert [q.source for q in read_question_set("set.jsonl", jsonl)] == ["", "f.pdf"]
    for name, data in [
        ("set.csv", b"q_text,answer\nx,y\n"),
        ("set.csv", b"question,answer\nWhat?,\n"),  # neither answer nor source
        ("set.jsonl", b'{"question": "Q"\n'),
        ("set.jsonl", b""),
        ("set.txt", b"question\nx\n"),
        ("set.csv", b"\xff\xfe\x00"),
    ]:
        with pytest.raises(DatasetError):
            read_question_set(name, data)


def test_cli_settings_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCCHAT_CHUNK_TOKENS", raising=False)
    argv = ["covid-qa", "--data", "x.json", "--chunk-tokens", "128", "--dense"]
    args = build_parser().parse_args([*argv, "--set", "dense_weight=0.7"])
    s = settings_from(args)
    assert (s.chunk_tokens, s.hybrid, s.dense_weight) == (128, False, 0.7)

    from rag.cli import main

    assert main(["eval", "covid-qa", "--data", str(tmp_path / "missing.json"), "--quiet"]) == 1
    assert main(["eval", "questions", str(tmp_path / "none.csv"), "--quiet"]) == 1
    bad = build_parser().parse_args(["covid-qa", "--data", "x", "--set", "nonsense=1"])
    with pytest.raises(DatasetError.__mro__[1]):  # RagError
        settings_from(bad)


def test_cli_without_names_adjustments_to_switch_off(capsys: pytest.CaptureFixture[str]) -> None:
    parse = build_parser().parse_args
    assert without_from(parse(["all"])) == frozenset()
    args = parse(["all", "--without", "periods", "--without", "names, figures"])
    assert without_from(args) == {"periods", "names", "figures"}
    assert without_from(parse(["sec-10-q", "--without", "boilerplate"])) == {"boilerplate"}
    assert without_from(parse(["questions", "q.csv", "--without", "sentence"])) == {"sentence"}
    with pytest.raises(SystemExit):
        parse(["covid-qa", "--without", "periods,nonsense"])
    assert "expected some of sentence, coverage" in capsys.readouterr().err
