"""The SEC 10-Q evaluation: figures, source patterns, the budget rule, and the
`eval sec-10-q` / `eval all` commands on small slices (tiny handwritten filings, a
couple of COVID-QA articles, the fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.datasets.sec_10q import slice_sec_10q, source_globs
from rag.evaluation.measures import EvalQuestion
from rag.evaluation.runs import Article
from tests.fixtures.fakes import register_fake_embedder
from tests.fixtures.paths import SHARED, need_shared
from tests.fixtures.pdfgen import make_pdf, text_ops

COVID = SHARED / "covid-qa" / "covidQA.json"

FILINGS = {
    "2023 Q1 AAPL.pdf": ["Apple Inc. condensed statements.", "Total net sales $ 117,154 million."],
    "2023 Q1 MSFT.pdf": ["Microsoft Corporation income statements.", "Revenue $ 52,857 million."],
    "2023 Q2 AAPL.pdf": ["Apple Inc. second quarter.", "Total net sales $ 94,836 million."],
}
QNA = [  # Question, Source Docs, Question Type, Source Chunk Type, Answer
    ("What were Apple's net sales in Q1 2023?", "*2023 Q1 AAPL*", "Single", "Table",
     "Total net sales were $117,154 million in the quarter ended December 31, 2022."),
    ("What was Microsoft's revenue?", "*MSFT*", "Single", "Table",
     "Revenue was $52,857 million (SOURCE: 2023 Q1 MSFT.pdf)."),
    ("What does Microsoft make?", "*2023 Q1 MSFT*", "Single", "Text", "Software, in 2023."),
    ("How did Apple's sales change?", "*AAPL*", "Multi", "Table", "From 117,154 to 94,836."),
]  # fmt: skip


def sec_dir(root: Path) -> Path:
    """A dataset shaped like ../shared/data/sec-10-q: docs/*.pdf and qna_data.csv (BOM)."""
    (root / "docs").mkdir(parents=True)
    for name, lines in FILINGS.items():
        (root / "docs" / name).write_bytes(make_pdf([text_ops(lines)]))
    rows = ["Question,Source Docs,Question Type,Source Chunk Type,Answer"]
    rows += [",".join(f'"{cell}"' for cell in row) for row in QNA]
    (root / "qna_data.csv").write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_slice_keeps_questions_whose_sources_are_all_inside() -> None:
    articles = [Article(name=n, data=b"%PDF") for n in sorted(FILINGS)]
    qs = [EvalQuestion(q, source_globs=source_globs(g)) for q, g, *_ in QNA]
    kept, questions = slice_sec_10q(articles, qs, 2)
    assert [a.name for a in kept] == ["2023 Q1 AAPL.pdf", "2023 Q1 MSFT.pdf"]
    assert [q.question for q in questions] == [row[0] for row in QNA[:3]]  # not "*AAPL*"


@pytest.fixture
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's engines embed with a `HashEmbedder` (registered under its model name)."""
    register_fake_embedder(monkeypatch)


@pytest.mark.usefixtures("hash_embedder")
def test_cli_eval_sec_10q_slice(tmp_path: Path) -> None:
    from rag.cli import main

    data, out = sec_dir(tmp_path / "sec"), tmp_path / "sec.json"
    argv = ["eval", "sec-10-q", "--data", str(data), "--files", "2", "--json", str(out)]
    assert main([*argv, "--quiet", "--set", f"data_dir={tmp_path / 'unused'}"]) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    assert (d["files"], d["files_indexed"], d["rejected"], d["pages"]) == (2, 2, {}, 2)
    assert (d["questions"], d["questions_with_answer"], d["questions_with_source"]) == (3, 2, 3)
    assert d["figure_in_context@4000"] == 1.0 and d["doc_hit@5"] == 1.0
    assert set(d["baselines"]) == {"dense", "bm25"}
    assert "figure_in_context@4000" in d["baselines"]["bm25"]
    assert d["pages_per_s"] > 0 and not (tmp_path / "unused").exists()


@pytest.mark.usefixtures("hash_embedder")
def test_cli_eval_all_one_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_shared()
    from rag.cli import main

    out = tmp_path / "all.json"
    argv = ["eval", "all", "--covid-data", str(COVID), "--sec-data", str(sec_dir(tmp_path))]
    assert main([*argv, "--limit", "2", "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    assert set(d["datasets"]) == {"covid-qa", "sec-10-q"}
    assert d["datasets"]["covid-qa"]["documents"] == 2
    rows = [(r["dataset"], r["measure"]) for r in d["table"]]
    assert rows == [
        ("COVID-QA", "answer_in_context@4000"),
        ("SEC 10-Q", "figure_in_context@4000"),
        ("SEC 10-Q", "doc_hit@5"),
    ]
    for r in d["table"]:
        assert set(r) == {"dataset", "measure", "hybrid", "dense", "bm25", "margin", "n"}
        assert 0.0 <= r["hybrid"] <= 1.0 and r["n"] > 0
    printed = capsys.readouterr().out
    assert "dataset" in printed and "margin" in printed and "SEC 10-Q" in printed
