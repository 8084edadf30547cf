"""`rag.components.generation.OpenAILLM` against a real OpenAI-compatible HTTP server
(tests/fixtures/fake_openai.py).

Nothing is patched: the `openai` client talks HTTP to the fake server, which
injects the failures. Retries are off (max_retries=0) except where a test is about
them, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from rag.components.generation import Completion, OpenAILLM, open_llm
from rag.core.errors import ConfigError, LLMError
from rag.core.settings import Settings
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.paths import free_port

SECRET = "sk-test-SECRET123"
MESSAGES = [
    {"role": "system", "content": "Answer only from the sources; cite them as [n]."},
    {
        "role": "user",
        "content": "Sources:\n[1] DocChat reads PDFs.\n\nQuestion: What does it read?",
    },
]
DEFAULT_REPLY = "According to the documents [1], you asked: Question: What does it read?"
CUT_OFF = "The answer was cut off: the connection to the LLM closed early."


@pytest.fixture
def server(openai_server: FakeOpenAIServer) -> FakeOpenAIServer:
    openai_server.api_key = SECRET  # a distinctive key that must never leak
    return openai_server


def make_llm(server: FakeOpenAIServer, **overrides: object) -> OpenAILLM:
    options: dict[str, object] = {
        "api_key": SECRET,
        "base_url": server.base_url,
        "model": "gpt-4o-mini",
        "timeout": 5.0,
        "max_retries": 0,
    }
    options.update(overrides)
    return OpenAILLM(**options)  # type: ignore[arg-type]


def list_models(llm: OpenAILLM) -> list[str]:
    """Model ids the server offers, sorted (DocChat itself never lists them)."""
    return llm.call_api(lambda client: sorted(m.id for m in client.models.list()))


def stream_text(llm: OpenAILLM, **kwargs: object) -> str:
    return "".join(llm.stream(MESSAGES, **kwargs))  # type: ignore[arg-type]


def complete_text(llm: OpenAILLM, **kwargs: object) -> str:
    return llm.complete(MESSAGES, **kwargs).text  # type: ignore[arg-type]


CALLS: dict[str, Callable[..., str]] = {"stream": stream_text, "complete": complete_text}


def llm_failure(call: Callable[[], object]) -> str:
    """Run `call`, expect an LLMError, check the key is not in it, return the message."""
    with pytest.raises(LLMError) as info:
        call()
    message = str(info.value)
    assert SECRET not in message and "SECRET123" not in message
    assert SECRET not in repr(info.value)
    return message


# ---- happy paths -------------------------------------------------------------


def test_stream_yields_several_deltas_joining_to_the_reply(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    stream = llm.stream(MESSAGES)
    deltas = list(stream)
    assert len(deltas) > 3
    assert "".join(deltas) == DEFAULT_REPLY
    assert isinstance(stream.completion, Completion)
    assert stream.completion.text == DEFAULT_REPLY
    assert stream.completion.prompt_tokens > 0
    assert stream.completion.completion_tokens == len(deltas)
    assert stream.completion.model == "gpt-4o-mini"
    sent = server.requests[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == MESSAGES
    assert sent["model"] == "gpt-4o-mini"
    assert sent["temperature"] == 0.1


def test_stream_is_lazy_and_takes_per_call_model_and_temperature(
    server: FakeOpenAIServer,
) -> None:
    server.reply = lambda body: f"model={body['model']} t={body['temperature']}"
    llm = make_llm(server)
    stream = llm.stream(MESSAGES, model="llama3", temperature=0.7)
    assert server.requests == []  # nothing is sent before the first delta is asked for
    assert "".join(stream) == "model=llama3 t=0.7"


def test_complete_returns_text_and_usage(server: FakeOpenAIServer) -> None:
    server.reply = "Paris is the capital of France [1]."
    result = make_llm(server).complete(MESSAGES, temperature=0.0)
    assert result.text == "Paris is the capital of France [1]."
    assert result.prompt_tokens > 0
    assert result.completion_tokens == 7
    assert result.model == "gpt-4o-mini"
    assert 0 <= result.seconds < 5
    assert server.requests[-1]["temperature"] == 0.0
    assert "stream" not in server.requests[-1] or not server.requests[-1]["stream"]


def test_complete_passes_max_tokens(server: FakeOpenAIServer) -> None:
    result = make_llm(server).complete(MESSAGES, max_tokens=3)
    # A compatible server gets the classic name (OpenAI itself gets max_completion_tokens).
    assert server.requests[-1]["max_tokens"] == 3
    assert result.completion_tokens == 3
    assert result.text == "According to the "


def test_list_models(server: FakeOpenAIServer) -> None:
    assert list_models(make_llm(server)) == sorted(server.models)


def test_server_ignoring_stream_options_is_fine(server: FakeOpenAIServer) -> None:
    server.ignore_stream_options = True
    stream = make_llm(server).stream(MESSAGES)
    assert "".join(stream) == DEFAULT_REPLY
    assert stream.completion is not None
    assert stream.completion.prompt_tokens == stream.completion.completion_tokens == 0


def test_server_refusing_stream_options_gets_a_retry_without(server: FakeOpenAIServer) -> None:
    server.reject_stream_options = True
    llm = make_llm(server)
    assert stream_text(llm) == DEFAULT_REPLY
    assert stream_text(llm) == DEFAULT_REPLY
    assert ["stream_options" in r for r in server.requests] == [True, False, False]


def test_stopping_a_stream_early_leaves_the_client_usable(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    with llm.stream(MESSAGES) as stream:
        assert next(stream) == "According "
    assert stream.completion is None
    assert stream_text(llm) == DEFAULT_REPLY


# ---- construction, description, settings ---------------------------------------


def test_describe_and_repr_never_show_the_key() -> None:
    openai_llm = OpenAILLM(api_key=SECRET, model="gpt-4o-mini")  # no request is made
    assert openai_llm.describe() == "gpt-4o-mini via api.openai.com"
    local = OpenAILLM(api_key="", base_url="http://127.0.0.1:11434/v1/", model="llama3")
    assert local.describe() == "llama3 via http://127.0.0.1:11434/v1"
    assert local.base_url == "http://127.0.0.1:11434/v1"
    with_secrets = OpenAILLM(
        api_key="", base_url="https://bob:pw@llm.example:8443/v1?k=1", model="m"
    )
    assert with_secrets.describe() == "m via https://llm.example:8443/v1"
    for shown in (openai_llm.describe(), repr(openai_llm), str(openai_llm)):
        assert SECRET not in shown
    public = {k: v for k, v in vars(openai_llm).items() if not k.startswith("_")}
    assert SECRET not in repr(public)


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http"):
        OpenAILLM(api_key="", base_url="localhost:11434/v1", model="llama3")
    with pytest.raises(ConfigError):
        OpenAILLM(api_key="k", model="m", timeout=0)
    with pytest.raises(ConfigError):
        OpenAILLM(api_key="k", model="m", max_retries=-1)


def test_from_settings_is_none_without_key_or_base_url() -> None:
    assert open_llm(Settings()) is None
    assert open_llm(Settings(chat_model="llama3")) is None


def test_from_settings_copies_the_llm_settings() -> None:
    settings = Settings(
        openai_api_key=SECRET,
        chat_model="gpt-4o",
        temperature=0.3,
        llm_timeout=12.0,
        llm_max_retries=0,
    )
    llm = open_llm(settings)
    assert llm is not None
    assert (llm.model, llm.temperature, llm.timeout, llm.max_retries) == ("gpt-4o", 0.3, 12.0, 0)
    assert llm.describe() == "gpt-4o via api.openai.com"


def test_base_url_alone_works_without_a_key(server: FakeOpenAIServer) -> None:
    server.api_key = None  # like Ollama: no authentication
    llm = open_llm(
        Settings(openai_base_url=server.base_url, chat_model="llama3", llm_max_retries=0)
    )
    assert llm is not None
    assert llm.describe() == f"llama3 via {server.base_url}"
    assert stream_text(llm) == DEFAULT_REPLY
    assert server.headers[-1]["authorization"] == "Bearer not-needed"


# ---- failures -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_wrong_key(server: FakeOpenAIServer, mode: str) -> None:
    call = CALLS[mode]
    llm = make_llm(server)
    server.api_key = "another-key"  # the server echoes the rejected key back
    message = llm_failure(lambda: call(llm))
    assert message == "The LLM rejected the API key (check OPENAI_API_KEY)."
    server.api_key = SECRET
    assert call(llm) == DEFAULT_REPLY


EXPECTED = {
    "rate_limit": "The LLM is rate-limiting requests; try again in 1 s.",
    "server_error": "The LLM server failed (HTTP 500); try again.",
    "model_not_found": "The model 'gpt-4o-mini' does not exist on {url}.",
    "cut_stream": CUT_OFF,
}


@pytest.mark.parametrize("mode", ["stream", "complete"])
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_fault_maps_to_a_plain_message_and_the_next_call_works(
    server: FakeOpenAIServer, kind: str, mode: str
) -> None:
    call = CALLS[mode]
    llm = make_llm(server)
    server.fail_next(kind)
    message = llm_failure(lambda: call(llm))
    assert message == EXPECTED[kind].format(url=server.base_url)
    assert call(llm) == DEFAULT_REPLY


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_other_api_errors_show_the_status_without_the_key(
    server: FakeOpenAIServer, mode: str
) -> None:
    call = CALLS[mode]
    llm = make_llm(server)
    server.fail_next("bad_request")  # its message contains the caller's bearer token
    message = llm_failure(lambda: call(llm))
    assert message.startswith("The LLM refused the request (HTTP 400): Invalid request")
    assert "***" in message
    assert call(llm) == DEFAULT_REPLY


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_unknown_model_is_named(server: FakeOpenAIServer, mode: str) -> None:
    call = CALLS[mode]
    llm = make_llm(server, model="missing-model")
    for _ in range(2):  # always, not just once
        message = llm_failure(lambda: call(llm))
        assert message == f"The model 'missing-model' does not exist on {server.base_url}."
    assert call(llm, model="gpt-4o-mini") == DEFAULT_REPLY


def test_a_cut_stream_yields_the_start_then_fails(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    server.fail_next("cut_stream")
    received: list[str] = []
    stream = llm.stream(MESSAGES)

    def consume() -> None:
        for delta in stream:
            received.append(delta)

    assert llm_failure(consume) == CUT_OFF
    assert "".join(received) == "According to "  # the part that arrived
    assert stream.completion is None


def test_a_stream_ending_without_finish_reason_is_cut_off(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    server.fail_next("short_stream")  # clean end of body, but no finish_reason / [DONE]
    assert llm_failure(lambda: stream_text(llm)) == CUT_OFF
    assert stream_text(llm) == DEFAULT_REPLY


def test_an_error_event_inside_the_stream(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    server.fail_next("stream_error")
    message = llm_failure(lambda: stream_text(llm))
    assert message == "The LLM reported an error: The model crashed while generating."
    assert stream_text(llm) == DEFAULT_REPLY


@pytest.mark.parametrize("mode", ["stream", "complete"])
def test_slow_first_token_times_out(server: FakeOpenAIServer, mode: str) -> None:
    call = CALLS[mode]
    llm = make_llm(server, timeout=1.0)
    server.delay = 10.0
    server.fail_next("slow_first_token")
    started = time.monotonic()
    message = llm_failure(lambda: call(llm))
    assert time.monotonic() - started < 4
    assert message == "The LLM did not answer within 1 s."
    assert call(llm) == DEFAULT_REPLY


def test_connection_refused_names_the_url() -> None:
    port = free_port()  # nobody listens there
    url = f"http://127.0.0.1:{port}/v1"
    llm = OpenAILLM(api_key=SECRET, base_url=url, model="gpt-4o-mini", timeout=2.0, max_retries=0)
    for call in (stream_text, complete_text, list_models):
        message = llm_failure(lambda: call(llm))  # noqa: B023 (called at once)
        assert message == f"Cannot reach the LLM server at {url} (is it running?)."


def test_the_client_retries_a_rate_limit_when_allowed(server: FakeOpenAIServer) -> None:
    llm = make_llm(server, max_retries=1)
    server.fail_next("rate_limit")
    started = time.monotonic()
    assert complete_text(llm) == DEFAULT_REPLY
    assert time.monotonic() - started >= 0.9  # it honoured retry-after: 1
    assert len(server.requests) == 2


def test_list_models_failures_map_too(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    server.fail_next("server_error")
    assert llm_failure(lambda: list_models(llm)) == "The LLM server failed (HTTP 500); try again."
    server.api_key = "other"
    assert (
        llm_failure(lambda: list_models(llm))
        == "The LLM rejected the API key (check OPENAI_API_KEY)."
    )


# ---- the fake server's own contract ----------------------------------------------


def _get(url: str, key: str) -> tuple[int, dict[str, object], dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e), dict(e.headers)


def test_fake_server_speaks_openai_errors(openai_server: FakeOpenAIServer) -> None:
    base = openai_server.base_url
    status, body, _ = _get(f"{base}/models", "test-key")
    assert status == 200 and body["object"] == "list"
    status, body, _ = _get(f"{base}/models", "wrong")
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
    assert body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    openai_server.fail_next("rate_limit", count=2)
    for _ in range(2):
        status, body, headers = _get(f"{base}/models", "test-key")
        assert status == 429 and headers["retry-after"] == "1"
    assert _get(f"{base}/models", "test-key")[0] == 200
    assert _get(f"{base}/assistants", "test-key")[0] == 404  # not implemented
    with pytest.raises(ValueError, match="unknown fault"):
        openai_server.fail_next("meteor_strike")
