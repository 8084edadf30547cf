"""LLM faults through the engine, against the local OpenAI-compatible test server.

Wrong key, 429 with retry-after, 500, a stream cut half-way (and its cousins: a clean
end without finish_reason, an error event), a first token slower than the timeout, a
model that does not exist, a server that is down. Each must give a clear `LLMError`
while the stream's `answer` keeps the sources (and any partial text), and the
conversation goes on: a follow-up with the history works once the fault is gone.
"""

from __future__ import annotations

import time

import pytest

from rag import DocChat, LLMError, Settings
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import free_port

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr.\n\n## Food\n\nCats eat fish."
QUESTION = "What do cats eat?"
TIMEOUT = 1.0


def make_app(settings: Settings, server: FakeOpenAIServer, **changes: object) -> DocChat:
    s = settings.with_(
        openai_base_url=server.base_url,
        openai_api_key="test-key",
        chat_model="fake-model",
        llm_max_retries=0,
        llm_timeout=TIMEOUT,
    ).with_(**changes)
    app = DocChat.open(s, embedder=HashEmbedder())
    assert app.ingest("cats.md", CATS).status == "indexed"
    return app


def ask_expecting_failure(app: DocChat, **kwargs: object) -> tuple[str, str]:
    """(error message, partial text) of a failed streamed answer; checks the sources."""
    stream = app.stream(app.retrieve(QUESTION, **kwargs))  # type: ignore[arg-type]
    with pytest.raises(LLMError) as info:
        for _ in stream:
            pass
    answer = stream.answer
    assert answer is not None and answer.sources, "the sources must survive a failure"
    assert answer.sources[0].chunk.file == "cats.md"
    assert answer.error == str(info.value)
    return str(info.value), answer.text


def conversation_goes_on(app: DocChat, failed_text: str) -> None:
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": failed_text or "(no answer)"},
    ]
    answer = app.ask("And how long do they sleep?", history=history)
    assert answer.mode == "llm" and not answer.error and answer.sources


FAULTS = [
    # (server fault, words the message must contain)
    ("rate_limit", "rate-limiting requests; try again in 1 s"),
    ("server_error", "The LLM server failed (HTTP 500); try again."),
    ("cut_stream", "The answer was cut off"),
    ("short_stream", "The answer was cut off"),
    ("stream_error", "The LLM reported an error: The model crashed while generating."),
]


@pytest.mark.parametrize(("fault", "message"), FAULTS, ids=[f for f, _ in FAULTS])
def test_server_fault(
    fault: str, message: str, settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = make_app(settings, openai_server)
    openai_server.fail_next(fault)
    error, partial = ask_expecting_failure(app)
    assert message in error
    if fault in ("cut_stream", "short_stream", "stream_error"):
        assert partial.startswith("According")  # what arrived before the cut is kept
    conversation_goes_on(app, partial)


def test_rate_limit_is_retried_after_the_servers_delay(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = make_app(settings, openai_server, llm_max_retries=1, llm_timeout=10.0)
    openai_server.fail_next("rate_limit")
    t0 = time.monotonic()
    answer = app.ask(QUESTION)
    assert answer.mode == "llm" and not answer.error
    assert time.monotonic() - t0 >= 0.9  # it waited for `retry-after: 1`


def test_slow_first_token_times_out(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = make_app(settings, openai_server)
    openai_server.delay = 3.0
    openai_server.fail_next("slow_first_token")
    t0 = time.monotonic()
    error, _ = ask_expecting_failure(app)
    assert time.monotonic() - t0 < 2.9
    assert error == f"The LLM did not answer within {TIMEOUT:g} s."
    conversation_goes_on(app, "")


def test_wrong_key(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = make_app(settings, openai_server, openai_api_key="sk-wrong-key-123456789")
    error, _ = ask_expecting_failure(app)
    assert error == "The LLM rejected the API key (check OPENAI_API_KEY)."
    assert "wrong-key" not in error  # the server echoed it; the message does not
    fixed = make_app(settings.with_(data_dir=settings.data_dir / "2"), openai_server)
    conversation_goes_on(fixed, "")


def test_missing_model(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = make_app(settings, openai_server, chat_model="no-such-model")
    error, _ = ask_expecting_failure(app)
    assert error == f"The model 'no-such-model' does not exist on {openai_server.base_url}."
    # The chat page lets the user pick another model for the next question.
    answer = app.stream(app.retrieve(QUESTION), model="fake-model").run()
    assert answer.mode == "llm" and not answer.error


def test_server_down(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    port = free_port()  # nothing listens here
    down = f"http://127.0.0.1:{port}/v1"
    app = make_app(settings, openai_server, openai_base_url=down)
    error, _ = ask_expecting_failure(app)
    assert error == f"Cannot reach the LLM server at {down} (is it running?)."


def test_follow_up_rewrite_failure_falls_back_to_the_question(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = make_app(settings, openai_server)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    openai_server.fail_next("server_error")  # hits the follow-up rewrite, not the answer
    answer = app.ask(QUESTION, history=history)
    assert answer.mode == "llm" and not answer.error and answer.sources
