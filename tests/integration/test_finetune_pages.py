"""The Fine-tuning and Compare pages in Streamlit's AppTest, through app.py's navigation.

The app builds its engine the usual way (`pages/_ui.py`, settings from the
environment) with the fake embedder; the LLM, when there is one, is the fake OpenAI
server, so generation, the job and the comparison all go over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag import DocChat, Settings, generate_pairs, journal_path, select_chunks
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder, use_fake_embedder
from tests.fixtures.paths import ROOT

CATS = (
    b"# Cats\n\nCats sleep sixteen hours a day in warm places. They purr when they are "
    b"content and also when they are hurt.\n\n## Food\n\nCats eat fish and mice. A cat "
    b"needs taurine in its food, or its eyes and heart suffer.\n"
)
QA_CSV = "question,answer\n" + "".join(f"What is fact {i}?,Fact {i} is true.\n" for i in range(12))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from the environment only (no secrets file), the fake embedder."""
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DOCCHAT_CHROMA_HOST", "DOCCHAT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(data))
    with use_fake_embedder(monkeypatch):  # closes the pages' engine after
        yield data


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest, kind: str) -> str:
    # Messages are Markdown-escaped for display; compare what a reader sees.
    return "\n".join(str(e.value).replace("\\", "") for e in at.get(kind))


def test_without_llm_the_studio_says_so_and_imports(env: Path) -> None:
    at = open_page("finetune.py")
    assert "The studio needs an LLM" in texts(at, "warning")
    assert not [b for b in at.button if b.key == "ft_generate"]  # nothing to generate with
    at.file_uploader(key="ft_import").set_value(("mine.csv", QA_CSV.encode(), "text/csv")).run()
    at.button(key="ft_use_file").click().run()
    assert not at.exception, at.exception
    assert "Imported 12 pair(s) from mine.csv" in texts(at, "success")
    table = at.data_editor[0].value
    assert list(table["question"])[:2] == ["What is fact 0?", "What is fact 1?"]
    assert "Valid: 10 training + 2 validation" in texts(at, "success")
    # Review: untick one row, empty another answer: validation blocks export until fixed.
    editor = f"ft_editor_{at.session_state['ft_version']}"
    at.session_state[editor] = {
        "edited_rows": {0: {"use": False}, 1: {"answer": ""}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert "11 of 12 row(s) in use" in texts(at, "markdown")
    assert "1 problem(s) block export" in texts(at, "error")
    at.button(key="ft_drop").click().run()
    assert "10 of 11 row(s) in use" in texts(at, "markdown")  # the unticked row stays
    assert "Valid: 8 training + 2 validation" in texts(at, "success")
    labels = [d.label for d in at.get("download_button")]
    assert "Download train.jsonl" in labels and "Download validation.jsonl" in labels
    assert "Training needs an LLM server" in texts(at, "info")
    bad = at.file_uploader(key="ft_import").set_value(("x.csv", b"a;b\n1;2\n", "text/csv"))
    bad.run()
    at.button(key="ft_use_file").click().run()
    assert "needs 'question' and 'answer' columns" in texts(at, "error")


def test_with_llm_a_small_set_generates_trains_and_compares(
    env: Path, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("DOCCHAT_LLM_MAX_RETRIES", "0")
    engine = DocChat.open(Settings.from_env(), embedder=HashEmbedder())
    engine.ingest("cats.md", CATS)
    assert engine.llm is not None
    # An earlier run was stopped after the first chunk: the page offers to resume it.
    first = select_chunks(engine.services.store.all_chunks("default"))[:1]
    generate_pairs(first, engine.llm, journal=journal_path(env, "default"), per_chunk=2)

    at = open_page("finetune.py")
    assert "needs an LLM" not in texts(at, "warning")
    assert "An earlier run made 2 pair(s)" in texts(at, "info")
    assert at.button(key="ft_generate").label == "Resume"
    at.number_input(key="ft_per_chunk").set_value(2)
    at.button(key="ft_generate").click().run()
    assert not at.exception, at.exception
    assert "4 pair(s) from 2 of 2 chunk(s) (1 from an earlier run)" in texts(at, "success")
    table = at.data_editor[0].value
    assert len(table) == 4 and set(table["file"]) == {"cats.md"}
    assert "Source: cats.md" in texts(at, "caption")  # the selected pair's chunk
    assert any("Cats sleep sixteen hours" in m.value for m in at.markdown)
    assert "Valid: 3 training + 1 validation" in texts(at, "success")
    assert "only 4 example(s)" in texts(at, "warning")
    journal = list((env / "finetune").rglob("pairs.jsonl"))
    assert len(journal) == 1 and len(journal[0].read_text().splitlines()) == 2

    at.button(key="ft_start").click().run()
    assert not at.exception, at.exception
    assert "Started job" in texts(at, "success")
    (job,) = openai_server.jobs.values()
    uploaded = openai_server._file_contents[job["training_file"]].decode().splitlines()
    assert len(uploaded) == 3 and all("messages" in json.loads(line) for line in uploaded)
    for _ in range(3):  # each run follows the job one step further
        at.run()
    assert "Fine-tuned model: ft:gpt-4o-mini" in texts(at, "success")
    assert "**Status:** succeeded" in texts(at, "markdown")

    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    tuned = at.selectbox(key="cmp_tuned")
    assert tuned.value and str(tuned.value).startswith("ft:gpt-4o-mini:docchat:")
    generated = at.selectbox(key="cmp_pick")
    generated.set_value(generated.options[1]).run()
    assert at.text_area(key="cmp_question").value == generated.options[1]
    at.button(key="cmp_go").click().run()
    assert not at.exception, at.exception
    metrics = [(m.label, m.value) for m in at.metric]
    assert [v for label, v in metrics if label == "Sources"] == ["none", "2", "none", "2"]
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert any("Fine-tuned model + RAG" in h for h in headings)
    models = [r.get("model") for r in openai_server.requests if "messages" in r][-4:]
    assert models[0] == "gpt-4o-mini" and models[3] == tuned.value


def test_compare_without_llm_says_it_needs_one(env: Path) -> None:
    at = open_page("compare.py")
    assert "Comparing needs an LLM" in texts(at, "warning")
