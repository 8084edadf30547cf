"""The evaluation harness: scoring, question sets, COVID-QA on a small slice, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import DocChat, Settings
from rag.core.errors import DatasetError
from rag.datasets.covid_qa import load_covid_qa, run_covid_qa
from rag.evaluation.question_set import read_question_set
from rag.evaluation.runs import evaluate
from tests.fixtures.app import CATS, DOGS, start, upload
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import SHARED, need_shared

COVID = SHARED / "covid-qa" / "covidQA.json"


def test_evaluate_a_question_set_and_compare_settings(app: DocChat) -> None:
    app.ingest("cats.txt", b"Cats sleep sixteen hours a day. Cats eat fish and mice.\n")
    app.ingest("dogs.txt", b"Dogs bark at strangers. Dogs love long walks in the park.\n")
    qs = read_question_set(
        "q.csv", b"question,answer,source\nWhat do cats eat?,fish and mice,\nWho barks?,,dogs\n"
    )
    dense = evaluate(app, qs, hybrid=False)
    hybrid = evaluate(app, qs, hybrid=True, dense_weight=0.3)
    for r in (dense, hybrid):
        assert r.answer_in_context_4000 == 1.0 and r.doc_hit_5 == 1.0 and r.mrr_10 == 1.0
        assert r.questions == 2 and r.documents == 2 and not r.misses
    assert (dense.settings["hybrid"], hybrid.settings["dense_weight"]) == (False, 0.3)
    assert json.dumps(hybrid.to_dict(with_results=True))
    with pytest.raises(DatasetError):
        evaluate(app, [])


def test_load_covid_qa_fixes_offsets() -> None:
    need_shared()
    articles, questions = load_covid_qa(COVID)
    assert len(articles) == 98 and len(questions) == 1380
    assert len({a.name for a in articles}) == 98
    text = {a.name: a.text for a in articles}
    for q in questions:
        assert q.start is not None and text[q.source][q.start : q.end] == q.answer


def test_covid_qa_slice_end_to_end(tmp_path: Path) -> None:
    need_shared()
    settings = Settings(data_dir=tmp_path / "unused")
    report = run_covid_qa(COVID, settings, embedder=HashEmbedder(), articles=3)
    d = report.to_dict()
    assert d["documents"] == 3 and d["questions"] == report.questions > 10
    for key in ("answer_in_context@4000", "answer_in_context@2000", "doc_hit@5", "mrr@10"):
        assert 0.0 <= d[key] <= 1.0  # type: ignore[operator]
    assert d["answer_in_context@4000"] >= d["answer_in_context@2000"]  # type: ignore[operator]
    assert d["doc_hit@5"] > 0.5 and d["chunks"] > 3  # type: ignore[operator]
    assert set(d["baselines"]) == {"dense", "bm25"}  # type: ignore[arg-type]
    assert d["settings"]["chunk_tokens"] == settings.chunk_tokens  # type: ignore[index]
    assert not (tmp_path / "unused").exists()  # indexed in a temporary data dir


@pytest.mark.usefixtures("fake_embedder")
def test_evaluate_page_runs_and_compares() -> None:
    at = upload(start(), ("cats.md", CATS), ("dogs.txt", DOGS))
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    questions = b"question,answer,source\nWhat do cats eat?,fish and mice,\nWho barks?,,dogs.txt\n"
    at.file_uploader[0].set_value([("q.csv", questions, "text/csv")]).run()
    at.toggle(key="eval_compare").set_value(True).run()
    at.radio(key="eval_b_mode").set_value("Keywords only (BM25)").run()
    next(b for b in at.button if b.label == "Run evaluation").click().run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels.count("Answer in 4,000 chars") == 2
    assert [m.value for m in at.metric if m.label == "Right document in top 5"] == ["1.000"] * 2
    assert not at.error


@pytest.mark.slow
def test_onnx_int8_backend_agrees_with_torch(real_embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components.embeddings import load_embedder

    onnx = load_embedder("all-MiniLM-L6-v2", backend="onnx-int8")  # exported once, then cached
    texts = [
        "What is the incubation period of COVID-19?",
        "The median incubation period was estimated to be 5.1 days.",
        "Dogs bark at strangers.",
    ]
    a, b = onnx.embed(texts), real_embedder.embed(texts)
    assert (onnx.name, onnx.dimension, onnx.max_tokens) == (
        real_embedder.name,
        real_embedder.dimension,
        real_embedder.max_tokens,
    )
    assert ((a * b).sum(axis=1) > 0.97).all()
    assert (a @ a.T)[0, 1] > (a @ a.T)[0, 2]  # the answer is nearer than the dog
    assert onnx.token_spans(texts[1]) == real_embedder.token_spans(texts[1])
    with pytest.raises(DatasetError.__mro__[1]):  # RagError (ConfigError)
        load_embedder("all-MiniLM-L6-v2", backend="tpu")
