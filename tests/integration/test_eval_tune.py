"""`python -m rag eval tune` end to end on a tiny COVID-QA-shaped file: the real model
trained for one step on labelled pairs and on pseudo-queries, the corpus re-indexed with
each, the held-out figures written as JSON (the datasets' own figures are
benchmarks/results/tune-*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli.eval import main
from rag.evaluation.measures import EvalQuestion
from rag.evaluation.runs import Article
from rag.evaluation.tuning_split import split_questions

TOPICS = {
    "Bats": ("bats", "caves", "coronaviruses", "wing membranes"),
    "Camels": ("camels", "deserts", "MERS", "nasal passages"),
    "Pangolins": ("pangolins", "forests", "scales", "ant colonies"),
    "Masks": ("masks", "hospitals", "filters", "droplets"),
    "Vaccines": ("vaccines", "trials", "antibodies", "booster doses"),
}


def _article(title: str, words: tuple[str, ...]) -> tuple[str, list[tuple[str, str]]]:
    """A small article: sentences long enough to make pseudo-queries, and two facts
    with their questions and answers."""
    a, b, c, d = words
    lines = [title]
    lines += [f"Researchers studied how {a} and {b} relate to each other in field sample "
              f"number {i} collected over several seasons." for i in range(6)]  # fmt: skip
    lines += [f"The {c} of the {a} were measured at forty two sites.",
              f"The {d} of the {a} protect them from the heat."]  # fmt: skip
    qas = [(f"Where were the {c} measured?", "at forty two sites"),
           (f"What protects the {a} from the heat?", f"The {d}")]  # fmt: skip
    return "\n".join(lines), qas


def _covid_file(path: Path) -> Path:
    entries = []
    for title, words in TOPICS.items():
        text, qas = _article(title, words)
        entries.append({"paragraphs": [{"context": text, "qas": [
            {"question": q, "answers": [{"text": ans, "answer_start": text.index(ans)}]}
            for q, ans in qas
        ]}]})  # fmt: skip
    path.write_text(json.dumps({"data": entries}), encoding="utf-8")
    return path


def test_eval_tune_trains_reindexes_and_reports_held_out_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # torch: the ONNX export of each trained model would triple this test's time.
    monkeypatch.setenv("DOCCHAT_EMBEDDING_BACKEND", "torch")
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path / "unused"))
    data = _covid_file(tmp_path / "covid.json")
    out = tmp_path / "out" / "tune.json"
    argv = ["tune", "--dataset", "covid-qa", "--data", str(data), "--max-steps", "1",
            "--held-out", "0.4", "--set", "tune_batch_size=4", "--json", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    assert d["measure"] == "answer_in_context@4000" and d["dataset"] == "covid-qa"
    for model in ("base", "tuned", "pseudo"):
        assert set(d[model]) == {"hybrid", "dense"}
        assert all(0.0 <= v <= 1.0 for v in d[model].values())
        for search in ("hybrid", "dense"):
            assert {"doc_hit@5", "mrr@10"} <= set(d["runs"][model][search])
    assert d["train_s"] > 0 and d["pseudo_train_s"] > 0 and d["embed_s"] > 0
    assert d["runs"]["tuned"]["train"]["steps"] == 1 and d["chunks"] >= 5
    split = d["split"]
    assert (split["train_docs"], split["test_docs"]) == (3, 2)
    assert (split["train_questions"], split["test_questions"]) == (6, 4)
    assert d["pairs"]["labelled"] == 6 and 0 < d["pairs"]["pseudo"] <= d["pairs"]["pseudo_limit"]
    assert d["date"] and d["machine"]["cpus"] and d["command"].endswith("--quiet")
    assert len(d["targets"]) == 4 and all(isinstance(t["met"], bool) for t in d["targets"])
    assert not (tmp_path / "unused").exists()  # every index in a throw-away data dir
    printed = capsys.readouterr().out
    assert "targets:" in printed and "pseudo" in printed


def test_a_question_whose_sources_straddle_the_split_is_dropped_from_both_sides() -> None:
    articles = [Article(f"2023 Q{i} {co}.pdf", data=b"%PDF") for i in (1, 2) for co in "ABCD"]
    questions = [EvalQuestion(f"about {a.name}", figures=("1.0",), source_globs=(a.name,))
                 for a in articles]  # fmt: skip
    questions += [EvalQuestion("about all", figures=("2.0",), source_globs=("*2023*",))]
    questions += [EvalQuestion("about none", figures=("3.0",), source_globs=("*2019*",))]
    split = split_questions(articles, questions, held_out=0.5, seed=3)
    assert split.train_docs.isdisjoint(split.test_docs)
    assert split.train_docs | split.test_docs == {a.name for a in articles}
    assert len(split.train_docs) == len(split.test_docs) == 4
    assert (split.straddling, split.unsourced) == (1, 1)
    assert len(split.train) == len(split.test) == 4
    for side, docs in ((split.train, split.train_docs), (split.test, split.test_docs)):
        assert all(q.source_globs[0] in docs for q in side)
