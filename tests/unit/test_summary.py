"""A whole document summarized (`rag.answering.summary`): map-reduce against the fake
OpenAI server over real HTTP (it answers summary prompts like a small extractive
model), the extractive summary without an LLM, citations renumbered as they stream,
and the bounds: calls, time, Stop, a failing LLM.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.answering.central import EXTRACTIVE_SUMMARY_LABEL, groups
from rag.answering.renumber import Renumber
from rag.answering.summary import SummaryProgress, SummaryStream
from rag.components.generation import OpenAILLM
from rag.core.errors import LLMError
from rag.core.models import Answer, Chunk
from rag.core.text import citations
from tests.fixtures.fake_openai import FakeOpenAIServer

TOPICS = ["glaciers", "volcanoes", "rivers", "deserts", "forests", "oceans"]


def document(per_section: int = 8, *, pages: bool = False) -> list[Chunk]:
    """Six sections of `per_section` chunks, each chunk three sentences on its topic."""
    chunks = []
    for s, topic in enumerate(TOPICS):
        for k in range(per_section):
            i = s * per_section + k
            text = (
                f"Chunk {i} explains how {topic} shape the land over long periods. "
                f"Scientists measure {topic} with satellites and field stations every year. "
                f"The records of {topic} show change in number {i} of the survey tables. "
            ) * 2
            chunks.append(Chunk(doc_id="d", file="earth.md", index=i, text=text, start=0,
                                end=len(text), section=f"{topic.title()}",
                                page=i // 4 + 1 if pages else None))  # fmt: skip
    return chunks


@pytest.fixture
def llm(openai_server: FakeOpenAIServer) -> Iterator[OpenAILLM]:
    client = OpenAILLM(api_key="test-key", base_url=openai_server.base_url, model="gpt-4o-mini",
                       max_retries=0)  # fmt: skip
    yield client
    client.close()


def summarize(chunks: list[Chunk], llm: OpenAILLM | None, **kw: object) -> SummaryStream:
    args: dict[str, object] = {"budget": 1200, "seconds": 60, "max_calls": 50, "name": "earth.md"}
    return SummaryStream(chunks, llm=llm, **{**args, **kw})  # type: ignore[arg-type]


def sections_cited(answer: Answer) -> set[str]:
    return {s.chunk.section for s in answer.sources}


def check_numbering(answer: Answer) -> None:
    """Citations are 1..m in order of first use, and m sources back them."""
    used = list(dict.fromkeys(citations(answer.text)))
    assert used == list(range(1, len(answer.sources) + 1))
    assert [s.n for s in answer.sources] == used


def test_renumber_rewrites_citations_split_across_deltas() -> None:
    r = Renumber(valid=50)
    pieces = [
        "Ice [1",
        "7] moves",
        " [3-4]. Odd [99] and [0] go; [",
        "17, 3]",
        " end [2",
        "]",
        " [x",
    ]
    out = "".join(r.feed(p) for p in pieces) + r.flush()
    assert out == "Ice [1] moves [2][3]. Odd  and  go; [1][2] end [4] [x"
    assert r.order == [17, 3, 4, 2]


def test_map_reduce_cites_every_section_and_renumbers(
    llm: OpenAILLM, openai_server: FakeOpenAIServer
) -> None:
    progress: list[SummaryProgress] = []
    finished: list[tuple[Answer, bool]] = []
    stream = summarize(document(16), llm, on_progress=progress.append,
                       on_finish=lambda a, s: finished.append((a, s)))  # fmt: skip
    with stream:
        text = "".join(stream)
    answer = stream.result()
    assert finished == [(answer, False)] and text == answer.text
    assert answer.kind == "summary" and answer.mode == "llm" and not answer.error
    assert sections_cited(answer) == {t.title() for t in TOPICS}
    check_numbering(answer)
    # A budget of 1,200 tokens: several parts, and partials combined in more than one call.
    requests = openai_server.requests
    assert answer.llm_calls == len(requests) > len([p for p in progress if "reading" in p.label])
    assert any("combining" in p.label for p in progress)
    assert progress[0].label.startswith("reading part 1 of ")
    assert progress[-1].done == progress[-1].total == len(requests)
    assert requests[-1]["stream"] and not any(r.get("stream") for r in requests[:-1])
    assert all(r.get("max_tokens") for r in requests[:-1])
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert not stream.tokens_estimated  # the fake server reports usage
    system = requests[0]["messages"][0]["content"]
    assert "not as instructions" in system and "links" in system


def test_one_call_when_the_document_fits(llm: OpenAILLM, openai_server: FakeOpenAIServer) -> None:
    answer = summarize(document(1), llm, budget=3000).run()
    assert answer.llm_calls == 1 == len(openai_server.requests)
    assert sections_cited(answer) == {t.title() for t in TOPICS}


def test_the_call_cap_bounds_the_cost_and_says_what_was_read(
    llm: OpenAILLM, openai_server: FakeOpenAIServer
) -> None:
    answer = summarize(document(pages=True), llm, max_calls=3).run()
    assert answer.llm_calls == len(openai_server.requests) <= 3
    assert (
        "This summary covers pages 1-" in answer.text and "DOCCHAT_SUMMARY_MAX_CALLS" in answer.text
    )


def test_the_time_bound_stops_reading(llm: OpenAILLM) -> None:
    ticks = iter(range(0, 1000, 100))  # every look at the clock: 100 s later
    answer = summarize(document(), llm, seconds=150, clock=lambda: next(ticks)).run()
    assert "DOCCHAT_SUMMARY_SECONDS" in answer.text and "passages 1-" in answer.text
    assert sections_cited(answer) < {t.title() for t in TOPICS}


def test_stop_between_steps_ends_the_summary(
    llm: OpenAILLM, openai_server: FakeOpenAIServer
) -> None:
    finished: list[bool] = []
    stream = summarize(document(), llm, on_finish=lambda a, stopped: finished.append(stopped))
    with stream:
        for _ in stream:
            break  # after the first part was read
    assert finished == [True] and stream.stopped
    assert len(openai_server.requests) == 1


def test_an_llm_failure_keeps_the_partial_summaries(
    llm: OpenAILLM, openai_server: FakeOpenAIServer
) -> None:
    stream = summarize(document(), llm)
    parts = iter(stream)
    next(parts)  # the first part read
    openai_server.fail_next("server_error", count=3)
    with pytest.raises(LLMError):
        list(parts)
    answer = stream.result()
    assert answer.error and answer.text.startswith("Partial summaries, made before the LLM")
    check_numbering(answer)


def test_estimated_tokens_when_the_server_reports_none(
    llm: OpenAILLM, openai_server: FakeOpenAIServer
) -> None:
    openai_server.ignore_stream_options = True  # the streamed last call has no usage
    stream = summarize(document(1), llm, budget=3000)
    answer = stream.run()
    assert stream.tokens_estimated and answer.prompt_tokens > 0


def test_extractive_summary_quotes_each_section_with_citations() -> None:
    progress: list[SummaryProgress] = []
    stream = summarize(document(), None, on_progress=progress.append)
    answer = stream.run()
    assert answer.mode == "extractive" and answer.llm_calls == 0 and answer.kind == "summary"
    assert answer.text.startswith(EXTRACTIVE_SUMMARY_LABEL)
    assert sections_cited(answer) == {t.title() for t in TOPICS}
    check_numbering(answer)
    assert [p.label for p in progress][:2] == ["reading section 1 of 6", "reading section 2 of 6"]
    quoted = [line for line in answer.text.splitlines() if line.startswith("> ")]
    assert len(quoted) == len(set(quoted))  # repeated sentences are quoted once


def test_extractive_list_quotes_the_sentences_naming_the_topic() -> None:
    answer = summarize(document(2), None, question="List every volcano it names").run()
    assert answer.text.startswith("Extractive list (no LLM configured)")
    assert sections_cited(answer) == {"Volcanoes"}


def test_groups_without_sections_follow_pages() -> None:
    chunks = [c.__class__(**{**c.to_dict(), "section": ""}) for c in document(pages=True)]
    found = groups(chunks)
    assert [g.title for g in found][:2] == ["page 1", "page 2"]
    assert sum(len(g.chunks) for g in found) == len(chunks)


def test_an_empty_document() -> None:
    answer = summarize([], None).run()
    assert answer.mode == "no-answer" and answer.sources == ()
