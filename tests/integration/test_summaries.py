"""Whole-document questions through the engine (`SummaryService`, `DocChat.summarize`,
`DocChat.whole_document`): which document a question means, the summary read from
every chunk of it (Chroma in tmp_path, the fast fake embedder, the fake OpenAI server
over HTTP), and read access checked like every document read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import DocChat, Settings
from rag.core.errors import AccessDeniedError, DocumentNotFoundError
from rag.team.access import User
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder


def guide(topic: str, sections: int = 4) -> bytes:
    """A Markdown guide with `sections` headed sections about `topic`."""
    parts = [f"# {topic.title()} guide\n"]
    for i in range(1, sections + 1):
        parts.append(
            f"## Part {i}\n\n"
            + f"Part {i} says that {topic} number {i} matter to everyone who studies them. "
            f"Field notes on {topic} in part {i} describe long observations over the seasons. " * 3
        )
    return "\n\n".join(parts).encode()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DocChat]:
    settings = Settings(data_dir=tmp_path, min_score=0.0, chunk_tokens=64, chunk_overlap=8)
    app = DocChat.open(settings, embedder=HashEmbedder())
    app.ingest("volcanoes.md", guide("volcanoes"))
    yield app
    app.close()


def test_which_document_a_question_means(engine: DocChat) -> None:
    volcanoes = engine.documents()[0].doc_id
    assert engine.whole_document("How hot is lava?") is None  # not a whole-document question
    assert engine.whole_document("Summarize it") == volcanoes  # the only document
    engine.ingest("glaciers.md", guide("glaciers"))
    glaciers = next(d.doc_id for d in engine.documents() if d.name == "glaciers.md")
    assert engine.whole_document("Summarize it", doc_ids=[glaciers]) == glaciers  # in focus
    assert engine.whole_document("Summarize glaciers.md") == glaciers  # named
    assert engine.whole_document("List every glacier the document names") == glaciers  # searched


def test_an_extractive_summary_cites_every_section(engine: DocChat) -> None:
    answer = engine.summarize("volcanoes.md").run()
    assert answer.kind == "summary" and answer.mode == "extractive" and answer.llm_calls == 0
    assert {s.chunk.section for s in answer.sources} >= {
        f"Volcanoes guide > Part {i}" for i in range(1, 5)
    }
    assert all(s.chunk.file == "volcanoes.md" for s in answer.sources)


def test_a_map_reduce_summary_with_the_llm(tmp_path: Path) -> None:
    with FakeOpenAIServer() as llm:
        settings = Settings(data_dir=tmp_path, min_score=0.0, chunk_tokens=64, chunk_overlap=8,
                            openai_base_url=llm.base_url, openai_api_key="test-key",
                            llm_max_retries=0, context_tokens=600)  # fmt: skip
        app = DocChat.open(settings, embedder=HashEmbedder())
        app.ingest("volcanoes.md", guide("volcanoes", sections=8))
        progress: list[str] = []
        answer = app.summarize("volcanoes.md", on_progress=lambda p: progress.append(p.label)).run()
        app.close()
    assert answer.mode == "llm" and answer.llm_calls == len(llm.requests) > 2
    assert {s.chunk.section for s in answer.sources} >= {
        f"Volcanoes guide > Part {i}" for i in range(1, 9)
    }
    assert progress[0].startswith("reading part 1 of") and progress[-1].startswith("writing")
    assert 'The document is "volcanoes.md"' in llm.requests[0]["messages"][0]["content"]


def test_reading_a_summary_needs_read_access(tmp_path: Path) -> None:
    base = DocChat.open(Settings(data_dir=tmp_path, min_score=0.0), embedder=HashEmbedder())
    ann, bob = base.as_user(User("u-ann", "ann")), base.as_user(User("u-bob", "bob"))
    ann.create_collection("ann-notes")
    ann.ingest("volcanoes.md", guide("volcanoes"), collection="ann-notes")
    assert ann.summarize("volcanoes.md", collection="ann-notes").run().sources
    with pytest.raises(AccessDeniedError):
        bob.summarize("volcanoes.md", collection="ann-notes")
    with pytest.raises(AccessDeniedError):
        bob.whole_document("Summarize it", collection="ann-notes")
    with pytest.raises(DocumentNotFoundError):
        ann.summarize("nothing.md", collection="ann-notes")
    base.close()
