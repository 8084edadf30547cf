"""Whole-document summaries through the HTTP API, with the real `openai` client over real
HTTP: `POST /v1/collections/{name}/documents/{doc}/summary` (streamed and not) and a
whole-document question sent to `/v1/chat/completions`, in extractive mode and with
the fake OpenAI-compatible LLM behind (which answers summary prompts with one cited
sentence per passage); errors in OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from rag import DocChat, Settings
from rag.api import create_app
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.serving import error_of, serving

ROUTE = "/collections/default/documents/volcanoes.md/summary"
SECTIONS = {f"Part {i}" for i in range(1, 5)}


def guide() -> bytes:
    parts = ["# Volcanoes\n"]
    for i in range(1, 5):
        parts.append(
            f"## Part {i}\n\n"
            + f"Part {i} explains that volcano number {i} erupts every few centuries. "
            f"Observers of volcano {i} record the ash, the lava and the gases it gives off. " * 3
        )
    return "\n\n".join(parts).encode()


def serve(settings: Settings) -> Iterator[tuple[str, openai.OpenAI]]:
    engine = DocChat.open(settings, embedder=HashEmbedder())
    engine.ingest("volcanoes.md", guide())
    try:
        with serving(create_app(engine)) as url:
            yield url, openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    finally:
        engine.close()


@pytest.fixture
def extractive(tmp_path: Path) -> Iterator[tuple[str, openai.OpenAI]]:
    yield from serve(Settings(data_dir=tmp_path, min_score=0.0, chunk_tokens=64, chunk_overlap=8))


@pytest.fixture
def with_llm(tmp_path: Path) -> Iterator[tuple[str, openai.OpenAI, FakeOpenAIServer]]:
    with FakeOpenAIServer() as llm:
        settings = Settings(data_dir=tmp_path, min_score=0.0, chunk_tokens=64, chunk_overlap=8,
                            openai_base_url=llm.base_url, openai_api_key="test-key",
                            llm_max_retries=0, context_tokens=600)  # fmt: skip
        for url, client in serve(settings):
            yield url, client, llm


def sections(sources: list[dict[str, Any]]) -> set[str]:
    return {s["section"].split(" > ")[-1] for s in sources}


def summary(client: openai.OpenAI, **body: Any) -> dict[str, Any]:
    return client.post(ROUTE, body=body, cast_to=object)  # type: ignore[return-value]


def streamed(client: openai.OpenAI, **body: Any) -> list[ChatCompletionChunk]:
    events = client.post(ROUTE, body={**body, "stream": True}, cast_to=ChatCompletionChunk,
                         stream=True, stream_cls=openai.Stream[ChatCompletionChunk])  # fmt: skip
    return list(events)


def test_the_summary_route_in_extractive_mode(extractive: tuple[str, openai.OpenAI]) -> None:
    url, client = extractive
    plain = summary(client)
    assert set(plain) == {"summary", "sources", "mode", "llm_calls", "usage"}
    assert plain["mode"] == "extractive" and plain["llm_calls"] == 0
    assert plain["summary"].startswith("Extractive summary (no LLM configured)")
    assert sections(plain["sources"]) >= SECTIONS
    assert [s["n"] for s in plain["sources"]] == list(range(1, len(plain["sources"]) + 1))
    chunks = streamed(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain["summary"]
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["sources"] == plain["sources"]  # type: ignore[index]
    assert last.model_extra["docchat"]["kind"] == "summary"  # type: ignore[index]
    # An unknown document: 404 in OpenAI's shape, through the client and over plain HTTP.
    with pytest.raises(openai.NotFoundError):
        client.post("/collections/default/documents/nope.md/summary", body={}, cast_to=object)
    r = httpx.post(f"{url}/v1/collections/default/documents/nope.md/summary", json={})
    assert r.status_code == 404 and error_of(r)["type"] == "not_found_error"


def test_the_summary_route_with_the_llm(
    with_llm: tuple[str, openai.OpenAI, FakeOpenAIServer],
) -> None:
    _, client, llm = with_llm
    plain = summary(client, question="Summarize it in bullet points", temperature=0.0)
    assert plain["mode"] == "llm" and plain["llm_calls"] == len(llm.requests) > 1
    assert sections(plain["sources"]) >= SECTIONS
    assert plain["usage"]["prompt_tokens"] > 0 and plain["usage"]["completion_tokens"] > 0
    assert all(r["temperature"] == 0.0 for r in llm.requests)
    assert "bullet points" in llm.requests[-1]["messages"][-1]["content"]  # the final call
    chunks = streamed(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain["summary"]  # the fake LLM is deterministic
    assert sections(chunks[-1].model_extra["sources"]) >= SECTIONS  # type: ignore[index]


def test_a_whole_document_question_to_chat_completions(
    with_llm: tuple[str, openai.OpenAI, FakeOpenAIServer],
) -> None:
    _, client, llm = with_llm
    question = [{"role": "user", "content": "Summarize this document."}]
    r = client.chat.completions.create(model="docchat/default", messages=question)  # type: ignore[arg-type]
    extra = r.model_extra or {}
    assert extra["docchat"]["kind"] == "summary" and extra["docchat"]["llm_calls"] > 1
    assert sections(extra["sources"]) >= SECTIONS
    stream = client.chat.completions.create(model="docchat/default", messages=question,  # type: ignore[arg-type]
                                            stream=True)  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    # A factual question still takes the top-k path: one LLM call.
    before = len(llm.requests)
    normal = client.chat.completions.create(
        model="docchat/default", messages=[{"role": "user", "content": "When does it erupt?"}]
    )
    assert "kind" not in (normal.model_extra or {})["docchat"] and len(llm.requests) == before + 1
