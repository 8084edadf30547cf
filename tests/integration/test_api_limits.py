"""What one API request may cost, over real HTTP: questions and messages refused by
their length (413, before any retrieval), `/v1/embeddings` bounded in inputs and
characters, JSON bodies by size, the per-key rate limit (429 with `Retry-After`,
counted across app instances on one record store), and a streamed answer that stops
when its client goes away.

The upload's streaming limits are in test_api_uploads.py; the rate counters across
processes and on PostgreSQL in test_rate_counters.py; the question's steps on long
texts in tests/unit/test_question_cost.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag import DocChat, Settings
from rag.api import create_app
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.serving import Served, bearer, engine_served, error_of, serving

MB = 1_000_000
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def single(tmp_path: Path) -> Iterator[Served]:
    """Single-user mode on loopback, extractive, no rate limit."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, rate_limit="off", workers=0)
    with engine_served(settings) as served:
        yield served


def chat_body(*messages: str, stream: bool = False) -> dict[str, Any]:
    roles = ["user", "assistant"] * len(messages)
    turns = [{"role": r, "content": m} for r, m in zip(roles, messages, strict=False)]
    return {"model": "docchat/default", "messages": turns, "stream": stream}


# -- questions and messages ---------------------------------------------------------------------


def test_a_1mb_question_is_refused_at_once_before_any_retrieval(single: Served) -> None:
    """413 in OpenAI's shape in under 100 ms (the whole round trip), the embedder never
    called; chat completions, streamed or not, and search alike."""
    question = "Why do cats sleep so much? " * (MB // 27 + 1)
    with single.client() as h:
        h.get("/v1/models")  # the connection is open: the timing is the request's
        calls = single.embedder.calls
        for path, body in [
            ("/v1/chat/completions", chat_body(question)),
            ("/v1/chat/completions", chat_body(question, stream=True)),
            ("/v1/collections/default/search", {"query": question}),
        ]:
            payload = json.dumps(body).encode()
            times = []
            for _ in range(3):  # the best of three: the refusal's cost, not the machine's load
                t0 = time.perf_counter()
                r = h.post(path, content=payload, headers=JSON)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 413, r.text
            seconds = min(times)
            error = error_of(r)
            assert error["type"] == "invalid_request_error"
            assert "DOCCHAT_MAX_QUESTION_CHARS" in error["message"]
            assert "8,000" in error["message"]
            assert seconds < 0.1, f"{path}: refused in {seconds * 1000:.0f} ms"
        assert single.embedder.calls == calls  # nothing was embedded or searched


def test_every_chat_message_and_all_of_them_are_bounded(single: Served) -> None:
    limit = single.engine.settings.max_question_chars
    with single.client() as h:
        calls = single.embedder.calls
        long_history = h.post(
            "/v1/chat/completions", json=chat_body("x" * (limit + 1), "ok", "Do cats purr?")
        )
        assert long_history.status_code == 413
        assert "The message is" in error_of(long_history)["message"]
        # Each message under the limit, all of them together over 8 times it.
        many = ["y" * limit] * 8 + ["Do cats purr?"]
        total = h.post("/v1/chat/completions", json=chat_body(*many))
        assert total.status_code == 413
        assert "send less history" in error_of(total)["message"]
        assert single.embedder.calls == calls
        # At the limit exactly, a question is answered.
        ok = h.post("/v1/chat/completions", json=chat_body(("Do cats purr? " * limit)[:limit]))
        assert ok.status_code == 200, ok.text


def test_embeddings_are_bounded_in_inputs_and_characters(single: Served) -> None:
    s = single.engine.settings
    model = single.embedder.name
    with single.client() as h:
        calls = single.embedder.calls
        inputs = ["a"] * (s.max_embed_inputs + 1)
        many = h.post("/v1/embeddings", json={"model": model, "input": inputs})
        assert many.status_code == 413 and "DOCCHAT_MAX_EMBED_INPUTS" in error_of(many)["message"]
        half = s.max_embed_chars // 2 + 1
        long = h.post("/v1/embeddings", json={"model": model, "input": ["b" * half, "c" * half]})
        assert long.status_code == 413 and "DOCCHAT_MAX_EMBED_CHARS" in error_of(long)["message"]
        none = h.post("/v1/embeddings", json={"model": model, "input": []})
        assert none.status_code == 400
        assert single.embedder.calls == calls
        # A 5 MB input is over the body limit: refused before the body is read.
        payload = json.dumps({"model": model, "input": "d" * (5 * MB)}).encode()
        t0 = time.perf_counter()
        big = h.post("/v1/embeddings", content=payload, headers=JSON)
        seconds = time.perf_counter() - t0
        assert big.status_code == 413
        assert "DOCCHAT_MAX_EMBED_CHARS" in error_of(big)["message"]
        assert seconds < 0.5, f"refused in {seconds * 1000:.0f} ms"
        ok = h.post("/v1/embeddings", json={"model": model, "input": ["Cats sleep."] * 3})
        assert ok.status_code == 200 and len(ok.json()["data"]) == 3


def test_a_body_over_the_json_limit_is_refused_whatever_the_route(single: Served) -> None:
    """Content-Length over the limit: 413 in OpenAI's shape, even where the route
    would read no text (a collection's name)."""
    with single.client() as h:
        r = h.post("/v1/collections", content=b"{" + b" " * (3 * MB) + b"}", headers=JSON)
        assert r.status_code == 413, r.text
        assert "MB" in error_of(r)["message"]


# -- the rate limit ---------------------------------------------------------------------------


def test_the_rate_limit_counts_per_key_and_answers_429_with_retry_after(tmp_path: Path) -> None:
    """5/minute: the 6th request of a key gets 429 in OpenAI's shape with Retry-After;
    another key and the same key's other routes count apart or together as they should;
    a second app on the same record store shares the count."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, rate_limit="5/minute")
    # Served on a non-loopback address in single-user mode: every request needs a key.
    with engine_served(settings, host="0.0.0.0") as served:
        _, first = served.engine.create_api_key("first")
        _, second = served.engine.create_api_key("second")
        with served.client(first) as a, served.client(second) as b:
            assert [a.get("/v1/models").status_code for _ in range(3)] == [200] * 3
            assert a.get("/v1/collections").status_code == 200  # every /v1 route counts
            found = a.post("/v1/collections/default/search", json={"query": "cats"})
            assert found.status_code == 200
            refused = a.get("/v1/models")
            assert refused.status_code == 429
            error = error_of(refused)
            assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
            assert "5 requests per minute" in error["message"] and "API key" in error["message"]
            retry = int(refused.headers["retry-after"])
            assert 1 <= retry <= 60
            assert b.get("/v1/models").status_code == 200  # another key: its own count
            # Outside /v1 (the docs) nothing is counted.
            assert a.get("/openapi.json").status_code == 200
            # A second app instance over the same record store shares the count.
            with serving(create_app(served.engine, host="0.0.0.0")) as other:
                again = httpx.get(f"{other}/v1/models", headers=bearer(first))
                assert again.status_code == 429
                assert httpx.get(f"{other}/v1/models", headers=bearer(second)).status_code == 200
            # The count comes before the key is checked: a bad key counts on its own.
            with served.client("dck_guess") as guess:
                assert [guess.get("/v1/models").status_code for _ in range(6)] == [401] * 5 + [429]


def test_without_a_key_needed_the_count_is_per_client_address(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, min_score=0.0, rate_limit="2/minute")
    with engine_served(settings) as served, served.client("anything") as h:
        assert [h.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]
        assert "client address" in error_of(h.get("/v1/models"))["message"]
        # Another key from the same address: the same counter (no key is needed here).
        with served.client("other") as h2:
            assert h2.get("/v1/models").status_code == 429


def test_an_empty_rate_limit_turns_it_off_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    engine = DocChat.open(Settings(data_dir=tmp_path, rate_limit="often"), embedder=HashEmbedder())
    try:
        with pytest.raises(Exception, match="DOCCHAT_RATE_LIMIT='often'"):
            create_app(engine)
    finally:
        engine.close()


# -- a client that goes away ------------------------------------------------------------------


@pytest.fixture
def slow_llm() -> Iterator[FakeOpenAIServer]:
    """An LLM that streams a long answer slowly (200 words, 50 ms apart)."""
    with FakeOpenAIServer(token_delay=0.05, reply="Cats sleep a lot [1]. " * 50) as server:
        yield server


def _open_to_llm(server: FakeOpenAIServer) -> int:
    """The fake LLM's open connections (its handler threads end with them)."""
    httpd = server._httpd
    assert httpd is not None
    with httpd._connections_lock:
        return len(httpd._connections)


def test_a_streamed_answer_stops_when_its_client_goes_away(
    tmp_path: Path, slow_llm: FakeOpenAIServer
) -> None:
    """The client reads a few events and hangs up: the server closes its stream from
    the LLM soon after (the LLM's connection ends), instead of generating on."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, rate_limit="off",
                        openai_base_url=slow_llm.base_url, openai_api_key="test-key",
                        llm_max_retries=0)  # fmt: skip
    with engine_served(settings) as served, served.client() as h:
        with h.stream("POST", "/v1/chat/completions",
                      json=chat_body("Do cats sleep?", stream=True)) as r:  # fmt: skip
            assert r.status_code == 200
            lines = r.iter_lines()
            events = [next(lines) for _ in range(6)]
            assert any('"content": "Cats' in e for e in events)
            assert _open_to_llm(slow_llm) == 1  # the answer is still being generated
        # The client has gone (the connection is closed with the stream).
        deadline = time.monotonic() + 5
        while _open_to_llm(slow_llm) and time.monotonic() < deadline:
            time.sleep(0.05)
        # (The whole answer takes 10 s: it ended because the server closed it.)
        assert _open_to_llm(slow_llm) == 0, "the server kept reading the LLM's stream"
