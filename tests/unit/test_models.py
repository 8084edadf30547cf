"""The models' one JSON conversion, and the search options built from the settings."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rag import (
    Answer,
    Chunk,
    CollectionInfo,
    DocumentInfo,
    Hit,
    IngestResult,
    SearchOptions,
    Settings,
    Source,
)

CHUNK = Chunk(doc_id="ab" * 32, file="cats.md", index=2, text="Cats eat fish.", start=5, end=19,
              page=None, section="Food", line_start=3, line_end=4, tokens=4)  # fmt: skip
SOURCE = Source(n=1, hit=Hit(chunk=CHUNK, score=0.81234, dense_score=0.8))


def names(cls: Any) -> set[str]:
    return {f.name for f in fields(cls)}


def test_each_to_dict_covers_every_field() -> None:
    doc = DocumentInfo("ab" * 32, "cats.md", "markdown", 1, 3, 120, 1.5, warnings=("w",))
    col = CollectionInfo("default", "m", 64, 200, 20, 1, 3, 1.5, size=120)
    result = IngestResult("cats.md", "indexed", doc_id="ab" * 32, seconds=0.12345)
    answer = Answer("Fish [1].", "llm", "What?", "what", (SOURCE,), (1,), timings={"x": 0.123456})
    assert set(CHUNK.to_dict()) == names(Chunk)
    assert set(doc.to_dict()) == names(DocumentInfo)
    assert set(col.to_dict()) == names(CollectionInfo)
    assert set(result.to_dict()) == names(IngestResult)
    # Source is flat: its number, its chunk's fields, its score, its chunk's index as
    # `chunk` (what `show --chunk` takes).
    assert set(SOURCE.to_dict()) == {"n", "score", "chunk"} | names(Chunk)
    # Answer names its text "answer"; everything else keeps its field name.
    assert set(answer.to_dict()) == names(Answer) - {"text"} | {"answer"}
    assert doc.to_dict()["warnings"] == ["w"]  # JSON-ready: tuples as lists
    assert result.to_dict()["seconds"] == 0.123 and SOURCE.to_dict()["score"] == 0.8123
    assert answer.to_dict()["timings"] == {"x": 0.1235}


def test_collection_info_to_dict_has_its_size() -> None:
    """It was left out of the hand-written to_dict."""
    col = CollectionInfo("default", "m", 64, 200, 20, 1, 3, 1.5, size=4096)
    assert col.to_dict()["size"] == 4096


def test_search_options_from_settings_and_overrides() -> None:
    s = Settings(top_k=5, min_score=0.3, hybrid=True, dense_weight=0.6)
    assert SearchOptions.from_settings(s) == SearchOptions(5, 0.3, (), True, 0.6)
    got = SearchOptions.from_settings(
        s, top_k=2, min_score=0.0, doc_ids=["a"], hybrid=False, dense_weight=0.0
    )
    assert got == SearchOptions(2, 0.0, ("a",), False, 0.0)  # 0 and False still override
    assert SearchOptions.from_settings(s, top_k=None, min_score=None).top_k == 5
