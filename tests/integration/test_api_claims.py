"""The claim check through the HTTP API, with the real `openai` client over real HTTP:
`/v1/chat/completions` returns a `claims` list beside `sources` (plain, and on the
last streamed chunk), from an answer of the fake OpenAI-compatible LLM made to cite
wrongly on purpose; `rag ask --json` prints the same list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from rag import DocChat, Settings
from rag.api import create_app
from rag.cli.commands import main
from tests.fixtures.fake_openai import FakeOpenAIServer, Json, _default_reply
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.serving import serving

REPORT = (
    b"# Results\n\nRevenue grew to $15.3 billion in 2023, up from $14.1 billion. "
    b"Operating costs were 1,577 million dollars for the year.\n"
)
WRONG = "Revenue grew to $15.3 billion in 2023 [1]. Operating costs were 12.4 % of revenue [1]."


def reply(body: Json) -> str:
    system = str(body["messages"][0].get("content", ""))
    return WRONG if system.startswith("You are DocChat") else _default_reply(body)


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply=reply) as server:
        yield server


def settings(data: Path, llm: FakeOpenAIServer) -> Settings:
    return Settings(data_dir=data, min_score=0.0, openai_base_url=llm.base_url,
                    openai_api_key="test-key", llm_max_retries=0)  # fmt: skip


def check(claims: list[dict[str, Any]]) -> None:
    """The backed sentence with its evidence; the other with why it is not."""
    assert [c["verdict"] for c in claims] == ["supported", "not_found"]
    backed, wrong = claims
    for c in claims:
        assert WRONG[c["start"] : c["end"]] == c["sentence"] and c["citations"] == [1]
    assert backed["evidence"]["source"] == 1
    start, end = backed["evidence"]["span"]
    assert 0 <= start < end
    assert "12.4" in wrong["reason"] and "[1]" in wrong["reason"]


def test_chat_completions_carry_the_claims(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    engine = DocChat.open(settings(tmp_path, llm), embedder=HashEmbedder())
    engine.ingest("report.md", REPORT)
    try:
        with serving(create_app(engine)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
            ask = [{"role": "user", "content": "How did revenue and costs develop?"}]
            plain = client.chat.completions.create(model="docchat/default", messages=ask)
            assert plain.choices[0].message.content == WRONG
            check(plain.model_extra["claims"])  # type: ignore[index]
            chunks = list(client.chat.completions.create(model="docchat/default",
                                                         messages=ask, stream=True))  # fmt: skip
            assert chunks[-1].model_extra["claims"] == plain.model_extra["claims"]  # type: ignore[index]
    finally:
        engine.close()


def test_rag_ask_json_prints_the_claims(
    tmp_path: Path, llm: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], fake_embedder: None,
) -> None:  # fmt: skip
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCCHAT_MIN_SCORE", "0")
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    (tmp_path / "report.md").write_bytes(REPORT)
    assert main(["ingest", str(tmp_path / "report.md")]) == 0
    capsys.readouterr()
    assert main(["ask", "How did revenue and costs develop?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in out["claims"]] == ["supported", "not_found"]
    assert main(["ask", "How did revenue and costs develop?"]) == 0
    text = capsys.readouterr().out
    assert "[checked: 1 of 2 sentences backed by their sources]" in text
    assert "not backed: 'Operating costs were 12.4 % of revenue [1].'" in text
